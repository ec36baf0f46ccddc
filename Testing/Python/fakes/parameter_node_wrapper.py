"""A stand-in for ``slicer.parameterNodeWrapper`` (slicer-core, where the tests run, lacks it).

Only a subset is implemented, and every name of it must be one the real package has: at import,
each exported name, each constructor's parameters, each member ``@parameterNodeWrapper`` adds
to a class, and each GUI connector's widget class and signal are looked up in the
``parameterNodeWrapper`` section of ``slicer_api.json`` (read from Slicer 5.10.0's and 5.12.3's
``Base/Python/slicer/parameterNodeWrapper/`` by ``scripts/slicer_api_names.py``); a name the real
one lacks raises ``UnknownSlicerName``. Behaviour follows the real one where a misuse would show:

* a type without a serializer (``tuple[str, ...]``, ``dict`` here) raises at class creation;
* ``Choice`` / ``Minimum`` / ``Maximum`` / ``WithinRange`` are checked on every write;
* ``connectGui(ui)`` binds the widgets whose ``SlicerParameterName`` dynamic property names a
  parameter; an unknown name raises ``ValueError``, a widget with no connector for the type
  (a ``ctkPathLineEdit`` for a ``str``, a ``QComboBox`` for a ``str`` without ``Choice``) raises
  ``RuntimeError``; a combo box bound to a ``Choice`` is refilled with the choices; a spin box's
  range is set from the annotations (without them, to the full int range, as the real one does).

The storage format inside the ``vtkMRMLScriptedModuleNode`` is this stand-in's own (callers never
see it; the real wrapper's is not a public API either).
"""

from __future__ import annotations

import inspect
import json
import pathlib
import typing

import vtk

import slicer

from .qt import SUPPORTED, UnknownSlicerName, _api

SlicerParameterNamePropertyName = "SlicerParameterName"


def _releases() -> list:
    return [_api()["releases"][tag]["parameterNodeWrapper"] for tag in SUPPORTED]


def _check(kind: str, name: str, ok) -> None:
    for tag, rel in zip(SUPPORTED, _releases()):
        if not ok(rel):
            raise UnknownSlicerName(f"slicer.parameterNodeWrapper has no {kind} {name!r} in "
                                    f"Slicer {tag} (Testing/Python/fakes/slicer_api.json)")


class Default:
    def __init__(self, value):
        self.value = value


class _Validator:
    def validate(self, value) -> None:  # pragma: no cover - overridden
        raise NotImplementedError


class Choice(_Validator):
    def __init__(self, choices):
        self.choices = list(choices)

    def validate(self, value):
        if value not in self.choices:
            raise ValueError(f"The value '{value}' is not in the valid choices {self.choices}")


class Minimum(_Validator):
    def __init__(self, minimum):
        self.minimum = minimum

    def validate(self, value):
        if value < self.minimum:
            raise ValueError(f"The value '{value}' is less than the minimum {self.minimum}")


class Maximum(_Validator):
    def __init__(self, maximum):
        self.maximum = maximum

    def validate(self, value):
        if value > self.maximum:
            raise ValueError(f"The value '{value}' is greater than the maximum {self.maximum}")


class WithinRange(_Validator):
    def __init__(self, minimum, maximum):
        self.minimum, self.maximum = minimum, maximum

    def validate(self, value):
        if not self.minimum <= value <= self.maximum:
            raise ValueError(f"The value '{value}' is not within [{self.minimum}, {self.maximum}]")


_EXPORTS = ("Default", "Choice", "Minimum", "Maximum", "WithinRange", "parameterNodeWrapper",
            "isParameterNodeWrapper", "SlicerParameterNamePropertyName")
for _name in _EXPORTS:
    _check("name", _name, lambda rel, n=_name: n in rel["exports"])
for _cls in (Default, Choice, Minimum, Maximum, WithinRange):
    _params = list(inspect.signature(_cls.__init__).parameters)[1:]
    _check(f"{_cls.__name__}(...) signature", f"{_cls.__name__}({', '.join(_params)})",
           lambda rel, c=_cls, p=_params: rel["classes"][c.__name__]["init"] == p)
