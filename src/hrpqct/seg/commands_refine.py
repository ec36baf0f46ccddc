"""CLI: ``hrpqct refine`` (re-apply the topology rules and the soft-tissue split to an edited segmentation)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

from .._cli import app
from ..errors import InputError
from ..method import SOFT_TISSUE, SOFT_TISSUE_THRESHOLDS
from ..progress import cli_progress
from ..regions import MODEL_CLASSES, REGIONS
from ..volume import label_counts

__all__ = ["refine_cmd", "output_stem", "segmentation_table"]

_console = Console()


def output_stem(path: Path) -> str:
    """File name without its format suffix (``.seg.nrrd``, ``.nii.gz`` and single suffixes)."""
    from ..io.atomic import full_suffix

    name = path.name
    suffix = full_suffix(path)
    return name[: len(name) - len(suffix)] if suffix else name


def segmentation_table(path: Path) -> tuple[tuple, str]:
    """For a ``.seg.nrrd``: the region table its segments match and the map kind.

    ``(REGIONS, "regions")`` if every segment is one of the seven regions, else
    ``(MODEL_CLASSES, "model")`` if every segment is a model class; other files ``(REGIONS,
    "auto")`` (their label values are used as stored).
    """
    from ..io import detect_format, match_region

    if detect_format(path) != "seg.nrrd":
        return REGIONS, "auto"
    import slicerio

    try:
        segments = slicerio.read_segmentation(str(path), skip_voxels=True).get("segments", [])
    except Exception as exc:  # noqa: BLE001  slicerio / pynrrd raise assorted types
        raise InputError(f"{path}: not a readable Slicer segmentation ({exc})") from None
    for table, kind in ((REGIONS, "regions"), (MODEL_CLASSES, "model")):
        if segments and all(match_region(s, table) is not None for s in segments):
            return table, kind
    names = [str(s.get("name", s.get("id", "?"))) for s in segments]
    raise InputError(f"{path}: segments {names} are neither the seven regions "
                     f"({', '.join(r.code for r in REGIONS)}) nor the model's five classes "
                     f"({', '.join(r.code for r in MODEL_CLASSES)})")


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
    soft_tissue_thresholds: str = typer.Option(
        SOFT_TISSUE.thresholds, "--soft-tissue-thresholds",
        help=f"{' or '.join(SOFT_TISSUE_THRESHOLDS)}: the paper's HU windows of the fat/muscle "
             "split (XtremeCT II), or windows on this scan's own fat and muscle peaks."),
) -> None:
    """Re-apply the topology rules and the soft-tissue split to an annotator's edited segmentation.

    Writes <name>.seg.nrrd (Slicer), <name>.nrrd (label map) and, for seven-region output,
    <name>_regions.csv, <name>_slices.csv and <name>_scan.csv (areas, volumes, HU, fat fraction).
    """
    from ..io import read_pair, write_labelmap, write_segmentation
    from ..io.outputs import keep_previous, prepare_folder, refuse_inputs
    from .commands_segment import soft_tissue_record
    from .ood import check_anatomy
    from .refine import detect_kind, refine, to_model_classes
    from .softtissue import resolve_thresholds
    from .summary import summarize, write_summary

    if only not in (None, "split", "topology"):
        raise InputError(f"--only must be 'split' or 'topology', got {only!r}")
    if soft_tissue_thresholds not in SOFT_TISSUE_THRESHOLDS:
        raise InputError(f"--soft-tissue-thresholds must be {' or '.join(SOFT_TISSUE_THRESHOLDS)}"
                         f", got {soft_tissue_thresholds!r}")
    if input_kind not in ("auto", "regions", "model"):
        raise InputError(f"--input-kind must be auto, regions or model, got {input_kind!r}")
    stem = name or f"{output_stem(seg)}_refined"
    # before any work: the output folder must be writable, and no output may be an input
    # (--out = the scan's folder with --name = the scan's stem would overwrite the scan)
    prepare_folder(out)
    refuse_inputs(refine_outputs(out, stem), [seg, image])
    table, kind = segmentation_table(seg)
    if input_kind != "auto":
        kind = input_kind
    from ..checks import check_labels, check_refine_input, check_scan, settle

    img, lab = read_pair(image, seg, unit="HU", table=table)
    # garbage in: a blank or 8-bit scan, an empty segmentation, a deleted bone segment (refine
    # would relabel the bone as soft tissue) stop here; doubtful input gives warnings
    warnings = settle(check_scan(img, image) + check_labels(lab, seg))
    try:
        if kind == "auto":
            kind = detect_kind(lab.array)
        segments = lab.meta.get("segments") if lab.meta.get("format") == "seg.nrrd" else None
        warnings += settle(check_refine_input(lab.array, kind, seg, segments))
        soft, soft_warnings, peaks = SOFT_TISSUE, [], {}
        if only != "topology":
            soft, soft_warnings, peaks = resolve_thresholds(
                to_model_classes(lab.array, kind), img.array, soft_tissue_thresholds, where=image)
        with cli_progress("Refining slices", lab.shape[0], enabled=not quiet) as cb:
            out_arr = refine(lab.array, img.array, img.spacing, only=only,
                             keep_soft_tissue_edits=keep_edits,
                             erased_is_soft_tissue=erased_is_soft_tissue, input_kind=kind,
                             soft=soft, progress=cb)
        # out of distribution (issue 14): bones far from a distal tibia's
        warnings += settle(check_anatomy(out_arr, img.spacing, seg)) + soft_warnings
    except InputError as exc:
        if str(seg) in str(exc):
            raise
        raise InputError(f"{seg}: {exc}") from None
    seven = not (only == "topology" and kind == "model")
    out_table = REGIONS if seven else MODEL_CLASSES
    out.mkdir(parents=True, exist_ok=True)
    result = lab.with_array(out_arr, unit="label", label_map="regions7" if seven else "model5")
    previous = keep_previous(out / f"{stem}.seg.nrrd")
    written = [write_segmentation(result, out / f"{stem}.seg.nrrd", table=out_table),
               write_labelmap(result, out / f"{stem}.nrrd", table=out_table)]
    summary = None
    if seven:
        summary = summarize(out_arr, img.array, img.spacing, calibration=img.calibration)
        if only != "topology":
            summary.scan.update(soft_tissue_record(soft, peaks))
        summary.warnings = list(warnings)
        written += write_summary(summary, out, stem)

    in_model = to_model_classes(lab.array, kind)
    out_model = to_model_classes(out_arr, "regions" if seven else "model")
    bone_changed = int(np.count_nonzero(in_model != out_model))
    label_changed = int(np.count_nonzero(lab.array != out_arr)) if kind == "regions" and seven else None
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
    if previous is not None:
        _console.print(f"[yellow]note:[/] the previous segmentation is kept as {previous}",
                       highlight=False, soft_wrap=True)
    for p in written:
        _console.print(f"  [green]wrote[/] {p}")


def refine_outputs(out: Path, stem: str) -> list[Path]:
    """Every file ``hrpqct refine`` may write into ``out`` for ``stem``."""
    return [Path(out) / f"{stem}{n}" for n in
            (".seg.nrrd", ".nrrd", "_regions.csv", "_slices.csv", "_scan.csv")]
