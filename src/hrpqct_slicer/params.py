"""Module parameters as plain dataclasses, wrapped for Slicer by ``slicer.parameterNodeWrapper``.

Each Slicer module keeps its choices (input nodes, model, device, regions...) in one
``vtkMRMLScriptedModuleNode`` per scene, so they are saved with the scene and restored with it.
The choices are declared here once, as dataclasses (typed, with defaults from
:mod:`hrpqct.method` and :mod:`hrpqct.regions`, the allowed values and ranges as field metadata);
the module logic, the console and the tests pass these dataclasses around.

:func:`parameter_node_class` turns such a dataclass into the class Slicer's module template
declares by hand: a class with the same fields, annotated for
``slicer.parameterNodeWrapper.parameterNodeWrapper`` (node fields as their MRML class, choices as
``Annotated[str, Choice([...])]``, ranges as ``Annotated[int, WithinRange(lo, hi)]``, tuples as
``list[...]``, which the wrapper serialises) and decorated by it. Its instances wrap the parameter
node with typed attributes and ``connectGui`` binds the panel's widgets (the ``.ui`` files name
each one's parameter in the ``SlicerParameterName`` dynamic property). :func:`to_dataclass` and
:func:`from_dataclass` copy between the two. ``slicer.parameterNodeWrapper`` is imported when
used: Slicer 5.10 and 5.12 have it; the headless ``slicer-core`` library does not (the tests
install a checked stand-in, ``Testing/Python/fakes/parameter_node_wrapper.py``).
"""

from __future__ import annotations

import typing
from dataclasses import dataclass, field, fields
from typing import Any, TypeVar

from hrpqct.method import RADIOMICS
from hrpqct.regions import RADIOMICS_REGIONS

__all__ = [
    "node_field",
    "choice_field",
    "range_field",
    "parameter_node",
    "parameter_node_class",
    "to_dataclass",
    "from_dataclass",
    "SegmentationParameters",
    "RadiomicsParameters",
    "ClassifyParameters",
    "DEVICES",
    "REFINE_ONLY",
    "PRESET_CHOICES",
    "STAT_CHOICES",
]

T = TypeVar("T")

_NODE = "mrml_node"
_CHOICES = "choices"
_RANGE = "range"
DEVICES = ("auto", "cpu", "cuda", "mps")
REFINE_ONLY = ("", "split", "topology")  # "" = both rules
PRESET_CHOICES = ("paper", "3d", "file")
STAT_CHOICES = RADIOMICS.aggregation_stats


def node_field(node_class: str = "vtkMRMLNode") -> Any:
    """A dataclass field that holds an MRML node (stored as a node reference; default ``None``)."""
    return field(default=None, metadata={_NODE: node_class})


def choice_field(default: str, choices: tuple) -> Any:
    """A ``str`` field whose value is one of ``choices`` (``Choice`` for the wrapper)."""
    assert default in choices, (default, choices)
    return field(default=default, metadata={_CHOICES: tuple(choices)})


def range_field(default: int, lo: int, hi: int) -> Any:
    """An ``int`` field within ``[lo, hi]`` (``WithinRange``: also the spin box's range)."""
    assert lo <= default <= hi
    return field(default=default, metadata={_RANGE: (lo, hi)})


def parameter_node(scene: Any, module_name: str) -> Any:
    """The module's singleton ``vtkMRMLScriptedModuleNode`` in ``scene`` (created if missing).

    Same convention as Slicer's ``ScriptedLoadableModuleLogic.getParameterNode``: singleton tag
    and ``ModuleName`` attribute equal to the module name (here for any scene, not only
    ``slicer.mrmlScene``, so the logic also works on a scene passed in).
    """
    node = scene.GetSingletonNode(module_name, "vtkMRMLScriptedModuleNode")
    if node is None:
        import slicer

        node = slicer.vtkMRMLScriptedModuleNode()
        node.SetSingletonTag(module_name)
        node.SetName(f"{module_name} parameters")
        node.SetAttribute("ModuleName", module_name)
        node = scene.AddNode(node)
    elif node.GetAttribute("ModuleName") != module_name:
        node.SetAttribute("ModuleName", module_name)
    return node


_CLASSES: dict = {}


def _tuple_item(hint: Any) -> Any:
    return (typing.get_args(hint) or (str,))[0]


