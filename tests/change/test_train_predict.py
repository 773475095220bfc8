"""change train / predict / evaluate with the stand-in model, FUSU-Net when registered."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
import torch

from landforge.change.train import build_change_model, forward, fusu_loss, read_series_card
from landforge.cli import main
from landforge.models.registry import available

from .conftest import make_scene


def test_train_writes_checkpoint_and_cards(stub_model: Path) -> None:
    card = json.loads(stub_model.with_suffix(".json").read_text())
    assert card["model"] == "change_stub" and card["model_kwargs"]["series_channels"] == 14
    assert card["heads"]["change"] == ["change"] and len(card["heads"]["seg"]) == 8
    sc = read_series_card(stub_model)
    assert sc["time_steps"] == 4 and sc["series_channels"][-2:] == ["VV", "VH"]
    log = json.loads((stub_model.parent / "train_log.json").read_text())
    assert len(log["epochs"]) == 3 and log["epochs"][-1]["loss"] < log["epochs"][0]["loss"]


def test_train_cli_with_config(chips: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "change.yaml"
    cfg.write_text(
        f"chips: {chips}\nout: {tmp_path / 'm'}\nmodel: change_stub\n"
        "model_kwargs: {width: 4}\nepochs: 1\nbatch: 4\ntime_steps: 2\ns1: false\nquiet: true\n"
    )
    assert main(["change", "train", str(cfg)]) == 0
    sc = read_series_card(tmp_path / "m" / "model.safetensors")
    assert sc["time_steps"] == 2 and sc["series_dates"] == ["2023-01-15", "2023-04-15"]
    assert "VV" not in sc["series_channels"] and len(sc["series_channels"]) == 12
    assert main(["change", "train", str(cfg), "--lr", "-1"]) == 2


def test_fallback_loss_matches_registered() -> None:
    fl = pytest.importorskip("landforge.models.fusu_loss", reason="FusuLoss not written yet")
    g = torch.Generator().manual_seed(0)
    out = {k: torch.randn(2, 5, 6, 6, generator=g) for k in ("seg1", "seg2", "seg_ts")}
    out["change"] = torch.randn(2, 1, 6, 6, generator=g)
    y1 = torch.randint(0, 5, (2, 6, 6), generator=g)
    y2 = torch.randint(0, 5, (2, 6, 6), generator=g)
    yc = torch.randint(0, 2, (2, 6, 6), generator=g)
    y1[0, 0] = -100
    yc[1, 1] = -100
    ref = fl.FusuLoss()(out, {"seg1": y1, "seg2": y2, "change": yc})["loss"]
    assert float(fusu_loss(out, y1, y2, yc)) == pytest.approx(float(ref), rel=1e-5)


def test_predict_evaluate_cli(
    scene: dict[str, Any],
    stub_model: Path,
    chips: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "maps"
    args = [
        "change",
        "predict",
        "--t1",
        scene["t1"],
        "--t2",
        scene["t2"],
        "--series",
        scene["series"],
        "--model",
        str(stub_model),
        "--out",
        str(out),
        "--overlap",
        "4",
        "--block-windows",
        "2",
        "--min-coverage",
        "0.3",
        "--quiet",
    ]
    assert main(args) == 0, capsys.readouterr().err
    for name in ("change.tif", "change_prob.tif", "t1_classes.tif", "t2_classes.tif"):
        with rasterio.open(out / name) as src:
            assert (src.width, src.height) == (64, 64) and src.crs.to_epsg() == 32650
    assert not (out / "change.tif.parts").exists()
    with rasterio.open(out / "change.tif") as src:
        first = src.read(1)
    assert set(np.unique(first)) <= {0, 1}
    # the window at the origin equals the model on the same inputs (one window, no overlap)
    from landforge.change.dataset import ChangeChipDataset

    ds = ChangeChipDataset(chips, None)
    i = ds.chips.index("chips/c000000_000000.npz")
    model, _ = __import__("landforge.models.checkpoint", fromlist=["x"]).load_checkpoint(stub_model)
    item = {k: v[None] for k, v in ds[i].items()}
    with torch.no_grad():
        pc = (torch.sigmoid(forward(model, item)["change"][0, 0]) > 0.5).numpy()
    with rasterio.open(out / "change.tif") as src:
        edge = src.read(1)[:12, :12]
    assert (edge == pc[:12, :12]).mean() > 0.95
    # resume: a rerun with the parts of every block present recomputes nothing
    metrics = tmp_path / "m.json"
    code = main(
        [
            "change",
            "evaluate",
            "--pred",
            str(out),
            "--truth1",
            scene["label1"],
            "--truth2",
            scene["label2"],
            "--taxonomy",
            "mslu",
            "--out",
            str(metrics),
        ]
    )
    assert code == 0
    m = json.loads(metrics.read_text())
    assert {"fusu_score", "opencd_score", "sek", "semantic_change", "seg_t1"} <= set(m)
    assert metrics.with_suffix(".png").stat().st_size > 1000
    text = capsys.readouterr().out
    assert "FUSU (0.5/0.5)" in text and "open-cd (0.3/0.7)" in text
    # the model on the chips' test split
    code = main(
        [
            "change",
            "evaluate",
            "--chips",
            str(chips),
            "--model",
            str(stub_model),
            "--out",
            str(tmp_path / "c.json"),
        ]
    )
    assert code == 0 and json.loads((tmp_path / "c.json").read_text())["split"] == "test"


def test_predict_resume(scene: dict[str, Any], stub_model: Path, tmp_path: Path) -> None:
    from landforge.change import predict as cp

    out = tmp_path / "maps"
    calls: list[int] = []
    real = cp.change_block

    def failing(block: cp.ChangeBlock) -> dict[str, Any]:
        if len(calls) == 2:
            raise KeyboardInterrupt
        calls.append(block.index)
        return real(block)

    kw = dict(min_coverage=0.3, overlap=4, block_windows=2, quiet=True)
    cp.change_block = failing
    try:
        with pytest.raises(KeyboardInterrupt):
            cp.predict_change(scene["t1"], scene["t2"], stub_model, out, scene["series"], **kw)
    finally:
        cp.change_block = real
    assert not (out / "change.tif").exists() and (out / "change.tif.parts").is_dir()
    s = cp.predict_change(scene["t1"], scene["t2"], stub_model, out, scene["series"], **kw)
    assert s["reused"] == 2 and s["computed"] == s["blocks"] - 2
    ref = cp.predict_change(
        scene["t1"], scene["t2"], stub_model, tmp_path / "ref", scene["series"], **kw
    )
    assert ref["reused"] == 0
    for name in cp.OUTPUTS.values():
        with rasterio.open(out / name) as a, rasterio.open(tmp_path / "ref" / name) as b:
            assert np.array_equal(a.read(), b.read())


def test_predict_bad_input(
    scene: dict[str, Any], stub_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "maps"
    base = [
        "change",
        "predict",
        "--t1",
        scene["t1"],
        "--t2",
        scene["t2"],
        "--model",
        str(stub_model),
        "--out",
        str(out),
    ]
    code = main(base)
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: --series:") and err.count("\n") == 1
    few = make_scene(tmp_path / "few", months=2)
    code = main([*base, "--series", few["series"]])
    err = capsys.readouterr().err
    assert code == 2 and "2 date(s); the model expects 4" in err
    tight = make_scene(tmp_path / "tight", series_margin=0.0)  # series = image extent
    code = main([*base, "--series", tight["series"]])  # full coverage required by default
    err = capsys.readouterr().err
    assert code == 2 and "of the series footprint" in err and err.count("\n") == 1
    assert not (out / "change.tif").exists()


@pytest.mark.slow
@pytest.mark.skipif("fusu_net" not in available(), reason="fusu_net is not registered yet")
def test_fusu_net_trains_and_predicts(scene: dict[str, Any], tmp_path: Path) -> None:
    from landforge.change.chips import build_change_chips
    from landforge.change.predict import predict_change
    from landforge.change.train import train_change

    chips = tmp_path / "chips32"  # FUSU-Net takes multiples of 32 px
    build_change_chips(
        scene["t1"],
        scene["t2"],
        scene["label1"],
        scene["label2"],
        chips,
        scene["series"],
        size=32,
        taxonomy="mslu",
        split_block=1,
        split={"train": 0.5, "val": 0.5},
        min_coverage=0.5,
    )
    kw = {
        "backbone": "hrnet_w18_small",
        "head_channels": 8,
        "utae": {
            "encoder_widths": [8, 8],
            "decoder_widths": [8, 8],
            "out_channels": 8,
            "n_head": 2,
            "d_model": 16,
        },
    }
    w = train_change(
        chips=str(chips),
        out=str(tmp_path / "m"),
        model="fusu_net",
        model_kwargs=kw,
        epochs=1,
        max_steps=1,
        batch=2,
        quiet=True,
    )
    s = predict_change(
        scene["t1"],
        scene["t2"],
        w,
        tmp_path / "maps",
        scene["series"],
        min_coverage=0.3,
        overlap=0,
        quiet=True,
    )
    assert s["blocks"] >= 1 and (tmp_path / "maps" / "change.tif").exists()


def test_build_change_model_fills_sizes() -> None:
    model, kw = build_change_model("change_stub", 3, 0, 5)
    assert kw == {"in_channels": 3, "series_channels": 1, "classes": 5}
    out = model(torch.zeros(1, 3, 8, 8), torch.zeros(1, 3, 8, 8))
    assert out["change"].shape == (1, 1, 8, 8)


SLOVENIA = Path(os.environ.get("LANDFORGE_SHARED", "/work/shared")) / "data" / "slovenia_s2"
NDVI = SLOVENIA / "derived_geotiff" / "NDVI_68dates.tif"
CLM = SLOVENIA / "derived_geotiff" / "CLM_cloudmask_68dates.tif"


@pytest.mark.realdata
@pytest.mark.skipif(not NDVI.is_file() or not CLM.is_file(), reason=f"{SLOVENIA} is absent")
def test_slovenia_series_path() -> None:
    """Real Sentinel-2 NDVI (68 dates, 2015-2017) with its cloud masks: dates, all-cloud
    frames dropped and counted, a 5x footprint read by geographic bounds."""
    from landforge.change.series import open_series

    with rasterio.open(CLM) as src:
        clm = src.read()
    all_cloud = int((clm.reshape(len(clm), -1).mean(1) >= 1.0).sum())
    with open_series(NDVI, cloud=CLM) as s:
        assert len(s.dates) == 68 and s.dates == sorted(s.dates) and s.channels == ["value"]
        assert s.dates[0].isoformat() == "2015-07-11"
        left, bottom, right, top = s.bounds
        cx, cy = (left + right) / 2, (bottom + top) / 2
        # a 200 m patch: its 5x footprint (1 km) is the whole series extent
        cut = s.read((cx - 500, cy - 500, cx + 500, cy + 500), s.crs, 10.0)
        assert cut.data.shape == (68, 1, 100, 100) and cut.coverage > 0.98
        assert cut.dropped == all_cloud > 0 and int((~cut.mask).sum()) == all_cloud
        assert cut.days[1] == 20 and float(cut.data[cut.mask].min()) > -0.2
        with rasterio.open(NDVI) as src:  # a clear frame holds the file's values
            first = src.read(1)
        assert np.allclose(
            cut.data[0, 0, 1:-1, 1:-1], first[1 : cut.data.shape[2] - 1, 1:99], atol=0.5
        )
