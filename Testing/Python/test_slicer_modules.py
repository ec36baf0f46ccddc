"""The module files HRpQCTSeg.py, HRpQCTRadiomics.py, HRpQCTClassify.py, run against stand-ins of
Slicer's Qt API (Testing/Python/fakes/, fixture ``fake_slicer`` in conftest.py).

There is no Slicer application here (no Qt, no PythonQt, no ctk), so the widgets are built with
small stand-ins for the Qt/CTK/MRML widget classes they use. The stand-ins are strict: a widget
has only the properties, methods and signals declared on it, each checked against Slicer's own
sources (fakes/slicer_api.json), so a misspelt or non-existent name fails here; setting a value
emits the matching signal, as Qt does. What this shows: the widgets build, mirror the parameter node both
ways, and drive the logic (a real background ``hrpqct segment`` / radiomics worker, the real MRML
scene). What it cannot show: layout and look, PythonQt's type conversions, Slicer's own module
loading, dialogs, and whether Qt really accepts every call (see docs/slicer-extension.md).
"""

from __future__ import annotations

import html
import importlib
import importlib.util
import sys
import time
import types
from pathlib import Path

import numpy as np
import pytest

slicer = pytest.importorskip("slicer", reason="slicer-core (the MRML library) is not installed")
if not hasattr(slicer, "vtkMRMLScene"):
    pytest.skip("the 'slicer' module has no vtkMRMLScene (not slicer-core)",
                allow_module_level=True)

import hrpqct_slicer as B  # noqa: E402
from hrpqct.export import read_manifest  # noqa: E402
from hrpqct.io import read_labelmap  # noqa: E402
from hrpqct.method import RADIOMICS  # noqa: E402
from hrpqct.regions import RADIOMICS_REGIONS  # noqa: E402
from hrpqct_slicer import params as P  # noqa: E402
from fakes.slicer_env import Parent  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
N_SLICES = 4  # conftest.case


