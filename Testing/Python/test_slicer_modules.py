"""The module files HRpQCTSeg.py and HRpQCTRadiomics.py, run against a stub of Slicer's Qt API.

There is no Slicer application here (no Qt, no PythonQt, no ctk), so the widgets are built with
small stand-ins for the Qt/CTK/MRML widget classes they use. The stand-ins are strict: a widget
has only the properties, methods and signals listed below (named as in Qt 5, CTK and Slicer's
qMRMLNodeComboBox), so a misspelt property or signal fails here; setting a value emits the
matching signal, as Qt does. What this shows: the widgets build, mirror the parameter node both
ways, and drive the logic (a real background ``hrpqct segment`` / radiomics worker, the real MRML
scene). What it cannot show: layout and look, PythonQt's type conversions, Slicer's own module
loading, dialogs, and whether Qt really accepts every call (see docs/slicer-extension.md).
"""

from __future__ import annotations

import importlib.util
import json
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

ROOT = Path(__file__).resolve().parents[2]
N_SLICES = 4


# --- stand-ins for qt / ctk / slicer widgets -----------------------------------------------------
class _Obj:
    """A Qt object with declared properties (``_props``: name -> default) and signals."""

    _props: dict = {"enabled": True, "visible": True, "toolTip": ""}
    _signals: tuple = ()
    _internal: tuple = ()  # the stand-in's own bookkeeping (not Qt properties)

    def __init__(self, *args):
        props = {}
        for cls in reversed(type(self).__mro__):
            props.update(getattr(cls, "_props", {}))
        object.__setattr__(self, "_values", props)
        object.__setattr__(self, "_slots", {})
        object.__setattr__(self, "args", args)

    def __getattr__(self, name):
        values = object.__getattribute__(self, "_values")
        if name in values:
            return values[name]
        raise AttributeError(f"stub {type(self).__name__} has no attribute {name!r}")

    def __setattr__(self, name, value):
        if name in self._values:
            old = self._values[name]
            self._values[name] = value
            if old != value:
                self._changed(name, value)
        elif name.startswith("_") or any(name in getattr(c, "_internal", ())
                                         for c in type(self).__mro__):
            object.__setattr__(self, name, value)
        else:
            raise AttributeError(f"stub {type(self).__name__} has no property {name!r}")

    def _changed(self, name, value):
        pass

    def connect(self, signal, slot):
        signals = [s for cls in type(self).__mro__ for s in getattr(cls, "_signals", ())]
        if signal not in signals:
            raise AttributeError(f"stub {type(self).__name__} has no signal {signal!r}")
        self._slots.setdefault(signal, []).append(slot)

    def emit(self, signal, *args):
        for slot in list(self._slots.get(signal, [])):
            slot(*args)

    def setToolTip(self, text):
        self.toolTip = text

    def show(self):
        self.visible = True

    def hide(self):
        self.visible = False


class QLayout(_Obj):
    _internal = ("items",)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.items = []

    def addWidget(self, widget, *position):
        assert isinstance(widget, _Obj), widget
        self.items.append(widget)

    def addRow(self, *args):
        assert 1 <= len(args) <= 2
        for a in args:
            assert isinstance(a, (_Obj, str)), a
        self.items.append(args)

    def addStretch(self, stretch=0):
        self.items.append("stretch")


class QFormLayout(QLayout):
    def addWidget(self, widget, *position):  # QFormLayout has addRow, not addWidget(row, col)
        raise AttributeError("QFormLayout: use addRow")


class QVBoxLayout(QLayout):
    pass


class QHBoxLayout(QLayout):
    pass


class QGridLayout(QLayout):
    def addWidget(self, widget, row, column):
        super().addWidget(widget)


class QPushButton(_Obj):
    _props = {"text": ""}
    _signals = ("clicked(bool)", "clicked()")

    def __init__(self, text=""):
        super().__init__(text)
        self.text = text

    def click(self):
        assert self.enabled, f"button {self.text!r} is disabled"
        self.emit("clicked(bool)", False)
        self.emit("clicked()")


class QCheckBox(_Obj):
    _props = {"text": "", "checked": False}
    _signals = ("toggled(bool)",)

    def __init__(self, text=""):
        super().__init__(text)
        self.text = text

    def _changed(self, name, value):
        if name == "checked":
            self.emit("toggled(bool)", value)


class QComboBox(_Obj):
    _props = {"currentIndex": -1}
    _signals = ("currentIndexChanged(int)",)

    def __init__(self):
        super().__init__()
        self._items = []

    def addItem(self, text, data=None):
        self._items.append((text, data))
        if self.currentIndex < 0:
            self.currentIndex = 0

    @property
    def count(self):
        return len(self._items)

    def itemData(self, index):
        return self._items[index][1]

    def itemText(self, index):
        return self._items[index][0]

    def findData(self, data):
        return next((i for i, (_, d) in enumerate(self._items) if d == data), -1)

    def _changed(self, name, value):
        if name == "currentIndex":
            self.emit("currentIndexChanged(int)", value)


