"""Writing and reading morphometry tables (parquet or CSV, atomically, with a metadata file)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd

from ..errors import InputError
from .core import MorphometryResult

__all__ = ["write_result", "slices_path", "meta_path", "read_table"]


def slices_path(out: str | os.PathLike) -> Path:
    """``<stem>.slices.<ext>``: the per-slice table next to the per-scan table ``out``."""
    out = Path(out)
    return out.with_name(f"{out.stem}.slices{out.suffix}")


def meta_path(out: str | os.PathLike) -> Path:
    """``<stem>.meta.json``: units, thresholds, calibration source and notes of ``out``."""
    out = Path(out)
    return out.with_name(f"{out.stem}.meta.json")


def _write(df: pd.DataFrame, path: Path) -> None:
    from ..io import atomic_path

    with atomic_path(path) as tmp:
        if path.suffix.lower() == ".parquet":
            df.to_parquet(tmp, index=False)
        else:
            df.to_csv(tmp, index=False)


def write_result(res: MorphometryResult, out: str | os.PathLike, scan_id: str | None = None,
                 extra: dict | None = None) -> list[Path]:
    """Write the per-scan table to ``out`` (``.parquet`` or ``.csv``), the per-slice table to
    :func:`slices_path` and the metadata to :func:`meta_path`; returns the three paths.
    The columns of ``extra``, then ``scan_id``, are put first in both tables."""
    out = Path(out)
    if out.suffix.lower() not in (".parquet", ".csv"):
        raise InputError(f"{out}: choose a .parquet or .csv output file")
    scan, slices = res.scan.copy(), res.slices.copy()
    cols = {**(extra or {}), **({"scan_id": scan_id} if scan_id is not None else {})}
    for df in (scan, slices):
        for i, (k, v) in enumerate(cols.items()):
            df.insert(i, k, v)
        df.attrs = {}
    paths = [out, slices_path(out), meta_path(out)]
    _write(scan, paths[0])
    _write(slices, paths[1])
    from ..io import atomic_path

    with atomic_path(paths[2]) as tmp:
        tmp.write_text(json.dumps({**res.meta, **({"scan_id": scan_id} if scan_id else {})},
                                  indent=1, default=str), encoding="utf-8")
    return paths


def read_table(path: str | os.PathLike) -> pd.DataFrame:
    """A morphometry table written by :func:`write_result`."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: morphometry table not found")
    return pd.read_parquet(path) if path.suffix.lower() == ".parquet" else pd.read_csv(path)
