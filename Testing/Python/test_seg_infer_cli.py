"""``hrpqct segment``: outputs written, clear error without a model."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from hrpqct.cli import main
from hrpqct.io import read_labelmap, read_segmentation_file, write_image
from hrpqct.phantom.anatomy import Anatomy
from hrpqct.phantom.render import Grid
from hrpqct.phantom.scan import generate
from hrpqct.seg.model import ModelCard, build_model, save_model
from hrpqct.seg.preprocess import InputSpec


def run(*args: str) -> int:
    """Run the CLI as from the shell; return its exit status."""
    try:
        main(list(args))
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


@pytest.fixture(scope="module")
def scan_file(tmp_path_factory):
    ph = generate(Anatomy(seed=11), Grid(size=160, n_slices=3))
    path = tmp_path_factory.mktemp("scan") / "leg.nrrd"
    write_image(ph.image, path)
    return path, ph


def test_segment_writes_seven_regions_confidence_and_summary(tmp_path, scan_file):
    path, ph = scan_file
    model_dir = save_model(build_model("tiny", seed=0), tmp_path / "model",
                           ModelCard(name="tiny-test", variant="tiny",
                                     preprocessing=InputSpec(input_px=128).to_dict()))
    out = tmp_path / "out"
    assert run("segment", str(path), "--out", str(out), "--model", str(model_dir), "--device", "cpu",
               "--batch-size", "2", "-q") == 0
    names = sorted(p.name for p in out.iterdir())
    assert {"leg.seg.nrrd", "leg_confidence.csv", "leg_labels.nrrd", "leg_regions.csv",
            "leg_scan.csv", "leg_slices.csv", "leg_overlay.png", "leg_confidence.png"} <= set(names)
    assert set(names) - {"leg_overlay_least_confident.png"} == {
        "leg.seg.nrrd", "leg_confidence.csv", "leg_labels.nrrd", "leg_regions.csv", "leg_scan.csv",
        "leg_slices.csv", "leg_overlay.png", "leg_confidence.png"}
    assert (out / "leg_overlay.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    lab = read_labelmap(out / "leg_labels.nrrd")
    assert lab.shape == ph.image.shape
    np.testing.assert_allclose(lab.spacing, ph.image.spacing, rtol=1e-6)
    np.testing.assert_allclose(lab.origin, ph.image.origin, atol=1e-6)
    assert lab.array.max() <= 7
    seg = read_segmentation_file(out / "leg.seg.nrrd")
    assert seg.shape == ph.image.shape
    conf = pd.read_csv(out / "leg_confidence.csv")
    assert list(conf.columns) == ["slice", "mean_max_prob", "mean_entropy", "limb_pixels"]
    assert len(conf) == 3
    regions = pd.read_csv(out / "leg_regions.csv")
    assert list(regions.code) == ["TC", "TT", "FC", "FT", "SK", "MT", "AT"]


def test_segment_without_installed_model_fails_clearly(tmp_path, scan_file, monkeypatch, capsys):
    path, _ = scan_file
    cat = {"default": "demo-synthetic", "models": [
        {"id": "demo-synthetic", "title": "demo", "variant": "b0", "description": "",
         "folder": "demo-synthetic", "bundled": True}]}
    (tmp_path / "catalog.json").write_text(json.dumps(cat), encoding="utf-8")
    monkeypatch.setenv("HRPQCT_MODELS_DIR", str(tmp_path))
    assert run("segment", str(path), "--out", str(tmp_path / "o"), "-q") == 2
    err = capsys.readouterr().err
    assert "demo-synthetic" in err and "not installed" in err
    assert not (tmp_path / "o").exists()


def test_segment_cpu_backend_and_int8_options(tmp_path, scan_file, monkeypatch, capsys):
    from hrpqct.seg import inference

    path, _ = scan_file
    model_dir = save_model(build_model("tiny", seed=0), tmp_path / "model",
                           ModelCard(name="tiny-test", variant="tiny",
                                     preprocessing=InputSpec(input_px=128).to_dict()))
    seen = []
    real = inference.make_predictor

    def spy(model, device, **kw):
        seen.append(kw)
        return real(model, device, **kw)

    monkeypatch.setattr(inference, "make_predictor", spy)
    assert run("segment", str(path), "--out", str(tmp_path / "a"), "--model", str(model_dir),
               "--device", "cpu", "--cpu-backend", "torch", "--int8", "-q") == 0
    assert seen[-1]["cpu_backend"] == "torch" and seen[-1]["quantize"] is True
    assert read_labelmap(tmp_path / "a" / "leg_labels.nrrd").array.max() <= 7
    assert run("segment", str(path), "--out", str(tmp_path / "b"), "--model", str(model_dir),
               "--cpu-backend", "tensorrt", "-q") == 2
    assert "--cpu-backend must be torch or onnxruntime" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()


def test_segment_frees_the_scan_before_writing_the_label_volumes(tmp_path, scan_file, monkeypatch):
    # the writers copy the label volume; the scan (1.7 GB for a full one) must be gone by then
    import gc
    import weakref

    import hrpqct.io as hio
    from hrpqct.seg.pipeline import segment_scan

    path, _ = scan_file
    model_dir = save_model(build_model("tiny", seed=0), tmp_path / "model",
                           ModelCard(name="tiny-test", variant="tiny",
                                     preprocessing=InputSpec(input_px=128).to_dict()))
    refs, alive = [], []
    real_read, real_write = hio.read_scan, hio.write_segmentation

    def read(*a, **k):
        vol = real_read(*a, **k)
        refs.append(weakref.ref(vol.array))
        return vol

    def write(*a, **k):
        gc.collect()
        alive.append(refs[0]() is not None)
        return real_write(*a, **k)

    monkeypatch.setattr(hio, "read_scan", read)
    monkeypatch.setattr(hio, "write_segmentation", write)
    res = segment_scan(path, tmp_path / "out", model=str(model_dir), device="cpu", quiet=True)
    assert alive == [False]
    assert (tmp_path / "out" / "leg_overlay.png").is_file() and res["labels7"].array.max() <= 7
