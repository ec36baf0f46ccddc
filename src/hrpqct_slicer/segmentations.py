"""Label maps <-> segmentation nodes, with region ids, names, colours and terminology.

* :func:`labelmap_to_segmentation`: a 5-class or 7-region label map becomes a
  ``vtkMRMLSegmentationNode`` with one segment per region present. Segment id = region short code
  (``TC``, ``TT``, ...), name and colour from :mod:`hrpqct.regions`, ``TerminologyEntry`` tag from
  :func:`hrpqct.terminology.terminology_entry`. The segment label values in the shared labelmap
  are the region label values, so a saved ``.seg.nrrd`` carries them too.
* :func:`segmentation_to_labelmap`: the way corrected masks come back for training. Segments are
  matched to regions by id, then by name or short code, then by terminology entry, so an
  annotator may rename, reorder, delete or recolour segments. A segment that matches nothing, two
  segments claiming one region, or overlapping segments raise :class:`hrpqct.errors.InputError`
  with the list; deleted segments are simply absent from the label map.

Conversion rules exist only once the Segmentations logic has a scene
(``logic.SetMRMLScene(scene)``); :func:`segmentations_logic` makes such a logic headless, inside
Slicer pass ``slicer.modules.segmentations.logic()``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import vtk

import slicer
from hrpqct.errors import GeometryError, InputError
from hrpqct.regions import BACKGROUND, MODEL_CLASSES, REGIONS, Region
from hrpqct.terminology import region_for_terminology_entry, terminology_entry
from hrpqct.volume import Volume

from .volumes import image_data_to_array, node_geometry, node_to_volume, volume_to_node

__all__ = [
    "segmentations_logic",
    "color_table_node",
    "labelmap_to_segmentation",
    "match_segments",
    "segmentation_to_labelmap",
    "table_for",
]


def segmentations_logic(scene: Any) -> Any:
    """A ``vtkSlicerSegmentationsModuleLogic`` with ``scene`` set (registers conversion rules)."""
    logic = slicer.vtkSlicerSegmentationsModuleLogic()
    logic.SetMRMLScene(scene)
    return logic


def table_for(name: str | tuple[Region, ...]) -> tuple[Region, ...]:
    """``"regions"``: the 7 final regions, ``"model"``: the 5 model classes; tuples pass through."""
    if isinstance(name, tuple):
        return name
    if name in ("regions", "final", "7"):
        return REGIONS
    if name in ("model", "classes", "5"):
        return MODEL_CLASSES
    raise ValueError(f"unknown label table {name!r}; use 'regions' or 'model'")


def _check_contiguous(table: tuple[Region, ...]) -> None:
    labels = [r.label for r in table]
    if labels != list(range(1, len(table) + 1)):
        raise ValueError(f"label table must use values 1..{len(table)} in order, got {labels}")


def color_table_node(
    scene: Any, table: tuple[Region, ...] | str = REGIONS, name: str | None = None
) -> Any:
    """A ``vtkMRMLColorTableNode``: each region's name, colour and terminology at its label value.

    Assign it to a label map's display node so Slicer shows and imports the label map with our
    names, colours and terminology.
    """
    table = table_for(table)
    node = scene.AddNewNodeByClass("vtkMRMLColorTableNode", name or "HRpQCT regions")
    node.SetTypeToUser()
    node.SetNumberOfColors(max(r.label for r in table) + 1)
    node.SetColor(BACKGROUND, "Background", 0.0, 0.0, 0.0, 0.0)
    for r in table:
        node.SetColor(r.label, r.name, *r.color_float, 1.0)
        node.SetTerminologyFromString(r.label, terminology_entry(r))
    node.SetAttribute("HRpQCT.table", ",".join(r.code for r in table))
    return node


def _remove_node(scene: Any, node: Any) -> None:
    if node is None:
        return
    n_display = node.GetNumberOfDisplayNodes() if hasattr(node, "GetNumberOfDisplayNodes") else 0
    for i in range(n_display):
        display = node.GetNthDisplayNode(i)
        if display is not None:
            scene.RemoveNode(display)
    scene.RemoveNode(node)


def labelmap_to_segmentation(
    scene: Any,
    logic: Any,
    labels: Volume,
    reference: Any = None,
    table: tuple[Region, ...] | str = REGIONS,
    name: str = "HRpQCT regions",
    node: Any = None,
) -> Any:
    """A segmentation node with one segment per region present in the ``labels`` volume.

    ``labels`` holds label values from ``table`` (``"regions"``: 1-7, ``"model"``: 1-5; 0 is
    background). ``reference`` is the image volume node the segmentation belongs to; its grid must
    equal the label map's. With ``node`` (an existing segmentation node) its segments are
    replaced in place (its name and display settings kept) instead of adding a new node.
    """
    table = table_for(table)
    _check_contiguous(table)
    where = labels.source or "label map"
    array = np.asarray(labels.array)
    if not (np.issubdtype(array.dtype, np.integer) or array.dtype == bool):
        raise InputError(f"{where}: label map must hold integers, got {array.dtype}")
    present = [int(v) for v in np.unique(array)]
    known = {r.label for r in table}
    unknown = [v for v in present if v != BACKGROUND and v not in known]
    if unknown:
        raise InputError(
            f"{where}: label values {unknown} are not in the table "
            f"({', '.join(f'{r.label}={r.code}' for r in table)})"
        )
    if reference is not None:
        _check_grid(reference, labels, where)

    labelmap_node = volume_to_node(scene, labels.with_array(array.astype(np.uint8), unit="label"),
                                   name=f"{name} (import)", labelmap=True)
    if node is None:
        seg_node = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", name)
    else:
        seg_node = node
        seg_node.GetSegmentation().RemoveAllSegments()
    if seg_node.GetDisplayNode() is None:
        seg_node.CreateDefaultDisplayNodes()
    seg_node.SetReferenceImageGeometryParameterFromVolumeNode(reference or labelmap_node)
    segmentation = seg_node.GetSegmentation()
    ids = vtk.vtkStringArray()
    for r in table:  # one segment per label value 1..N, in order: import maps label k -> ids[k-1]
        segmentation.AddEmptySegment(r.segment_id, r.name, list(r.color_float))
        segment = segmentation.GetSegment(r.segment_id)
        segment.SetTerminology(terminology_entry(r))
        segment.SetNameAutoGenerated(False)
        segment.SetColorAutoGenerated(False)
        ids.InsertNextValue(r.segment_id)
    try:
        if not logic.ImportLabelmapToSegmentationNode(labelmap_node, seg_node, ids):
            raise InputError(f"{where}: Slicer could not import the label map into a segmentation")
    finally:
        _remove_node(scene, labelmap_node)
    for r in table:
        if r.label not in present:
            segmentation.RemoveSegment(r.segment_id)
    return seg_node


def _check_grid(reference: Any, labels: Volume, where: str) -> None:
    """Raise :class:`GeometryError` unless ``labels`` lies on ``reference``'s voxel grid."""
    spacing, origin, direction = node_geometry(reference)
    image = reference.GetImageData()
    ref_shape = tuple(reversed(image.GetDimensions())) if image is not None else None
    same = (
        ref_shape == labels.shape
        and np.allclose(spacing, labels.spacing, rtol=1e-4, atol=1e-4)
        and np.allclose(origin, labels.origin, rtol=1e-4, atol=1e-3)
        and np.allclose(direction, labels.direction, atol=1e-4)
    )
    if not same:
        raise GeometryError(
            f"{where}: grid (shape {labels.shape}, spacing {labels.spacing}, "
            f"origin {labels.origin}) "
            f"differs from reference volume {reference.GetName()!r} (shape {ref_shape}, spacing "
            f"{spacing}, origin {origin})"
        )


