"""Prediction over large rasters: stitched windows equal one whole-image pass."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from inference_helpers import TinyFCN, grid_for, make_card, symmetrise, write_image

from landforge.cli import main
from landforge.errors import InputError
from landforge.inference.forward import model_probabilities
from landforge.inference.predictor import predict_raster
from landforge.io.raster import write_cog
from landforge.models.checkpoint import load_checkpoint, save_checkpoint


def _whole_image(ckpt: Path, image: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Footprint probs, use probs and class map from one forward pass over the image."""
    model, card = load_checkpoint(ckpt)
    with rasterio.open(image) as src:
        x = src.read().astype(np.float32)
    mean = np.asarray(card.mean, np.float32)[:, None, None]
    std = np.asarray(card.std, np.float32)[:, None, None]
    probs = model_probabilities(model, torch.from_numpy((x - mean) / std)[None])
    fp = probs["footprint"][0, 0].numpy()
    use = probs["use"][0].numpy()
    classes = (use.argmax(0) + 1).astype(np.uint8)
    classes[fp < 0.5] = 0
    return fp, use, classes


def _checkpoint(tmp_path: Path, symmetric: bool = False, bias: float = 0.0) -> Path:
    torch.manual_seed(1)
    model = TinyFCN()
    if symmetric:
        symmetrise(model)
    with torch.no_grad():
        model.footprint.bias.fill_(bias)
    return save_checkpoint(model, make_card(), tmp_path / "tiny")


def _read(path: Path) -> np.ndarray:
    with rasterio.open(path) as src:
        return src.read()


@pytest.mark.parametrize(("batch", "block_windows"), [(1, 4), (5, 4), (5, 1), (3, 2)])
def test_stitched_windows_equal_one_whole_image_pass(
    tmp_path: Path, batch: int, block_windows: int
) -> None:
    ckpt = _checkpoint(tmp_path)
    image = write_image(tmp_path / "image.tif", 150, 221)
    summary = predict_raster(
        ckpt,
        image,
        tmp_path / "map.tif",
        window=64,
        overlap=4,
        batch=batch,
        block_windows=block_windows,
        probs_out=tmp_path / "probs.tif",
        footprint_out=tmp_path / "fp.tif",
        quiet=True,
    )
    fp, use, classes = _whole_image(ckpt, image)
    assert summary["windows"] == 3 * 4 and summary["windows_skipped"] == 0
    np.testing.assert_allclose(_read(tmp_path / "fp.tif")[0], fp, atol=1e-5)
    np.testing.assert_allclose(_read(tmp_path / "probs.tif"), use, atol=1e-5)
    assert (_read(tmp_path / "map.tif")[0] == classes).all()
    assert 0 < (classes > 0).mean() < 1  # the check is not vacuous
    with rasterio.open(tmp_path / "map.tif") as src:
        assert src.nodata == 255 and src.colormap(1)[1][:3] != (0, 0, 0)
        assert src.crs.to_epsg() == 32650
    with rasterio.open(tmp_path / "probs.tif") as src:
        assert src.descriptions == ("residential", "commercial", "industrial")


def test_flip_tta_with_a_flip_equivariant_model_changes_nothing(tmp_path: Path) -> None:
    ckpt = _checkpoint(tmp_path, symmetric=True)
    image = write_image(tmp_path / "image.tif", 96, 128)
    plain = predict_raster(
        ckpt,
        image,
        tmp_path / "a.tif",
        window=64,
        overlap=8,
        probs_out=tmp_path / "pa.tif",
        quiet=True,
    )
    flips = predict_raster(
        ckpt,
        image,
        tmp_path / "b.tif",
        window=64,
        overlap=8,
        tta="flips",
        probs_out=tmp_path / "pb.tif",
        quiet=True,
    )
    np.testing.assert_allclose(_read(tmp_path / "pa.tif"), _read(tmp_path / "pb.tif"), atol=1e-5)
    assert (_read(tmp_path / "a.tif") == _read(tmp_path / "b.tif")).all()
    assert plain["class_pixels"] == flips["class_pixels"]


def test_nodata_in_is_nodata_out(tmp_path: Path) -> None:
    ckpt = _checkpoint(tmp_path)
    arr = np.random.default_rng(3).integers(1, 255, (3, 80, 90)).astype(np.uint8)
    arr[:, 10:30, 40:70] = 0
    image = write_cog(tmp_path / "image.tif", arr, grid_for(80, 90), nodata=0)
    summary = predict_raster(
        ckpt,
        image,
        tmp_path / "map.tif",
        window=64,
        overlap=8,
        probs_out=tmp_path / "p.tif",
        footprint_out=tmp_path / "fp.tif",
        quiet=True,
    )
    classes = _read(tmp_path / "map.tif")[0]
    hole = np.zeros((80, 90), bool)
    hole[10:30, 40:70] = True
    assert (classes[hole] == 255).all() and (classes[~hole] != 255).all()
    assert np.isnan(_read(tmp_path / "fp.tif")[0][hole]).all()
    assert np.isnan(_read(tmp_path / "p.tif")[:, hole]).all()
    assert summary["nodata_pixels"] == hole.sum()


