"""Augmentation moves the image and its masks together."""

from __future__ import annotations

import pytest
import torch

from landforge.training.augment import dihedral, random_dihedral


def test_the_eight_symmetries_are_distinct_and_shape_preserving():
    x = torch.arange(16).reshape(1, 4, 4)
    outs = [dihedral(x, k) for k in range(8)]
    assert all(o.shape == x.shape for o in outs)
    assert len({tuple(o.flatten().tolist()) for o in outs}) == 8
    torch.testing.assert_close(dihedral(x, 4), x.transpose(-2, -1))
    torch.testing.assert_close(dihedral(x, 5), x.flip(-1))
    torch.testing.assert_close(dihedral(x, 7), x.flip(-2))
    with pytest.raises(ValueError):
        dihedral(x, 8)


def test_image_and_masks_stay_in_step():
    gen = torch.Generator().manual_seed(0)
    image = torch.randn(5, 16, 16)
    mask = (image[0] > 0).long()  # a mask derived pixel by pixel from band 0
    seen = set()
    for _ in range(40):
        out = random_dihedral({"image": image, "footprint": mask}, generator=gen)
        torch.testing.assert_close(out["footprint"], (out["image"][0] > 0).long())
        seen.add(tuple(out["image"][0, 0, :3].tolist()))
    assert len(seen) > 4  # more than one transform was drawn
