"""A fake Slicer application around the real MRML library (slicer-core): the qt and ctk
modules of stand-ins (:mod:`fakes.qt`), ``slicer.ScriptedLoadableModule``'s base classes,
``slicer.app``, ``slicer.modules`` and ``slicer.mrmlScene`` (a real scene)."""

from __future__ import annotations

import sys
import types

from .qt import (QCheckBox, QComboBox, QFormLayout, QGridLayout, QHBoxLayout, QLabel, QLineEdit,
                 QListWidget, QMessageBox, QProgressBar, QPushButton, QSpinBox, QTimer,
                 QVBoxLayout, QWidget, _Obj, _Qt, ctkCollapsibleButton, ctkPathLineEdit,
                 qMRMLNodeComboBox)

__all__ = ["install", "Parent", "load_ui", "child_widget_variables"]


class qMRMLWidget(_Obj):
    """The root widget of a module's .ui file; ``setMRMLScene`` reaches the children its
    ``mrmlSceneChanged(vtkMRMLScene*)`` connections name, as Qt's connections do in Slicer."""

    _signals = ("mrmlSceneChanged(vtkMRMLScene*)",)
    _internal = ("children", "layout_items")

    def __init__(self):
        super().__init__()
        self.children = {}
        self.layout_items = []

    def setMRMLScene(self, scene):
        self.emit("mrmlSceneChanged(vtkMRMLScene*)", scene)


_UI_CLASSES = {c.__name__: c for c in (QCheckBox, QComboBox, QLabel, QLineEdit, QListWidget,
                                       QProgressBar, QPushButton, QSpinBox, QWidget,
                                       ctkCollapsibleButton, ctkPathLineEdit, qMRMLNodeComboBox)}
_UI_LAYOUTS = {c.__name__: c for c in (QFormLayout, QGridLayout, QHBoxLayout, QVBoxLayout)}
#: the dynamic property ``connectGui`` of slicer.parameterNodeWrapper reads (designer: stdset="0")
_DYNAMIC = ("SlicerParameterName",)


def _ui_value(prop, cls):
    v = list(prop)[0]
    if v.tag == "string":
        return v.text or ""
    if v.tag == "bool":
        return v.text == "true"
    if v.tag == "number":
        return int(v.text)
    if v.tag == "stringlist":
        return [s.text for s in v.findall("string")]
    if v.tag in ("set", "enum"):
        total = 0
        for part in v.text.split("|"):
            total |= getattr(cls, part.split("::")[-1].strip())
        return total
    raise ValueError(f"unsupported .ui property type {v.tag}")


def load_ui(path):
    """``slicer.util.loadUI``: the .ui file's widgets as stand-ins (their properties set); every
    widget class must be a stand-in, every property one it declares (else AttributeError)."""
    import xml.etree.ElementTree as ET

    root_el = ET.parse(path).getroot().find("widget")
    root = qMRMLWidget()
    for w in root_el.iter("widget"):
        if w is root_el:
            continue
        cls = _UI_CLASSES[w.get("class")]
        widget = cls("") if cls in (QPushButton, QCheckBox, QLabel) else cls()
        for prop in w.findall("property"):
            if prop.get("name") in _DYNAMIC:
                assert prop.get("stdset") == "0", f"{prop.get('name')}: a dynamic property"
                widget.setProperty(prop.get("name"), _ui_value(prop, cls))
            else:
                setattr(widget, prop.get("name"), _ui_value(prop, cls))
        if cls is QWidget and w.find("layout") is not None:
            widget._layout = _UI_LAYOUTS[w.find("layout").get("class")]()
        root.children[w.get("name")] = widget
    for c in ET.parse(path).getroot().iter("connection"):
        sender, receiver = c.findtext("sender"), c.findtext("receiver")
        if sender == root_el.get("name") and c.findtext("slot") == "setMRMLScene(vtkMRMLScene*)":
            root.connect(c.findtext("signal"), root.children[receiver].setMRMLScene)
    return root


def child_widget_variables(widget):
    """``slicer.util.childWidgetVariables``: the named children as attributes."""
    return types.SimpleNamespace(**widget.children)


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

    def resourcePath(self, filename):
        """As Slicer's: <module folder>/Resources/<filename>."""
        import os

        # the module file: where the widget class's own methods were defined
        code = next(f.__code__ for f in vars(type(self)).values() if hasattr(f, "__code__"))
        return os.path.join(os.path.dirname(code.co_filename), "Resources", filename)

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


class Parent(_Obj):
    """The module panel Slicer hands a widget (a QWidget with a layout)."""

    _slicer_class = "QWidget"
    _internal = ("isEntered",)

    def __init__(self):
        super().__init__()
        self._layout = QVBoxLayout()
        self.isEntered = True

    def layout(self):
        return self._layout




def install(monkeypatch, slicer):
    """qt, ctk and slicer.ScriptedLoadableModule stand-ins; the real slicer-core MRML library
    with a scene as ``slicer.mrmlScene``."""
    qt = types.ModuleType("qt")
    for cls in (QFormLayout, QVBoxLayout, QHBoxLayout, QGridLayout, QPushButton, QCheckBox,
                QComboBox, QSpinBox, QLineEdit, QLabel, QProgressBar, QListWidget, QTimer,
                QMessageBox):
        setattr(qt, cls.__name__, cls)
    qt.Qt = _Qt
    qt.QWidget = QWidget
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
    from . import parameter_node_wrapper

    monkeypatch.setitem(sys.modules, "slicer.parameterNodeWrapper", parameter_node_wrapper)
    monkeypatch.setattr(slicer, "parameterNodeWrapper", parameter_node_wrapper, raising=False)
    scene = slicer.vtkMRMLScene()
    app = _App()
    monkeypatch.setattr(slicer, "mrmlScene", scene, raising=False)
    monkeypatch.setattr(slicer, "app", app, raising=False)
    monkeypatch.setattr(slicer, "modules", types.SimpleNamespace(), raising=False)
    monkeypatch.setattr(slicer, "qMRMLNodeComboBox", qMRMLNodeComboBox, raising=False)
    monkeypatch.setattr(slicer.util, "loadUI", load_ui, raising=False)
    monkeypatch.setattr(slicer.util, "childWidgetVariables", child_widget_variables,
                        raising=False)
    layers = []
    monkeypatch.setattr(slicer.util, "setSliceViewerLayers",
                        lambda **kw: layers.append(kw), raising=False)
    return types.SimpleNamespace(scene=scene, app=app, layers=layers)


