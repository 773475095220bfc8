"""Block-wise prediction: resume after a failure, Dask runs, blending, aligned extras."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from affine import Affine
from inference_helpers import TinyFCN, grid_for, make_card, write_image

from landforge.errors import InputError, OptionError
from landforge.inference import blocks as B
from landforge.inference import predictor
from landforge.inference.forward import model_probabilities
from landforge.inference.predictor import predict_raster
from landforge.io.raster import RasterGrid, write_cog
from landforge.models.checkpoint import load_checkpoint, save_checkpoint


def _checkpoint(tmp_path: Path, name: str = "tiny") -> Path:
    torch.manual_seed(1)
    return save_checkpoint(TinyFCN(), make_card(), tmp_path / name)


def _read(path: Path) -> np.ndarray:
    with rasterio.open(path) as src:
        return src.read()


def _run(ckpt: Path, image: Path, out: Path, **kw) -> dict:
    kw = {"window": 32, "overlap": 4, "block_windows": 2, "quiet": True} | kw
    return predict_raster(
        ckpt,
        image,
        out / "map.tif",
        probs_out=out / "probs.tif",
        footprint_out=out / "fp.tif",
        **kw,
    )


def _same_outputs(a: Path, b: Path, exact_probs: bool = True) -> None:
    assert (_read(a / "map.tif") == _read(b / "map.tif")).all()
    for name in ("probs.tif", "fp.tif"):
        if exact_probs:
            np.testing.assert_array_equal(_read(a / name), _read(b / name))
        else:
            np.testing.assert_allclose(_read(a / name), _read(b / name), atol=1e-6)


class _Boom(RuntimeError):
    pass


@pytest.fixture(scope="module")
def client():
    distributed = pytest.importorskip("dask.distributed")
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as c,
    ):
        yield c


def test_resume_after_a_failure_is_bit_identical(tmp_path: Path) -> None:
    ckpt = _checkpoint(tmp_path)
    image = write_image(tmp_path / "image.tif", 100, 130)
    (tmp_path / "a").mkdir()
    full = _run(ckpt, image, tmp_path / "a")
    assert full["blocks"] > 4 and full["blocks_reused"] == 0
    assert not (tmp_path / "a" / "map.tif.parts").exists()  # removed after success

    seen = []

    def fail_after_3(rec: dict) -> None:
        seen.append(rec["index"])
        if len(seen) == 3:
            raise _Boom("killed")

    out = tmp_path / "b"
    with pytest.raises(_Boom):
        _run(ckpt, image, out, on_block=fail_after_3)
    parts = out / "map.tif.parts"
    assert len(list(parts.glob("*.done.json"))) == 3
    assert not (out / "map.tif").exists() and not (out / "probs.tif").exists()
    resumed = _run(ckpt, image, out, resume=True, on_block=lambda rec: seen.append(rec["index"]))
    assert resumed["blocks_reused"] == 3
    assert len(seen) == full["blocks"]  # each block computed exactly once overall
    _same_outputs(tmp_path / "a", out)
    assert (tmp_path / "a" / "map.tif").read_bytes() == (out / "map.tif").read_bytes()
    assert resumed["class_pixels"] == full["class_pixels"]
    assert resumed["nodata_pixels"] == full["nodata_pixels"]
    assert not parts.exists()


def test_resume_ignores_blocks_of_another_model_and_resume_off_discards_parts(
    tmp_path: Path,
) -> None:
    ckpt = _checkpoint(tmp_path)
    image = write_image(tmp_path / "image.tif", 80, 80)
    calls = []

    def fail_first(rec: dict) -> None:
        calls.append(rec)
        raise _Boom("killed")

    with pytest.raises(_Boom):
        _run(ckpt, image, tmp_path, on_block=fail_first)
    torch.manual_seed(7)
    other = save_checkpoint(TinyFCN(), make_card(), tmp_path / "other")
    summary = _run(other, image, tmp_path, resume=True)
    assert summary["blocks_reused"] == 0  # the record's model hash differs
    with pytest.raises(_Boom):
        _run(ckpt, image, tmp_path, on_block=fail_first)
    with pytest.warns(UserWarning, match="discarding 1 finished block"):
        summary = _run(ckpt, image, tmp_path, resume=False)
    assert summary["blocks_reused"] == 0


def test_dask_run_equals_in_process_run_and_loads_the_model_once(tmp_path: Path, client) -> None:
    ckpt = _checkpoint(tmp_path)
    image = write_image(tmp_path / "image.tif", 100, 130, seed=4)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    one = _run(ckpt, image, tmp_path / "a")
    loads = B._LOADS[0]
    two = _run(ckpt, image, tmp_path / "b", client=client)
    assert B._LOADS[0] - loads <= 1  # cached per process (both threads share one here)
    assert two["blocks"] > 4
    _same_outputs(tmp_path / "a", tmp_path / "b", exact_probs=False)
    assert one["class_pixels"] == two["class_pixels"]


def test_resume_on_dask_after_an_in_process_failure(tmp_path: Path, client) -> None:
    torch.manual_seed(1)
    pair = (TinyFCN(), make_card())  # an in-memory model goes to workers as a checkpoint
    image = write_image(tmp_path / "image.tif", 90, 90, seed=5)
    (tmp_path / "a").mkdir()
    _run(pair, image, tmp_path / "a")
    n = []

    def fail(rec: dict) -> None:
        n.append(1)
        if len(n) == 2:
            raise _Boom("killed")

    with pytest.raises(_Boom):
        _run(pair, image, tmp_path, on_block=fail)
    summary = _run(pair, image, tmp_path, resume=True, client=client)
    assert summary["blocks_reused"] == 2
    _same_outputs(tmp_path / "a", tmp_path, exact_probs=False)


def test_a_dead_scheduler_is_a_quick_input_error(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(predictor, "_CONNECT_TIMEOUT_S", 1.0)
    ckpt = _checkpoint(tmp_path)
    image = write_image(tmp_path / "image.tif", 40, 40)
    t0 = time.perf_counter()
    with pytest.raises(OptionError, match=r"^scheduler: no Dask scheduler answers"):
        _run(ckpt, image, tmp_path, scheduler="tcp://127.0.0.1:9")
    assert time.perf_counter() - t0 < 10
    assert not (tmp_path / "map.tif").exists() and not (tmp_path / "map.tif.parts").exists()


def _whole_image(model: torch.nn.Module, card, image: Path) -> tuple[np.ndarray, np.ndarray]:
    with rasterio.open(image) as src:
        x = src.read().astype(np.float32)
    mean = np.asarray(card.mean, np.float32)[:, None, None]
    std = np.asarray(card.std, np.float32)[:, None, None]
    probs = model_probabilities(model, torch.from_numpy((x - mean) / std)[None])
    return probs["footprint"][0, 0].numpy(), probs["use"][0].numpy()


@pytest.mark.parametrize("block_windows", [1, 3])
def test_blend_equals_centre_crop_for_a_receptive_field_inside_the_overlap(
    tmp_path: Path, block_windows: int
) -> None:
    # TinyFCN's receptive-field radius is 2 <= overlap / 2: every window is exact
    ckpt = _checkpoint(tmp_path)
    image = write_image(tmp_path / "image.tif", 150, 221, seed=2)
    (tmp_path / "crop").mkdir()
    (tmp_path / "blend").mkdir()
    kw = {"window": 64, "overlap": 8, "block_windows": block_windows}  # no padding to 32
    _run(ckpt, image, tmp_path / "crop", **kw)
    summary = _run(ckpt, image, tmp_path / "blend", blend=True, **kw)
    assert summary["blend"] and summary["windows"] == 3 * 5
    _same_outputs(tmp_path / "crop", tmp_path / "blend", exact_probs=False)
    model, card = load_checkpoint(ckpt)
    fp, use = _whole_image(model, card, image)
    np.testing.assert_allclose(_read(tmp_path / "blend" / "fp.tif")[0], fp, atol=1e-5)
    np.testing.assert_allclose(_read(tmp_path / "blend" / "probs.tif"), use, atol=1e-5)


def test_blend_differs_from_crop_for_a_wide_receptive_field(tmp_path: Path) -> None:
    torch.manual_seed(0)  # receptive-field radius 12 > overlap 4: windows disagree

    class Wide(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = torch.nn.Conv2d(3, 4, 25, padding=12)

        def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
            f = self.body(x)
            return {"footprint": f[:, :1], "use": f[:, 1:]}

    model = Wide()
    pair = (model, make_card())
    image = write_image(tmp_path / "image.tif", 70, 70, seed=3)
    a = predict_raster(
        pair, image, tmp_path / "a.tif", window=32, overlap=4, probs_out=tmp_path / "pa.tif",
        quiet=True,
    )  # fmt: skip
    b = predict_raster(
        pair, image, tmp_path / "b.tif", window=32, overlap=4, probs_out=tmp_path / "pb.tif",
        blend=True, quiet=True,
    )  # fmt: skip
    pa, pb = _read(tmp_path / "pa.tif"), _read(tmp_path / "pb.tif")
    assert np.isfinite(pb).all() and a["windows"] == b["windows"]
    assert np.abs(pa - pb).max() > 1e-4  # blending did something


def test_blend_with_mask_and_nodata(tmp_path: Path) -> None:
    ckpt = _checkpoint(tmp_path)
    arr = np.random.default_rng(3).integers(1, 255, (3, 96, 96)).astype(np.uint8)
    arr[:, 10:20, 50:70] = 0
    image = write_cog(tmp_path / "image.tif", arr, grid_for(96, 96), nodata=0)
    mask = np.zeros((1, 96, 96), np.uint8)
    mask[0, 2:6, 2:6] = 1
    write_cog(tmp_path / "mask.tif", mask, grid_for(96, 96))
    for blend in (False, True):
        out = tmp_path / str(blend)
        out.mkdir()
        s = _run(ckpt, image, out, window=40, overlap=8, mask=tmp_path / "mask.tif", blend=blend)
        assert s["windows"] == 16 and s["windows_skipped"] == 15
    _same_outputs(tmp_path / "False", tmp_path / "True", exact_probs=False)
    classes = _read(tmp_path / "True" / "map.tif")[0]
    assert (classes[10:20, 50:70] == 255).all()
    assert (classes[40:, 40:][classes[40:, 40:] != 255] == 0).all()


def test_an_aligned_extra_with_another_extent_is_read_boundlessly(tmp_path: Path) -> None:
    torch.manual_seed(0)
    bands = ["red", "green", "blue", "poi"]
    ckpt = save_checkpoint(TinyFCN(in_channels=4), make_card(bands), tmp_path / "four")
    image = write_image(tmp_path / "image.tif", 60, 80)
    g = grid_for(60, 80)
    # the extra starts 10 columns right of the image and 5 rows above it
    t = g.transform
    extra_grid = RasterGrid(g.crs, Affine(t.a, 0, t.c + 10 * t.a, 0, t.e, t.f - 5 * t.e), 90, 50)
    write_cog(tmp_path / "poi.tif", np.full((1, 50, 90), 7, np.uint8), extra_grid, nodata=255)
    with pytest.warns(UserWarning, match="covers only part of the image"):
        predict_raster(
            ckpt, image, tmp_path / "map.tif", extras=[tmp_path / "poi.tif"], window=32,
            overlap=4, quiet=True,
        )  # fmt: skip
    classes = _read(tmp_path / "map.tif")[0]
    inside = np.zeros((60, 80), bool)
    inside[0:45, 10:80] = True  # rows -5..45 and cols 10..100 of the extra, clipped
    assert (classes[~inside] == 255).all() and (classes[inside] != 255).all()
    # a half-pixel shift cannot be read without resampling
    shifted = RasterGrid(g.crs, Affine(t.a, 0, t.c + 0.5 * t.a, 0, t.e, t.f), 80, 60)
    write_cog(tmp_path / "bad.tif", np.ones((1, 60, 80), np.uint8), shifted)
    with pytest.raises(InputError, match="not aligned .* resample"):
        predict_raster(
            ckpt, image, tmp_path / "m2.tif", extras=[tmp_path / "bad.tif"], window=32,
            overlap=4, quiet=True,
        )  # fmt: skip