def _norm(text: str) -> str:
    return " ".join(text.replace("_", " ").split()).casefold()


def match_segments(seg_node: Any, table: tuple[Region, ...] | str = REGIONS) -> dict[str, Region]:
    """Segment id -> region, for every segment of ``seg_node``.

    Rules, in order: the segment id is a region short code; the segment name is a region name or
    short code (case and spacing ignored); the segment's terminology entry has a region's
    category, type and anatomic region. Raises :class:`InputError` listing segments that match
    nothing and regions claimed by more than one segment.
    """
    table = table_for(table)
    by_code = {r.segment_id: r for r in table}
    by_name = {_norm(r.name): r for r in table} | {_norm(r.code): r for r in table}
    segmentation = seg_node.GetSegmentation()
    matched: dict[str, Region] = {}
    unknown: list[str] = []
    for i in range(segmentation.GetNumberOfSegments()):
        sid = segmentation.GetNthSegmentID(i)
        segment = segmentation.GetSegment(sid)
        name = segment.GetName() or ""
        region = by_code.get(sid) or by_name.get(_norm(name))
        if region is None and segment.HasTerminology():
            region = region_for_terminology_entry(segment.GetTerminology(), table)
        if region is None:
            unknown.append(f"{name!r} (id {sid!r})")
        else:
            matched[sid] = region
    problems = []
    if unknown:
        problems.append(
            f"segments {', '.join(unknown)} match no region; rename them to one of "
            f"{', '.join(repr(r.name) for r in table)} or delete them"
        )
    claimed: dict[str, list[str]] = {}
    for sid, r in matched.items():
        claimed.setdefault(r.code, []).append(sid)
    dupes = {code: sids for code, sids in claimed.items() if len(sids) > 1}
    if dupes:
        problems.append(
            "regions claimed by several segments: "
            + "; ".join(f"{code} <- {', '.join(map(repr, sids))}" for code, sids in dupes.items())
        )
    if problems:
        raise InputError(f"segmentation {seg_node.GetName()!r}: " + "; ".join(problems))
    return matched


