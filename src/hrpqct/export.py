"""Export annotator-corrected segmentations as training cases for ``hrpqct train-seg``.

An annotator corrects the seven regions in Slicer (or anywhere else) and exports the case; the
export folder is then a training set that :func:`hrpqct.seg.dataset.read_cases` (and so
``hrpqct train-seg DATA``) reads as it is::

    <folder>/manifest.csv
    <folder>/<case_id>/image.nrrd       the scan in HU (unit and calibration recorded)
    <folder>/<case_id>/labels5.nrrd     the model's 5 classes: SK, MT and AT merged into soft tissue
    <folder>/<case_id>/labels7.nrrd     the corrected 7-region map as exported (7-region input only)

``manifest.csv`` has one row per case: ``case_id``, ``subject_id`` (the patient: the training
split keeps a subject's scans together), ``scan``, ``segmentation5``, ``segmentation7`` (paths
relative to the folder, so it can be moved), ``annotator``, ``exported_at`` (UTC, ISO 8601),
``source`` (where the segmentation came from, free text), ``model`` (the model that made the first
segmentation, if known) and ``hrpqct_version``. Columns that other tools added are kept.

Writing is atomic and idempotent: a case is written to a temporary folder and swapped in whole,
the manifest is rewritten atomically under a lock file, and exporting a case again replaces its
files and its row (the manifest never holds a case twice).
"""

from __future__ import annotations

import datetime as _dt
import getpass
import os
import re
import shutil
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from .errors import GeometryError, InputError
from .io.atomic import swap_folder
from .regions import BACKGROUND, MODEL_CLASSES, REGIONS
from .volume import Volume

__all__ = [
    "MANIFEST",
    "MANIFEST_COLUMNS",
    "ExportedCase",
    "export_case",
    "read_manifest",
    "training_labels",
]

MANIFEST = "manifest.csv"
MANIFEST_COLUMNS = ("case_id", "subject_id", "scan", "segmentation5", "segmentation7",
                    "annotator", "exported_at", "source", "model", "hrpqct_version")
IMAGE_FILE = "image.nrrd"
LABELS5_FILE = "labels5.nrrd"
LABELS7_FILE = "labels7.nrrd"
_CASE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_LOCK = ".manifest.lock"
_LOCK_STALE_S = 120.0  # a lock older than this is left over from a crashed export


@dataclass(frozen=True)
class ExportedCase:
    """What :func:`export_case` wrote (absolute paths) and the manifest row."""

    case_id: str
    folder: Path  # the case folder
    scan: Path
    segmentation5: Path
    segmentation7: Path | None
    manifest: Path
    row: dict[str, Any]


def training_labels(labels: np.ndarray, kind: str = "regions") -> np.ndarray:
    """The 5-class training map (uint8, 0-5) of a 7-region (``kind="regions"``) or 5-class map.

    Skin, myotendinous and adipose tissue become soft tissue; bone labels are unchanged. Values
    outside the kind's labels raise :class:`InputError`.
    """
    from .seg.refine import to_model_classes

    lab = np.asarray(labels)
    if not np.issubdtype(lab.dtype, np.integer):
        raise InputError(f"a label map must hold integers, got {lab.dtype}")
    table = {"regions": REGIONS, "model": MODEL_CLASSES}.get(kind)
    if table is None:
        raise InputError(f"kind must be 'regions' (7 regions) or 'model' (5 classes), got {kind!r}")
    allowed = {BACKGROUND, *(r.label for r in table)}
    present = set(np.unique(lab).tolist())
    bad = sorted(present - allowed)
    if bad:
        raise InputError(f"label values {bad[:10]} are not {kind} labels "
                         f"({', '.join(f'{r.label}={r.code}' for r in table)})")
    return to_model_classes(lab, kind)


def _check_case_id(case_id: str, folder: Path) -> str:
    case_id = str(case_id).strip()
    if not _CASE_ID.match(case_id) or case_id in (".", ".."):
        raise InputError(f"{folder}: case id {case_id!r} must start with a letter or digit and "
                         "hold only letters, digits, '.', '_' and '-' (it names a folder)")
    return case_id


@contextmanager
def _manifest_lock(folder: Path, timeout_s: float = 30.0) -> Iterator[None]:
    """Hold ``<folder>/.manifest.lock`` (created exclusively) while the manifest is rewritten."""
    lock = folder / _LOCK
    start = time.monotonic()
    while True:
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            break
        except FileExistsError:
            try:
                if time.time() - lock.stat().st_mtime > _LOCK_STALE_S:
                    lock.unlink(missing_ok=True)
                    continue
            except FileNotFoundError:
                continue
            if time.monotonic() - start > timeout_s:
                raise InputError(f"{lock}: another export holds the manifest lock; try again, or "
                                 "delete the file if no export is running") from None
            time.sleep(0.05)
    try:
        os.write(fd, str(os.getpid()).encode())
        os.close(fd)
        yield
    finally:
        lock.unlink(missing_ok=True)


