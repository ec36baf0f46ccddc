"""The image container passed between I/O, segmentation, radiomics and the Slicer bridge.

Conventions (the same as SimpleITK / ITK, so conversion is lossless):

* ``array`` is indexed ``[z, y, x]`` (slice, row, column);
* ``spacing``, ``origin`` are given in ``(x, y, z)`` order, in mm, in the LPS patient frame;
* ``direction`` is the 3 x 3 matrix whose columns are the x, y, z axis directions.

``unit`` says what the numbers are: ``"HU"``, ``"mgHA/ccm"``, ``"label"`` or ``"native"`` (raw
scanner values with no known calibration). Nothing in the project guesses a unit.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from .errors import GeometryError, InputError

__all__ = ["Calibration", "Volume", "UNITS", "check_same_geometry", "label_counts", "present_labels"]

UNITS = ("HU", "mgHA/ccm", "label", "native")


@dataclass(frozen=True)
class Calibration:
    """Scanco calibration from an AIM/ISQ header.

    ``HU = raw * 1000 / (mu_water * mu_scaling) - 1000`` and
    ``mgHA/ccm = raw / mu_scaling * density_slope + density_intercept``.

    These formulas live here only: :meth:`affine` gives ``(scale, offset)`` of every conversion
    (``value_to = value_from * scale + offset``), used by the readers, unit conversion, region
    summaries and morphometry.
    """

    mu_water: float  # linear attenuation of water, 1/cm
    mu_scaling: float  # raw integer per 1/cm
    density_slope: float  # mgHA/ccm per 1/cm
    density_intercept: float  # mgHA/ccm
    density_unit: str = "mg HA/ccm"

    @staticmethod
    def raw_to_hu_affine(mu_water: float, mu_scaling: float) -> tuple[float, float]:
        """``(scale, offset)`` of raw stored integers -> HU; needs only the two header values."""
        return 1000.0 / (mu_water * mu_scaling), -1000.0

    def affine(self, from_unit: str, to_unit: str) -> tuple[float, float]:
        """``(scale, offset)`` with ``to = from * scale + offset``; units ``"raw"`` (stored
        integers), ``"HU"`` and ``"mgHA/ccm"`` (``mu = (HU + 1000) * mu_water / 1000`` and
        ``density = mu * density_slope + density_intercept``)."""
        if (from_unit, to_unit) == ("raw", "HU"):
            return self.raw_to_hu_affine(self.mu_water, self.mu_scaling)
        if (from_unit, to_unit) == ("raw", "mgHA/ccm"):
            return self.density_slope / self.mu_scaling, self.density_intercept
        if (from_unit, to_unit) == ("HU", "mgHA/ccm"):
            k = self.mu_water / 1000.0 * self.density_slope
            return k, 1000.0 * k + self.density_intercept
        if (from_unit, to_unit) == ("mgHA/ccm", "HU"):
            k = 1000.0 / (self.mu_water * self.density_slope)
            return k, -self.density_intercept * k - 1000.0
        raise ValueError(f"no calibration from {from_unit!r} to {to_unit!r}")

    def _apply(self, values: np.ndarray, from_unit: str, to_unit: str) -> np.ndarray:
        scale, offset = self.affine(from_unit, to_unit)
        return (np.asarray(values, dtype=np.float64) * scale + offset).astype(np.float32)

    def hu_to_density(self, hu: np.ndarray) -> np.ndarray:
        """HU -> mgHA/ccm (float32)."""
        return self._apply(hu, "HU", "mgHA/ccm")

    def density_to_hu(self, density: np.ndarray) -> np.ndarray:
        """mgHA/ccm -> HU (float32)."""
        return self._apply(density, "mgHA/ccm", "HU")

    def raw_to_hu(self, raw: np.ndarray) -> np.ndarray:
        """Raw stored integers -> HU (float32)."""
        return self._apply(raw, "raw", "HU")


@dataclass
class Volume:
    """A 3D image or label map with its geometry and unit."""

    array: np.ndarray
    spacing: tuple[float, float, float] = (1.0, 1.0, 1.0)
    origin: tuple[float, float, float] = (0.0, 0.0, 0.0)
    direction: tuple[float, ...] = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)
    unit: str = "native"
    calibration: Calibration | None = None
    source: Path | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        where = f"{self.source}: " if self.source else ""
        self.array = np.asarray(self.array)
        if self.array.ndim != 3:
            raise InputError(f"{where}expected a 3D volume (z, y, x), got shape {self.array.shape}")
        if self.unit not in UNITS:
            raise InputError(f"{where}unknown unit {self.unit!r}; expected one of {UNITS}")
        self.spacing = tuple(float(s) for s in self.spacing)  # type: ignore[assignment]
        self.origin = tuple(float(s) for s in self.origin)  # type: ignore[assignment]
        self.direction = tuple(float(s) for s in np.asarray(self.direction).ravel())
        if len(self.spacing) != 3 or len(self.origin) != 3 or len(self.direction) != 9:
            raise InputError(f"{where}spacing/origin need 3 values and direction 9")
        if any(not np.isfinite(s) or s <= 0 for s in self.spacing):
            raise InputError(f"{where}spacing must be positive, got {self.spacing}")

    # --- geometry -------------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, int, int]:
        return self.array.shape  # type: ignore[return-value]

    @property
    def spacing_zyx(self) -> tuple[float, float, float]:
        """Spacing in array index order (z, y, x), mm."""
        return self.spacing[::-1]  # type: ignore[return-value]

    @property
    def pixel_area_mm2(self) -> float:
        return self.spacing[0] * self.spacing[1]

    @property
    def voxel_volume_mm3(self) -> float:
        return self.spacing[0] * self.spacing[1] * self.spacing[2]

    def with_array(self, array: np.ndarray, unit: str | None = None, **meta: Any) -> "Volume":
        """Same geometry (and calibration), new voxel values."""
        array = np.asarray(array)
        if array.shape != self.array.shape:
            raise GeometryError(
                f"{self.source or 'volume'}: new array shape {array.shape} != {self.array.shape}"
            )
        return replace(self, array=array, unit=unit or self.unit, meta={**self.meta, **meta})

    def same_geometry(self, other: "Volume", tol: float = 1e-4) -> bool:
        return (
            self.shape == other.shape
            and np.allclose(self.spacing, other.spacing, rtol=tol, atol=tol)
            and np.allclose(self.origin, other.origin, rtol=tol, atol=1e-3)
            and np.allclose(self.direction, other.direction, atol=tol)
        )

    # --- conversion -----------------------------------------------------------------------
    def to_sitk(self):
        """A SimpleITK image with the same voxels and geometry."""
        import SimpleITK as sitk

        img = sitk.GetImageFromArray(self.array)
        img.SetSpacing(self.spacing)
        img.SetOrigin(self.origin)
        img.SetDirection(self.direction)
        return img

    @classmethod
    def from_sitk(cls, img, unit: str = "native", **kwargs: Any) -> "Volume":
        """From a 3D SimpleITK image (2D images are rejected; use a one-slice 3D image)."""
        import SimpleITK as sitk

        if img.GetDimension() != 3:
            raise InputError(
                f"{kwargs.get('source') or 'image'}: expected 3D, got {img.GetDimension()}D"
            )
        return cls(
            array=sitk.GetArrayFromImage(img),
            spacing=img.GetSpacing(),
            origin=img.GetOrigin(),
            direction=img.GetDirection(),
            unit=unit,
            **kwargs,
        )

    def in_unit(self, unit: str) -> "Volume":
        """Convert between HU and mgHA/ccm using the calibration (float32 result)."""
        if unit == self.unit:
            return self
        where = self.source or "volume"
        if {unit, self.unit} != {"HU", "mgHA/ccm"}:
            raise InputError(f"{where}: cannot convert {self.unit} to {unit}")
        if self.calibration is None:
            raise InputError(f"{where}: no calibration in the header, cannot convert {self.unit} to {unit}")
        conv = self.calibration.hu_to_density if unit == "mgHA/ccm" else self.calibration.density_to_hu
        return self.with_array(conv(self.array), unit=unit)


def check_same_geometry(image: Volume, labels: Volume) -> None:
    """Raise :class:`GeometryError` naming both files if image and mask grids differ."""
    if image.same_geometry(labels):
        return
    raise GeometryError(
        "image and mask do not share a grid: "
        f"{image.source or 'image'} shape {image.shape} spacing {image.spacing} origin {image.origin}"
        f" vs {labels.source or 'mask'} shape {labels.shape} spacing {labels.spacing}"
        f" origin {labels.origin}"
    )


LABEL_COUNT_BLOCK = 1 << 24  # voxels counted at a time by label_counts (128 MB of int64)


def label_counts(array: np.ndarray, minlength: int = 0, block: int | None = None) -> np.ndarray:
    """Voxel count per value of a non-negative integer array (``np.bincount``), in blocks.

    ``np.bincount`` converts its input to 64-bit integers first: on a whole scan's uint8 label map
    (168 x 2304 x 2304, 0.9 GB) that is 7 GB more. Counting ``block`` voxels at a time keeps the
    extra memory to ``8 * block`` bytes (default :data:`LABEL_COUNT_BLOCK`). Raises
    ``ValueError`` for negative values.
    """
    block = int(block or LABEL_COUNT_BLOCK)
    flat = np.asarray(array).reshape(-1)
    counts = np.zeros(max(int(minlength), 1), dtype=np.int64)
    for start in range(0, flat.size, block):
        c = np.bincount(flat[start:start + block], minlength=counts.size)
        if c.size > counts.size:
            c[: counts.size] += counts
            counts = c
        else:
            counts += c
    return counts if flat.size or minlength else counts[:0]


def present_labels(array: np.ndarray) -> list[int]:
    """The distinct values of a non-negative integer label array, without a 64-bit copy."""
    return [int(v) for v in np.flatnonzero(label_counts(array))]
