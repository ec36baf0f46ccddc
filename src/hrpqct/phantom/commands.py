"""CLI: ``hrpqct phantom`` and ``hrpqct phantom-cohort``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from .._cli import app
from ..progress import cli_progress

_console = Console()


def _grid(size: int, slices: int, spacing: Optional[float]):
    from .render import Grid

    return Grid(size=size, n_slices=slices, spacing_mm=spacing)


@app.command("phantom")
def phantom_cmd(
    out: Path = typer.Option(..., "--out", "-o", help="Output folder (created)."),
    slices: int = typer.Option(168, help="Number of slices (XtremeCT II: 168)."),
    size: int = typer.Option(2304, help="Pixels per side. Without --spacing the 140 mm field of view "
                                        "is kept, so a smaller size means coarser pixels, same anatomy."),
    spacing: Optional[float] = typer.Option(None, help="In-plane pixel size in mm (default 140 mm / size); "
                                                       "slices are spaced the same."),
    seed: int = typer.Option(0, help="Subject seed: the same seed gives the same scan, bit for bit."),
    side: str = typer.Option("left", help="Leg side: left (fibula on the image's right) or right."),
    motion: float = typer.Option(0.0, min=0.0, max=1.0, help="Motion artefact severity, 0-1."),
    cast: bool = typer.Option(True, help="Draw the carbon-fibre limb holder."),
    scanner: str = typer.Option("legacy", help="Image formation: legacy (white noise) or fbp "
                                                "(ramp-shaped noise, beam hardening; docs/phantom.md)."),
) -> None:
    """Render one synthetic HR-pQCT distal-tibia scan with its exact 5-class and 7-region ground truth.

    Writes image.nrrd (HU, int16), labels5.nrrd, labels7.nrrd, regions.seg.nrrd (Slicer), anatomy.json
    and overview.png.
    """
    from .anatomy import Anatomy
    from .files import write_phantom
    from .scan import generate

    from ..io.outputs import prepare_folder

    prepare_folder(out)  # before rendering: a read-only or full disk fails now
    grid = _grid(size, slices, spacing)
    from ..errors import InputError

    if scanner not in ("legacy", "fbp"):
        raise InputError(f"--scanner must be legacy or fbp, got {scanner!r}")
    anat = Anatomy(seed=seed, side=side, motion=motion, cast=cast, scanner=scanner)
    with cli_progress("Rendering slices", slices) as cb:
        ph = generate(anat, grid, progress=cb)
    paths = write_phantom(ph, out)
    _console.print(f"[green]wrote[/] {grid.n_slices} x {grid.size} x {grid.size} px at "
                   f"{grid.pixel_mm:.4f} mm to {out}")
    for k, p in paths.items():
        _console.print(f"  {k:13s} {p}")


@app.command("phantom-cohort")
def phantom_cohort_cmd(
    out: Path = typer.Option(..., "--out", "-o", help="Output folder (created; re-run to resume)."),
    subjects: int = typer.Option(..., "--subjects", "-n", min=1, help="Number of subjects."),
    slices: int = typer.Option(168, help="Slices per scan."),
    size: int = typer.Option(2304, help="Pixels per side (see `hrpqct phantom --help`)."),
    spacing: Optional[float] = typer.Option(None, help="In-plane pixel size in mm."),
    seed: int = typer.Option(0, help="Cohort seed."),
    workers: int = typer.Option(max(1, (os.cpu_count() or 1)), help="Parallel processes."),
    table_only: bool = typer.Option(False, help="Only write subjects.csv (no scans)."),
    association: str = typer.Option("published", help="Cohort model: published (documented effect "
                                                      "sizes), null (no association) or strong."),
    scanner: str = typer.Option("legacy", help="Image formation: legacy or fbp (docs/phantom.md)."),
) -> None:
    """Generate a synthetic cohort: subjects with a latent bone-health score, T-scores,
    binary and three-class labels, clinical covariates, and one scan with ground truth each.

    Writes subjects.csv, manifest.csv (input of `hrpqct cohort`), cohort.json and scans/<id>/.
    """
    from ..io.outputs import prepare_folder
    from ..errors import InputError
    from .cohort import ASSOCIATIONS, CohortModel, make_subjects
    from .files import _csv_atomic, write_cohort

    if association not in ASSOCIATIONS or scanner not in ("legacy", "fbp"):
        raise InputError(f"--association must be one of {', '.join(ASSOCIATIONS)} and --scanner "
                         f"legacy or fbp, got {association!r} and {scanner!r}")
    model = CohortModel.preset(association, scanner=scanner)
    prepare_folder(out)
    if table_only:
        df = make_subjects(subjects, seed=seed, model=model)
        _csv_atomic(df, out / "subjects.csv")
        _console.print(f"[green]wrote[/] {out / 'subjects.csv'} ({len(df)} subjects, "
                       f"{df.osteoporosis.mean():.0%} osteoporosis)")
        return
    grid = _grid(size, slices, spacing)
    with cli_progress("Generating subjects", subjects) as cb:
        manifest = write_cohort(out, subjects, grid, seed=seed, workers=workers, progress=cb,
                                model=model)
    _console.print(f"[green]wrote[/] {len(manifest)} subjects to {out} "
                   f"({manifest.osteoporosis.mean():.0%} osteoporosis); manifest: {out / 'manifest.csv'}")
