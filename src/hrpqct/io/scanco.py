"""Scanco AIM / ISQ / RSQ / RAD files through ITK's ``itk-ioscanco`` module.

itk-ioscanco rescales voxels to HU *in the file's integer type* on read when the header carries a
calibration (values truncated to whole HU), and not at all otherwise. To return exact values
with an explicit unit whatever the file holds, this reader switches that rescaling off, reads
the raw stored integers and applies the header formulas itself (float32)::

    HU       = raw * 1000 / (MuWater * MuScaling) - 1000
    mgHA/ccm = raw / MuScaling * RescaleSlope + RescaleIntercept

Writing AIM is not offered: itk-ioscanco 1.0.1's writer quantises the origin to whole voxels,
drops the density slope and intercept and may rescale the voxels, so it does not round-trip.
"""

from __future__ import annotations

import os
import re
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from ..errors import CalibrationError, InputError
from ..progress import ProgressCallback, report
from ..volume import Calibration, Volume
from .units import check_unit, linear

__all__ = ["read_scanco", "read_scanco_header", "scanco_calibration"]

# ITK component type name -> (ITK pixel type name, numpy dtype of the stored values).
# Signed char is not wrapped in ITK Python; it is read as short and narrowed back afterwards.
_PIXEL = {
    "char": ("SS", np.int8),
    "unsigned_char": ("UC", np.uint8),
    "short": ("SS", np.int16),
    "unsigned_short": ("US", np.uint16),
    "int": ("SI", np.int32),
    "unsigned_int": ("UI", np.uint32),
    "float": ("F", np.float32),
    "double": ("D", np.float64),
}


def _itk_message(exc: Exception) -> str:
    """The useful last line of an ITK exception, without the C++ source location."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    msg = lines[-1] if lines else type(exc).__name__
    return re.sub(r"^ITK ERROR:\s*\w+\(0x[0-9a-fA-F]+\):\s*", "", msg)


def _plain(value: Any) -> Any:
    """An ITK metadata value as a JSON-friendly Python value."""
    if isinstance(value, (str, int, float, bool)):
        return value.strip() if isinstance(value, str) else value
    try:
        return [_plain(v) for v in value]
    except TypeError:
        return str(value)


@contextmanager
def _quiet() -> Iterator[None]:
    """Hide the "builtin type ... has no __module__" DeprecationWarnings of ITK's SWIG modules,
    emitted while ITK lazily loads them."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        yield


def _itk():
    """The ``itk`` module with the Scanco IO loaded (ITK loads lazily; first use takes seconds)."""
    import itk

    with _quiet():
        itk.ScancoImageIO, itk.ImageFileReader, itk.Image  # noqa: B018  trigger the lazy loads
    return itk


def _open_io(path: Path):
    itk = _itk()
    io = itk.ScancoImageIO.New()
    io.SetFileName(str(path))
    try:
        io.ReadImageInformation()
    except RuntimeError as exc:
        raise InputError(
            f"{path}: not a readable Scanco AIM/ISQ file ({_itk_message(exc)})"
        ) from None
    return io


def _header(io) -> dict[str, Any]:
    md = io.GetMetaDataDictionary()
    header: dict[str, Any] = {}
    for key in md.GetKeys():
        if key.startswith("ITK_"):
            continue
        try:
            header[key] = _plain(md[key])
        except Exception:  # noqa: BLE001  some vector types cannot be unwrapped in Python
            continue
    header["Dimensions"] = [int(io.GetDimensions(i)) for i in range(io.GetNumberOfDimensions())]
    header["ComponentType"] = io.GetComponentTypeAsString(io.GetComponentType())
    # The getters are authoritative for the calibration fields.
    header["MuScaling"] = float(io.GetMuScaling())
    header["MuWater"] = float(io.GetMuWater())
    header["RescaleSlope"] = float(io.GetRescaleSlope())
    header["RescaleIntercept"] = float(io.GetRescaleIntercept())
    header["RescaleUnits"] = str(io.GetRescaleUnits()).strip()
    header["RescaleType"] = int(io.GetRescaleType())
    header["Version"] = str(io.GetVersion()).strip()
    return header


def scanco_calibration(header: dict[str, Any]) -> Calibration | None:
    """The full calibration (HU and mgHA/ccm) of a Scanco header, or None if incomplete.

    HU needs MuScaling > 1 and MuWater > 0; mgHA/ccm also needs a density slope and intercept
    other than the neutral (1, 0), the same rule itk-ioscanco applies.
    """
    if not _has_hu(header):
        return None
    slope, intercept = float(header["RescaleSlope"]), float(header["RescaleIntercept"])
    if slope == 1.0 and intercept == 0.0:
        return None
    units = header.get("RescaleUnits") or "mg HA/ccm"
    return Calibration(
        mu_water=float(header["MuWater"]),
        mu_scaling=float(header["MuScaling"]),
        density_slope=slope,
        density_intercept=intercept,
        density_unit=units,
    )


