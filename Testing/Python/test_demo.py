"""The README's main job, ``hrpqct demo``, end to end on the bundled scan with the bundled weights,
and the bundled demo model itself (safe format, size, honest card, measured accuracy)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from hrpqct.regions import MODEL_CLASSES, REGIONS
from hrpqct.seg.model import CARD_FILE, ModelCard, catalog, load_model, resolve_model


def test_bundled_demo_model_is_safe_small_and_says_what_it_is():
    entry = next(e for e in catalog() if e.default)
    assert entry.id == "demo-synthetic" and entry.bundled and not entry.clinical_use
    folder = resolve_model(None)
    assert folder == entry.path() and folder.is_dir()
    files = {p.name: p.stat().st_size for p in folder.iterdir()}
    assert set(files) == {"model.safetensors", "config.json", CARD_FILE, "README.md",
                          "reference.json"}  # nothing pickled (reference.json: the OOD checks)
    assert files["model.safetensors"] < 20 * 2 ** 20
    card = ModelCard.read(folder / CARD_FILE)
    assert "synthetic" in card.training_data.lower() and "not for clinical use" in card.limitations.lower()
    assert [c["code"] for c in card.classes[1:]] == [c.code for c in MODEL_CLASSES]
    # the card carries the measured headline on unseen-seed phantoms (scripts/demo_weights.sh)
    evals = {k: v for k, v in card.metrics.items() if k.startswith("eval:") and "unseen" in k}
    post = next(iter(evals.values()))["headline"]["postprocessed"]
    assert post["mean_f1"] >= 0.95 and post["iou_FT"] >= 0.85
    loaded = load_model(folder)
    assert loaded.model.config.num_channels == 1 and loaded.model.config.num_labels == len(MODEL_CLASSES) + 1
    assert loaded.input_spec.input_px == card.preprocessing["input_px"]


@pytest.fixture(scope="module")
def demo_out(tmp_path_factory) -> Path:
    from hrpqct.cli import app

    out = tmp_path_factory.mktemp("demo") / "demo-output"
    result = CliRunner().invoke(app, ["demo", "--out", str(out)])
    assert result.exit_code == 0, result.output
    (out / "_console.txt").write_text(result.output, encoding="utf-8")
    return out


def test_demo_writes_every_result(demo_out):
    expected = ["scan/image.nrrd", "scan/labels5.nrrd", "scan/labels7.nrrd", "scan/overview.png",
                "segmentation/demo.seg.nrrd", "segmentation/demo_labels.nrrd",
                "segmentation/demo_overlay.png", "segmentation/demo_vs_truth.png",
                "segmentation/demo_confidence.csv", "segmentation/demo_confidence.png",
                "segmentation/demo_regions.csv", "accuracy.md", "accuracy.csv",
                "radiomics/demo_features.csv", "radiomics/demo_features.patient.csv"]
    missing = [f for f in expected if not (demo_out / f).is_file()]
    assert missing == []
    assert (demo_out / "segmentation" / "demo_overlay.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_demo_segmentation_has_seven_regions_and_is_accurate(demo_out):
    from hrpqct.io import read_labelmap, read_scan, read_segmentation_file

    scan = read_scan(demo_out / "scan" / "image.nrrd")
    seg = read_segmentation_file(demo_out / "segmentation" / "demo.seg.nrrd")
    labels = read_labelmap(demo_out / "segmentation" / "demo_labels.nrrd")
    assert seg.array.shape == labels.array.shape == scan.array.shape
    np.testing.assert_allclose(seg.spacing, scan.spacing)
    assert np.array_equal(seg.array, labels.array)
    assert set(np.unique(seg.array)) == {0} | {r.label for r in REGIONS}
    acc = pd.read_csv(demo_out / "accuracy.csv").set_index("code")
    assert set(acc.index) == {r.code for r in REGIONS} | {"Mean"}
    assert acc.loc["Mean", "f1_mean"] >= 0.95  # measured 0.974
    assert acc.loc[[r.code for r in REGIONS], "f1_mean"].min() >= 0.90  # lowest measured: FC 0.938


def test_demo_features_are_the_papers_set(demo_out):
    from hrpqct.radiomics.presets import load_preset

    rows = pd.read_csv(demo_out / "radiomics" / "demo_features.csv")
    n_slices = 12
    assert len(rows) == n_slices * 6  # six non-skin regions per slice
    assert set(rows["region"]) == {"TC", "TT", "FC", "FT", "MT", "AT"}
    names = load_preset("paper").feature_names()
    assert len(names) == 939 and set(names) <= set(rows.columns)
    values = rows[names].to_numpy(dtype=float)
    assert np.isfinite(values).mean() > 0.99  # every region is present on every demo slice
    patient = pd.read_csv(demo_out / "radiomics" / "demo_features.patient.csv")
    assert len(patient) == 6
    tt = rows[rows.region == "TT"]
    assert patient.set_index("region").loc["TT", names[0]] == pytest.approx(tt[names[0]].mean())
    meta = json.loads((demo_out / "scan" / "anatomy.json").read_text(encoding="utf-8"))
    assert meta["anatomy"]["seed"] == 20261121


def test_demo_classifies_the_bundled_scan(demo_out):
    """Step 5: the bundled demo classifier (synthetic phantoms only) on the demo scan."""
    from hrpqct.classify.model import bundled_classifier, load_model

    entry = bundled_classifier()
    assert entry is not None and entry["bundled"] and not entry["clinical_use"]
    model = load_model(entry["path"])  # checksums and trusted types verified
    assert not model.metadata["clinical_use"]
    assert "not for clinical use" in " ".join(model.metadata["notes"]).lower()
    pred = json.loads((demo_out / "classification" / "prediction.json").read_text(encoding="utf-8"))
    assert 0.0 <= pred["probability"] <= 1.0 and pred["class"] in model.classes
    assert pred["threshold"] == model.threshold
    assert pred["class"] == model.classes[int(pred["probability"] >= pred["threshold"])]
    assert set(pred["regions"]) == {"TC", "TT", "FC", "FT", "MT", "AT"}
    html = demo_out / "classification" / "demo_study_report.html"
    assert html.is_file() and html.stat().st_size > 10_000
    # the demo's console output ends with the bundled scan's probability, class and the report
    last = [ln for ln in (demo_out / "_console.txt").read_text(encoding="utf-8").splitlines()
            if ln.strip()][-3:]
    tail = " ".join(last)
    assert f"P(osteoporosis) = {pred['probability']:.3f} -> {pred['class']}" in tail, tail
    assert "demo_study_report.html" in tail.replace(" ", "").replace("\n", "")
