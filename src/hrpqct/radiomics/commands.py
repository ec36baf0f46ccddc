"""``hrpqct radiomics`` (one scan) and ``hrpqct cohort`` (a manifest of scans)."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from .._cli import app
from ..method import RADIOMICS

__all__ = ["radiomics", "cohort"]


def _stats(value: str) -> tuple[str, ...]:
    return tuple(s.strip() for s in value.split(",") if s.strip())


@app.command("radiomics")
def radiomics(
    scan: Path = typer.Argument(
        ..., help="Scan file (Scanco, DICOM, NIfTI, NRRD, MHA); read in HU."),
    seg: Path = typer.Argument(..., help="Final 7-region label map or Slicer .seg.nrrd."),
    out: Path = typer.Option(..., "--out", "-o", help="Slice-level table (.parquet or .csv); the "
                             "per-scan averages go next to it as <name>.patient.<ext>."),
    preset: str = typer.Option(RADIOMICS.preset, help="'paper' (939 2D features per slice), '3d' (whole "
                               "scan), or a PyRadiomics parameter file."),
    regions: Optional[List[str]] = typer.Option(
        None, "--regions", "-r",
        help="Regions, comma-separated or repeated: TC,TT,FC,FT,MT,AT (default), SK, ST (all "
             "soft tissue), ST<d>mm (soft tissue within d mm of the tibia, e.g. ST10mm)."),
    stats: str = typer.Option(RADIOMICS.aggregation, help="Per-scan statistics over slices: "
                              f"{','.join(RADIOMICS.aggregation_stats)}."),
    slices: Optional[str] = typer.Option(
        None, help="Only these slices, e.g. '0:168:4' or '10,20'."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Radiomics and plain measures (area, volume, mean HU, mgHA/ccm) of one scan."""
    import pandas as pd

    from ..io import read_pair
    from ..progress import cli_progress
    from .masks import parse_regions
    from .presets import load_preset
    from .tables import write_scan_features

    from ..io.outputs import prepare_file, refuse_inputs

    p = load_preset(preset)
    names = parse_regions(regions)
    # before any work: the output file's folder must be writable and no output an input
    prepare_file(out, suffixes=(".parquet", ".csv"))
    refuse_inputs([out, out.with_name(f"{out.stem}.patient{out.suffix}")], [scan, seg],
                  hint="choose another --out file")
    from ..checks import input_warnings_path, radiomics_input_checks, settle, write_warnings

    image, labels = read_pair(scan, seg, unit="HU")
    # garbage in (blank or 8-bit scan, empty mask, no voxel in any region) stops here;
    # doubtful input gives warnings, printed and written next to the table
    warnings = settle(radiomics_input_checks(image, labels, names, scan, seg))
    for w in warnings:
        typer.secho(f"warning: {w}", fg="yellow", err=True)
    zs = _parse_slices(slices, image.shape[0])
    n = 1 if p.ndim == 3 else len(zs if zs is not None else range(image.shape[0]))
    with cli_progress(f"radiomics {scan.name}", total=n, enabled=not quiet) as cb:
        out, ppath = write_scan_features(image, labels, out, scan_id=scan.name, preset=p,
                                         regions=names, slices=zs, stats=_stats(stats), progress=cb)
    write_warnings(input_warnings_path(out), warnings)
    if not quiet:
        table = pd.read_parquet(out) if out.suffix.lower() == ".parquet" else pd.read_csv(out)
        ok = int(table["reason"].isna().sum())
        typer.echo(f"{len(table)} rows ({ok} with features) -> {out}; per scan -> {ppath}")


def _parse_slices(spec: str | None, n: int):
    from ..errors import InputError

    if spec is None:
        return None
    try:
        if ":" in spec:
            parts = [int(p) if p else None for p in spec.split(":")]
            return list(range(n))[slice(*parts)]
        return [int(p) for p in spec.split(",") if p.strip()]
    except ValueError:
        raise InputError(f"--slices {spec!r}: use 'start:stop:step' or a comma list") from None


@app.command("cohort")
def cohort(
    manifest: Path = typer.Argument(..., help="CSV with subject_id, scan, segmentation "
                                    "[, scan_id, labels and clinical variables]."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder (resumable)."),
    workers: Optional[int] = typer.Option(None, "--workers", "-j",
                                          help="Worker processes (default: all cores)."),
    scheduler: Optional[str] = typer.Option(
        None, help="Dask: 'local' (embedded LocalCluster) or a scheduler address "
                   "(tcp://host:8786). Default: local processes."),
    preset: str = typer.Option(RADIOMICS.preset, help="'paper', '3d' or a PyRadiomics parameter file."),
    regions: Optional[List[str]] = typer.Option(None, "--regions", "-r",
                                                help="As for 'hrpqct radiomics'."),
    stats: str = typer.Option(RADIOMICS.aggregation, help="Patient-level statistics: "
                              f"{','.join(RADIOMICS.aggregation_stats)}."),
    morphometry: bool = typer.Option(True, help="Also the standard morphometry of every scan: "
                                     "morphometry/<scan_id>.parquet and morphometry.parquet."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Radiomics of every scan in a manifest: scans/*.parquet, patients.parquet, errors.csv
    (and the standard morphometry: morphometry/*.parquet, morphometry.parquet)."""
    from ..io.outputs import prepare_folder
    from ..progress import cli_progress
    from .cohort import read_manifest, run_cohort

    man = read_manifest(manifest)
    prepare_folder(out)

    def redoing(scan_id: str, why: str) -> None:
        typer.echo(f"redoing {scan_id}: {why}", err=True)

    def warned(rec: dict) -> None:
        for w in rec.get("warnings") or []:
            typer.echo(f"warning: {rec['scan_id']}: {w}", err=True)

    with cli_progress("cohort", total=len(man), enabled=not quiet) as cb:
        res = run_cohort(man, out, preset=preset, regions=regions, workers=workers,
                         scheduler=scheduler, stats=_stats(stats), progress=cb, on_stale=redoing,
                         on_scan=warned, morphometry=morphometry)
    again = f" ({len(res.redone)} of them redone: stale or unreadable)" if res.redone else ""
    typer.echo(f"{res.computed} computed{again}, {res.skipped} already present, {res.failed} "
               f"failed -> {out} (patients.parquet, errors.csv)")
    if res.failed:
        raise typer.Exit(code=1)
