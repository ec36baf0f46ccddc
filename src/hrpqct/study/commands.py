"""``hrpqct study MANIFEST --out DIR``: raw scans to a study in one resumable run (docs/study.md)."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from .._cli import app
from ..method import DEVICES, INFERENCE, RADIOMICS

__all__ = ["study_cmd"]


@app.command("study")
def study_cmd(
    manifest: Path = typer.Argument(..., help="CSV: subject_id, scan [, scan_id, segmentation, "
                                    "corrected, labels and clinical variables]; paths relative "
                                    "to the manifest."),
    out: Path = typer.Option(..., "--out", "-o", help="Study folder (created; run again to "
                             "resume: only what is missing or stale is redone)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print what would be done and why "
                                 "(missing, stale, done), and do nothing."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Segmentation model folder "
                                        "or catalogue id (default: the bundled demo model)."),
    device: str = typer.Option(INFERENCE.device, help=f"Segmentation device: {', '.join(DEVICES)}."),
    preset: str = typer.Option(RADIOMICS.preset, help="Radiomics preset: 'paper', '3d' or a PyRadiomics "
                               "parameter file."),
    regions: Optional[List[str]] = typer.Option(None, "--regions", "-r",
                                                help="Radiomics regions, as for 'hrpqct radiomics'."),
    morphometry: bool = typer.Option(True, help="Standard morphometry of every scan."),
    classifier: Optional[str] = typer.Option(None, help="Classify with this model folder "
                                             "(`hrpqct classify train`), or 'demo' for the "
                                             "bundled demo classifier (synthetic phantoms only)."),
    train: bool = typer.Option(False, "--train", help="Train a model on the study (labels from "
                               "the manifest) and write the study and its HTML report. With "
                               "--classifier instead, the report validates the given model "
                               "against the manifest's labels (T-scores) where it has them."),
    scheme: str = typer.Option("binary", help="With --train: binary or three classes."),
    t_score: str = typer.Option("t_score_fn", help="The manifest's T-score column (labels for "
                                 "--train and the validation report)."),
    label: Optional[str] = typer.Option(None, help="A manifest column of given labels (instead "
                                         "of the T-score)."),
    quick: bool = typer.Option(False, help="With --train: reduced grids (a quick look)."),
    workers: Optional[int] = typer.Option(None, "--workers", "-j", help="Radiomics and "
                                          "morphometry worker processes, or CPU workers of the "
                                          "embedded Dask cluster (default: all cores)."),
    seg_workers: int = typer.Option(1, help="Local segmentation processes."),
    gpu_workers: int = typer.Option(1, help="With --scheduler local: workers declaring a GPU "
                                    "resource (they segment; on this machine's device)."),
    scheduler: Optional[str] = typer.Option(None, help="Dask: 'local' (embedded LocalCluster) "
                                            "or a scheduler address (tcp://host:8786); "
                                            "segmentation needs workers started with "
                                            "--resources GPU=1."),
    in_flight: Optional[int] = typer.Option(None, min=1, help="Scans submitted at a time per "
                                            "stage (default: twice the workers)."),
    threads: Optional[int] = typer.Option(None, min=1, help="Torch threads per segmentation "
                                          "worker (default: all cores)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Segmentation, radiomics, morphometry and (with --classifier or --train) classification of
    every scan of a manifest, resumable: outputs are those of `hrpqct segment`, `hrpqct cohort`
    and `hrpqct classify`; failed scans are listed in failures.csv and do not stop the others."""
    from ..io.outputs import prepare_folder
    from ..errors import InputError
    from .manifest import read_study_manifest
    from .run import StudySettings, plan_study, run_study

    if train and classifier:
        raise InputError("give either --train or --classifier, not both")
    man = read_study_manifest(manifest)
    settings = StudySettings(model=model, device=device, preset=preset, regions=regions,
                             morphometry=morphometry, classifier=classifier, train=train,
                             scheme=scheme, t_score=t_score, label=label, quick=quick,
                             workers=workers, seg_workers=seg_workers, gpu_workers=gpu_workers,
                             scheduler=scheduler, in_flight=in_flight, threads=threads)
    if dry_run:
        plan = plan_study(man, out, settings)
        for stage, decisions in plan.items():
            counts: dict = {}
            for d in decisions:
                counts[d.state] = counts.get(d.state, 0) + 1
                typer.echo(f"{stage:<12} {d.scan_id:<16} {d.state:<10} {d.why}")
            todo = sum(1 for d in decisions if d.run)
            typer.echo(f"{stage}: {todo} to do ("
                       + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) + ")")
        return
    prepare_folder(out)

    def said(d) -> None:
        if d.state in ("stale", "corrected", "blocked"):
            typer.echo(f"{d.stage} {d.scan_id}: {d.state}: {d.why}", err=True)

    def failed(rec) -> None:
        typer.echo(f"failed: {rec['stage']} {rec['scan_id']}: {rec.get('error')}: "
                   f"{rec.get('message')}", err=True)

    res = run_study(man, out, settings, quiet=quiet, on_decision=said, on_failure=failed)
    for stage, decisions in res.decisions.items():
        kept = sum(1 for d in decisions if not d.run and d.state != "blocked")
        typer.echo(f"{stage}: {res.done.get(stage, 0)} done now, {kept} kept, "
                   f"{res.failed.get(stage, 0)} failed")
    n = 0 if res.failures is None else len(res.failures)
    typer.echo(f"study -> {out}" + (f" ({n} failures: {out / 'failures.csv'})" if n else ""))
    if n:
        raise typer.Exit(code=1)
