"""Models: a registry of architectures and safe checkpoints (safetensors + model card)."""

from landforge.models.checkpoint import ModelCard, load_checkpoint, save_checkpoint
from landforge.models.registry import available, build, register

__all__ = ["ModelCard", "available", "build", "load_checkpoint", "register", "save_checkpoint"]
