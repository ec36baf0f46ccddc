"""Exceptions with messages a user can act on: each names the file and the problem."""

from __future__ import annotations

__all__ = [
    "HRpQCTError", "InputError", "GeometryError", "CalibrationError", "ModelError", "OutputError",
    "Cancelled",
]


class HRpQCTError(Exception):
    """Base class of the project's errors; the CLI prints these without a traceback."""


class InputError(HRpQCTError, ValueError):
    """A file or array that cannot be used as given (unreadable, wrong dimension, NaNs...)."""


class GeometryError(InputError):
    """Image and mask (or two volumes) do not share a voxel grid."""


class CalibrationError(InputError):
    """A requested unit needs a calibration the file does not carry."""


class ModelError(HRpQCTError):
    """A model folder that is missing, incomplete, or not in a safe format."""


class OutputError(InputError):
    """A result that cannot be written where asked (existing file or folder in the way, an input
    that would be overwritten, read-only file system, full disk, a write that came out incomplete).
    The message names the path and the problem; nothing already on disk was replaced."""


class Cancelled(HRpQCTError):
    """A long run was cancelled by its caller (progress callback returned False / cancel set)."""
