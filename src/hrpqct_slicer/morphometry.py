"""The standard morphometry (:mod:`hrpqct.morphometry`) as a ``vtkMRMLTableNode``.

:func:`morphometry_table_node` lays the per-bone table out as the region summary clinicians read:
one row per parameter (``Tt.BMD``, ``Ct.Th``, ``Tb.N`` ...), with its unit, the regions it is
measured in (the bone's cortical and trabecular regions of :mod:`hrpqct.regions`) and one value
column per bone. The note of HU-only scans and the run's metadata (units, thresholds,
calibration source) go into node attributes (``HRpQCT.morphometry.*``).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd

from hrpqct.errors import InputError

__all__ = ["morphometry_summary", "morphometry_table_node", "NOTE_ATTRIBUTE", "META_ATTRIBUTE"]

NOTE_ATTRIBUTE = "HRpQCT.morphometry.note"
META_ATTRIBUTE = "HRpQCT.morphometry.meta"

# parameter -> (column of the per-bone table, compartment: "total" | "cortical" | "trabecular")
_ROWS = (
    ("Tt.Ar", "Tt.Ar_mm2", "total"), ("Ct.Ar", "Ct.Ar_mm2", "cortical"),
    ("Tb.Ar", "Tb.Ar_mm2", "trabecular"), ("Ps.Pm", "Ps.Pm_mm", "total"),
    ("Ec.Pm", "Ec.Pm_mm", "trabecular"),
    ("Tt.BMD", "Tt.BMD_mgHA_ccm", "total"), ("Ct.BMD", "Ct.BMD_mgHA_ccm", "cortical"),
    ("Tb.BMD", "Tb.BMD_mgHA_ccm", "trabecular"),
    ("Ct.Th", "Ct.Th_mm", "cortical"), ("Ct.Th.SD", "Ct.Th.SD_mm", "cortical"),
    ("Ct.Th (annular)", "Ct.Th.annular_mm", "cortical"), ("Ct.Po", "Ct.Po_pct", "cortical"),
    ("Ct.Po.Dm", "Ct.Po.Dm_mm", "cortical"), ("Ct.Po.N", "Ct.Po.N", "cortical"),
    ("Tb.BV/TV", "Tb.BV_TV", "trabecular"), ("Tb.N", "Tb.N_1_mm", "trabecular"),
    ("Tb.Th", "Tb.Th_mm", "trabecular"), ("Tb.Th.SD", "Tb.Th.SD_mm", "trabecular"),
    ("Tb.Sp", "Tb.Sp_mm", "trabecular"), ("Tb.Sp.SD", "Tb.Sp.SD_mm", "trabecular"),
)


def _regions(bone: str, compartment: str) -> str:
    from hrpqct.morphometry import BONES

    cort, trab = BONES[bone]
    return {"total": f"{cort}+{trab}", "cortical": cort, "trabecular": trab}[compartment]


def morphometry_summary(scan: pd.DataFrame) -> pd.DataFrame:
    """The per-bone table (``MorphometryResult.scan`` or a written ``<scan>.parquet``) as the
    region summary: columns ``parameter``, ``unit``, ``regions`` and one per bone (float64)."""
    from hrpqct.morphometry import BONES, UNITS

    if "bone" not in scan.columns:
        raise InputError("morphometry table: no 'bone' column (not a morphometry table?)")
    missing = [c for _, c, _ in _ROWS if c not in scan.columns]
    if missing:
        raise InputError(f"morphometry table: missing column(s) {missing}")
    bones = [b for b in scan["bone"] if b in BONES]
    rows = []
    for name, col, comp in _ROWS:
        row = {"parameter": name, "unit": UNITS[col],
               "regions": ", ".join(f"{b}: {_regions(b, comp)}" for b in bones)}
        for b in bones:
            v = scan.loc[scan["bone"] == b, col].iloc[0]
            row[b] = float(v) if pd.notna(v) else np.nan
        rows.append(row)
    return pd.DataFrame(rows, columns=["parameter", "unit", "regions", *bones])


def morphometry_table_node(scene: Any, result: Any, name: str = "HRpQCT morphometry",
                           node: Any = None, meta: dict | None = None) -> Any:
    """A ``vtkMRMLTableNode`` with the region summary of a morphometry result.

    ``result``: a :class:`hrpqct.morphometry.MorphometryResult` or its per-bone DataFrame (then
    pass the run's ``meta``, e.g. the ``.meta.json`` written next to it). Missing values (no
    densities on HU-only scans) are NaN in the node; the note says why.
    """
    from .tables import dataframe_to_table_node

    scan = getattr(result, "scan", result)
    meta = dict(getattr(result, "meta", None) or meta or {})
    summary = morphometry_summary(scan)
    node = dataframe_to_table_node(scene, summary, name=name, node=node)
    for b in summary.columns[3:]:
        node.SetColumnDescription(b, f"{b}: one value per parameter, in the row's unit")
    node.SetColumnDescription("regions", "hrpqct.regions codes the parameter is measured in")
    note = meta.get("note", "") or ""
    node.SetAttribute(NOTE_ATTRIBUTE, note)
    node.SetAttribute(META_ATTRIBUTE, json.dumps(meta, default=str))
    return node