_check("name", SlicerParameterNamePropertyName,
       lambda rel: rel["parameter_name_property"] == SlicerParameterNamePropertyName)


# --- types and serialisation ----------------------------------------------------------------------
def _split(hint):
    if typing.get_origin(hint) is typing.Annotated:
        base, *extras = typing.get_args(hint)
        return base, extras
    return hint, []


_PATHS = (pathlib.Path, pathlib.PurePath, pathlib.PosixPath, pathlib.PurePosixPath)


def _is_node(t) -> bool:
    return isinstance(t, type) and issubclass(t, slicer.vtkMRMLNode)


def _type_default(t):
    if _is_node(t):
        return None
    if typing.get_origin(t) is list:
        return []
    if t in _PATHS:
        return t()
    if t in (bool, int, float, str):
        return t()
    raise Exception(f"Unable to create serializer for type {t!r}")  # as the real createSerializer


class _Param:
    def __init__(self, name, hint, default):
        self.name = name
        self.type, extras = _split(hint)
        self.validators = [e for e in extras if isinstance(e, _Validator)]
        defaults = [e for e in extras if isinstance(e, Default)]
        self.default = default if default is not _NONE else (
            defaults[0].value if defaults else _type_default(self.type))
        _type_default(self.type)  # refuses types the real wrapper cannot serialise
        if typing.get_origin(self.type) is list:
            item = (typing.get_args(self.type) or (str,))[0]
            _type_default(item)

    def validate(self, value):
        if _is_node(self.type):
            if value is not None and not value.IsA(self.type.__name__):
                raise TypeError(f"{self.name}: expected {self.type.__name__}, got "
                                f"{value.GetClassName()}")
            return
        if typing.get_origin(self.type) is list:
            item = (typing.get_args(self.type) or (str,))[0]
            for v in value:
                _check_instance(self.name, v, item)
        else:
            _check_instance(self.name, value, self.type)
        for v in self.validators:
            v.validate(value)

    def write(self, node, value):
        self.validate(value)
        if _is_node(self.type):
            node.SetParameter(self.name, "")
            node.SetNodeReferenceID(self.name, value.GetID() if value is not None else None)
        elif typing.get_origin(self.type) is list:
            node.SetParameter(self.name, json.dumps([v for v in value]))
        else:
            node.SetParameter(self.name, str(value))

    def read(self, node):
        if _is_node(self.type):
            return node.GetNodeReference(self.name)
        text = node.GetParameter(self.name)
        if typing.get_origin(self.type) is list:
            item = (typing.get_args(self.type) or (str,))[0]
            return [item(v) for v in json.loads(text)]
        if self.type is bool:
            return text == "True"
        return self.type(text)


_NONE = object()


def _check_instance(name, value, t):
    """The real serializers' ``NotNone`` and ``IsInstance`` validators (a float parameter also
    takes an int; a str parameter takes no Path)."""
    allowed = (int, float) if t is float else t
    if value is None or not isinstance(value, allowed):
        raise TypeError(f"{name}: value must be of type '{t}', is type '{type(value)}' value "
                        f"'{value}'")


# --- GUI connectors -------------------------------------------------------------------------------
class _Connector:
    """One widget <-> one parameter: (real connector class, widget class, signal, types)."""

    def __init__(self, widget, param):
        self.widget, self.param = widget, param

    def connect(self, callback):
        self.widget.connect(self.SIGNAL, lambda *args: callback())


class _CheckBox(_Connector):
    REAL, WIDGETS, SIGNAL = "QCheckBoxToBoolConnector", ("qt.QCheckBox",), "stateChanged(int)"

    @staticmethod
    def fits(param):
        return param.type is bool

    def read(self):
        return self.widget.checked

    def write(self, value):
        self.widget.checked = value


class _SpinBox(_Connector):
    REAL, WIDGETS, SIGNAL = "QSliderOrSpinBoxToIntConnector", ("qt.QSpinBox",), "valueChanged(int)"

    @staticmethod
    def fits(param):
        return param.type is int

    def __init__(self, widget, param):
        super().__init__(widget, param)
        ranges = [v for v in param.validators if isinstance(v, WithinRange)]
        mins = [v.minimum for v in param.validators if isinstance(v, Minimum)]
        maxs = [v.maximum for v in param.validators if isinstance(v, Maximum)]
        if ranges:
            widget.setRange(ranges[0].minimum, ranges[0].maximum)
        else:
            widget.setMinimum(mins[0] if mins else -(2**31))
            widget.setMaximum(maxs[0] if maxs else 2**31 - 1)

    def read(self):
        return self.widget.value

    def write(self, value):
        self.widget.value = value


