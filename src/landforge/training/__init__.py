"""landforge.training: losses, augmentation, the Lightning task and ``train(cfg)``.

Use ``from landforge.training.train import train`` (the submodule ``train`` shadows any
package-level function of the same name). The options models (``TrainConfig``,
``SequenceConfig``, ``CrossDomainConfig`` ...) live in :mod:`landforge.training.options`,
which imports nothing heavy; ``TrainConfig`` and ``load_train_config`` are re-exported
lazily here.
"""

from __future__ import annotations

from typing import Any

__all__ = ["TrainConfig", "load_train_config"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from landforge.training import options

        return getattr(options, name)
    raise AttributeError(name)