def test_windows_outside_the_built_up_mask_are_skipped(tmp_path: Path) -> None:
    ckpt = _checkpoint(tmp_path, bias=5.0)  # every predicted pixel is a building
    image = write_image(tmp_path / "image.tif", 128, 128)
    mask = np.zeros((1, 128, 128), np.uint8)
    mask[0, 5:10, 5:10] = 1  # only the top-left window's kept region
    write_cog(tmp_path / "mask.tif", mask, grid_for(128, 128), nodata=None)
    summary = predict_raster(
        ckpt,
        image,
        tmp_path / "map.tif",
        window=64,
        overlap=8,
        mask=tmp_path / "mask.tif",
        quiet=True,
    )
    assert summary["windows"] == 9 and summary["windows_skipped"] == 8
    classes = _read(tmp_path / "map.tif")[0]
    assert (classes[:56, :56] > 0).all()  # predicted
    assert (classes[56:, :] == 0).all() and (classes[:, 56:] == 0).all()  # skipped


def test_raster_smaller_than_the_window_is_padded_and_predicted(tmp_path: Path) -> None:
    ckpt = _checkpoint(tmp_path)
    image = write_image(tmp_path / "image.tif", 37, 50)
    summary = predict_raster(ckpt, image, tmp_path / "map.tif", window=256, overlap=32, quiet=True)
    assert summary["windows"] == 1
    assert _read(tmp_path / "map.tif").shape == (1, 37, 50)


def test_band_count_mismatch_is_an_input_error(tmp_path: Path) -> None:
    torch.manual_seed(0)
    bands = ["red", "green", "blue", "poi_residential", "poi_commercial", "poi_industrial"]
    ckpt = save_checkpoint(TinyFCN(in_channels=6), make_card(bands), tmp_path / "six")
    image = write_image(tmp_path / "image.tif", 40, 40)
    with pytest.raises(
        InputError,
        match=r"model wants 6 bands, got 3; model bands: red, green, blue, poi_residential, \.\.\.",
    ):
        predict_raster(ckpt, image, tmp_path / "map.tif", window=32, overlap=4, quiet=True)


def test_cli_band_mismatch_exits_2_with_one_line(tmp_path: Path, capsys) -> None:
    torch.manual_seed(0)
    ckpt = save_checkpoint(
        TinyFCN(in_channels=4), make_card(["r", "g", "b", "nir"]), tmp_path / "four"
    )
    image = write_image(tmp_path / "image.tif", 40, 40)
    code = main(
        [
            "predict",
            "--model",
            str(ckpt),
            "--image",
            str(image),
            "--out",
            str(tmp_path / "map.tif"),
            "--window",
            "32",
            "--overlap",
            "4",
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert err[0].startswith("error: ")
    assert "model wants 4 bands, got 3; model bands: r, g, b, nir" in err[0]
    assert not (tmp_path / "map.tif").exists()
    assert not list(tmp_path.glob(".*"))  # no staging files left behind


def test_cli_predict_with_extra_raster(tmp_path: Path, capsys) -> None:
    torch.manual_seed(0)
    ckpt = save_checkpoint(
        TinyFCN(in_channels=4), make_card(["r", "g", "b", "poi"]), tmp_path / "four"
    )
    image = write_image(tmp_path / "image.tif", 70, 70)
    extra = write_image(tmp_path / "poi.tif", 70, 70, bands=1, seed=2)
    code = main(
        [
            "predict",
            "--model",
            str(ckpt),
            "--image",
            str(image),
            "--extra",
            str(extra),
            "--out",
            str(tmp_path / "map.tif"),
            "--window",
            "64",
            "--overlap",
            "8",
            "--tta",
            "flips",
            "--probs",
            str(tmp_path / "p.tif"),
            "--probs-dtype",
            "uint8",
        ]
    )
    assert code == 0, capsys.readouterr().err
    with rasterio.open(tmp_path / "p.tif") as src:
        assert src.dtypes[0] == "uint8" and src.scales[0] == pytest.approx(1 / 254)
    # an extra raster at another resolution is refused (resample it first)
    other = write_cog(
        tmp_path / "other.tif", np.ones((1, 70, 70), np.uint8), grid_for(70, 70, res=1.0)
    )
    code = main(
        [
            "predict",
            "--model",
            str(ckpt),
            "--image",
            str(image),
            "--extra",
            str(other),
            "--out",
            str(tmp_path / "map2.tif"),
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "pixel size 1 x 1 differs" in err[0]
    assert "resample" in err[0] and not (tmp_path / "map2.tif").exists()
