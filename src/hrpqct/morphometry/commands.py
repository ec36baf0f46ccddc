"""``hrpqct morphometry SCAN SEG --out FILE``: standard HR-pQCT morphometry of one scan."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .._cli import app

__all__ = ["morphometry_cmd"]


@app.command("morphometry")
def morphometry_cmd(
    scan: Path = typer.Argument(..., help="Scan (Scanco AIM/ISQ with its calibration, DICOM, "
                                "NIfTI, NRRD, MHA); read in HU."),
    seg: Path = typer.Argument(..., help="Final 7-region label map or Slicer .seg.nrrd."),
    out: Path = typer.Option(..., "--out", "-o", help="Per-bone table (.parquet or .csv); the "
                             "per-slice table goes next to it as <name>.slices.<ext>, units and "
                             "notes as <name>.meta.json."),
    bones: Optional[str] = typer.Option(None, help="Bones, comma-separated: tibia,fibula "
                                        "(default both)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Densities, areas, cortical and trabecular microstructure of the tibia and fibula
    (XtremeCT II standard evaluation; docs/morphometry.md). HU-only scans get no densities."""
    from ..errors import InputError
    from ..io import read_pair
    from ..progress import cli_progress
    from .core import morphometry_volume
    from .tables import write_result

    if out.suffix.lower() not in (".parquet", ".csv"):
        raise InputError(f"{out}: choose a .parquet or .csv output file")
    chosen = tuple(b.strip() for b in bones.split(",") if b.strip()) if bones else None
    image, labels = read_pair(scan, seg, unit="HU")
    with cli_progress(f"morphometry {scan.name}", total=12, enabled=not quiet) as cb:
        res = morphometry_volume(image, labels, bones=chosen, progress=cb)
    del image, labels
    paths = write_result(res, out, scan_id=scan.name)
    if not quiet:
        show = ["Tt.BMD_mgHA_ccm", "Ct.Th_mm", "Ct.Po_pct", "Tb.BV_TV", "Tb.N_1_mm", "Tb.Th_mm",
                "Tb.Sp_mm"]
        typer.echo(res.scan.set_index("bone")[show].round(3).T.to_string())
        if res.meta["note"]:
            typer.echo(f"note: {res.meta['note']}")
        typer.echo(f"-> {paths[0]} (per slice: {paths[1].name}, units: {paths[2].name})")