def _load(name):
    spec = importlib.util.spec_from_file_location(f"_module_{name}", ROOT / name / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _build_widget(module, name):
    parent = Parent()
    widget = getattr(module, f"{name}Widget")(parent)
    widget.setup()
    return widget, parent


def _run_timer(widget, timeout=300):
    deadline = time.monotonic() + timeout
    while widget._task is not None:
        assert time.monotonic() < deadline
        widget._timer.fire()
        time.sleep(0.1)


# --- module classes -----------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["HRpQCTSeg", "HRpQCTRadiomics"])
def test_module_description_and_no_heavy_imports(name, fake_slicer):
    heavy = ("torch", "radiomics", "transformers")
    before = {m for m in heavy if m in sys.modules}
    module = _load(name)
    parent = types.SimpleNamespace()
    getattr(module, name)(parent)
    assert parent.title.startswith("HRpQCT ") and parent.categories == ["HRpQCT"]
    assert "not built yet" not in parent.helpText
    assert "<b>Apply</b>" in parent.helpText and "Cancel" in parent.helpText
    assert module.GUI_STATUS.startswith("built") and "not yet run in a real Slicer" in \
        module.GUI_STATUS
    assert {m for m in heavy if m in sys.modules} == before  # loading the module imports none


def test_seg_module_loads_the_terminology_at_startup(fake_slicer):
    from hrpqct.terminology import ANATOMIC_CONTEXT, TERMINOLOGY_CONTEXT

    module = _load("HRpQCTSeg")
    mod = module.HRpQCTSeg(types.SimpleNamespace())
    (signal, slot), = fake_slicer.app.connections
    assert signal == "startupCompleted()"
    logic = slicer.vtkSlicerTerminologiesModuleLogic()
    slicer.modules.terminologies = types.SimpleNamespace(logic=lambda: logic)
    slot()
    names = [logic.GetNthTerminologyName(i) for i in range(logic.GetNumberOfTerminologies())] \
        if hasattr(logic, "GetNthTerminologyName") else None
    assert names is None or TERMINOLOGY_CONTEXT in names
    assert B.load_terminologies(logic) == (TERMINOLOGY_CONTEXT, ANATOMIC_CONTEXT)
    assert mod is not None


# --- HRpQCTSeg widget ---------------------------------------------------------------------------
def test_seg_widget_builds_and_mirrors_the_parameter_node(fake_slicer, catalogue):
    module = _load("HRpQCTSeg")
    B.volume_to_node(fake_slicer.scene, catalogue.phantom.labels7, name="labels")
    node = B.volume_to_node(fake_slicer.scene, catalogue.phantom.image, name="leg")
    w, parent = _build_widget(module, "HRpQCTSeg")
    # controls exist and start from the parameter node's defaults
    assert w.inputVolumeSelector.currentNode() is node  # the first scan (not the label map)
    assert [w.modelComboBox.itemData(i) for i in range(w.modelComboBox.count)] == [
        "tiny-test", "absent"]
    assert w.modelComboBox.itemText(1).endswith("(not installed)")
    assert w.modelComboBox.itemData(w.modelComboBox.currentIndex) == "tiny-test"
    # the device combo is bound by connectGui (Choice): the wrapper fills it with the choices
    assert [w.deviceComboBox.itemText(i) for i in range(w.deviceComboBox.count)] == list(
        P.DEVICES)
    assert w.batchSizeSpinBox.maximum == 64  # the range from the WithinRange annotation
    assert w.fastCpuCheckBox.checked and w.keepEditsCheckBox.checked
    assert w.applyButton.enabled and not w.cancelButton.enabled
    assert not w.refineButton.enabled and not w.exportButton.enabled  # no segmentation yet
    assert "stretch" in parent.layout().items
    # GUI -> parameter node
    w.deviceComboBox.currentIndex = P.DEVICES.index("cpu")
    w.fastCpuCheckBox.checked = False
    w.batchSizeSpinBox.value = 3
    w.caseIdEdit.text = "leg01"
    p = w.logic.getParameters()
    assert (p.device, p.fast_cpu, p.batch_size, p.case_id, p.input_volume) == (
        "cpu", False, 3, "leg01", node)
    # parameter node -> GUI (e.g. a script, or a loaded scene)
    p.refine_only = "split"
    p.export_folder = "/tmp/x"
    p.review_slices = 7
    w.logic.setParameters(p)
    assert w.refineOnlyComboBox.itemData(w.refineOnlyComboBox.currentIndex) == "split"
    assert w.exportFolderEdit.currentPath == "/tmp/x" and w.reviewSlicesSpinBox.value == 7
    w.cleanup()


def test_seg_widget_runs_reviews_refines_exports(fake_slicer, catalogue, tmp_path, monkeypatch):
    module = _load("HRpQCTSeg")
    scene = fake_slicer.scene
    node = B.volume_to_node(scene, catalogue.phantom.image, name="leg")
    view = slicer.vtkMRMLSliceNode()
    view.SetLayoutName("Red")
    scene.AddNode(view)
    w, _ = _build_widget(module, "HRpQCTSeg")
    w.deviceComboBox.currentIndex = P.DEVICES.index("cpu")
    w.outputFolderEdit.currentPath = str(tmp_path / "run")
    w.reviewSlicesSpinBox.value = 3

    w.applyButton.click()
    assert w._task is not None and w._timer.isActive() and w.cancelButton.enabled
    assert not w.applyButton.enabled and w.progressBar.visible
    _run_timer(w)
    assert not w._timer.isActive() and not w.progressBar.visible
    assert w.statusLabel.text.startswith("Done"), w.statusLabel.text
    formats = w.progressBar.formats  # what the bar showed at each timer tick
    assert formats[0].startswith("Starting") and formats[-1].startswith("Done in")
    assert w.progressBar.value == 1000
    p = w.logic.getParameters()
    seg = p.output_segmentation
    assert seg is not None and w.outputSegmentationSelector.currentNode() is seg
    labels = read_labelmap(tmp_path / "run" / "leg_labels.nrrd")
    assert np.array_equal(B.segmentation_to_labelmap(scene, w.logic.segmentationsLogic, seg,
                                                     node).array, labels.array)
    assert fake_slicer.layers[-1]["background"] is node
    # review: the least confident slices, click one -> the slice views go there
    assert w.leastConfidentList.count == 3
    w.leastConfidentList.currentRow = 1
    k = w._results.least_confident[1]
    m = view.GetSliceToRAS()
    assert [m.GetElement(i, 3) for i in range(3)] == pytest.approx(
        list(B.slice_center_ras(node, k)))
    # "Correct in Segment Editor": Segment Editor shown on the segmentation and the scan
    editor = types.SimpleNamespace(calls=[])
    editor.setSegmentationNode = lambda n: editor.calls.append(("seg", n))
    editor.setSourceVolumeNode = lambda n: editor.calls.append(("source", n))
    shown = types.SimpleNamespace(editor=editor)
    slicer.modules.segmenteditor = types.SimpleNamespace(
        widgetRepresentation=lambda: types.SimpleNamespace(self=lambda: shown))
    selected = []
    monkeypatch.setattr(slicer.util, "selectModule", selected.append)
    assert w.editButton.enabled
    w.editButton.click()
    assert selected == ["SegmentEditor"] and editor.calls == [("seg", seg), ("source", node)]
    # refine (the output segmentation is now set, so the button is enabled)
    assert w.refineButton.enabled
    w.refineButton.click()
    assert w.statusLabel.text.startswith("Refined:"), w.statusLabel.text
    assert fake_slicer.app.events >= N_SLICES  # the progress callback kept the GUI alive
    # export needs a folder and a case id
    assert not w.exportButton.enabled
    w.exportFolderEdit.currentPath = str(tmp_path / "train")
    w.caseIdEdit.text = "leg01"
    w.annotatorEdit.text = "tester"
    assert w.exportButton.enabled
    w.exportButton.click()
    manifest = read_manifest(tmp_path / "train")
    assert list(manifest["case_id"]) == ["leg01"] and manifest["annotator"][0] == "tester"
    assert w.statusLabel.text.startswith("Exported leg01")
    # a second run, cancelled at once: nothing new in the output folder, the result stays
    before = sorted(p.name for p in (tmp_path / "run").iterdir())
    w.applyButton.click()
    w.cancelButton.click()
    assert w._task is None and not w._timer.isActive()
    assert w.statusLabel.text.startswith("Cancelled")
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == before
    assert w.applyButton.enabled
    w.cleanup()


def test_seg_widget_reports_failure(fake_slicer, catalogue, tmp_path, caplog):
    module = _load("HRpQCTSeg")
    B.volume_to_node(fake_slicer.scene, catalogue.phantom.image, name="leg")
    w, _ = _build_widget(module, "HRpQCTSeg")
    w.modelComboBox.currentIndex = w.modelComboBox.findData("absent")
    w.outputFolderEdit.currentPath = str(tmp_path / "run")
    w.applyButton.click()
    _run_timer(w)
    assert w.statusLabel.text.startswith("Failed: ")
    assert "absent" in w.statusLabel.text and "not installed" in w.statusLabel.text
    assert any("Segmentation failed" in r.message for r in caplog.records)  # the error dialog
    assert not any((tmp_path / "run").iterdir())
    # no input volume: Apply is disabled, and the logic refuses
    p = w.logic.getParameters()
    p.input_volume = None
    w.logic.setParameters(p)
    assert not w.applyButton.enabled
    with pytest.raises(ValueError, match="input volume"):
        w.logic.startSegmentation(p)
    w.cleanup()


def test_seg_logic_from_the_python_console(fake_slicer, catalogue, tmp_path):
    module = _load("HRpQCTSeg")
    scene = slicer.vtkMRMLScene()  # any scene, not only slicer.mrmlScene
    logic = module.HRpQCTSegLogic(scene=scene)
    node = B.volume_to_node(scene, catalogue.phantom.image, name="leg")
    seg = logic.segment(node, model="tiny-test", device="cpu", outputFolder=tmp_path / "o")
    assert seg.IsA("vtkMRMLSegmentationNode") and scene.IsNodePresent(seg)
    assert len(logic.leastConfidentSlices()) == N_SLICES
    result = logic.refine(seg, node, only="topology")
    assert result.output_kind == "regions"
    case = logic.exportForTraining(seg, node, tmp_path / "train", "c1", annotator="me")
    assert case.manifest.is_file()
    assert logic.jumpToSlice(node, 0) == pytest.approx(B.slice_center_ras(node, 0))
    with pytest.raises(ValueError, match="case id"):
        logic.exportForTraining(seg, node, tmp_path / "train", "")
    assert [m.id for m in logic.models()] == ["tiny-test", "absent"]
    assert logic.defaultModel() == "tiny-test"
    # its parameter node lives in that scene
    assert scene.GetSingletonNode("HRpQCTSeg", "vtkMRMLScriptedModuleNode") is not None
    assert fake_slicer.scene.GetSingletonNode("HRpQCTSeg", "vtkMRMLScriptedModuleNode") is None


def test_seg_logic_asks_before_installing(fake_slicer):
    module = _load("HRpQCTSeg")
    logic = module.HRpQCTSegLogic(scene=slicer.vtkMRMLScene())
    asked, installed = [], []
    # everything is installed here: no question, no install
    assert logic.ensureDependencies(confirm=asked.append, install=installed.append) == []
    assert asked == [] and installed == []


# --- HRpQCTRadiomics widget ---------------------------------------------------------------------
def test_radiomics_widget_builds_mirrors_and_runs(fake_slicer, case, tmp_path):
    module = _load("HRpQCTRadiomics")
    scene = fake_slicer.scene
    ph = case.phantom
    B.volume_to_node(scene, ph.labels7, name="labels")
    node = B.volume_to_node(scene, ph.image, name="leg")
    logic = B.segmentations_logic(scene)
    seg = B.labelmap_to_segmentation(scene, logic, ph.labels7, reference=node)
    w, _ = _build_widget(module, "HRpQCTRadiomics")
    assert w.inputVolumeSelector.currentNode() is node
    assert w.inputSegmentationSelector.currentNode() is seg
    assert [c for c, b in w.regionCheckBoxes.items() if b.checked] == list(RADIOMICS_REGIONS)
    assert set(w.regionCheckBoxes) == {*RADIOMICS_REGIONS, "SK", "ST"}
    assert sorted(w.bandCheckBoxes) == sorted(RADIOMICS.ablation_distances_mm)
    assert [k for k, b in w.statCheckBoxes.items() if b.checked] == ["mean"]
    assert w.presetComboBox.itemData(w.presetComboBox.currentIndex) == "paper"
    assert not w.presetFileEdit.enabled
    # choose: two regions, the 10 mm band, mean and SD, two slices, a file
    for code, box in w.regionCheckBoxes.items():
        box.checked = code in ("TC", "MT")
    w.bandCheckBoxes[10.0].checked = True
    w.statCheckBoxes["sd"].checked = True
    w.slicesEdit.text = "1,2"
    w.outputFileEdit.currentPath = str(tmp_path / "feat" / "leg.csv")
    p = w.logic.getParameters()
    assert (p.regions, p.band_distances_mm, p.stats, p.slices) == (
        ("TC", "MT"), (10.0,), ("mean", "sd"), "1,2")
    assert w.logic.regionNames(p) == ["TC", "MT", "ST10mm"]
    w.presetComboBox.currentIndex = w.presetComboBox.findData("file")
    assert w.presetFileEdit.enabled
    with pytest.raises(Exception, match="parameter file"):
        w.applyButton.click()  # no file chosen: refused before anything runs
    assert w._task is None
    w.presetComboBox.currentIndex = w.presetComboBox.findData("paper")

    w.applyButton.click()
    assert w._task is not None and w.cancelButton.enabled
    _run_timer(w)
    assert w.statusLabel.text.startswith("Done"), w.statusLabel.text
    table = w.logic.getParameters().output_table
    assert table is not None and w.outputTableSelector.currentNode() is table
    df = B.table_node_to_dataframe(table)
    assert list(df.columns) == ["feature", "TC", "MT", "ST10mm"]
    features = set(df["feature"])
    assert {"original_glcm_Idmn", "original_glcm_Idmn__sd", "mean_HU"} <= features
    assert (tmp_path / "feat" / "leg.patient.csv").is_file()
    w.cleanup()


def test_radiomics_logic_from_the_python_console(fake_slicer, case, tmp_path):
    module = _load("HRpQCTRadiomics")
    scene = slicer.vtkMRMLScene()
    ph = case.phantom
    node = B.volume_to_node(scene, ph.image, name="leg")
    seg = B.labelmap_to_segmentation(scene, B.segmentations_logic(scene), ph.labels7,
                                     reference=node)
    logic = module.HRpQCTRadiomicsLogic(scene=scene)
    table = logic.compute(node, seg, regions=["AT"], bands=[4], slices="2",
                          outputFile=tmp_path / "f.csv")
    df = B.table_node_to_dataframe(table)
    assert list(df.columns) == ["feature", "AT", "ST4mm"]
    assert logic.lastResults.patient_file == tmp_path / "f.patient.csv"
    with pytest.raises(Exception, match="no-such.yaml"):
        logic.compute(node, seg, preset=str(tmp_path / "no-such.yaml"))
    five = B.labelmap_to_segmentation(scene, B.segmentations_logic(scene), ph.labels5,
                                      reference=node, table="model")
    with pytest.raises(Exception, match="seven regions"):
        logic.compute(node, five)


def test_an_older_slicer_is_told_the_minimum(fake_slicer, case):
    module = _load("HRpQCTRadiomics")
    fake_slicer.app.majorVersion, fake_slicer.app.minorVersion = 5, 8
    w, _ = _build_widget(module, "HRpQCTRadiomics")
    assert w.statusLabel.text.startswith("HRpQCT needs Slicer 5.10 or newer; this is Slicer 5.8")
    w.cleanup()
    fake_slicer.app.majorVersion, fake_slicer.app.minorVersion = 5, 12
    w, _ = _build_widget(module, "HRpQCTRadiomics")
    assert not w.statusLabel.text.startswith("HRpQCT needs")
    w.cleanup()


# --- HRpQCTClassify panel (.ui) -----------------------------------------------------------------
def test_classify_panel_from_its_ui_file(fake_slicer, monkeypatch):
    # (the real logic on real features: test_slicer_classify.py)
    import importlib.machinery

    from hrpqct.errors import ModelError

    module = _load("HRpQCTClassify")
    w, parent = _build_widget(module, "HRpQCTClassify")
    ui = w.ui
    assert ui.featuresSelector.nodeTypes == ["vtkMRMLTableNode"] and ui.featuresSelector.noneEnabled
    assert ui.featuresSelector._scene is fake_slicer.scene  # via the .ui's connection
    assert ui.modelFolderEdit.filters == ui.modelFolderEdit.Dirs
    assert not ui.applyButton.enabled and "not installed" not in ui.statusLabel.text
    table = fake_slicer.scene.AddNewNodeByClass("vtkMRMLTableNode", "features")
    ui.featuresSelector.setCurrentNode(table)
    assert ui.applyButton.enabled
    ui.applyButton.click()  # an empty table: the logic's message, not a traceback
    assert ui.statusLabel.text.startswith("Cannot classify: table 'features': not a radiomics "
                                          "feature table")
    # with a logic that refuses the model: the message in the panel, no traceback
    fake = types.ModuleType("hrpqct_slicer.classify_logic")
    fake.__spec__ = importlib.machinery.ModuleSpec("hrpqct_slicer.classify_logic", None)
    calls = []

    def classify(scene, features, model_folder):
        calls.append((scene, features, model_folder))
        raise ModelError("model 'demo': its preset 'paper' does not match the table's '3d'")

    fake.classify = classify
    monkeypatch.setitem(sys.modules, "hrpqct_slicer.classify_logic", fake)
    monkeypatch.setattr(B, "classify_logic", fake, raising=False)  # imported above already
    ui.modelFolderEdit.currentPath = "/models/demo"
    ui.applyButton.click()
    assert calls == [(fake_slicer.scene, table, "/models/demo")]
    assert ui.statusLabel.text == ("Cannot classify: model 'demo': its preset 'paper' does not "
                                   "match the table's '3d'")
    w.cleanup()


def _tiny_volume():
    from hrpqct.volume import Volume

    return Volume(np.zeros((2, 3, 4), np.int16), spacing=(1.0, 1.0, 1.0), unit="HU")


# --- <Module>Test classes (Slicer's self-test) ---------------------------------------------------
@pytest.mark.parametrize("name, steps", [("HRpQCTSeg", ("segment", "correct", "refine",
                                                        "radiomics", "classify")),
                                         ("HRpQCTRadiomics", ("radiomics",)),
                                         ("HRpQCTClassify", ("classify",))])
def test_module_test_class_runs_the_selftest(name, steps, fake_slicer, monkeypatch):
    # the Test classes hand Slicer's scene and Segmentations logic to hrpqct_slicer.selftest
    # (run for real in test_slicer_selftest.py) and show its messages
    from hrpqct_slicer import selftest

    module = _load(name)
    seg_logic = B.segmentations_logic(fake_slicer.scene)
    slicer.modules.segmentations = types.SimpleNamespace(logic=lambda: seg_logic)
    calls = []

    def fake_run(scene, logic, *, steps, say, **kw):
        calls.append((scene, logic, tuple(steps)))
        say("ran")
        return selftest.SelfTestResult(done={s: "ok" for s in steps})

    monkeypatch.setattr(selftest, "run_selftest", fake_run)
    B.volume_to_node(fake_slicer.scene, _tiny_volume(), name="old")  # cleared by setUp
    test = getattr(module, f"{name}Test")()
    test.runTest()
    assert fake_slicer.scene.GetNumberOfNodesByClass("vtkMRMLScalarVolumeNode") == 0  # setUp
    assert calls == [(fake_slicer.scene, seg_logic, steps)]
    assert "ran" in test.messages and any(m.endswith(": ok") for m in test.messages)


# --- input warnings in the panels (issue 16; the OOD warnings of hrpqct.checks) -----------------
def _bridge(name):
    return importlib.import_module(f"hrpqct_slicer.{name}")


WARNINGS = ["slices are 0.50 mm thick, the model's are 0.082 mm: results may be wrong",
            "the field of view is small (16 x 16 px) <check>"]


def _assert_warnings_shown(w, warnings, caplog, what):
    box, label = w.warningsCollapsibleButton, w.warningsLabel
    if not warnings:
        assert not box.visible and label.text == "" and box.text == "Warnings"
        return
    assert box.visible and not box.collapsed and box.text == f"Warnings ({len(warnings)})"
    lines = label.text.split("<br>")
    assert len(lines) == len(warnings)
    for line, text in zip(lines, warnings):
        assert f'color:{_bridge("module_base").WARNING_COLOUR}' in line
        assert html.escape(text) in line  # escaped: "<check>" is text, not markup
    logged = [r.getMessage() for r in caplog.records if r.name == "hrpqct_slicer"]
    assert [f"{what}: {t}" for t in warnings] == logged[-len(warnings):]


def test_seg_panel_shows_the_input_warnings_of_a_result(fake_slicer, caplog, monkeypatch):
    module = _load("HRpQCTSeg")
    node = B.volume_to_node(fake_slicer.scene, _tiny_volume(), name="leg")
    seg = fake_slicer.scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "leg segmentation")
    w, _ = _build_widget(module, "HRpQCTSeg")
    _assert_warnings_shown(w, [], caplog, "Segmentation")  # none before any result
    results = types.SimpleNamespace(segmentation=seg, least_confident=[1, 0], folder="/x",
                                    warnings=list(WARNINGS))
    monkeypatch.setattr(w.logic, "finishSegmentation", lambda task: results)
    w.onTaskSucceeded(None)
    assert w.statusLabel.text.startswith("Done")
    _assert_warnings_shown(w, WARNINGS, caplog, "Segmentation")
    results.warnings = []  # the next result has none: the box goes away
    w.onTaskSucceeded(None)
    _assert_warnings_shown(w, [], caplog, "Segmentation")
    # Refine's result (RefineResult.warnings), e.g. a padded mask
    p = w.logic.getParameters()
    p.input_volume, p.output_segmentation = node, seg
    w.logic.setParameters(p)
    refined = _bridge("seg_logic").RefineResult(5, 5, "regions", "regions", (WARNINGS[0],))
    monkeypatch.setattr(w.logic, "refine", lambda *a, **k: refined)
    w.refineButton.click()
    assert w.statusLabel.text.startswith("Refined:")
    _assert_warnings_shown(w, [WARNINGS[0]], caplog, "Refine")
    w.cleanup()


