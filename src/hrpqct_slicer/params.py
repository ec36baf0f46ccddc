"""Module parameters as plain dataclasses, mirrored to the MRML parameter node.

Each Slicer module keeps its choices (input nodes, model, device, regions...) in one
``vtkMRMLScriptedModuleNode`` per scene, so they are saved with the scene and restored with it.
Here the choices are dataclasses (typed, with defaults from :mod:`hrpqct.method` and
:mod:`hrpqct.regions`) and two functions copy them to and from such a node:

* plain fields are stored as text parameters (``str`` as is, ``bool`` as ``true``/``false``,
  numbers with ``repr``, tuples as JSON lists);
* node fields (declared with :func:`node_field`) are stored as node references, so MRML keeps
  them valid when the scene is saved, loaded or nodes are renamed.

This is what ``slicer.parameterNodeWrapper`` does in Slicer 5.2 and later, written against the
plain MRML API so that it runs, and is tested, on the headless ``slicer-core`` library (which has
no ``parameterNodeWrapper``).
"""

from __future__ import annotations

import json
import logging
import typing
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, TypeVar

from hrpqct.method import DEVICES, INFERENCE, PRESETS, RADIOMICS, REFINE_ONLY as _REFINE_ONLY
from hrpqct.regions import RADIOMICS_REGIONS

__all__ = [
    "node_field",
    "parameter_node",
    "write_parameters",
    "read_parameters",
    "SegmentationParameters",
    "RadiomicsParameters",
    "DEVICES",
    "REFINE_ONLY",
    "PRESET_CHOICES",
]

log = logging.getLogger(__name__)
T = TypeVar("T")

_NODE = "mrml_node"
# the choices, from hrpqct.method (DEVICES is re-exported as is)
REFINE_ONLY = tuple(o or "" for o in _REFINE_ONLY)  # "" = both rules
PRESET_CHOICES = (*PRESETS, "file")


def node_field(node_class: str = "vtkMRMLNode") -> Any:
    """A dataclass field that holds an MRML node (stored as a node reference; default ``None``)."""
    return field(default=None, metadata={_NODE: node_class})


def parameter_node(scene: Any, module_name: str) -> Any:
    """The module's singleton ``vtkMRMLScriptedModuleNode`` in ``scene`` (created if missing).

    Same convention as Slicer's ``ScriptedLoadableModuleLogic.getParameterNode``: singleton tag
    and ``ModuleName`` attribute equal to the module name.
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


def _hints(cls) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _encode(value: Any, hint: Any) -> str:
    if hint is bool:
        return "true" if value else "false"
    if hint in (int, float):
        return repr(hint(value))
    if typing.get_origin(hint) is tuple:
        return json.dumps(list(value))
    return "" if value is None else str(value)


def _decode(text: str, hint: Any) -> Any:
    if hint is bool:
        if text not in ("true", "false"):
            raise ValueError(f"expected true or false, got {text!r}")
        return text == "true"
    if hint in (int, float):
        return hint(text)
    if typing.get_origin(hint) is tuple:
        args = typing.get_args(hint)
        item = args[0] if args else str
        values = json.loads(text)
        if not isinstance(values, list):
            raise ValueError(f"expected a JSON list, got {text!r}")
        return tuple(item(v) for v in values)
    return text


def write_parameters(params: Any, node: Any) -> None:
    """Copy every field of the dataclass ``params`` into the parameter ``node`` (one Modified)."""
    hints = _hints(type(params))
    was = node.StartModify()
    try:
        for f in fields(params):
            value = getattr(params, f.name)
            if _NODE in f.metadata:
                node.SetNodeReferenceID(f.name, value.GetID() if value is not None else None)
            else:
                node.SetParameter(f.name, _encode(value, hints[f.name]))
    finally:
        node.EndModify(was)


def read_parameters(cls: type[T], node: Any) -> T:
    """A ``cls`` dataclass from the parameter ``node``; missing or unreadable values take the
    field's default (an unreadable one is logged)."""
    hints = _hints(cls)
    values: dict[str, Any] = {}
    names = set(node.GetParameterNames()) if node is not None else set()
    for f in fields(cls):
        if node is None:
            continue
        if _NODE in f.metadata:
            values[f.name] = node.GetNodeReference(f.name)
        elif f.name in names:
            text = node.GetParameter(f.name)
            try:
                values[f.name] = _decode(text, hints[f.name])
            except (TypeError, ValueError) as exc:
                default = f.default if f.default is not MISSING else f.default_factory()
                log.warning("parameter %s=%r of %s is unreadable (%s); using %r", f.name, text,
                            node.GetName(), exc, default)
    return cls(**values)


@dataclass
class SegmentationParameters:
    """HRpQCTSeg: what to segment, with which model, where, and the review / export choices."""

    input_volume: Any = node_field("vtkMRMLScalarVolumeNode")
    output_segmentation: Any = node_field("vtkMRMLSegmentationNode")
    model: str = ""  # catalogue id or model folder; "" = the catalogue's default
    device: str = INFERENCE.device  # one of DEVICES
    fast_cpu: bool = True
    batch_size: int = 0  # slices per forward pass; 0 = automatic
    output_folder: str = ""  # where the files go; "" = a new folder under the temporary folder
    assume_unit: str = "HU"  # unit of a volume that does not say (volumes loaded by Slicer)
    review_slices: int = 10  # how many least-confident slices to list
    refine_only: str = ""  # one of REFINE_ONLY
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
    preset: str = RADIOMICS.preset  # one of PRESET_CHOICES
    preset_file: str = ""  # a PyRadiomics parameter file, when preset == "file"
    regions: tuple[str, ...] = RADIOMICS_REGIONS
    band_distances_mm: tuple[float, ...] = ()  # soft tissue within d mm of the tibia (ST<d>mm)
    stats: tuple[str, ...] = (RADIOMICS.aggregation,)
    output_file: str = ""  # slice-level table (.csv/.parquet); "" = temporary folder
    assume_unit: str = "HU"
    slices: str = ""  # "" = all; "start:stop:step" or "a,b,c" for a quick look
