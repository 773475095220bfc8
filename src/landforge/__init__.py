"""landforge: multi-source geodata to land-use samples, models and large-area maps."""

from landforge import _compat  # noqa: F401  (must run before torchvision is imported)
from landforge.errors import InputError

__version__ = "0.1.0"

__all__ = ["InputError", "__version__"]
