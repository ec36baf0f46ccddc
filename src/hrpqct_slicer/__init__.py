"""Bridge between :mod:`hrpqct` results and MRML nodes, and the logic under the Slicer modules.

Every function takes the MRML scene (and, where needed, the Segmentations module logic) as an
argument, so the same code runs inside 3D Slicer and headless on the ``slicer-core`` package; it
never touches ``slicer.util`` or ``slicer.mrmlScene``, which exist only in the application.

Headless::

    import slicer
    from hrpqct_slicer import segmentations_logic, volume_to_node, labelmap_to_segmentation
    scene = slicer.vtkMRMLScene()
    logic = segmentations_logic(scene)          # in Slicer: slicer.modules.segmentations.logic()
    image_node = volume_to_node(scene, image)   # hrpqct.volume.Volume -> scalar volume node
    seg_node = labelmap_to_segmentation(scene, logic, regions, reference=image_node)

Modules: :mod:`.volumes`, :mod:`.segmentations`, :mod:`.tables`, :mod:`.plots`, :mod:`.storage`
(node conversions); :mod:`.params` (module parameters <-> parameter node); :mod:`.jobs`
(background processes with progress and cancel); :mod:`.seg_logic` and
:mod:`.radiomics_logic` (what the HRpQCTSeg and HRpQCTRadiomics modules do);
:mod:`.deps` (Python packages on first use); :mod:`.worker` (the radiomics worker process).

Names are imported on first use, so ``python -m hrpqct_slicer.worker`` and
:mod:`hrpqct_slicer.deps` work without the MRML library.
"""

from __future__ import annotations

import importlib

_WHERE = {
    # node conversions (the original bridge)
    "ConfidencePlot": "plots", "confidence_plot": "plots",
    "least_confident_slices": "plots", "slice_center_ras": "plots",
    "color_table_node": "segmentations", "labelmap_to_segmentation": "segmentations",
    "match_segments": "segmentations", "segmentation_to_labelmap": "segmentations",
    "segmentations_logic": "segmentations", "table_for": "segmentations",
    "load_segmentation": "storage", "save_segmentation": "storage",
    "dataframe_to_table_node": "tables", "table_node_to_dataframe": "tables",
    "node_to_volume": "volumes", "volume_to_node": "volumes",
    # module parameters
    "SegmentationParameters": "params", "RadiomicsParameters": "params",
    "ClassifyParameters": "params", "parameter_node": "params",
    "parameter_node_class": "params", "to_dataclass": "params", "from_dataclass": "params",
    # background processes
    "BackgroundJob": "jobs", "JobStatus": "jobs",
    # HRpQCTSeg
    "SegmentationTask": "seg_logic", "SegmentationResults": "seg_logic",
    "load_segmentation_results": "seg_logic", "refine_segmentation": "seg_logic",
    "export_for_training": "seg_logic", "jump_to_slice": "seg_logic",
    "load_terminologies": "seg_logic", "segment_volume_node": "seg_logic",
    # HRpQCTRadiomics
    "RadiomicsTask": "radiomics_logic", "RadiomicsResults": "radiomics_logic",
    "radiomics_of_nodes": "radiomics_logic", "features_table_node": "radiomics_logic",
    # standard morphometry
    "morphometry_summary": "morphometry", "morphometry_table_node": "morphometry",
    # dependencies
    "missing_packages": "deps", "install_plan": "deps", "ensure_packages": "deps",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name in _WHERE:
        value = getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_WHERE))