def test_radiomics_panel_shows_the_input_warnings_of_a_result(fake_slicer, caplog, monkeypatch):
    module = _load("HRpQCTRadiomics")
    w, _ = _build_widget(module, "HRpQCTRadiomics")
    _assert_warnings_shown(w, [], caplog, "Radiomics")
    table = fake_slicer.scene.AddNewNodeByClass("vtkMRMLTableNode", "features")
    results = _bridge("radiomics_logic").RadiomicsResults(table, None, Path("/x/s.csv"),
                                                 Path("/x/s.patient.csv"), list(WARNINGS))
    monkeypatch.setattr(w.logic, "finishRadiomics", lambda task: results)
    w.onTaskSucceeded(None)
    assert w.statusLabel.text.startswith("Done")
    _assert_warnings_shown(w, WARNINGS, caplog, "Radiomics")
    results.warnings = []
    w.onTaskSucceeded(None)
    _assert_warnings_shown(w, [], caplog, "Radiomics")
    w.cleanup()


def test_classify_panel_shows_the_warnings_of_a_result(fake_slicer, caplog, monkeypatch):
    module = _load("HRpQCTClassify")
    w, _ = _build_widget(module, "HRpQCTClassify")
    _assert_warnings_shown(w, [], caplog, "Classification")
    table = fake_slicer.scene.AddNewNodeByClass("vtkMRMLTableNode", "features")
    w.featuresSelector.setCurrentNode(table)
    assert w.logic.getParameters().features_table is table  # bound by connectGui
    result = types.SimpleNamespace(table=table, chart=None, warnings=[WARNINGS[1]])
    monkeypatch.setattr(w.logic, "classify", lambda *a, **k: result)
    w.applyButton.click()
    assert w.statusLabel.text.startswith("Done")
    _assert_warnings_shown(w, [WARNINGS[1]], caplog, "Classification")
    result.warnings = []
    w.applyButton.click()
    _assert_warnings_shown(w, [], caplog, "Classification")
    w.cleanup()