def parameter_node_class(cls: type) -> type:
    """The ``@parameterNodeWrapper`` class for the parameter dataclass ``cls`` (made once)."""
    if cls in _CLASSES:
        return _CLASSES[cls]
    import slicer
    from slicer.parameterNodeWrapper import Choice, WithinRange, parameterNodeWrapper

    hints = typing.get_type_hints(cls)
    annotations: dict[str, Any] = {}
    defaults: dict[str, Any] = {}
    for f in fields(cls):
        hint, default = hints[f.name], f.default
        if _NODE in f.metadata:
            hint = getattr(slicer, f.metadata[_NODE])
        elif _CHOICES in f.metadata:
            hint = typing.Annotated[hint, Choice(list(f.metadata[_CHOICES]))]
        elif _RANGE in f.metadata:
            hint = typing.Annotated[hint, WithinRange(*f.metadata[_RANGE])]
        elif typing.get_origin(hint) is tuple:
            hint, default = list[_tuple_item(hint)], list(default)
        annotations[f.name] = hint
        defaults[f.name] = default
    name = cls.__name__.removesuffix("Parameters") + "ParameterNode"
    wrapped = parameterNodeWrapper(type(name, (), {"__annotations__": annotations,
                                                   "__doc__": cls.__doc__,
                                                   "__module__": cls.__module__, **defaults}))
    _CLASSES[cls] = wrapped
    return wrapped


def to_dataclass(cls: type[T], wrapper: Any) -> T:
    """The ``cls`` dataclass of a wrapped parameter node's values (lists back to tuples)."""
    hints = typing.get_type_hints(cls)
    values = {}
    for f in fields(cls):
        value = getattr(wrapper, f.name)
        if typing.get_origin(hints[f.name]) is tuple:
            value = tuple(_tuple_item(hints[f.name])(v) for v in value)
        values[f.name] = value
    return cls(**values)


def from_dataclass(params: Any, wrapper: Any) -> None:
    """Write every field of the dataclass ``params`` to the wrapped parameter node (one
    Modified event)."""
    was = wrapper.StartModify()
    try:
        for f in fields(params):
            value = getattr(params, f.name)
            setattr(wrapper, f.name, list(value) if isinstance(value, tuple) else value)
    finally:
        wrapper.EndModify(was)


@dataclass
class SegmentationParameters:
    """HRpQCTSeg: what to segment, with which model, where, and the review / export choices."""

    input_volume: Any = node_field("vtkMRMLScalarVolumeNode")
    output_segmentation: Any = node_field("vtkMRMLSegmentationNode")
    model: str = ""  # catalogue id or model folder; "" = the catalogue's default
    device: str = choice_field("auto", DEVICES)
    fast_cpu: bool = True
    batch_size: int = range_field(0, 0, 64)  # slices per forward pass; 0 = automatic
    output_folder: str = ""  # where the files go; "" = a new folder under the temporary folder
    assume_unit: str = "HU"  # unit of a volume that does not say (volumes loaded by Slicer)
    review_slices: int = range_field(10, 1, 200)  # how many least-confident slices to list
    refine_only: str = choice_field("", REFINE_ONLY)
    keep_edits: bool = True  # refine keeps hand-painted MT/AT
    export_folder: str = ""  # training-set folder for "Export for training"
    case_id: str = ""
    subject_id: str = ""
    annotator: str = ""


@dataclass
class RadiomicsParameters:
    """HRpQCTRadiomics: which scan and segmentation, which features and regions, where to."""

    input_volume: Any = node_field("vtkMRMLScalarVolumeNode")
    input_segmentation: Any = node_field("vtkMRMLSegmentationNode")
    output_table: Any = node_field("vtkMRMLTableNode")
    preset: str = choice_field(RADIOMICS.preset, PRESET_CHOICES)
    preset_file: str = ""  # a PyRadiomics parameter file, when preset == "file"
    regions: tuple[str, ...] = RADIOMICS_REGIONS
    band_distances_mm: tuple[float, ...] = ()  # soft tissue within d mm of the tibia (ST<d>mm)
    stats: tuple[str, ...] = (RADIOMICS.aggregation,)
    output_file: str = ""  # slice-level table (.csv/.parquet); "" = temporary folder
    assume_unit: str = "HU"
    slices: str = ""  # "" = all; "start:stop:step" or "a,b,c" for a quick look


@dataclass
class ClassifyParameters:
    """HRpQCTClassify: which feature table, which model folder ("" = the bundled demo model)."""

    features_table: Any = node_field("vtkMRMLTableNode")
    model_folder: str = ""
