"""Unit handling shared by the readers: which units a request may ask for, and conversions."""

from __future__ import annotations

import numpy as np

from ..errors import CalibrationError, InputError
from ..volume import Calibration

__all__ = ["SCAN_UNITS", "check_unit", "linear", "convert"]

#: Units :func:`hrpqct.io.read_scan` can return.
SCAN_UNITS = ("HU", "mgHA/ccm", "native")


def check_unit(unit: str, what: str = "unit") -> str:
    """Return ``unit`` if it is one of :data:`SCAN_UNITS`, else raise InputError."""
    if unit not in SCAN_UNITS:
        raise InputError(f"unknown {what} {unit!r}; expected one of {SCAN_UNITS}")
    return unit


def linear(array: np.ndarray, scale: float, offset: float) -> np.ndarray:
    """``array * scale + offset`` as float32, computed in place on one float32 copy."""
    out = np.asarray(array).astype(np.float32, copy=True)
    if scale != 1.0:
        out *= np.float32(scale)
    if offset != 0.0:
        out += np.float32(offset)
    return out


def convert(
    array: np.ndarray, from_unit: str, to_unit: str, calibration: Calibration | None, where: str
) -> np.ndarray:
    """Convert HU <-> mgHA/ccm with a Scanco calibration; same unit returns ``array`` unchanged.

    Raises :class:`CalibrationError` naming ``where`` when the conversion needs a calibration the
    file does not carry, and :class:`InputError` for conversions that make no sense ("native"
    values of unknown meaning cannot become HU).
    """
    if from_unit == to_unit:
        return array
    if from_unit == "native" or to_unit == "native":
        raise CalibrationError(
            f"{where}: values are {from_unit!r}, cannot convert them to {to_unit!r} "
            "(no calibration relates the two)"
        )
    if {from_unit, to_unit} != {"HU", "mgHA/ccm"}:
        raise InputError(f"{where}: cannot convert {from_unit} to {to_unit}")
    if calibration is None:
        raise CalibrationError(
            f"{where}: {to_unit} requested but the file carries no density calibration "
            f"(values are {from_unit}); pass a Calibration or read it as {from_unit}"
        )
    return linear(array, *calibration.affine(from_unit, to_unit))
