"""Which regions to measure, and their masks.

A region is named by

* a short code of the final label map (``"TC"``, ``"TT"``, ``"FC"``, ``"FT"``, ``"SK"``,
  ``"MT"``, ``"AT"``; :mod:`hrpqct.regions`),
* ``"ST"``: the whole soft-tissue compartment (``Radiomics.band_tissues``: skin, myotendinous
  and adipose tissue), or
* ``"ST<d>mm"`` (``"ST10mm"``, ``"ST2.5mm"``): the soft tissue within ``d`` mm of the tibia's
  outer surface, the paper's Table III ablation. Distances are Euclidean, in mm, in the slice
  plane (the anatomy is radial around the tibia's axis): a pixel belongs to the band when the
  distance from its centre to the nearest tibia (``Radiomics.band_reference``: TC + TT) pixel
  centre is at most ``d``. A slice without tibia has empty bands.

The default is the six regions of the paper (``hrpqct.regions.RADIOMICS_REGIONS``).
"""

from __future__ import annotations

import re
from typing import Iterable, Sequence

import numpy as np
from scipy import ndimage as ndi

from ..errors import InputError
from ..method import RADIOMICS, Radiomics
from ..regions import RADIOMICS_REGIONS, REGIONS, region

__all__ = ["parse_regions", "band_distance_mm", "region_masks", "band_name"]

_BAND = re.compile(r"^ST(\d+(?:\.\d+)?)MM$", re.IGNORECASE)
_CODES = {r.code for r in REGIONS}


def band_name(distance_mm: float) -> str:
    """The region name of a distance band: ``band_name(10) == "ST10mm"``."""
    return f"ST{float(distance_mm):g}mm"


def band_distance_mm(name: str) -> float | None:
    """``d`` of a ``"ST<d>mm"`` region name, else ``None``."""
    m = _BAND.match(name.strip())
    return float(m.group(1)) if m else None


def parse_regions(spec: str | Iterable[str] | None = None) -> list[str]:
    """Region names from a comma-separated string or a list; ``None`` -> the paper's six.

    Names are normalised (``"tc"`` -> ``"TC"``, ``"st10MM"`` -> ``"ST10mm"``); unknown names
    raise :class:`InputError` listing what is accepted.
    """
    if spec is None:
        return list(RADIOMICS_REGIONS)
    if isinstance(spec, str):
        items = spec.split(",")
    else:
        items = [s for part in spec for s in str(part).split(",")]
    out: list[str] = []
    for raw in items:
        name = raw.strip()
        if not name:
            continue
        d = band_distance_mm(name)
        if d is not None:
            if d <= 0:
                raise InputError(f"region {raw!r}: the band distance must be > 0 mm")
            name = band_name(d)
        elif name.upper() in _CODES or name.upper() == "ST":
            name = name.upper()
        else:
            raise InputError(
                f"unknown region {raw!r}; use codes {sorted(_CODES)}, 'ST' (all soft tissue) or "
                "'ST<d>mm' (soft tissue within d mm of the tibia, e.g. ST10mm)"
            )
        if name not in out:
            out.append(name)
    if not out:
        raise InputError("no regions given")
    return out


def _labels_of(codes: Sequence[str]) -> list[int]:
    return [region(c).label for c in codes]


def region_masks(
    labels: np.ndarray,
    names: Sequence[str],
    spacing_yx_mm: tuple[float, float] | None = None,
    params: Radiomics = RADIOMICS,
) -> dict[str, np.ndarray]:
    """Boolean masks of ``names`` for a final label map (2D ``[y, x]`` or 3D ``[z, y, x]``).

    ``spacing_yx_mm`` (row, column pixel size in mm) is needed for distance bands; 3D maps get
    their bands slice by slice.
    """
    labels = np.asarray(labels)
    out: dict[str, np.ndarray] = {}
    bands = [n for n in names if band_distance_mm(n) is not None]
    dist = None
    if bands:
        if spacing_yx_mm is None:
            raise InputError("distance-band regions need the pixel spacing")
        dist = tibia_distance_mm(labels, spacing_yx_mm, params)
    tissue = np.isin(labels, _labels_of(params.band_tissues))
    for name in names:
        d = band_distance_mm(name)
        if d is not None:
            out[name] = tissue & (dist <= d)
        elif name == "ST":
            out[name] = tissue.copy()
        else:
            out[name] = labels == region(name).label
    return out


def tibia_distance_mm(
    labels: np.ndarray, spacing_yx_mm: tuple[float, float], params: Radiomics = RADIOMICS
) -> np.ndarray:
    """Distance (mm, in-plane) from each pixel centre to the nearest tibia pixel centre.

    0 inside the tibia; ``inf`` on slices without tibia. 2D or 3D (per slice) label maps.
    """
    labels = np.asarray(labels)
    if labels.ndim == 2:
        return _edt2d(np.isin(labels, _labels_of(params.band_reference)), spacing_yx_mm)
    ref = np.isin(labels, _labels_of(params.band_reference))
    return np.stack([_edt2d(ref[k], spacing_yx_mm) for k in range(ref.shape[0])])


def _edt2d(ref: np.ndarray, spacing_yx_mm) -> np.ndarray:
    if not ref.any():
        return np.full(ref.shape, np.inf)
    return ndi.distance_transform_edt(~ref, sampling=tuple(float(s) for s in spacing_yx_mm))
