"""What a scan or label-map file holds: geometry, voxel type, unit, range, calibration, labels."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ..regions import REGIONS, Region
from ..volume import Volume, label_counts
from . import formats
from .dicom import read_dicom
from .itkformats import read_itk
from .readers import as_label_array, read_labelmap
from .scanco import read_scanco

__all__ = ["describe", "describe_file", "looks_like_labels"]

#: A volume with at most this many distinct non-negative integer values (all <= 255) is
#: reported as a label map when the file does not say.
MAX_AUTO_LABELS = 32


def looks_like_labels(array: np.ndarray) -> bool:
    """True for small non-negative integer arrays with few distinct values (masks, label maps)."""
    if array.dtype.kind not in "iub" or array.size == 0:
        return False
    if array.dtype == bool:
        return True
    lo, hi = int(array.min()), int(array.max())
    if lo < 0 or hi > 255:
        return False
    return int(np.count_nonzero(label_counts(array))) <= MAX_AUTO_LABELS


def _label_rows(volume: Volume, table: tuple[Region, ...], named: bool = True
                ) -> list[dict[str, Any]]:
    array = as_label_array(volume.array, formats.where(volume.source))
    counts = label_counts(array, minlength=1)
    names = {r.label: (r.code, r.name) for r in table} if named else {}
    for s in volume.meta.get("segments", []):  # a .seg.nrrd names its own segments
        names[int(s["label"])] = (str(s.get("id") or ""), str(s.get("name") or ""))
    rows = []
    for value in np.flatnonzero(counts):
        code, name = names.get(int(value), ("", "background" if value == 0 else ""))
        rows.append({
            "label": int(value),
            "code": code,
            "name": name,
            "voxels": int(counts[value]),
            "volume_mm3": float(counts[value] * volume.voxel_volume_mm3),
        })
    return rows


def describe(
    volume: Volume, labels: bool | None = None, table: tuple[Region, ...] = REGIONS
) -> dict[str, Any]:
    """A JSON-ready summary of a volume; ``labels=None`` decides by unit and content."""
    array = volume.array
    cal = volume.calibration
    # Region names only for a label map of this project (the file records unit "label", a
    # .seg.nrrd, or the caller says labels=True); a mask found only by its values (a 0/1 or
    # 0/127 Scanco mask) is counted by value, not named "Tibia cortical".
    named = labels is True or volume.unit == "label"
    if labels is None:
        labels = volume.unit == "label" or looks_like_labels(array)
    vmin = float(array.min()) if array.size else float("nan")
    vmax = float(array.max()) if array.size else float("nan")
    out: dict[str, Any] = {
        "path": str(volume.source) if volume.source else None,
        "format": volume.meta.get("format"),
        "shape_zyx": list(volume.shape),
        "spacing_mm": list(volume.spacing),
        "origin_mm": list(volume.origin),
        "direction": [
            [float(v) for v in row] for row in np.asarray(volume.direction).reshape(3, 3)
        ],
        "dtype": str(array.dtype),
        "unit": "label" if labels else volume.unit,
        "unit_source": volume.meta.get("unit_source"),
        "range": [vmin, vmax],
        "calibration": None,
        "labels": None,
    }
    if cal is not None:
        out["calibration"] = {
            "mu_water": cal.mu_water,
            "mu_scaling": cal.mu_scaling,
            "density_slope": cal.density_slope,
            "density_intercept": cal.density_intercept,
            "density_unit": cal.density_unit,
        }
        if not labels and volume.unit in ("native", "HU", "mgHA/ccm"):
            # All conversions are increasing linear maps, so the range converts end to end.
            ends = np.array([vmin, vmax])
            if volume.unit == "native":
                hu = cal.raw_to_hu(ends)
            elif volume.unit == "HU":
                hu = ends.astype(np.float32)
            else:
                hu = cal.density_to_hu(ends)
            out["range_hu"] = [float(v) for v in hu]
            out["range_mgha_ccm"] = [float(v) for v in cal.hu_to_density(hu)]
    if labels:
        out["labels"] = _label_rows(volume, table, named)
        out["labels_named"] = bool(named)
        if not named:
            out.setdefault("notes", []).append(
                "few small integer values: counted as labels, but the file does not say it is an "
                "HRpQCT label map, so the values are not named (pass --labels to name them)")
    if volume.meta.get("warnings"):
        out["warnings"] = list(volume.meta["warnings"])
    return out


def describe_file(
    path: str | os.PathLike,
    labels: bool | None = None,
    table: tuple[Region, ...] = REGIONS,
    header: bool = False,
) -> dict[str, Any]:
    """Read a file as stored (no unit conversion) and :func:`describe` it.

    ``header=True`` adds the raw header fields (Scanco header, DICOM tags of the first slice,
    NRRD/NIfTI/MetaImage key-value fields).
    """
    path = Path(path)
    fmt = formats.detect_format(path)
    if fmt == formats.SEG_NRRD:
        volume = read_labelmap(path, table=table, unmatched="keep")
        labels = True
    elif fmt == formats.SCANCO:
        volume = read_scanco(path, "native")
        volume.meta["unit_source"] = "stored values"
    elif fmt == formats.DICOM:
        volume, origin = read_dicom(path)
        volume.meta["unit_source"] = origin
    else:
        volume, origin = read_itk(path)
        volume.meta["unit_source"] = "file" if origin == "file" else "assumed (HU)"
    out = describe(volume, labels=labels, table=table)
    out["format"] = volume.meta.get("format", fmt)
    if header:
        out["header"] = {k: _jsonable(v) for k, v in volume.meta.get("header", {}).items()}
    return out


def _jsonable(value: Any) -> Any:
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return str(value)
