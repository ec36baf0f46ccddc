"""hrpqct_slicer.classify_logic (HRpQCTClassify's logic) headless on slicer-core: the bundled demo
classifier on features of the demo scan's anatomy, equal to hrpqct.classify.model.predict; the
table and chart nodes; mismatched models refused with one-line messages; the panel shows them."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

slicer = pytest.importorskip("slicer", reason="slicer-core (the MRML library) is not installed")
if not hasattr(slicer, "vtkMRMLScene"):
    pytest.skip("the 'slicer' module has no vtkMRMLScene (not slicer-core)",
                allow_module_level=True)

import hrpqct_slicer as B  # noqa: E402
from hrpqct.classify.model import _checksum, bundled_classifier, load_model, predict  # noqa: E402
from hrpqct.errors import HRpQCTError, InputError, ModelError  # noqa: E402
from hrpqct_slicer import classify_logic as C  # noqa: E402
from hrpqct_slicer.radiomics_logic import features_table_node  # noqa: E402


@pytest.fixture(scope="module")
def feats(tmp_path_factory):
    """Paper-preset radiomics of the six regions on 2 slices of the demo scan's anatomy
    (seed 20261121, 384 px; the phantom's truth as segmentation), as the radiomics step writes
    them (slice-level and per-scan files)."""
    from hrpqct.classify.data import read_table
    from hrpqct.demo import DEMO_SCAN
    from hrpqct.phantom.anatomy import Anatomy
    from hrpqct.phantom.render import Grid
    from hrpqct.phantom.scan import generate
    from hrpqct.radiomics.tables import write_scan_features

    ph = generate(Anatomy(seed=DEMO_SCAN.seed, side=DEMO_SCAN.side), Grid(size=384, n_slices=2))
    out = tmp_path_factory.mktemp("clf") / "demo_features.csv"
    slices_path, patient_path = write_scan_features(ph.image, ph.labels7, out, scan_id="demo",
                                                    preset="paper")
    entry = bundled_classifier()
    assert entry is not None, "the bundled demo classifier is not installed"
    model = load_model(entry["path"])
    slices = read_table(slices_path)
    expected = predict(model, slices, preset="paper")[0]
    return {"slices": slices, "slices_path": slices_path, "patient": read_table(patient_path),
            "model": model, "expected": expected, "folder": entry["path"]}


def _node_with_slices(scene, feats, preset="paper"):
    node = features_table_node(scene, feats["patient"], name="demo radiomics")
    node.SetAttribute(C.SLICE_FILE_ATTRIBUTE, str(feats["slices_path"]))
    node.SetAttribute(C.PRESET_ATTRIBUTE, preset)
    return node


def _check_equal(res, expected):
    f = res.frame.set_index("model")
    assert f.loc["patient", "probability"] == pytest.approx(expected.probability, abs=1e-12)
    assert f.loc["patient", "threshold"] == expected.threshold
    assert f.loc["patient", "class"] == expected.label
    assert set(f.index) == {"patient", "TC", "TT", "FC", "FT", "MT", "AT"}
    for code, r in expected.regions.items():
        assert f.loc[code, "probability"] == pytest.approx(r["probability"], abs=1e-12)
        assert f.loc[code, "class"] == r["class"] and f.loc[code, "n_slices"] == r["n_slices"] == 2


def test_classify_equals_core_predict_and_makes_table_and_chart(feats):
    scene = slicer.vtkMRMLScene()
    node = _node_with_slices(scene, feats)
    res = C.classify(scene, node, None)
    exp = feats["expected"]
    assert res.demo and res.model_folder == feats["folder"] and res.warnings == []
    _check_equal(res, exp)
    # the table node holds what the frame holds
    back = B.table_node_to_dataframe(res.table)
    pd.testing.assert_frame_equal(back, res.frame)
    assert "synthetic phantoms" in res.table.GetName() and "DEMO" in res.table.GetName()
    assert "only seen synthetic phantoms" in res.table.GetDescription()
    # the chart: probability bars, the models' thresholds, the decision threshold as a line
    chart = res.chart
    assert chart.GetNumberOfPlotSeriesNodes() == 3
    assert "only seen synthetic phantoms" in chart.GetTitle()
    assert res.bars.GetPlotType() == slicer.vtkMRMLPlotSeriesNode.PlotTypeBar
    assert res.bars.GetYColumnName() == "probability" and res.bars.GetTableNodeID() == \
        res.table.GetID()
    assert res.threshold_line.GetPlotType() == slicer.vtkMRMLPlotSeriesNode.PlotTypeLine
    line = B.table_node_to_dataframe(res.threshold_line.GetTableNode())
    assert line["threshold"].tolist() == [exp.threshold, exp.threshold]
    assert line["x"].tolist() == [-0.5, len(res.frame) - 0.5]
    assert list(chart.GetYAxisRange()) == [0.0, 1.0]
    text = str(res)
    assert text.startswith(f"{exp.label}: probability {exp.probability:.3f}")
    assert "synthetic phantoms" in text


def test_classify_accepts_a_dataframe_and_an_explicit_model_folder(feats):
    scene = slicer.vtkMRMLScene()
    res = C.classify(scene, feats["slices"], str(feats["folder"]))
    assert res.demo  # the bundled folder named explicitly is still the demo model
    _check_equal(res, feats["expected"])


def test_per_scan_table_runs_the_patient_model_only(feats):
    # a table node without its slice-level file (e.g. loaded from a CSV): the main model's
    # inputs are the per-scan means, the region models need slices and are listed as not run
    scene = slicer.vtkMRMLScene()
    node = features_table_node(scene, feats["patient"], name="means only")
    res = C.classify(scene, node, None)
    f = res.frame.set_index("model")
    assert f.loc["patient", "probability"] == pytest.approx(feats["expected"].probability,
                                                            rel=1e-9)
    regions = f.drop(index="patient")
    assert regions["probability"].isna().all() and (regions["class"] == "not run").all()
    assert len(res.warnings) == 1 and "region models" in res.warnings[0]
    assert "region models" in str(res)


def _edited_copy(src, dst, edit, checksum=True):
    shutil.copytree(src, dst)
    meta = json.loads((dst / "metadata.json").read_text(encoding="utf-8"))
    edit(meta)
    if checksum:  # saved as if it were a model made that way
        meta["checksum"] = _checksum(meta)
    (dst / "metadata.json").write_text(json.dumps(meta), encoding="utf-8")
    return dst


def test_mismatched_models_are_refused_with_one_line_messages(feats, tmp_path):
    scene = slicer.vtkMRMLScene()
    node = _node_with_slices(scene, feats)
    src = feats["folder"]

    def rename_feature(meta):
        meta["main"]["features"][0] = "MT_original_firstorder_NoSuchFeature"

    def rename_region_feature(meta):
        meta["regions"]["TC"]["features"][3] = "original_glcm_NoSuchFeature"

    def other_preset(meta):
        from hrpqct.radiomics.presets import load_preset

        p = load_preset("3d")
        meta["preset"] = {"name": p.name, "digest": p.digest, "features": len(p.feature_names())}

    def new_region(meta):
        meta["main"]["features"][0] = "SK_original_firstorder_Mean"

    cases = [
        (rename_feature, True, InputError, "lacks feature column(s) ['original_firstorder_NoSuch"),
        (rename_region_feature, True, InputError, "lacks feature column(s) ['original_glcm_NoSuch"),
        (other_preset, True, InputError, "features were computed with preset 'paper'"),
        (new_region, True, InputError, "no rows of region(s) ['SK']"),
        (rename_feature, False, ModelError, "the metadata was edited after the model was saved"),
    ]
    for i, (edit, checksum, error, message) in enumerate(cases):
        folder = _edited_copy(src, tmp_path / f"m{i}", edit, checksum)
        with pytest.raises(error) as info:
            C.classify(scene, node, str(folder))
        text = str(info.value)
        assert message in text and "\n" not in text, text
        if error is InputError:
            assert text.startswith(f"model 'm{i}' cannot classify 'demo radiomics': ")
    # the table's own preset differs from the model's
    other = _node_with_slices(scene, feats, preset="3d")
    with pytest.raises(InputError, match=r"features were computed with preset '3d'.*recompute"):
        C.classify(scene, other, None)
    with pytest.raises(ModelError, match="model folder not found"):
        C.classify(scene, node, str(tmp_path / "nowhere"))
    with pytest.raises(ModelError, match="no metadata.json"):
        C.classify(scene, node, str(tmp_path))
    with pytest.raises(InputError, match="not a radiomics feature table"):
        C.classify(scene, pd.DataFrame({"a": [1.0]}), None)
    with pytest.raises(InputError, match="choose the scan's radiomics feature table"):
        C.classify(scene, None, None)
    n_tables = scene.GetNumberOfNodesByClass("vtkMRMLTableNode")
    assert n_tables == 2  # nothing was added by the refused calls


def test_classify_panel_shows_the_result_and_the_refusal(feats, fake_slicer, tmp_path):
    from test_slicer_modules import _build_widget, _load

    module = _load("HRpQCTClassify")
    assert module.logicInstalled()
    w, _ = _build_widget(module, "HRpQCTClassify")
    ui = w.ui
    node = _node_with_slices(fake_slicer.scene, feats)
    ui.featuresSelector.setCurrentNode(node)
    assert ui.applyButton.enabled
    ui.applyButton.click()
    exp = feats["expected"]
    assert ui.statusLabel.text.startswith(f"Done: {exp.label}: probability "
                                          f"{exp.probability:.3f}")
    assert "synthetic phantoms" in ui.statusLabel.text
    assert fake_slicer.scene.GetNumberOfNodesByClass("vtkMRMLPlotChartNode") == 1
    bad = _edited_copy(feats["folder"], tmp_path / "bad",
                       lambda m: m["main"]["features"].__setitem__(0, "MT_original_glcm_Nope"))
    ui.modelFolderEdit.currentPath = str(bad)
    ui.applyButton.click()  # raises nothing: the message is in the status line
    assert ui.statusLabel.text.startswith("Cannot classify: model 'bad' cannot classify "
                                          "'demo radiomics': the table lacks feature column(s)")
    assert fake_slicer.scene.GetNumberOfNodesByClass("vtkMRMLPlotChartNode") == 1
    assert issubclass(InputError, HRpQCTError) and issubclass(ModelError, HRpQCTError)
    w.cleanup()


def test_prediction_frame_without_threshold_uses_half():
    pred = types_pred = type("P", (), {})()
    types_pred.probability, types_pred.threshold, types_pred.label = 0.7, None, "osteoporosis"
    types_pred.regions = {}
    model = type("M", (), {"metadata": {"main": {}, "regions": {}}})()
    f = C.prediction_frame(pred, model)
    assert f["threshold"].tolist() == [0.5] and f["x"].tolist() == [0.0]
    assert np.isnan(f["cv_auroc"].iloc[0])