def _has_hu(header: dict[str, Any]) -> bool:
    return float(header.get("MuScaling", 0)) > 1.0 and float(header.get("MuWater", 0)) > 0.0


def read_scanco_header(path: str | os.PathLike) -> dict[str, Any]:
    """The header fields of a Scanco file (no voxels read)."""
    return _header(_open_io(Path(path)))


def read_scanco(
    path: str | os.PathLike,
    unit: str = "HU",
    progress: ProgressCallback | None = None,
) -> Volume:
    """Read a Scanco AIM/ISQ/RSQ/RAD file.

    ``unit``: ``"HU"`` or ``"mgHA/ccm"`` (float32, from the header calibration) or ``"native"``
    (the stored integers, in the file's own type). Geometry in mm as ITK reports it.
    ``Volume.calibration`` holds the header calibration when complete; ``Volume.meta["header"]``
    holds every header field. Raises :class:`CalibrationError` naming the file when the header
    lacks what ``unit`` needs, :class:`InputError` for truncated or non-Scanco files.
    """
    path = Path(path)
    check_unit(unit)
    itk = _itk()
    report(progress, 0, 1)
    io = _open_io(path)
    header = _header(io)
    if io.GetNumberOfDimensions() != 3:
        raise InputError(f"{path}: expected a 3D image, header says {io.GetNumberOfDimensions()}D")
    calibration = scanco_calibration(header)
    if unit == "HU" and not _has_hu(header):
        raise CalibrationError(
            f"{path}: HU requested but the header has no calibration (MuScaling "
            f"{header['MuScaling']:g}, MuWater {header['MuWater']:g}); read it with unit='native'"
        )
    if unit == "mgHA/ccm" and calibration is None:
        raise CalibrationError(
            f"{path}: mgHA/ccm requested but the header has no density calibration (slope "
            f"{header['RescaleSlope']:g}, intercept {header['RescaleIntercept']:g}, MuScaling "
            f"{header['MuScaling']:g}); read it as HU or native"
        )
    ctype = header["ComponentType"]
    if ctype not in _PIXEL:
        raise InputError(f"{path}: unsupported Scanco voxel type {ctype!r}")
    pixel_name, dtype = _PIXEL[ctype]
    pixel = getattr(itk, pixel_name)
    with _quiet():
        image, raw, spacing, origin, direction = _read_voxels(itk, io, path, pixel)
    if unit == "HU":  # the header's MuWater and MuScaling suffice (no density calibration needed)
        array = linear(raw, *Calibration.raw_to_hu_affine(float(header["MuWater"]),
                                                          float(header["MuScaling"])))
    elif unit == "mgHA/ccm":
        assert calibration is not None
        array = linear(raw, *calibration.affine("raw", "mgHA/ccm"))
    else:
        array = np.array(raw, dtype=dtype, copy=True)
    del raw, image
    report(progress, 1, 1)
    return Volume(
        array=array,
        spacing=spacing,  # type: ignore[arg-type]
        origin=origin,  # type: ignore[arg-type]
        direction=tuple(direction),
        unit=unit,
        calibration=calibration,
        source=path,
        meta={"format": "scanco", "stored_dtype": np.dtype(dtype).name, "header": header},
    )


def _read_voxels(itk, io, path: Path, pixel):
    """The stored values (a view into the returned ITK image) and the geometry."""
    reader = itk.ImageFileReader[itk.Image[pixel, 3]].New()
    reader.SetImageIO(io)
    reader.SetFileName(str(path))
    try:
        reader.UpdateOutputInformation()
        # Switch off itk-ioscanco's in-type rescaling: keep the stored integers.
        io.SetRescaleSlope(1.0)
        io.SetRescaleIntercept(0.0)
        reader.Update()
    except RuntimeError as exc:
        raise InputError(
            f"{path}: cannot read the Scanco voxel data ({_itk_message(exc)})"
        ) from None
    image = reader.GetOutput()
    raw = itk.array_view_from_image(image)
    spacing = tuple(float(v) for v in image.GetSpacing())
    origin = tuple(float(v) for v in image.GetOrigin())
    direction = np.asarray(itk.array_from_matrix(image.GetDirection()), dtype=float).ravel()
    return image, raw, spacing, origin, direction