class _ComboBox(_Connector):
    REAL, WIDGETS, SIGNAL = ("QComboBoxToStringableConnector", ("qt.QComboBox",),
                             "currentIndexChanged(int)")

    @staticmethod
    def fits(param):
        return param.type in (int, float, str, bool)

    def __init__(self, widget, param):
        super().__init__(widget, param)
        choices = [v for v in param.validators if isinstance(v, Choice)]
        if not choices:
            raise RuntimeError("ComboBoxToStringableConnector requires the Choice annotation to "
                               "be used.")
        self.choices = choices[0].choices
        widget.clear()
        for c in self.choices:
            widget.addItem(str(c))

    def read(self):
        return self.choices[self.widget.currentIndex]

    def write(self, value):
        if value not in self.choices:
            raise ValueError(f"Unable to find value {value} in choices {self.choices}")
        self.widget.currentIndex = self.choices.index(value)


class _LineEdit(_Connector):
    REAL, WIDGETS, SIGNAL = "QLineEditToStrConnector", ("qt.QLineEdit",), "textChanged(QString)"

    @staticmethod
    def fits(param):
        return param.type is str

    def read(self):
        return self.widget.text

    def write(self, value):
        if value != self.widget.text:
            self.widget.text = value


class _Label(_Connector):
    REAL, WIDGETS, SIGNAL = "QLabelToStrConnector", ("qt.QLabel",), None

    @staticmethod
    def fits(param):
        return param.type is str

    def connect(self, callback):  # a QLabel has no textChanged signal
        pass

    def read(self):
        return self.widget.text

    def write(self, value):
        self.widget.text = value


class _PathLineEdit(_Connector):
    REAL, WIDGETS, SIGNAL = ("ctkPathLineEditToPathConnector", ("ctk.ctkPathLineEdit",),
                             "currentPathChanged(QString)")

    @staticmethod
    def fits(param):
        return param.type in _PATHS

    def read(self):
        return self.param.type(self.widget.currentPath)

    def write(self, value):
        self.widget.currentPath = str(value)


class _NodeComboBox(_Connector):
    REAL, WIDGETS, SIGNAL = ("qMRMLNodeComboBoxToNodeConnector", ("slicer.qMRMLNodeComboBox",),
                             "currentNodeChanged(vtkMRMLNode*)")

    @staticmethod
    def fits(param):
        return _is_node(param.type)

    def __init__(self, widget, param):
        super().__init__(widget, param)
        widget.nodeTypes = [param.type.__name__]  # as the real one: from the annotation

    def read(self):
        return self.widget.currentNode()

    def write(self, value):
        self.widget.setCurrentNode(value)


_CONNECTORS = (_CheckBox, _SpinBox, _ComboBox, _LineEdit, _Label, _PathLineEdit, _NodeComboBox)
for _c in _CONNECTORS:
    _check("GUI connector", _c.REAL, lambda rel, c=_c: c.REAL in rel["connectors"])
    _check(f"{_c.REAL} widget", ", ".join(_c.WIDGETS),
           lambda rel, c=_c: set(c.WIDGETS) <= set(rel["connectors"][c.REAL]["widgets"]))
    if _c.SIGNAL:
        _check(f"{_c.REAL} signal", _c.SIGNAL, lambda rel, c=_c: c.SIGNAL.split("(")[0]
               in rel["connectors"][c.REAL]["signals"])


def _connector(widget, param):
    name = f"{widget.__module__.split('.')[-1]}.{type(widget).__name__}"
    for c in _CONNECTORS:
        if type(widget).__name__ in {w.split(".")[1] for w in c.WIDGETS} and c.fits(param):
            return c(widget, param)
    raise RuntimeError(f"Unable to create GUI connector from datatype {param.type!r} to widget "
                       f"type {type(widget).__name__} ({name})")


