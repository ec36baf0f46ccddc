"""Stand-ins for Slicer's Qt, CTK and qMRML widget classes (no Qt, no PythonQt here).

The stand-ins are strict: a widget has only the properties, methods and signals declared on it,
so a misspelt property or signal fails; setting a value emits the matching signal, as Qt does.
And each declared name must be one real Slicer has: at class creation every property, signal
and public method is looked up in ``slicer_api.json`` (generated from Slicer 5.10.0's and
5.12.3's sources by ``scripts/slicer_api_names.py``, never from the code under test) for the
class it stands for and its bases, and a name Slicer lacks raises ``UnknownSlicerName``. For
Qt's own classes (Qt's source is not part of Slicer) a name counts as known when Slicer's own
designer files, Python or C++ use it (a property: assigned, or its ``setX`` called). Test-only
helpers are listed in ``_test_helpers`` and are not Qt API.
"""

from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path

API_FILE = Path(__file__).resolve().parent / "slicer_api.json"
SUPPORTED = ("v5.10.0", "v5.12.3")


class UnknownSlicerName(AttributeError):
    """A stand-in declares a name that the real Slicer class does not have."""


@lru_cache(maxsize=None)
def _api() -> dict:
    return json.loads(API_FILE.read_text(encoding="utf-8"))


@lru_cache(maxsize=None)
def known_names(slicer_class: str, tag: str) -> dict:
    """Properties, signals, methods, enums of ``slicer_class`` (with its bases) in release
    ``tag``, plus what Slicer's own code uses on Qt objects (``usage_*``)."""
    rel = _api()["releases"][tag]
    out = {"properties": set(), "signals": set(), "methods": set(), "enums": set(),
           "found": False, "qt_based": False}
    todo, seen = [slicer_class], set()
    while todo:
        n = todo.pop()
        if n in seen:
            continue
        seen.add(n)
        c = rel["classes"].get(n) or rel["qt"].get(n)
        if c is None:
            continue
        out["found"] = True
        out["qt_based"] = out["qt_based"] or n in rel["qt"]
        for k in ("properties", "signals", "methods", "enums"):
            out[k] |= set(c.get(k, ()))
        todo += c.get("bases", [])
    usage = rel["python_usage"]
    out["usage_methods"] = set(usage["methods"])
    out["usage_assigned"] = set(usage["assigned"])
    out["usage_signals"] = set(usage["signals"])
    return out


def check_name(slicer_class: str, kind: str, name: str) -> None:
    """Raise :class:`UnknownSlicerName` unless ``name`` (a property, signal or method) exists on
    ``slicer_class`` in every supported release."""
    for tag in SUPPORTED:
        k = known_names(slicer_class, tag)
        if not k["found"]:
            raise UnknownSlicerName(f"{slicer_class} is not a class of Slicer {tag}")
        # Qt's own names (on a Qt class, or inherited by a CTK/qMRML widget from its Qt bases)
        # are known by Slicer's own use of them; CTK/qMRML names by their headers
        is_qt = k["qt_based"]
        if kind == "class":
            ok = True
        elif kind == "property":
            ok = name in k["properties"] or (is_qt and (
                name in k["usage_assigned"] or "set" + name[:1].upper() + name[1:]
                in k["usage_methods"]))
        elif kind == "signal":
            ok = name in k["signals"] or (is_qt and name in k["usage_signals"])
        elif kind == "enum":
            ok = name in k["enums"]
        else:
            ok = name in k["methods"] or name in k["properties"] or (
                is_qt and name in k["usage_methods"])
        if not ok:
            message = (f"{slicer_class} has no {kind} {name!r} in Slicer {tag} "
                       "(Testing/Python/fakes/slicer_api.json)")
            if os.environ.get("HRPQCT_FAKES_REPORT"):  # list them all instead (diagnosis)
                print(message)
                return
            raise UnknownSlicerName(message)


class _Obj:
    """A Qt object with declared properties (``_props``: name -> default) and signals, standing
    for the Slicer class ``_slicer_class`` (default: the stand-in's own name)."""

    _props: dict = {"enabled": True, "visible": True, "toolTip": ""}
    _signals: tuple = ()
    _internal: tuple = ()  # the stand-in's own bookkeeping (not Qt properties)
    _test_helpers: tuple = ("emit",)  # for the tests, not Qt API
    _slicer_class = "QWidget"
    _enums: tuple = ()

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        if "_slicer_class" not in cls.__dict__:
            cls._slicer_class = cls.__name__
        helpers = {h for c in cls.__mro__ for h in getattr(c, "_test_helpers", ())}
        check_name(cls._slicer_class, "class", cls._slicer_class)
        for name in cls.__dict__.get("_props", {}):
            check_name(cls._slicer_class, "property", name)
        for name in cls.__dict__.get("_signals", ()):
            check_name(cls._slicer_class, "signal", name)
        for name in cls.__dict__.get("_enums", ()):
            check_name(cls._slicer_class, "enum", name)
        for name, value in cls.__dict__.items():
            if name.startswith("_") or name in helpers or not callable(value) and not isinstance(
                    value, property):
                continue
            check_name(cls._slicer_class, "method", name)

    def __init__(self, *args):
        props = {}
        for cls in reversed(type(self).__mro__):
            props.update(getattr(cls, "_props", {}))
        object.__setattr__(self, "_values", props)
        object.__setattr__(self, "_slots", {})
        object.__setattr__(self, "_dynamic", {})  # QObject dynamic properties (setProperty)
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

    def setProperty(self, name, value):
        """QObject::setProperty of a dynamic property (a declared one is set as an attribute)."""
        assert name not in self._values, f"{name} is a declared property: assign it"
        self._dynamic[name] = value

    def property(self, name):  # (defined last: the name shadows the builtin in this class body)
        """QObject::property: a declared or dynamic property; None (an invalid QVariant in
        PythonQt) when there is none."""
        if name in self._values:
            return self._values[name]
        return self._dynamic.get(name)


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
    _signals = ("toggled(bool)", "stateChanged(int)")

    def __init__(self, text=""):
        super().__init__(text)
        self.text = text

    def _changed(self, name, value):
        if name == "checked":
            self.emit("toggled(bool)", value)
            self.emit("stateChanged(int)", 2 if value else 0)


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

    def clear(self):
        self._items = []
        self.currentIndex = -1

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
    _props = {"minimum": 0, "maximum": 99, "value": 0}
    _signals = ("valueChanged(int)",)

    def __setattr__(self, name, value):
        if name == "value":
            value = max(self.minimum, min(self.maximum, int(value)))
        super().__setattr__(name, value)

    def setMinimum(self, value):
        self.minimum = value
        self.value = self.value

    def setMaximum(self, value):
        self.maximum = value
        self.value = self.value

    def setRange(self, lo, hi):
        self.setMinimum(lo)
        self.setMaximum(hi)

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
    _props = {"text": "", "wordWrap": False, "styleSheet": ""}

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


class QWidget(_Obj):
    """A plain container widget of a .ui file; ``layout()`` is the layout the .ui gives it."""

    _internal = ("_layout",)

    def __init__(self):
        super().__init__()
        self._layout = None

    def layout(self):
        return self._layout


class QTimer(_Obj):
    _slicer_class = "QTimer"
    _test_helpers = ("fire",)
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
    _enums = ("Dirs", "Files", "Writable")
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


for _name in ("connect", "setToolTip", "show", "hide", "setProperty", "property"):  # _Obj's own methods, as QWidget's
    check_name("QWidget", "method", _name)
