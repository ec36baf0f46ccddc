"""The study manifest: one row per scan, raw scans (and optionally their segmentations).

CSV, paths relative to the manifest's folder:

================  ==========================================================================
``subject_id``    required; the patient
``scan``          required; the raw scan (Scanco AIM/ISQ, a DICOM folder, NIfTI, NRRD, MHA)
``scan_id``       optional; unique per row, used in file names; default: ``subject_id``
``segmentation``  optional; a given 7-region segmentation (label map or ``.seg.nrrd``): the
                  scan is not segmented, the file is only read
``corrected``     optional; true (1, yes, true) when the study's own segmentation of the scan
                  (``segmentations/<scan_id>.seg.nrrd``) was corrected by an annotator: it is
                  never segmented again, whatever changes
anything else     labels and clinical variables, copied into the cohort tables
================  ==========================================================================
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from ..errors import InputError

__all__ = ["read_study_manifest", "REQUIRED", "OWN_COLUMNS"]

REQUIRED = ("subject_id", "scan")
OWN_COLUMNS = ("subject_id", "scan_id", "scan", "segmentation", "corrected")
_TRUE = {"1", "true", "yes", "y", "t"}
_FALSE = {"", "0", "false", "no", "n", "f", "nan", "none"}


def _truthy(value, path: Path, row: int) -> bool:
    s = str(value).strip().lower()
    if s in _TRUE:
        return True
    if s in _FALSE:
        return False
    try:
        return float(s) != 0
    except ValueError:
        raise InputError(f"{path}: row {row}: 'corrected' must be true/false or 1/0, "
                         f"got {value!r}") from None


def read_study_manifest(path: str | os.PathLike) -> pd.DataFrame:
    """Read and check a study manifest (module docstring). Returns a frame with ``subject_id``,
    ``scan_id``, ``scan`` (absolute), ``segmentation`` (absolute or ``""``), ``corrected``
    (bool) and the other columns unchanged, in manifest order."""
    from ..radiomics.cohort import check_scan_ids

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: manifest not found")
    try:
        man = pd.read_csv(path, dtype={c: str for c in ("subject_id", "scan_id", "scan",
                                                          "segmentation", "corrected")})
    except Exception as exc:  # noqa: BLE001  pandas raises assorted types
        raise InputError(f"{path}: not a readable CSV manifest: {exc}") from None
    missing = [c for c in REQUIRED if c not in man.columns]
    if missing:
        raise InputError(f"{path}: manifest lacks column(s) {missing}; needs {list(REQUIRED)} "
                         "(and optionally scan_id, segmentation, corrected)")
    if len(man) == 0:
        raise InputError(f"{path}: manifest has no rows")
    for col in REQUIRED:
        bad = man[col].isna() | (man[col].astype(str).str.strip() == "")
        if bad.any():
            raise InputError(f"{path}: empty {col!r} in row(s) {list(man.index[bad] + 2)}")
    if "scan_id" not in man.columns:
        man.insert(1, "scan_id", man["subject_id"])
    man["scan_id"] = man["scan_id"].fillna(man["subject_id"])
    check_scan_ids(man, path)
    base = path.resolve().parent
    man["scan"] = [str(base / p.strip()) for p in man["scan"].astype(str)]
    if "segmentation" not in man.columns:
        man["segmentation"] = ""
    man["segmentation"] = [
        "" if (pd.isna(p) or str(p).strip() == "") else str(base / str(p).strip())
        for p in man["segmentation"]]
    if "corrected" not in man.columns:
        man["corrected"] = False
    man["corrected"] = [_truthy(v, path, i + 2) for i, v in enumerate(man["corrected"].fillna(""))]
    return man.reset_index(drop=True)
