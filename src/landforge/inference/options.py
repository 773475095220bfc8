"""Options models of the inference stages (one per stage; defaults live only here).

No heavy imports: the CLI builds its flags from these models at start-up.
"""

from __future__ import annotations

from pydantic import Field

from landforge.config import Options

__all__ = ["VectorizeOptions"]


class VectorizeOptions(Options):
    """How a class map becomes building polygons (``landforge vectorize``)."""

    simplify_m: float = Field(
        0.5, ge=0, description="Douglas-Peucker tolerance in metres (0 keeps the pixel outline)."
    )
    min_area_m2: float = Field(4.0, ge=0, description="Drop smaller buildings (m²).")
    block: int = Field(4096, ge=2, description="Processing block size in pixels.")
