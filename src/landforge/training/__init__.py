"""landforge.training: losses, augmentation, the Lightning task and ``train(cfg)``.

``train`` and ``TrainConfig`` are imported lazily so ``import landforge.training.losses``
does not pull in Lightning.
"""

from __future__ import annotations

from typing import Any

__all__ = ["TrainConfig", "load_train_config", "train"]


def __getattr__(name: str) -> Any:
    if name == "train":
        from landforge.training.train import train

        return train
    if name in ("TrainConfig", "load_train_config"):
        from landforge.training import config

        return getattr(config, name)
    raise AttributeError(name)
