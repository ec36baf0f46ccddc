"""CLI: ``hrpqct refine`` (re-apply the topology rules and the soft-tissue split to an edited segmentation).

The pipeline is :func:`hrpqct.seg.pipeline.refine_file`; this module parses and prints.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from .._cli import app
from ..volume import label_counts

__all__ = ["refine_cmd"]

_console = Console()


@app.command("refine")
def refine_cmd(
    seg: Path = typer.Argument(..., help="Edited segmentation: .seg.nrrd or a label map "
                                         "(7 regions or the model's 5 classes)."),
    image: Path = typer.Argument(..., help="The scan it belongs to (any format `hrpqct info` reads; "
                                           "read in HU)."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder (created)."),
    only: Optional[str] = typer.Option(None, help="Re-apply only 'split' (soft tissue) or only "
                                                  "'topology' (bone rules); default both."),
    keep_edits: bool = typer.Option(True, "--keep-edits/--resplit-all",
                                    help="Keep voxels already labelled MT or AT (hand edits) and "
                                         "re-split only the rest of the soft tissue, or recompute "
                                         "the whole split."),
    erased_is_soft_tissue: bool = typer.Option(
        True, "--erased-is-soft-tissue/--erased-is-hole",
        help="Background enclosed by the leg (erased in Slicer) becomes soft tissue, or is left to "
             "the one-component rule."),
    input_kind: str = typer.Option("auto", help="auto, regions (7-region map) or model (5 classes)."),
    name: Optional[str] = typer.Option(None, help="Output file stem (default: <segmentation>_refined)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Re-apply the topology rules and the soft-tissue split to an annotator's edited segmentation.

    Writes <name>.seg.nrrd (Slicer), <name>.nrrd (label map) and, for seven-region output,
    <name>_regions.csv, <name>_slices.csv and <name>_scan.csv (areas, volumes, HU, fat fraction).
    """
    from .pipeline import refine_file

    run = refine_file(seg, image, out, only=only, keep_edits=keep_edits,
                      erased_is_soft_tissue=erased_is_soft_tissue, input_kind=input_kind,
                      name=name, quiet=quiet)
    refined, img, summary = run.refined, run.image, run.summary
    out_arr, out_table, warnings = refined.labels, refined.table, refined.warnings
    bone_changed = refined.changed_class_voxels
    label_changed = refined.changed_voxels if refined.kind == "regions" else None
    t = Table(title=f"{seg.name}: refined ({'both rules' if only is None else 'only ' + only})")
    t.add_column("region")
    t.add_column("voxels", justify="right")
    t.add_column("volume mm3", justify="right")
    t.add_column("mean HU", justify="right")
    counts = label_counts(out_arr, minlength=max(r.label for r in out_table) + 1)
    for r in out_table:
        row = None if summary is None else summary.regions.set_index("code").loc[r.code]
        t.add_row(r.code, f"{counts[r.label]:,}", f"{counts[r.label] * img.voxel_volume_mm3:,.1f}",
                  "" if row is None or row["voxels"] == 0 else f"{row['mean_hu']:.1f}")
    _console.print(t)
    _console.print(f"{bone_changed:,} voxels changed class (bone / soft tissue / background)"
                   + ("" if label_changed is None else f"; {label_changed:,} changed label"))
    if summary is not None and "fat_fraction" in summary.scan:
        _console.print(f"fat fraction AT/(MT+AT) {summary.scan['fat_fraction']:.3f}; "
                       f"muscle density {summary.scan['muscle_density_hu']:.1f} HU")
    for w in warnings:
        _console.print(f"[yellow]warning:[/] {w}", highlight=False, soft_wrap=True)
    if run.previous is not None:
        _console.print(f"[yellow]note:[/] the previous segmentation is kept as {run.previous}",
                       highlight=False, soft_wrap=True)
    for p in run.written:
        _console.print(f"  [green]wrote[/] {p}")
