"""Per-region summary of a segmented scan: areas, volumes, HU (and mgHA/ccm), fat fraction.

:func:`summarize` takes the 7-region map (or the 5-class map with ``table=MODEL_CLASSES``), the
image in HU and the voxel spacing, and returns a :class:`Summary`:

* ``regions``: one row per region (label order), columns ``label, code, name, voxels,
  volume_mm3, area_mm2_mean`` (mean over all slices, empty slices counting 0),
  ``area_mm2_min, area_mm2_max, slices_present, mean_hu, sd_hu`` and, with a calibration,
  ``mean_mgHA_ccm, sd_mgHA_ccm``. The MT row's ``mean_hu`` is the muscle density.
* ``slices``: one row per slice, ``slice`` then ``<code>_area_mm2`` and ``<code>_mean_hu`` per
  region, then ``fat_fraction`` and ``fat_fraction_with_skin`` of that slice.
* ``scan``: scan-level numbers: ``fat_fraction = AT / (MT + AT)`` and
  ``fat_fraction_with_skin = AT / (SK + MT + AT)`` (by voxel count, i.e. by volume),
  ``muscle_density_hu`` (mean HU of MT), ``soft_tissue_volume_mm3``.

Conventions: SD is the population SD (ddof 0, as PyRadiomics); a region with no voxel has
NaN mean and SD; a fraction whose denominator is empty is NaN. Densities use the linear
Scanco calibration (:class:`hrpqct.volume.Calibration`), so mean and SD convert exactly.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import GeometryError, InputError
from ..io.atomic import atomic_path
from ..regions import REGIONS, Region
from ..volume import Calibration

__all__ = ["Summary", "summarize", "write_summary"]


@dataclass
class Summary:
    """Result of :func:`summarize`."""

    regions: pd.DataFrame
    slices: pd.DataFrame
    scan: dict[str, float] = field(default_factory=dict)
    #: input warnings (:mod:`hrpqct.checks`), written as ``warning`` rows of ``<stem>_scan.csv``
    warnings: list[str] = field(default_factory=list)


def _spacing3(spacing) -> tuple[float, float, float]:
    sp = [float(s) for s in np.ravel(spacing)]
    if len(sp) == 2:
        sp.append(1.0)
    if len(sp) != 3 or any(not math.isfinite(s) or s <= 0 for s in sp):
        raise InputError(f"spacing must be (x, y, z) positive numbers in mm, got {spacing}")
    return sp[0], sp[1], sp[2]


def _ratio(num: float, den: float) -> float:
    return float(num) / float(den) if den else math.nan


def summarize(labels: np.ndarray, image_hu: np.ndarray, spacing,
              calibration: Calibration | None = None,
              table: tuple[Region, ...] = REGIONS) -> Summary:
    """Summaries of a label map over an image in HU.

    ``labels``/``image_hu``: 3D ``[z, y, x]`` (2D ``[y, x]`` is one slice); ``spacing``: ``(x, y,
    z)`` mm (``(x, y)`` for 2D: volumes then use a 1 mm slice). Areas in mm^2, volumes in mm^3.
    """
    lab = np.asarray(labels)
    hu = np.asarray(image_hu)
    if lab.shape != hu.shape:
        raise GeometryError(f"label map shape {lab.shape} != image shape {hu.shape}")
    if lab.ndim == 2:
        lab, hu = lab[None], hu[None]
    if lab.ndim != 3:
        raise InputError(f"expected a 2D or 3D label map, got shape {lab.shape}")
    if not np.issubdtype(lab.dtype, np.integer):
        raise InputError(f"label map must hold integers, got dtype {lab.dtype}")
    sx, sy, sz = _spacing3(spacing)
    px_mm2 = sx * sy
    nz = lab.shape[0]
    labels_used = [r.label for r in table]
    nlab = max(max(labels_used), int(lab.max()) if lab.size else 0) + 1
    if lab.size and lab.min() < 0:
        raise InputError("label map has negative values")

    # per slice: count, sum and squared deviations about the slice mean (float64), combined
    # over slices with the parallel-variance formula (stable, one slice in memory at a time)
    cnt = np.zeros((nz, nlab), dtype=np.int64)
    s1 = np.zeros((nz, nlab))
    m2 = np.zeros((nz, nlab))
    for z in range(nz):
        lz = lab[z].reshape(-1).astype(np.intp)
        hz = hu[z].reshape(-1).astype(np.float64)
        if not np.isfinite(hz).all() and not np.isfinite(hz[np.isin(lz, labels_used)]).all():
            raise InputError(f"image has NaN or infinite values inside the labelled regions "
                             f"(slice {z})")
        hz = np.nan_to_num(hz, nan=0.0, posinf=0.0, neginf=0.0)  # outside the regions only
        cnt[z] = np.bincount(lz, minlength=nlab)
        s1[z] = np.bincount(lz, weights=hz, minlength=nlab)
        with np.errstate(invalid="ignore", divide="ignore"):
            mz = np.nan_to_num(s1[z] / cnt[z])
        dev = hz - mz[lz]
        m2[z] = np.bincount(lz, weights=dev * dev, minlength=nlab)
    tot_n = cnt.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = s1.sum(axis=0) / tot_n
        slice_mean = s1 / cnt
        between = np.nansum(cnt * (slice_mean - mean) ** 2, axis=0)
        sd = np.sqrt((m2.sum(axis=0) + between) / tot_n)

    rows = []
    for r in table:
        n = int(tot_n[r.label])
        areas = cnt[:, r.label] * px_mm2
        row = {
            "label": r.label, "code": r.code, "name": r.name, "voxels": n,
            "volume_mm3": n * px_mm2 * sz,
            "area_mm2_mean": float(areas.mean()) if nz else math.nan,
            "area_mm2_min": float(areas.min()) if nz else math.nan,
            "area_mm2_max": float(areas.max()) if nz else math.nan,
            "slices_present": int(np.count_nonzero(cnt[:, r.label])),
            "mean_hu": float(mean[r.label]) if n else math.nan,
            "sd_hu": float(sd[r.label]) if n else math.nan,
        }
        if calibration is not None:
            # density = a * HU + b (Calibration.hu_to_density is affine in HU)
            a, b = calibration.affine("HU", "mgHA/ccm")
            row["mean_mgHA_ccm"] = a * row["mean_hu"] + b if n else math.nan
            row["sd_mgHA_ccm"] = abs(a) * row["sd_hu"] if n else math.nan
        rows.append(row)
    regions_df = pd.DataFrame(rows)

    codes = {r.code: r.label for r in table}
    per_slice: dict[str, np.ndarray] = {"slice": np.arange(nz)}
    for r in table:
        per_slice[f"{r.code}_area_mm2"] = cnt[:, r.label] * px_mm2
        per_slice[f"{r.code}_mean_hu"] = slice_mean[:, r.label]
    scan: dict[str, float] = {}
    if {"MT", "AT"} <= set(codes):
        mt, at = cnt[:, codes["MT"]], cnt[:, codes["AT"]]
        sk = cnt[:, codes["SK"]] if "SK" in codes else np.zeros(nz)
        with np.errstate(invalid="ignore", divide="ignore"):
            per_slice["fat_fraction"] = np.where(mt + at > 0, at / (mt + at), np.nan)
            per_slice["fat_fraction_with_skin"] = np.where(sk + mt + at > 0, at / (sk + mt + at),
                                                           np.nan)
        scan["fat_fraction"] = _ratio(at.sum(), mt.sum() + at.sum())
        scan["fat_fraction_with_skin"] = _ratio(at.sum(), sk.sum() + mt.sum() + at.sum())
        scan["muscle_density_hu"] = float(mean[codes["MT"]]) if tot_n[codes["MT"]] else math.nan
        scan["soft_tissue_volume_mm3"] = float((sk.sum() + mt.sum() + at.sum()) * px_mm2 * sz)
        if calibration is not None:
            scan["muscle_density_mgHA_ccm"] = float(
                regions_df.loc[regions_df.code == "MT", "mean_mgHA_ccm"].iloc[0])
    scan["slices"] = nz
    scan["voxel_volume_mm3"] = px_mm2 * sz
    return Summary(regions=regions_df, slices=pd.DataFrame(per_slice), scan=scan)


def write_summary(summary: Summary, folder: str | os.PathLike, stem: str) -> list[Path]:
    """Write ``<stem>_regions.csv``, ``<stem>_slices.csv`` and ``<stem>_scan.csv`` atomically."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: output folder does not exist")
    warnings = list(getattr(summary, "warnings", []) or [])
    scan_df = pd.DataFrame({"quantity": list(summary.scan) + ["warning"] * len(warnings),
                            "value": list(summary.scan.values()) + warnings})
    from .pipeline import SegmentOutputs

    names = SegmentOutputs(folder, stem).summary
    written = []
    for name, df in (("regions", summary.regions), ("slices", summary.slices), ("scan", scan_df)):
        target = names[name]
        with atomic_path(target) as tmp:
            df.to_csv(tmp, index=False, float_format="%.6g")
        written.append(target)
    return written

