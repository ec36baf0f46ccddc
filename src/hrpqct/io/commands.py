"""``hrpqct info``: what a scan or label-map file holds."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Optional

import typer

from .._cli import app

__all__ = ["info"]


def _fmt(values: Any, digits: int = 6) -> str:
    if isinstance(values, (list, tuple)):
        return "(" + ", ".join(_fmt(v, digits) for v in values) + ")"
    if isinstance(values, float):
        return "nan" if math.isnan(values) else f"{values:.{digits}g}"
    return str(values)


def _print_human(d: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console()
    t = Table(show_header=False, box=None, pad_edge=False)
    t.add_column(style="bold")
    t.add_column()
    z, y, x = d["shape_zyx"]
    t.add_row("file", escape(str(d["path"])))
    t.add_row("format", str(d["format"]))
    t.add_row("shape", f"{x} x {y} x {z} voxels (x, y, z)")
    t.add_row("spacing", _fmt(d["spacing_mm"]) + " mm (x, y, z)")
    t.add_row("origin", _fmt(d["origin_mm"]) + " mm (LPS)")
    t.add_row("direction", " ".join(_fmt(row, 4) for row in d["direction"]))
    t.add_row("voxel type", d["dtype"])
    unit = d["unit"] + (f"  ({d['unit_source']})" if d.get("unit_source") else "")
    t.add_row("unit", escape(unit))
    t.add_row("value range", _fmt(d["range"]))
    if "range_hu" in d:
        t.add_row("range in HU", _fmt(d["range_hu"]))
        t.add_row("range in mgHA/ccm", _fmt(d["range_mgha_ccm"]))
    cal = d.get("calibration")
    if cal:
        t.add_row(
            "calibration",
            f"mu_water {cal['mu_water']:g} 1/cm, mu_scaling {cal['mu_scaling']:g}, "
            f"slope {cal['density_slope']:g}, intercept {cal['density_intercept']:g} "
            f"({cal['density_unit']})",
        )
    else:
        t.add_row("calibration", "none")
    for w in d.get("warnings", []):
        t.add_row("[yellow]warning[/]", escape(w))
    for n in d.get("notes", []):
        t.add_row("note", escape(n))
    console.print(t)
    if d.get("labels"):
        lt = Table(title="labels")
        for col, justify in (("label", "right"), ("code", "left"), ("name", "left"),
                             ("voxels", "right"), ("volume mm3", "right")):
            lt.add_column(col, justify=justify)  # type: ignore[arg-type]
        for row in d["labels"]:
            lt.add_row(str(row["label"]), escape(row["code"]), escape(row["name"]),
                       f"{row['voxels']:,}", f"{row['volume_mm3']:.4g}")
        console.print(lt)
    if d.get("header"):
        ht = Table(title="header", show_header=False)
        for k, v in d["header"].items():
            ht.add_row(escape(k), escape(_fmt(v)))
        console.print(ht)


@app.command("info")
def info(
    scan: Path = typer.Argument(
        ..., help="Scan or label map: .aim/.isq/.rsq/.rad, DICOM folder or file, .nii[.gz], "
        ".nrrd, .nhdr, .mha, .mhd, .seg.nrrd."
    ),
    as_json: bool = typer.Option(
        False, "--json", help="Print JSON (for scripts) instead of a table."
    ),
    labels: Optional[bool] = typer.Option(
        None, "--labels/--no-labels",
        help="Treat the file as a label map (count voxels per label) or not; default: decide "
        "from the file (unit recorded in it, or few small non-negative integer values).",
    ),
    table: str = typer.Option(
        "regions",
        help="Names for label values: 'regions' (7 final regions) or 'model' (5 classes).",
    ),
    header: bool = typer.Option(False, "--header", help="Also list the raw header fields."),
) -> None:
    """Shape, spacing, origin, direction, voxel type, unit, value range and calibration of a scan.

    Values are read as stored (no conversion); for calibrated Scanco files the range is also
    given in HU and mgHA/ccm. For label maps, the labels present with region names and voxel
    counts.
    """
    from ..regions import MODEL_CLASSES, REGIONS
    from ..errors import InputError
    from .info import describe_file

    tables = {"regions": REGIONS, "model": MODEL_CLASSES}
    if table not in tables:
        raise InputError(f"--table must be 'regions' or 'model', not {table!r}")
    d = describe_file(scan, labels=labels, table=tables[table], header=header)
    if as_json:
        typer.echo(json.dumps(d, indent=2, allow_nan=True))
    else:
        _print_human(d)
