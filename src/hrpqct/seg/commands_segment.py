"""CLI: ``hrpqct segment`` (SegFormer + topology rules + soft-tissue split -> seven regions)."""

from __future__ import annotations

import json
import logging
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from .._cli import app
from ..errors import InputError
from ..method import OOD, SOFT_TISSUE, SOFT_TISSUE_THRESHOLDS
from ..progress import cli_progress
from ..regions import REGIONS

__all__ = ["segment_cmd", "segment_scan", "json_progress"]

_console = Console()
log = logging.getLogger(__name__)


def segment_scan(scan: Path, out: Path, *, model: Optional[str] = None, device: str = "auto",
                 batch_size: Optional[int] = None, fast_cpu: bool = True, upsample: Optional[str] = None,
                 cpu_backend: Optional[str] = None, int8: bool = False,
                 name: Optional[str] = None, quiet: bool = False,
                 progress_json: Optional[Path] = None,
                 soft_tissue_thresholds: Optional[str] = None,
                 flip_check: Optional[int] = None) -> dict:
    """Read ``scan`` (HU), segment it, apply the topology rules and the soft-tissue split, write
    ``<name>.seg.nrrd``, ``<name>_labels.nrrd`` (7 regions), ``<name>_confidence.csv`` and the
    region summary (``<name>_regions.csv``, ``_slices.csv``, ``_scan.csv``) into ``out``, and two
    pictures: ``<name>_overlay.png`` (the middle and the least confident slice with their regions)
    and ``<name>_confidence.png`` (confidence per slice).

    ``cpu_backend`` (``"torch"``, ``"onnxruntime"``) and ``int8`` choose the fast CPU path
    (:mod:`hrpqct.seg.fastcpu`; int8 changes about 0.01 % of the labels).

    ``progress_json``: a file to which each step appends machine-readable progress, one JSON
    object per line (:func:`json_progress`), for callers that run the command in the background
    (the Slicer module); the terminal bars are then off.

    ``soft_tissue_thresholds``: ``"paper"`` (default) or ``"histogram"``
    (:func:`hrpqct.seg.softtissue.resolve_thresholds`). ``flip_check``: slices run again mirrored
    for the test-time-augmentation check (default ``OOD.flip_slices``, at most one per 8 slices;
    0 turns it off).
    Out-of-distribution warnings (:mod:`hrpqct.seg.ood`) join the input warnings.

    Returns ``{"result": SegmentationResult, "labels7": Volume, "summary": Summary, "written": [...]}``.
    """
    from ..io import read_scan, write_labelmap, write_segmentation
    from .inference import segment_volume
    from .model import load_model, resolve_model
    from .postprocess import postprocess
    from .softtissue import split_soft_tissue
    from .summary import summarize, write_summary

    def stage(key: str, label: str, total: Optional[int]):
        if progress_json is not None:
            return json_progress(progress_json, key, label, total)
        return cli_progress(label, total, enabled=not quiet)

    from ..io.outputs import keep_previous, prepare_folder, refuse_inputs

    stem = name or _stem(scan)
    # the output location is checked before any work: a read-only folder, a file named like
    # the folder, a full disk or an output that is the scan itself fail now, not after inference
    model_dir = resolve_model(model)  # a missing model fails first, before anything is created
    prepare_folder(out, need_bytes=_needed_bytes(scan))
    refuse_inputs(output_paths(out, stem), [scan])
    from ..checks import check_model_output, check_model_weights, check_scan, settle

    loaded = load_model(model_dir)  # fails early, before reading a large scan
    settle(check_model_weights(loaded.model, loaded.folder or loaded.card.name), model=True)
    with stage("read", "Reading", None) as cb:
        image = read_scan(scan, unit="HU", progress=cb)
    # garbage in (blank, 8-bit, a mask as the scan, tiny field of view...) stops here, before
    # the inference; doubtful input (non-square pixels, thick slices) is carried as warnings
    warnings = settle(check_scan(image, scan))
    from . import ood
    from .softtissue import resolve_thresholds

    # out of distribution (issue 14): spacing, intensities, limbs, before the network...
    warnings += settle(ood.scan_checks(image, ood.load_reference(loaded.folder),
                                       loaded.input_spec, scan))
    # default: OOD.flip_slices, at most one per 8 slices (a 3-slice test scan: 1; a scan: 6)
    flips = (max(1, min(OOD.flip_slices, image.shape[0] // 8)) if flip_check is None
             else int(flip_check))
    with stage("segment", f"Segmenting ({device})", image.shape[0]) as cb:
        result = segment_volume(image, loaded, device=device, batch_size=batch_size, progress=cb,
                                fast_cpu=fast_cpu, upsample=upsample, cpu_backend=cpu_backend,
                                quantize=int8, flip_check=flips)
    settle(check_model_output(result.confidence, loaded.folder or loaded.card.name), model=True)
    warnings += settle(ood.check_flip(result.flip_agreement, scan))  # ...and of the network
    if result.limb_truncated:
        warnings.append(f"{scan}: the limb is wider than the model's crop; its edges are "
                        "labelled background")
    # both steps work in place on the network's labels: one label volume in memory, not three
    # (a 168 x 2304 x 2304 scan: 0.9 GB each); result.labels then holds the seven regions
    labels7 = result.labels.array
    with stage("topology", "Topology rules", image.shape[0]) as cb:
        postprocess(labels7, image.spacing, progress=cb, out=labels7)
    warnings += settle(ood.check_anatomy(labels7, image.spacing, scan))  # ...and of the bones
    soft, soft_warnings, peaks = resolve_thresholds(labels7, image.array, soft_tissue_thresholds,
                                                    where=scan)
    warnings += soft_warnings
    with stage("split", "Soft-tissue split", image.shape[0]) as cb:
        split_soft_tissue(labels7, image.array, image.spacing, soft, progress=cb, out=labels7)
    vol7 = image.with_array(labels7, unit="label", label_map="regions7",
                            segmentation_model=loaded.card.name)
    vol7.calibration = None
    summary = summarize(labels7, image.array, image.spacing, calibration=image.calibration)
    summary.scan.update(soft_tissue_record(soft, peaks))
    summary.warnings = list(warnings)

    out.mkdir(parents=True, exist_ok=True)
    if progress_json is not None:
        with json_progress(progress_json, "write", "Writing files", None):
            pass  # one line: the last step has started
    pictures = _pictures(image, labels7, result, out, stem)
    # the scan is no longer needed: free it before the writers copy the label volume (a full
    # scan: 1.7 GB), so the whole job stays under 4 GB (bench/bench_seg_memory.py --command)
    del image
    previous = keep_previous(out / f"{stem}.seg.nrrd")  # perhaps edited by hand: never lost
    written = [
        write_segmentation(vol7, out / f"{stem}.seg.nrrd", table=REGIONS),
        write_labelmap(vol7, out / f"{stem}_labels.nrrd", table=REGIONS),
        result.write_confidence_csv(out / f"{stem}_confidence.csv"),
    ]
    written += write_summary(summary, out, stem)
    written += pictures
    return {"result": result, "labels7": vol7, "summary": summary, "written": written,
            "model": loaded, "previous": previous, "warnings": warnings}


def soft_tissue_record(soft, peaks: dict) -> dict:
    """The soft-tissue thresholds used and the histogram peaks, as ``<stem>_scan.csv`` rows."""
    nan = float("nan")
    return {
        "soft_tissue_fat_peak_hu": nan if peaks.get("fat_hu") is None else peaks["fat_hu"],
        "soft_tissue_muscle_peak_hu": nan if peaks.get("muscle_hu") is None else peaks["muscle_hu"],
        "adipose_seed_low_hu": soft.adipose_hu[0], "adipose_seed_high_hu": soft.adipose_hu[1],
        "myotendinous_seed_low_hu": soft.myotendinous_hu[0],
        "myotendinous_seed_high_hu": soft.myotendinous_hu[1],
        "tie_threshold_hu": soft.tie_threshold_hu,
    }


def output_paths(out: Path, stem: str) -> list[Path]:
    """Every file :func:`segment_scan` may write into ``out`` for ``stem``."""
    names = [".seg.nrrd", "_labels.nrrd", "_confidence.csv", "_regions.csv", "_slices.csv",
             "_scan.csv", "_overlay.png", "_overlay_least_confident.png", "_confidence.png"]
    return [Path(out) / f"{stem}{n}" for n in names]


def _needed_bytes(scan: Path) -> int:
    """A rough lower bound of the space the outputs of ``scan`` need (compressed label maps)."""
    try:
        return int(Path(scan).stat().st_size * 0.1) if Path(scan).is_file() else 0
    except OSError:
        return 0


@contextmanager
def json_progress(path: Path, stage: str, label: str, total: Optional[int] = None):
    """A progress callback that appends ``{"stage", "label", "done", "total"}`` as one JSON line
    to ``path`` per call (flushed, so a reader polling the file sees it at once)."""
    path = Path(path)

    def cb(done: int, total_: Optional[int]) -> None:
        line = json.dumps({"stage": stage, "label": label, "done": int(done),
                           "total": None if total_ is None else int(total_)})
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")

    cb(0, total)
    yield cb


def _pictures(image, labels7: np.ndarray, result, out: Path, stem: str) -> list[Path]:
    """The middle and the least confident slice with their regions, and the confidence plot."""
    from ..viz import save_confidence_plot, save_overview

    nz = image.shape[0]
    mid = nz // 2
    worst = int(result.least_confident(1)[0]) if nz else mid
    px = float(image.spacing[0])
    paths = [save_overview(out / f"{stem}_overlay.png", image.array[mid], labels7[mid], pixel_mm=px,
                           title=f"{stem}: slice {mid} of {nz}")]
    if worst != mid:
        paths.append(save_overview(out / f"{stem}_overlay_least_confident.png", image.array[worst],
                                   labels7[worst], pixel_mm=px,
                                   title=f"{stem}: least confident slice ({worst})"))
    paths.append(save_confidence_plot(out / f"{stem}_confidence.png", result.confidence,
                                      title=f"{stem}: confidence per slice"))
    return paths


def _stem(path: Path) -> str:
    from ..io.atomic import full_suffix

    suffix = full_suffix(path)
    return path.name[: len(path.name) - len(suffix)] if suffix else path.name


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
    soft_tissue_thresholds: str = typer.Option(
        SOFT_TISSUE.thresholds, "--soft-tissue-thresholds",
        help=f"{' or '.join(SOFT_TISSUE_THRESHOLDS)}: the paper's HU windows of the fat/muscle "
             "split (XtremeCT II), or windows on this scan's own fat and muscle peaks."),
    flip_check: Optional[int] = typer.Option(
        None, "--flip-check", min=0,
        help=f"Slices run again mirrored left-right to check that the network agrees with itself "
             f"(default {OOD.flip_slices}, at most one per 8 slices; 0: off)."),
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
    if soft_tissue_thresholds not in SOFT_TISSUE_THRESHOLDS:
        raise InputError(f"--soft-tissue-thresholds must be {' or '.join(SOFT_TISSUE_THRESHOLDS)}"
                         f", got {soft_tissue_thresholds!r}")
    if threads:
        import torch

        torch.set_num_threads(threads)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    res = segment_scan(scan, out, model=model, device=device, batch_size=batch_size,
                       fast_cpu=fast_cpu, upsample=upsample, cpu_backend=cpu_backend, int8=int8,
                       name=name, quiet=quiet, progress_json=progress_json,
                       soft_tissue_thresholds=soft_tissue_thresholds, flip_check=flip_check)
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
