"""Helpers of the parcel-classifier tests."""

from __future__ import annotations

#: a Swin Transformer small enough for CPU tests (random init, nothing downloaded)
TINY_SWIN = {
    "img_size": 16,
    "embed_dim": 8,
    "depths": [1, 1],
    "num_heads": [1, 2],
    "window_size": 2,
}
