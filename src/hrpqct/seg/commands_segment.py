"""CLI: ``hrpqct segment`` (SegFormer + topology rules + soft-tissue split -> seven regions).

The pipeline is :func:`hrpqct.seg.pipeline.segment_scan`; this module parses and prints.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from .._cli import app
from ..errors import InputError
from ..regions import REGIONS
from .pipeline import segment_scan

__all__ = ["segment_cmd"]

_console = Console()
log = logging.getLogger(__name__)


@app.command("segment")
def segment_cmd(
    scan: Path = typer.Argument(..., help="HR-pQCT scan: Scanco AIM/ISQ, DICOM, NIfTI, NRRD, MHA "
                                          "(read in HU)."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder (created)."),
    model: Optional[str] = typer.Option(None, "--model", "-m",
                                        help="Model folder or catalogue id (default: the bundled "
                                             "demo model). Never downloads."),
    device: str = typer.Option("auto", help="auto (CUDA, then Apple MPS, then CPU), cuda, mps or cpu."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", "-b", min=1,
                                             help="Slices per forward pass (default: 8 CUDA, 4 MPS, "
                                                  "2 CPU; halved automatically on GPU out-of-memory)."),
    fast_cpu: bool = typer.Option(True, "--fast-cpu/--no-fast-cpu",
                                  help="On the CPU, use the fast path (same labels, ~4.6x faster "
                                       "than a naive loop for the paper's B3)."),
    cpu_backend: Optional[str] = typer.Option(
        None, "--cpu-backend", help="Fast CPU path engine: torch (default) or onnxruntime (needs the "
                                    "'fastcpu' extra; exported once per model and cached)."),
    int8: bool = typer.Option(False, "--int8", help="Fast CPU path with int8 weights: ~1.2x faster "
                                                    "again, ~0.01 % of labels change."),
    upsample: Optional[str] = typer.Option(None, help="bilinear (logits, default) or nearest (the "
                                                      "paper: predicted mask); default from the model card."),
    threads: Optional[int] = typer.Option(None, min=1, help="CPU threads for torch (default: all cores)."),
    name: Optional[str] = typer.Option(None, help="Output file stem (default: the scan's name)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
    progress_json: Optional[Path] = typer.Option(
        None, "--progress-json", help="Append machine-readable progress to this file, one JSON "
                                      "object per line (stage, label, done, total); no bars."),
) -> None:
    """Segment a scan into the seven regions (TC, TT, FC, FT, SK, MT, AT).

    Writes <name>.seg.nrrd (Slicer segmentation), <name>_labels.nrrd (label map),
    <name>_confidence.csv and .png (per-slice confidence: review the least confident slices first),
    the region summary <name>_regions.csv, <name>_slices.csv, <name>_scan.csv, and
    <name>_overlay.png (regions on the middle and the least confident slice).
    """
    if upsample not in (None, "bilinear", "nearest"):
        raise InputError(f"--upsample must be bilinear or nearest, got {upsample!r}")
    if cpu_backend not in (None, "torch", "onnxruntime"):
        raise InputError(f"--cpu-backend must be torch or onnxruntime, got {cpu_backend!r}")
    if threads:
        import torch

        torch.set_num_threads(threads)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    res = segment_scan(scan, out, model=model, device=device, batch_size=batch_size,
                       fast_cpu=fast_cpu, upsample=upsample, cpu_backend=cpu_backend, int8=int8,
                       name=name, quiet=quiet, progress_json=progress_json)
    r = res["result"]
    _console.print(f"model {res['model'].card.name!r} on {r.device}"
                   f"{' (fast CPU path)' if r.fast_cpu else ''}, batch {r.batch_size}: "
                   f"{r.labels.shape[0]} slices in {r.seconds:.1f} s "
                   f"({r.slices_per_second:.2f} slices/s)")
    if r.fallback:
        _console.print(f"[yellow]note:[/] {r.fallback}")
    for w in res["warnings"]:
        _console.print(f"[yellow]warning:[/] {w}", highlight=False, soft_wrap=True)
    t = Table(title="Regions")
    for col in ("region", "volume mm3", "mean HU"):
        t.add_column(col, justify="left" if col == "region" else "right")
    regions = res["summary"].regions.set_index("code")
    for reg in REGIONS:
        row = regions.loc[reg.code]
        t.add_row(f"{reg.code} {reg.name}", f"{row['volume_mm3']:,.1f}",
                  "" if row["voxels"] == 0 else f"{row['mean_hu']:.1f}")
    _console.print(t)
    worst = ", ".join(str(int(k)) for k in r.least_confident(5))
    _console.print(f"least confident slices (review first): {worst}")
    if res.get("previous") is not None:
        _console.print(f"[yellow]note:[/] the previous segmentation is kept as {res['previous']}",
                       highlight=False, soft_wrap=True)
    for p in res["written"]:
        _console.print(f"  [green]wrote[/] {p}")
