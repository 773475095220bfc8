"""Resumable training state without pickle: Lightning checkpoints as safetensors + JSON.

``landforge train`` keeps ``OUT/checkpoints/last.safetensors``, written at the end of
every epoch (and when training stops), and ``train --resume OUT`` continues from it. The
file holds everything Lightning saves (model weights, optimizer state, loop counters,
callback state such as the best weights so far and early stopping) plus the random
number generator states (torch, CUDA, NumPy, Python), so a resumed run draws the same
batches and augmentations as an uninterrupted one would. It is written through
:func:`landforge.models.checkpoint.save_state`: tensors as safetensors, the rest as JSON
metadata; nothing is pickled and loading cannot run code.
"""

from __future__ import annotations

import logging
import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from lightning.fabric.plugins.io.checkpoint_io import CheckpointIO
from lightning.pytorch.callbacks import Callback, Checkpoint

from landforge.models.checkpoint import load_state, save_state

__all__ = ["LAST", "LastState", "RngState", "SafeCheckpointIO"]

#: File name of the resumable state in ``OUT/checkpoints/``.
LAST = "last.safetensors"

_CONNECTOR_LOG = "lightning.pytorch.trainer.connectors.checkpoint_connector"


def _drop_weights_only_note(record: logging.LogRecord) -> bool:
    return "weights_only` was not set" not in record.getMessage()


class SafeCheckpointIO(CheckpointIO):
    """Lightning's checkpoint I/O through :func:`save_state` / :func:`load_state`."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None
    ) -> None:
        """Write ``checkpoint`` atomically (a killed run leaves the previous file)."""
        save_state(checkpoint, path)

    def load_checkpoint(
        self, path: Any, map_location: Any | None = None, weights_only: bool | None = None
    ) -> dict[str, Any]:
        """Read a state written by :meth:`save_checkpoint` (tensors on the CPU)."""
        return load_state(path)

    def remove_checkpoint(self, path: Any) -> None:
        """Delete a checkpoint file."""
        Path(path).unlink(missing_ok=True)


class LastState(Checkpoint):
    """Write ``DIR/last.safetensors`` after every training epoch and when training ends.

    Lightning's ``ModelCheckpoint(save_last=True, save_top_k=0)`` writes ``last`` only
    when training ends, so a killed run had nothing to resume from. This writes it at
    the end of every epoch (after the epoch's validation, so the best weights and early
    stopping state are those of the finished epoch) and once more at the end.
    """

    def __init__(self, dirpath: str | os.PathLike[str]) -> None:
        self.path = Path(dirpath) / LAST
        self._saved_step = -1
        # Lightning logs "`weights_only` was not set" for every full-state *save* (it is
        # about what is saved, optimizer included, not about loading): noise that reads
        # like an unsafe torch.load, so that one line is dropped
        logging.getLogger(_CONNECTOR_LOG).addFilter(_drop_weights_only_note)

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        """Save the state of the finished epoch."""
        if not trainer.sanity_checking and trainer.global_step != self._saved_step:
            trainer.save_checkpoint(self.path)
            self._saved_step = trainer.global_step

    def on_train_end(self, trainer: Any, pl_module: Any) -> None:
        """Save the final state, always (Lightning has now counted the last epoch).

        The end-of-epoch save ran before Lightning marked the epoch completed; a run
        stopped by ``max_steps`` and resumed with a larger one starts from this state.
        """
        trainer.save_checkpoint(self.path)
        self._saved_step = trainer.global_step


class RngState(Callback):
    """Save and restore the random generators with the checkpoint.

    Lightning asks for this state when it writes a checkpoint (after the epoch's
    validation) and restores it before the next epoch draws its shuffle, so a resumed run
    continues the random streams where the checkpointed run was.
    """

    def state_dict(self) -> dict[str, Any]:
        """The torch (and CUDA), NumPy and Python generator states."""
        version, internal, gauss = random.getstate()
        name, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)  # type: ignore[misc]
        state: dict[str, Any] = {
            "torch": torch.get_rng_state(),
            "numpy": (
                str(name),
                torch.from_numpy(np.asarray(keys, dtype=np.int64)),
                int(pos),
                int(has_gauss),
                float(cached),
            ),
            "python": (int(version), tuple(int(v) for v in internal), gauss),
        }
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            state["cuda"] = list(torch.cuda.get_rng_state_all())
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Put the generators back where they were when the checkpoint was written."""
        torch.set_rng_state(state_dict["torch"].to(torch.uint8))
        name, keys, pos, has_gauss, cached = state_dict["numpy"]
        np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
        version, internal, gauss = state_dict["python"]
        random.setstate((version, tuple(internal), gauss))
        cuda = state_dict.get("cuda")
        if (
            cuda is not None
            and torch.cuda.is_available()
            and len(cuda) == torch.cuda.device_count()
        ):
            torch.cuda.set_rng_state_all([t.to(torch.uint8) for t in cuda])
