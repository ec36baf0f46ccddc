"""Morphometry in cohort runs (``hrpqct cohort``): one table per scan next to the radiomics tables
and one cohort table, with the manifest's variables so that the non-radiomics model can use them.

Output folder of :func:`hrpqct.radiomics.cohort.run_cohort`:

* ``morphometry/<scan_id>.parquet``: the scan's per-bone table (``subject_id``, ``scan_id``,
  ``bone`` and the :data:`hrpqct.morphometry.UNITS` columns), written by the worker before the
  radiomics table ``scans/<scan_id>.parquet``, so a scan whose radiomics table exists also has
  its morphometry; ``morphometry/<scan_id>.slices.parquet`` per slice and
  ``morphometry/<scan_id>.meta.json`` (units, thresholds, calibration source, notes).
* ``morphometry.parquet`` (and ``.csv``): every scan's rows in manifest order, with the manifest's
  variables, one row per scan and bone.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

__all__ = ["FOLDER", "scan_morphometry", "collect_morphometry", "write_cohort_morphometry"]

FOLDER = "morphometry"
_MANIFEST = ("subject_id", "scan", "segmentation", "scan_id")


def scan_morphometry(image, labels, out_dir: str | os.PathLike, scan_id: str,
                     subject_id: str) -> Path:
    """Compute and write one scan's morphometry into ``out_dir/morphometry/`` (Volumes in)."""
    from .core import morphometry_volume
    from .tables import write_result

    folder = Path(out_dir) / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    res = morphometry_volume(image, labels)
    path = folder / f"{scan_id}.parquet"
    write_result(res, path, scan_id=scan_id, extra={"subject_id": subject_id})
    return path


def collect_morphometry(out_dir: str | os.PathLike, manifest: pd.DataFrame) -> pd.DataFrame:
    """The cohort morphometry table from the per-scan files (manifest order, with its variables)."""
    out = Path(out_dir) / FOLDER
    extra = [c for c in manifest.columns if c not in _MANIFEST]
    parts = []
    for _, row in manifest.iterrows():
        f = out / f"{row['scan_id']}.parquet"
        if not f.exists():
            continue
        t = pd.read_parquet(f)
        for i, c in enumerate(extra):
            t.insert(2 + i, c, row[c])
        parts.append(t)
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def write_cohort_morphometry(out_dir: str | os.PathLike, manifest: pd.DataFrame) -> Path | None:
    """Write ``morphometry.parquet`` and ``morphometry.csv`` (None when no scan has one)."""
    from ..io import atomic_path

    table = collect_morphometry(out_dir, manifest)
    if table.empty:
        return None
    path = Path(out_dir) / "morphometry.parquet"
    with atomic_path(path) as tmp:
        table.to_parquet(tmp, index=False)
    with atomic_path(path.with_suffix(".csv")) as tmp:
        table.to_csv(tmp, index=False)
    return path
