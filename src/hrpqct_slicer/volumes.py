"""Volume nodes <-> :class:`hrpqct.volume.Volume`.

``Volume`` follows ITK: array ``[z, y, x]``, ``spacing``/``origin`` in ``(x, y, z)`` order (mm),
``direction`` columns are the axis directions, all in the LPS patient frame. MRML volume nodes keep
the same voxels in a ``vtkImageData`` (x fastest) with an IJK-to-RAS matrix, so the conversion
flips the first two world axes (LPS -> RAS) and nothing else; values, dtype and geometry survive
a round trip exactly.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

import numpy as np
import vtk
from vtk.util import numpy_support

import slicer
from hrpqct.errors import InputError
from hrpqct.volume import Calibration, Volume

__all__ = [
    "LPS_TO_RAS",
    "UNIT_ATTRIBUTE",
    "CALIBRATION_ATTRIBUTE",
    "volume_to_node",
    "node_to_volume",
    "node_geometry",
    "array_to_image_data",
    "image_data_to_array",
]

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0])
UNIT_ATTRIBUTE = "HRpQCT.unit"
CALIBRATION_ATTRIBUTE = "HRpQCT.calibration"


def array_to_image_data(array: np.ndarray) -> vtk.vtkImageData:
    """A ``[z, y, x]`` array as 1-component ``vtkImageData`` (deep copy; bool stored as uint8)."""
    array = np.asarray(array)
    if array.ndim != 3:
        raise InputError(f"expected a 3D array (z, y, x), got shape {array.shape}")
    if array.dtype == bool:
        array = array.astype(np.uint8)
    image = vtk.vtkImageData()
    image.SetDimensions(array.shape[2], array.shape[1], array.shape[0])
    scalars = numpy_support.numpy_to_vtk(np.ascontiguousarray(array).ravel(), deep=True)
    scalars.SetName("ImageScalars")
    image.GetPointData().SetScalars(scalars)
    return image


def image_data_to_array(image: vtk.vtkImageData, where: str = "volume node") -> np.ndarray:
    """``vtkImageData`` scalars as a ``[z, y, x]`` numpy array (a copy)."""
    if image is None or image.GetPointData() is None or image.GetPointData().GetScalars() is None:
        raise InputError(f"{where}: has no image data")
    scalars = image.GetPointData().GetScalars()
    if scalars.GetNumberOfComponents() != 1:
        raise InputError(
            f"{where}: {scalars.GetNumberOfComponents()} components per voxel, expected 1"
        )
    nx, ny, nz = image.GetDimensions()
    return numpy_support.vtk_to_numpy(scalars).reshape(nz, ny, nx).copy()


def _matrix3(m: np.ndarray) -> vtk.vtkMatrix4x4:
    out = vtk.vtkMatrix4x4()
    for r in range(3):
        for c in range(3):
            out.SetElement(r, c, float(m[r, c]))
    return out


def volume_to_node(
    scene: Any,
    volume: Volume,
    name: str | None = None,
    node: Any = None,
    labelmap: bool | None = None,
) -> Any:
    """Put ``volume`` into ``scene`` as a scalar (or label map) volume node and return the node.

    ``labelmap`` defaults to ``volume.unit == "label"``. An existing ``node`` is updated in place.
    The unit and calibration are kept as node attributes (``HRpQCT.unit``, ``HRpQCT.calibration``).
    """
    if labelmap is None:
        labelmap = volume.unit == "label"
    cls = "vtkMRMLLabelMapVolumeNode" if labelmap else "vtkMRMLScalarVolumeNode"
    if node is None:
        default = volume.source.stem if volume.source else "HRpQCT volume"
        node = scene.AddNewNodeByClass(cls, name or default)
    elif name:
        node.SetName(name)
    direction = np.asarray(volume.direction, dtype=float).reshape(3, 3)
    node.SetSpacing(*volume.spacing)
    node.SetOrigin(*(LPS_TO_RAS @ np.asarray(volume.origin, dtype=float)))
    node.SetIJKToRASDirectionMatrix(_matrix3(LPS_TO_RAS @ direction))
    node.SetAndObserveImageData(array_to_image_data(volume.array))
    node.SetAttribute(UNIT_ATTRIBUTE, volume.unit)
    if volume.calibration is not None:
        node.SetAttribute(CALIBRATION_ATTRIBUTE, json.dumps(asdict(volume.calibration)))
    if volume.unit == "HU" and hasattr(slicer, "vtkCodedEntry"):
        units = slicer.vtkCodedEntry()
        units.SetValueSchemeMeaning("[hnsf'U]", "UCUM", "Hounsfield unit")
        node.SetVoxelValueUnits(units)
    if node.GetDisplayNode() is None:
        node.CreateDefaultDisplayNodes()
    return node


def node_geometry(node: Any) -> tuple[tuple[float, ...], tuple[float, ...], tuple[float, ...]]:
    """``(spacing, origin, direction)`` of a volume node in ITK/LPS convention (mm)."""
    m = vtk.vtkMatrix4x4()
    node.GetIJKToRASDirectionMatrix(m)
    ras_dir = np.array([[m.GetElement(r, c) for c in range(3)] for r in range(3)])
    direction = LPS_TO_RAS @ ras_dir
    origin = LPS_TO_RAS @ np.asarray(node.GetOrigin(), dtype=float)
    return (
        tuple(float(s) for s in node.GetSpacing()),
        tuple(float(o) for o in origin),
        tuple(float(d) for d in direction.ravel()),
    )


def node_to_volume(node: Any, unit: str | None = None) -> Volume:
    """A volume node as :class:`Volume` (array copied; unit from ``unit``, the node attribute,
    ``"label"`` for label map nodes, else ``"native"``). Transforms applied to the node are
    ignored: harden them first."""
    where = f"volume node {node.GetName()!r}"
    if node.GetParentTransformNode() is not None:
        raise InputError(f"{where}: is under a transform; harden the transform first")
    array = image_data_to_array(node.GetImageData(), where)
    spacing, origin, direction = node_geometry(node)
    if unit is None:
        unit = node.GetAttribute(UNIT_ATTRIBUTE) or (
            "label" if node.IsA("vtkMRMLLabelMapVolumeNode") else "native"
        )
    calibration = None
    text = node.GetAttribute(CALIBRATION_ATTRIBUTE)
    if text:
        calibration = Calibration(**json.loads(text))
    return Volume(
        array=array,
        spacing=spacing,
        origin=origin,
        direction=direction,
        unit=unit,
        calibration=calibration,
        meta={"mrml_node": node.GetName()},
    )
