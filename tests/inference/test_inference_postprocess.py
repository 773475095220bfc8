"""Map clean-up removes specks and fills pinholes, sizes given in m²."""

from __future__ import annotations

import numpy as np

from landforge.inference.postprocess import area_to_pixels, clean_class_map


def test_specks_removed_and_holes_filled_per_class() -> None:
    m = np.ones((30, 30), np.uint8)  # a UBGG-like map: every pixel has a class
    m[:, 20:] = 2
    m[5:7, 5:7] = 3  # 4 px = 1 m² speck at 0.5 m
    m[15:25, 5:15] = 3  # 100 px = 25 m² object
    m[19, 9] = 1  # 1 px pinhole inside it
    m[0, 0] = 255
    out = clean_class_map(m, 0.5, min_object_m2=2.0, max_hole_m2=0.5, replace="nearest")
    assert (out[5:7, 5:7] == 1).all()  # speck takes its surroundings' class
    assert (out[15:25, 5:15] == 3).all()  # hole filled
    assert out[0, 0] == 255 and (out[:, 21:] == 2).all()
    bg = clean_class_map(m, 0.5, min_object_m2=2.0, replace="background")
    assert (bg[5:7, 5:7] == 0).all()


def test_area_to_pixels() -> None:
    assert area_to_pixels(4.0, 0.5) == 16
    assert area_to_pixels(0.0, 0.5) == 0
    assert area_to_pixels(1.0, (0.5, 0.5)) == 4