class QSpinBox(_Obj):
    _props = {"minimum": 0, "maximum": 99, "value": 0, "specialValueText": ""}
    _signals = ("valueChanged(int)",)

    def __setattr__(self, name, value):
        if name == "value":
            value = max(self.minimum, min(self.maximum, int(value)))
        super().__setattr__(name, value)

    def _changed(self, name, value):
        if name == "value":
            self.emit("valueChanged(int)", value)


class QLineEdit(_Obj):
    _props = {"text": "", "placeholderText": ""}
    _signals = ("textChanged(QString)",)

    def _changed(self, name, value):
        if name == "text":
            self.emit("textChanged(QString)", value)


class QLabel(_Obj):
    _props = {"text": "", "wordWrap": False}

    def __init__(self, text=""):
        super().__init__(text)
        self.text = text


class QProgressBar(_Obj):
    _props = {"value": 0, "minimum": 0, "maximum": 100}
    _internal = ("formats",)

    def __init__(self):
        super().__init__()
        self.formats = []

    def setRange(self, lo, hi):
        self.minimum, self.maximum = lo, hi

    def setFormat(self, text):
        self.formats.append(text)


class QListWidget(_Obj):
    _props = {"currentRow": -1}
    _internal = ("texts",)
    _signals = ("currentRowChanged(int)",)

    def __init__(self):
        super().__init__()
        self.texts = []

    def addItem(self, text):
        self.texts.append(text)

    def clear(self):
        self.texts = []
        self.currentRow = -1

    @property
    def count(self):
        return len(self.texts)

    def _changed(self, name, value):
        if name == "currentRow":
            self.emit("currentRowChanged(int)", value)


class QTimer(_Obj):
    _signals = ("timeout()",)
    _internal = ("interval", "active")

    def __init__(self):
        super().__init__()
        self.interval = None
        self.active = False

    def setInterval(self, ms):
        self.interval = ms

    def start(self):
        self.active = True

    def stop(self):
        self.active = False

    def isActive(self):
        return self.active

    def fire(self):
        assert self.active
        self.emit("timeout()")


class QMessageBox:
    Ok, Cancel, Information, Warning, Critical, Question = 1024, 4194304, 1, 2, 3, 4


class _Qt:
    WaitCursor = 3


class ctkCollapsibleButton(_Obj):
    _props = {"text": "", "collapsed": False}

    def layout(self):
        return None


class ctkPathLineEdit(_Obj):
    Dirs, Files, Writable = 1, 2, 32
    _props = {"currentPath": "", "filters": 0, "nameFilters": [], "settingKey": ""}
    _signals = ("currentPathChanged(QString)",)

    def _changed(self, name, value):
        if name == "currentPath":
            self.emit("currentPathChanged(QString)", value)


class qMRMLNodeComboBox(_Obj):
    _props = {"nodeTypes": [], "selectNodeUponCreation": True, "addEnabled": True,
              "removeEnabled": True, "renameEnabled": False, "noneEnabled": False,
              "noneDisplay": "None", "showHidden": False, "showChildNodeTypes": True,
              "baseName": ""}
    _signals = ("currentNodeChanged(vtkMRMLNode*)",)

    def __init__(self):
        super().__init__()
        self._scene = None
        self._node = None

    def setMRMLScene(self, scene):
        assert scene is not None
        self._scene = scene

    def currentNode(self):
        return self._node

    def setCurrentNode(self, node):
        if node is not None:
            assert any(node.IsA(t) for t in self.nodeTypes), (node.GetClassName(), self.nodeTypes)
        if node is not self._node:
            self._node = node
            self.emit("currentNodeChanged(vtkMRMLNode*)", node)


class _App:
    applicationName = "Slicer"

    def __init__(self):
        self.connections = []
        self.events = 0

    def connect(self, signal, slot):
        self.connections.append((signal, slot))

    def processEvents(self):
        self.events += 1

    def testingEnabled(self):
        return True  # slicer.util dialogs log instead of showing, confirm returns True

    def setOverrideCursor(self, cursor):
        pass

    def restoreOverrideCursor(self):
        pass

    def layoutManager(self):
        return None


class _ModuleBase:
    def __init__(self, parent):
        self.parent = parent
        self.moduleName = type(self).__name__


class _WidgetBase:
    def __init__(self, parent=None):
        self.moduleName = type(self).__name__[:-len("Widget")]
        self.parent = parent
        self.layout = parent.layout()

    def setup(self):
        pass


class _LogicBase:
    def __init__(self, parent=None):
        self.moduleName = type(self).__name__[:-len("Logic")]


class _TestBase:
    """Slicer's ScriptedLoadableModuleTest: a unittest.TestCase whose delayDisplay shows a
    message (here: records it)."""

    def __init__(self):
        import unittest

        self._case = unittest.TestCase()
        self.messages = []

    def delayDisplay(self, message, requestedDelay=None, msec=None):
        self.messages.append(message)

    def assertTrue(self, value, msg=None):
        self._case.assertTrue(value, msg)

    def assertIn(self, a, b, msg=None):
        self._case.assertIn(a, b, msg)