# --- the decorator --------------------------------------------------------------------------------
_MEMBERS = ("allParameters", "default", "getValue", "setValue", "connectGui", "disconnectGui",
            "StartModify", "EndModify", "AddObserver", "RemoveObserver", "Modified")
for _name in _MEMBERS:
    _check("wrapper member", _name, lambda rel, n=_name: n in rel["wrapper_members"])


def _init(self, parameterNode, prefix=None):
    assert prefix is None, "prefix: not implemented by the stand-in"
    self.parameterNode = parameterNode
    self._guis = {}
    self._nextTag = 0
    self._updatingGUI = False
    for p in self.allParameters.values():
        if not parameterNode.HasParameter(p.name):
            p.write(parameterNode, p.default)


def _getValue(self, name):
    if name not in self.allParameters:
        raise ValueError(f"Cannot find a param with the given name: {name}")
    return self.allParameters[name].read(self.parameterNode)


def _setValue(self, name, value):
    if name not in self.allParameters:
        raise ValueError(f"Cannot find a param with the given name: {name}")
    self.allParameters[name].write(self.parameterNode, value)


def _updateGUI(self):
    if self._updatingGUI:
        return
    self._updatingGUI = True
    try:
        for mapping, _ in self._guis.values():
            for name, connector in mapping.items():
                connector.write(self.getValue(name))
    finally:
        self._updatingGUI = False


def _connectGui(self, gui):
    widgets = {}
    for widget in vars(gui).values():
        name = widget.property(SlicerParameterNamePropertyName)
        if name:
            widgets[name] = widget
    for name in widgets:
        if name not in self.allParameters:
            raise ValueError(f"Cannot find a param with the given name: {name}")
    mapping = {name: _connector(w, self.allParameters[name]) for name, w in widgets.items()}
    for name, connector in mapping.items():
        connector.write(self.getValue(name))

        def changed(name=name, connector=connector):
            if not self._updatingGUI:
                self.setValue(name, connector.read())
        connector.connect(changed)
    tag = self._nextTag
    self._nextTag += 1
    observer = self.parameterNode.AddObserver(vtk.vtkCommand.ModifiedEvent,
                                              lambda caller, event: _updateGUI(self))
    self._guis[tag] = (mapping, observer)
    return tag


def _disconnectGui(self, tag):
    if tag in self._guis:
        mapping, observer = self._guis.pop(tag)
        for connector in mapping.values():
            connector.widget._slots.pop(connector.SIGNAL, None)
        self.parameterNode.RemoveObserver(observer)


def parameterNodeWrapper(classtype=None):
    def wrap(cls):
        hints = typing.get_type_hints(cls, include_extras=True)
        params = {n: _Param(n, h, getattr(cls, n, _NONE)) for n, h in hints.items()}
        for n in params:
            setattr(cls, n, property(lambda self, n=n: self.getValue(n),
                                     lambda self, value, n=n: self.setValue(n, value)))
        for name in _MEMBERS:
            if name in cls.__dict__:
                raise ValueError(f"Cannot use reserved name '{name}' in a parameterNodeWrapper")
        cls.allParameters = params
        cls._is_parameter_node_wrapper = True
        cls.__init__ = _init
        cls.default = lambda self, name: Default(self.allParameters[name].default)
        cls.getValue = _getValue
        cls.setValue = _setValue
        cls.connectGui = _connectGui
        cls.disconnectGui = _disconnectGui
        cls.StartModify = lambda self: self.parameterNode.StartModify()
        cls.EndModify = lambda self, was: self.parameterNode.EndModify(was)
        cls.AddObserver = lambda self, event, callback, priority=0.0: \
            self.parameterNode.AddObserver(event, callback, priority)
        cls.RemoveObserver = lambda self, tag: self.parameterNode.RemoveObserver(tag)
        cls.Modified = lambda self: self.parameterNode.Modified()
        return cls

    return wrap if classtype is None else wrap(classtype)


def isParameterNodeWrapper(classOrObj):
    return getattr(classOrObj, "_is_parameter_node_wrapper", False)


__all__ = list(_EXPORTS)
