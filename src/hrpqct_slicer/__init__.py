"""Bridge between :mod:`hrpqct` results and MRML nodes.

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
"""

from .plots import ConfidencePlot, confidence_plot, least_confident_slices, slice_center_ras
from .segmentations import (
    color_table_node,
    labelmap_to_segmentation,
    match_segments,
    segmentation_to_labelmap,
    segmentations_logic,
    table_for,
)
from .storage import load_segmentation, save_segmentation
from .tables import dataframe_to_table_node, table_node_to_dataframe
from .volumes import node_to_volume, volume_to_node

__all__ = [
    "ConfidencePlot",
    "color_table_node",
    "confidence_plot",
    "dataframe_to_table_node",
    "labelmap_to_segmentation",
    "least_confident_slices",
    "load_segmentation",
    "match_segments",
    "node_to_volume",
    "save_segmentation",
    "segmentation_to_labelmap",
    "segmentations_logic",
    "slice_center_ras",
    "table_for",
    "table_node_to_dataframe",
    "volume_to_node",
]