def read_manifest(folder: str | os.PathLike):
    """The export folder's manifest as a DataFrame of strings (empty, with the columns, if none)."""
    import pandas as pd

    path = Path(folder) / MANIFEST
    if not path.is_file():
        return pd.DataFrame({c: pd.Series(dtype=object) for c in MANIFEST_COLUMNS})
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    except Exception as exc:  # noqa: BLE001  pandas raises many kinds
        raise InputError(f"{path}: cannot read the manifest: {exc}") from exc
    if "case_id" not in df.columns:
        raise InputError(f"{path}: not an export manifest (no 'case_id' column; columns "
                         f"{list(df.columns)}); export into another folder")
    return df


def _write_manifest(folder: Path, df) -> Path:
    from .io.atomic import atomic_path

    path = folder / MANIFEST
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False)
    return path


def export_case(
    image: Volume,
    labels: Volume,
    folder: str | os.PathLike,
    case_id: str,
    *,
    subject_id: str | None = None,
    kind: str = "regions",
    annotator: str | None = None,
    source: str = "",
    model: str = "",
    compress: bool = True,
    now: _dt.datetime | None = None,
) -> ExportedCase:
    """Write one corrected case into the training folder ``folder`` and update its manifest.

    ``image``: the scan in HU; ``labels``: the corrected map on the same grid, 7 regions
    (``kind="regions"``, written as ``labels7.nrrd`` and merged to ``labels5.nrrd``) or the 5
    model classes (``kind="model"``). ``subject_id`` (default: ``case_id``) groups the scans of
    one person in the training split. ``annotator`` defaults to the operating-system user.
    Exporting a ``case_id`` again replaces its files and its manifest row.
    """
    import pandas as pd

    from . import __version__
    from .io import write_image, write_labelmap

    folder = Path(folder)
    case_id = _check_case_id(case_id, folder)
    subject_id = _check_case_id(subject_id, folder) if subject_id else case_id
    where = str(image.source or "image")
    if image.unit != "HU":
        raise InputError(f"{where}: training images must be in HU, got {image.unit!r}")
    if not image.same_geometry(labels):
        raise GeometryError(f"{where}: the segmentation's grid (shape {labels.shape}, spacing "
                            f"{labels.spacing}) differs from the image's (shape {image.shape}, "
                            f"spacing {image.spacing})")
    labels5 = training_labels(labels.array, kind)
    if not labels5.any():
        raise InputError(f"{labels.source or 'segmentation'}: is empty (only background); "
                         "nothing to train on")
    if annotator is None:
        try:
            annotator = getpass.getuser()
        except Exception:  # noqa: BLE001  no user name on some systems
            annotator = ""
    stamp = (now or _dt.datetime.now(_dt.timezone.utc)).astimezone(_dt.timezone.utc)

    folder.mkdir(parents=True, exist_ok=True)
    if (folder / MANIFEST).is_file():
        read_manifest(folder)  # refuse a folder whose manifest is someone else's, before writing
    target = folder / case_id
    tmp = Path(tempfile.mkdtemp(prefix=f".{case_id}.tmp-", dir=folder))
    try:
        write_image(image, tmp / IMAGE_FILE, compress=compress)
        grid = labels.with_array(labels5, unit="label")
        grid.calibration = None
        write_labelmap(grid, tmp / LABELS5_FILE, compress=compress, table=MODEL_CLASSES)
        seven = kind == "regions"
        if seven:
            lab7 = labels.with_array(np.asarray(labels.array).astype(np.uint8), unit="label")
            lab7.calibration = None
            write_labelmap(lab7, tmp / LABELS7_FILE, compress=compress, table=REGIONS)
        with _manifest_lock(folder):
            swap_folder(tmp, target)
            row = {
                "case_id": case_id,
                "subject_id": subject_id,
                "scan": f"{case_id}/{IMAGE_FILE}",
                "segmentation5": f"{case_id}/{LABELS5_FILE}",
                "segmentation7": f"{case_id}/{LABELS7_FILE}" if seven else "",
                "annotator": annotator,
                "exported_at": stamp.isoformat(timespec="seconds"),
                "source": source,
                "model": model,
                "hrpqct_version": __version__,
            }
            df = read_manifest(folder)
            df = df[df["case_id"] != case_id]
            df = pd.concat([df, pd.DataFrame([row], dtype=object)], ignore_index=True)
            columns = [*MANIFEST_COLUMNS, *(c for c in df.columns if c not in MANIFEST_COLUMNS)]
            df = df.reindex(columns=columns).fillna("").sort_values("case_id", kind="stable")
            manifest = _write_manifest(folder, df)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # gone already when swapped in
    return ExportedCase(case_id=case_id, folder=target, scan=target / IMAGE_FILE,
                        segmentation5=target / LABELS5_FILE,
                        segmentation7=target / LABELS7_FILE if seven else None,
                        manifest=manifest, row=row)