class _Parent(_Obj):
    _internal = ("isEntered",)

    def __init__(self):
        super().__init__()
        self._layout = QVBoxLayout()
        self.isEntered = True

    def layout(self):
        return self._layout


@pytest.fixture()
def fake_slicer(monkeypatch):
    """qt, ctk and slicer.ScriptedLoadableModule stand-ins; the real slicer-core MRML library
    with a scene as ``slicer.mrmlScene``."""
    qt = types.ModuleType("qt")
    for cls in (QFormLayout, QVBoxLayout, QHBoxLayout, QGridLayout, QPushButton, QCheckBox,
                QComboBox, QSpinBox, QLineEdit, QLabel, QProgressBar, QListWidget, QTimer,
                QMessageBox):
        setattr(qt, cls.__name__, cls)
    qt.Qt = _Qt
    ctk = types.ModuleType("ctk")
    ctk.ctkCollapsibleButton = ctkCollapsibleButton
    ctk.ctkPathLineEdit = ctkPathLineEdit
    slm = types.ModuleType("slicer.ScriptedLoadableModule")
    slm.ScriptedLoadableModule = _ModuleBase
    slm.ScriptedLoadableModuleWidget = _WidgetBase
    slm.ScriptedLoadableModuleLogic = _LogicBase
    slm.ScriptedLoadableModuleTest = _TestBase
    monkeypatch.setitem(sys.modules, "qt", qt)
    monkeypatch.setitem(sys.modules, "ctk", ctk)
    monkeypatch.setitem(sys.modules, "slicer.ScriptedLoadableModule", slm)
    scene = slicer.vtkMRMLScene()
    app = _App()
    monkeypatch.setattr(slicer, "mrmlScene", scene, raising=False)
    monkeypatch.setattr(slicer, "app", app, raising=False)
    monkeypatch.setattr(slicer, "modules", types.SimpleNamespace(), raising=False)
    monkeypatch.setattr(slicer, "qMRMLNodeComboBox", qMRMLNodeComboBox, raising=False)
    layers = []
    monkeypatch.setattr(slicer.util, "setSliceViewerLayers",
                        lambda **kw: layers.append(kw), raising=False)
    return types.SimpleNamespace(scene=scene, app=app, layers=layers)


def _load(name):
    spec = importlib.util.spec_from_file_location(f"_module_{name}", ROOT / name / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _build_widget(module, name):
    parent = _Parent()
    widget = getattr(module, f"{name}Widget")(parent)
    widget.setup()
    return widget, parent


def _run_timer(widget, timeout=300):
    deadline = time.monotonic() + timeout
    while widget._task is not None:
        assert time.monotonic() < deadline
        widget._timer.fire()
        time.sleep(0.1)


# --- fixtures: phantom, tiny model, catalogue ----------------------------------------------
@pytest.fixture(scope="module")
def case(tmp_path_factory):
    from hrpqct.phantom.anatomy import Anatomy
    from hrpqct.phantom.render import Grid
    from hrpqct.phantom.scan import generate
    from hrpqct.seg.model import ModelCard, build_model, save_model
    from hrpqct.seg.preprocess import InputSpec

    root = tmp_path_factory.mktemp("modules")
    models = root / "models"
    save_model(build_model("tiny", seed=0), models / "tiny-test",
               ModelCard(name="tiny-test", variant="tiny",
                         preprocessing=InputSpec(input_px=128).to_dict()))
    (models / "catalog.json").write_text(json.dumps({"format_version": 1, "default": "tiny-test",
        "models": [{"id": "tiny-test", "title": "Tiny test model", "variant": "tiny",
                    "description": "", "folder": "tiny-test", "bundled": True},
                   {"id": "absent", "title": "Absent model", "variant": "b3",
                    "description": "", "folder": "absent"}]}), encoding="utf-8")
    ph = generate(Anatomy(seed=5), Grid(size=160, n_slices=N_SLICES))
    return types.SimpleNamespace(root=root, models=models, phantom=ph)


@pytest.fixture()
def catalogue(case, monkeypatch):
    monkeypatch.setenv("HRPQCT_MODELS_DIR", str(case.models))
    return case


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
    assert [w.deviceComboBox.itemData(i) for i in range(4)] == list(P.DEVICES)
    assert w.fastCpuCheckBox.checked and w.keepEditsCheckBox.checked
    assert w.applyButton.enabled and not w.cancelButton.enabled
    assert not w.refineButton.enabled and not w.exportButton.enabled  # no segmentation yet
    assert "stretch" in parent.layout().items
    # GUI -> parameter node
    w.deviceComboBox.currentIndex = w.deviceComboBox.findData("cpu")
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
    w.deviceComboBox.currentIndex = w.deviceComboBox.findData("cpu")
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
    assert "ran" in test.messages and any(m.endswith(": ok") for m in test.messages) \
        or name == "HRpQCTClassify"