def _export(logic: Any, scene: Any, seg_node: Any, ids: list[str], reference: Any) -> np.ndarray:
    out = scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode", "HRpQCT export (temporary)")
    try:
        if not logic.ExportSegmentsToLabelmapNode(seg_node, ids, out, reference):
            raise InputError(
                f"segmentation {seg_node.GetName()!r}: Slicer could not export segments {ids}"
            )
        return image_data_to_array(out.GetImageData(), out.GetName())
    finally:
        _remove_node(scene, out)


def segmentation_to_labelmap(
    scene: Any,
    logic: Any,
    seg_node: Any,
    reference: Any,
    table: tuple[Region, ...] | str = REGIONS,
) -> Volume:
    """The segmentation as a uint8 label map with our label values, on ``reference``'s grid.

    Segments are matched with :func:`match_segments`; regions without a segment are absent (0).
    """
    table = table_for(table)
    matched = match_segments(seg_node, table)
    grid = node_to_volume(reference)
    out = np.zeros(grid.shape, dtype=np.uint8)
    order = sorted(matched, key=lambda sid: matched[sid].label)
    if order:
        exported = _export(logic, scene, seg_node, order, reference)
        if exported.shape != out.shape:
            raise GeometryError(
                f"segmentation {seg_node.GetName()!r}: export gave shape {exported.shape}, "
                f"reference {reference.GetName()!r} has {out.shape}"
            )
        lut = np.zeros(len(order) + 1, dtype=np.uint8)
        for k, sid in enumerate(order, start=1):
            lut[k] = matched[sid].label
        out = lut[exported]
        if seg_node.GetSegmentation().GetNumberOfLayers() > 1:
            _check_overlap(logic, scene, seg_node, order, reference, matched)
    return grid.with_array(out, unit="label", segmentation=seg_node.GetName())


def _check_overlap(logic, scene, seg_node, order, reference, matched) -> None:
    """Segments in separate layers may overlap; refuse ambiguous voxels with a count per pair."""
    count = None
    masks = {}
    for sid in order:
        masks[sid] = _export(logic, scene, seg_node, [sid], reference) > 0
        count = masks[sid].astype(np.uint8) if count is None else count + masks[sid]
    if count is None or count.max() <= 1:
        return
    pairs = []
    for i, a in enumerate(order):
        for b in order[i + 1:]:
            n = int(np.count_nonzero(masks[a] & masks[b]))
            if n:
                pairs.append(f"{matched[a].code}/{matched[b].code}: {n} voxels")
    raise InputError(
        f"segmentation {seg_node.GetName()!r}: segments overlap ({'; '.join(pairs)}); "
        "each voxel must belong to one region (Segment Editor: masking 'Overwrite all')"
    )
