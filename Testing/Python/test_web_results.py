"""The browser app's "Radiomics + classify" below the page (hrpqct_web.session / .results),
headless: radiomics of the open scan with its current segmentation in a background process,
the prediction equal to calling hrpqct.classify.model.predict directly, a mismatched model
reported as a message, and the tables and plot the page shows."""

from __future__ import annotations

import json
import shutil
import time

import numpy as np
import pytest

pytest.importorskip("slicer")
pytest.importorskip("radiomics")
pytest.importorskip("skops")

from hrpqct.errors import InputError  # noqa: E402
from hrpqct.regions import RADIOMICS_REGIONS, REGIONS  # noqa: E402


def _wait(session, timeout=900):
    t0 = time.time()
    while True:
        status = session.poll_analysis()
        if status.finished or session.analysis is not None:
            return status
        assert time.time() - t0 < timeout, f"radiomics still running: {status.text()}"
        time.sleep(0.3)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One radiomics run (slice 1 of a 96 x 96 x 3 phantom) shared by the tests."""
    import slicer

    from hrpqct.io import read_labelmap
    from hrpqct.phantom.anatomy import Anatomy
    from hrpqct.phantom.files import write_phantom
    from hrpqct.phantom.render import Grid
    from hrpqct.phantom.scan import generate
    from hrpqct_slicer import segmentations_logic
    from hrpqct_web.session import CorrectionSession

    d = tmp_path_factory.mktemp("phantom")
    write_phantom(generate(Anatomy(seed=3), Grid(size=96, n_slices=3)), d, overview=False)
    data = tmp_path_factory.mktemp("data")
    shutil.copy(d / "image.nrrd", data / "leg.nrrd")
    shutil.copy(d / "regions.seg.nrrd", data / "leg.seg.nrrd")
    scene = slicer.vtkMRMLScene()
    session = CorrectionSession(scene, segmentations_logic(scene), data)
    session.open_scan("leg.nrrd")
    labels = session.labels()[0].array
    # an edit before the run: the radiomics must see the current segmentation, not the file
    edited = labels.copy()
    at = [r.label for r in REGIONS if r.code == "AT"][0]
    mt = [r.label for r in REGIONS if r.code == "MT"][0]
    ys, xs = np.nonzero(edited[1] == at)
    edited[1, ys[:40], xs[:40]] = mt  # 40 adipose voxels painted as muscle
    session._set_labels(session.labels()[0].with_array(edited, unit="label"))
    status = session.start_analysis(slices="1")
    assert status.state == "running"
    assert session.analysing
    with pytest.raises(InputError, match="already running"):
        session.start_analysis(slices="1")
    status = _wait(session)
    assert status.state == "succeeded", status.text()
    return session, edited, read_labelmap(d / "labels7.nrrd").array


def test_radiomics_of_the_current_segmentation(run):
    session, edited, original = run
    a = session.analysis
    assert set(a.slices["slice"]) == {1}
    assert list(a.slices["region"]) == list(RADIOMICS_REGIONS)
    want = {r.code: int(np.count_nonzero(edited[1] == r.label)) for r in REGIONS}
    assert dict(zip(a.slices["region"], a.slices["n_pixels"])) == \
        {c: want[c] for c in RADIOMICS_REGIONS}
    mt = [r.label for r in REGIONS if r.code == "MT"][0]
    at = [r.label for r in REGIONS if r.code == "AT"][0]
    assert want["MT"] == int(np.count_nonzero(original[1] == mt)) + 40
    assert want["AT"] == int(np.count_nonzero(original[1] == at)) - 40
    assert list(a.patient["region"]) == list(RADIOMICS_REGIONS)
    assert (a.patient["n_slices"] == 1).all()


def test_prediction_equals_predict_directly(run):
    from hrpqct.classify.model import bundled_classifier, load_model, predict
    from hrpqct.classify.data import read_table
    from hrpqct_web.results import prediction_rows

    session, _, _ = run
    a = session.analysis
    assert a.error == ""
    assert not a.clinical_use and a.demo_model
    entry = bundled_classifier()
    direct = predict(load_model(entry["path"]), read_table(a.slice_file, "slice-level"),
                     preset="paper")[0]
    got = a.prediction
    assert got.probability == direct.probability
    assert got.label == direct.label and got.threshold == direct.threshold
    assert got.regions == direct.regions
    rows = prediction_rows(got, a.metadata)
    assert rows[0]["key"] == "patient" and rows[0]["probability"] == direct.probability
    assert rows[0]["threshold"] == direct.threshold
    assert [r["key"] for r in rows[1:]] == list(direct.regions)
    for r in rows[1:]:
        assert r["probability"] == direct.regions[r["key"]]["probability"]
        assert r["threshold"] == a.metadata["regions"][r["key"]]["threshold"]


def test_tables_and_plot(run):
    from hrpqct_web.results import KEY_FEATURES, feature_summary, prediction_rows, probability_png

    session, _, _ = run
    a = session.analysis
    summary = feature_summary(a.patient)
    assert [r["region"] for r in summary] == list(RADIOMICS_REGIONS)
    for r, (_, p) in zip(summary, a.patient.iterrows()):
        for col, _, _ in KEY_FEATURES:
            assert r[col] == pytest.approx(float(p[col]), nan_ok=True)
    png = probability_png(prediction_rows(a.prediction, a.metadata))
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 2000


def test_mismatched_classifier_is_a_message(run, tmp_path):
    from hrpqct.classify.model import _checksum, bundled_classifier
    from hrpqct.radiomics.presets import load_preset

    session, _, _ = run
    folder = tmp_path / "model-3d"
    shutil.copytree(bundled_classifier()["path"], folder)
    meta = json.loads((folder / "metadata.json").read_text(encoding="utf-8"))
    p3 = load_preset("3d")
    meta["preset"] = {"name": p3.name, "digest": p3.digest, "features": len(p3.feature_names())}
    meta["checksum"] = _checksum(meta)
    (folder / "metadata.json").write_text(json.dumps(meta), encoding="utf-8")
    a = session.classify(classifier=str(folder))
    assert a.prediction is None
    assert "model-3d does not fit these features" in a.error and "'3d'" in a.error
    a = session.classify(classifier="no-such-classifier")
    assert a.prediction is None and "no-such-classifier" in a.error
    # and back to the bundled one
    a = session.classify(classifier="demo-classifier")
    assert a.error == "" and a.prediction is not None


def test_refusals(run, tmp_path):
    import slicer

    from hrpqct_slicer import segmentations_logic
    from hrpqct_web.session import CorrectionSession

    session, _, _ = run
    with pytest.raises(InputError, match="slices '7'"):
        session.start_analysis(slices="7")
    scene = slicer.vtkMRMLScene()
    fresh = CorrectionSession(scene, segmentations_logic(scene), tmp_path)
    with pytest.raises(InputError, match="open a scan first"):
        fresh.start_analysis()
    with pytest.raises(InputError, match="run the radiomics first"):
        fresh.classify()


def test_serve_refuses_an_unknown_classifier(tmp_path):
    from typer.testing import CliRunner

    import hrpqct.cli  # noqa: F401  registers the commands
    from hrpqct._cli import app

    res = CliRunner().invoke(app, ["serve", "--data", str(tmp_path), "--classifier", "nope-xyz"])
    assert res.exit_code != 0
    assert "--classifier nope-xyz: neither a model folder nor a bundled classifier id" in \
        str(res.exception) + res.output
