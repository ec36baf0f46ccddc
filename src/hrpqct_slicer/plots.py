"""Per-slice segmentation confidence as a table node and a plot, so an annotator can go to the
least confident slices first.

The table has one row per slice: ``slice`` (index k along the scan axis), ``confidence`` (as given,
e.g. mean max-softmax probability in [0, 1]) and ``rank`` (1 = least confident). The plot chart
shows confidence against slice; :func:`slice_center_ras` gives the RAS point (mm) a Slicer widget
passes to ``slicer.util`` / the markups logic to jump the slice views there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import vtk

import slicer
from hrpqct.errors import InputError

from .tables import dataframe_to_table_node

__all__ = ["ConfidencePlot", "confidence_plot", "least_confident_slices", "slice_center_ras"]


@dataclass
class ConfidencePlot:
    """The nodes :func:`confidence_plot` adds to the scene."""

    table: Any  # vtkMRMLTableNode
    series: Any  # vtkMRMLPlotSeriesNode
    chart: Any  # vtkMRMLPlotChartNode


def least_confident_slices(confidence: np.ndarray, n: int | None = None) -> np.ndarray:
    """Slice indices sorted from least to most confident (stable for ties); the first ``n``."""
    confidence = np.asarray(confidence, dtype=float)
    if confidence.ndim != 1:
        raise InputError(f"per-slice confidence must be 1D, got shape {confidence.shape}")
    if np.isnan(confidence).any():
        raise InputError("per-slice confidence contains NaN")
    order = np.argsort(confidence, kind="stable")
    return order if n is None else order[:n]


def confidence_plot(
    scene: Any, confidence: np.ndarray, name: str = "Slice confidence"
) -> ConfidencePlot:
    """Add a table (slice, confidence, rank), a line+marker plot series and a chart to ``scene``."""
    confidence = np.asarray(confidence, dtype=float)
    order = least_confident_slices(confidence)
    rank = np.empty(len(confidence), dtype=np.int32)
    rank[order] = np.arange(1, len(confidence) + 1, dtype=np.int32)
    df = pd.DataFrame({
        "slice": np.arange(len(confidence), dtype=np.int32),
        "confidence": confidence,
        "rank": rank,
    })
    table = dataframe_to_table_node(scene, df, name=f"{name} table")
    series = scene.AddNewNodeByClass("vtkMRMLPlotSeriesNode", name)
    series.SetAndObserveTableNodeID(table.GetID())
    series.SetXColumnName("slice")
    series.SetYColumnName("confidence")
    series.SetPlotType(slicer.vtkMRMLPlotSeriesNode.PlotTypeScatter)
    series.SetLineStyle(slicer.vtkMRMLPlotSeriesNode.LineStyleSolid)
    series.SetMarkerStyle(slicer.vtkMRMLPlotSeriesNode.MarkerStyleCircle)
    chart = scene.AddNewNodeByClass("vtkMRMLPlotChartNode", f"{name} chart")
    chart.AddAndObservePlotSeriesNodeID(series.GetID())
    chart.SetTitle(name)
    chart.SetXAxisTitle("Slice index")
    chart.SetYAxisTitle("Confidence")
    chart.SetLegendVisibility(False)
    return ConfidencePlot(table=table, series=series, chart=chart)


def slice_center_ras(volume_node: Any, k: int) -> tuple[float, float, float]:
    """RAS position (mm) of the centre of slice ``k`` (array ``[k, :, :]``) of a volume node."""
    image = volume_node.GetImageData()
    if image is None:
        raise InputError(f"volume node {volume_node.GetName()!r}: has no image data")
    nx, ny, nz = image.GetDimensions()
    if not 0 <= k < nz:
        raise InputError(f"volume node {volume_node.GetName()!r}: slice {k} outside 0..{nz - 1}")
    m = vtk.vtkMatrix4x4()
    volume_node.GetIJKToRASMatrix(m)
    ras = m.MultiplyPoint(((nx - 1) / 2.0, (ny - 1) / 2.0, float(k), 1.0))
    return (ras[0], ras[1], ras[2])
