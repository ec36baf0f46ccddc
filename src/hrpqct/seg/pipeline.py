"""Segment a scan and refine an edited segmentation, end to end: the one pipeline every caller uses.

* :func:`segment_scan`: read a scan (HU), SegFormer, topology rules, soft-tissue split, region
  summary, pictures; writes the files named by :class:`SegmentOutputs`. Used by ``hrpqct
  segment`` (and so by the Slicer and web background jobs), the demo and the benches.
* :func:`refine_labels`: re-apply the rules to an edited label array (checks, kind, refine,
  what changed), shared by ``hrpqct refine`` and the Slicer logic
  (:func:`hrpqct_slicer.seg_logic.refine_segmentation`); :func:`refine_file` is the file-to-file
  form ``hrpqct refine`` runs.
* Output names, typed once: :class:`SegmentOutputs` and :class:`RefineOutputs`.
* Which label table a segmentation uses: :func:`label_table` (seven regions, else the model's five
  classes), :func:`output_kind` (the "seven regions or five classes" rule of a refine) and
  :func:`table_of` (kind -> table).
* Progress stage names (:data:`READ` ... :data:`WRITE`) and their weights
  (:data:`SEGMENT_STAGES`): what :func:`segment_scan` reports and
  :class:`hrpqct_slicer.jobs.BackgroundJob` reads.

Importing this module is light (no torch, SimpleITK or pandas): the Slicer job code imports it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

from ..errors import InputError
from ..progress import ProgressCallback, stage_progress
from ..regions import MODEL_CLASSES, REGIONS, Region

__all__ = [
    "READ", "SEGMENT", "TOPOLOGY", "SPLIT", "WRITE", "REFINE", "SEGMENT_STAGES",
    "SegmentOutputs", "RefineOutputs", "output_stem",
    "segment_scan", "refine_labels", "refine_file", "Refined", "RefineRun",
    "label_table", "output_kind", "table_of", "KINDS",
]

# --- progress stages ----------------------------------------------------------------------------
READ = "read"
SEGMENT = "segment"
TOPOLOGY = "topology"
SPLIT = "split"
WRITE = "write"
REFINE = "refine"  # the one step of a refine
#: Steps of :func:`segment_scan` and their share of the run time (for one progress bar).
SEGMENT_STAGES: tuple[tuple[str, float], ...] = (
    (READ, 0.05), (SEGMENT, 0.70), (TOPOLOGY, 0.10), (SPLIT, 0.10), (WRITE, 0.05))


# --- output names -------------------------------------------------------------------------------
def output_stem(path: str | os.PathLike) -> str:
    """File name without its format suffix (``.seg.nrrd``, ``.nii.gz`` and single suffixes)."""
    from ..io.atomic import full_suffix

    path = Path(path)
    suffix = full_suffix(path)
    return path.name[: len(path.name) - len(suffix)] if suffix else path.name


class _Name:
    """A file of an outputs object: ``<folder>/<stem><suffix>``."""

    def __init__(self, suffix: str, doc: str) -> None:
        self.suffix = suffix
        self.__doc__ = f"``<stem>{suffix}``: {doc}"

    def __get__(self, obj, owner=None):
        return self if obj is None else obj.folder / f"{obj.stem}{self.suffix}"


@dataclass(frozen=True)
class _Outputs:
    folder: Path
    stem: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "folder", Path(self.folder))

    segmentation = _Name(".seg.nrrd", "the Slicer segmentation")
    regions = _Name("_regions.csv", "per-region summary")
    slices = _Name("_slices.csv", "per-slice summary")
    scan = _Name("_scan.csv", "per-scan summary and the input warnings (``warning`` rows)")

    @property
    def summary(self) -> dict[str, Path]:
        """The summary tables by name: ``regions``, ``slices``, ``scan``."""
        return {"regions": self.regions, "slices": self.slices, "scan": self.scan}


@dataclass(frozen=True)
class SegmentOutputs(_Outputs):
    """The files :func:`segment_scan` writes into ``folder`` for ``stem``."""

    labels = _Name("_labels.nrrd", "the seven regions as a label map")
    confidence = _Name("_confidence.csv", "per-slice confidence")
    overlay = _Name("_overlay.png", "the middle slice with its regions")
    overlay_least_confident = _Name("_overlay_least_confident.png",
                                    "the least confident slice with its regions")
    confidence_plot = _Name("_confidence.png", "confidence per slice")

    def all(self) -> list[Path]:
        """Every file :func:`segment_scan` may write."""
        return [self.segmentation, self.labels, self.confidence, *self.summary.values(),
                self.overlay, self.overlay_least_confident, self.confidence_plot]


@dataclass(frozen=True)
class RefineOutputs(_Outputs):
    """The files ``hrpqct refine`` writes into ``folder`` for ``stem``."""

    labels = _Name(".nrrd", "the refined label map")

    def all(self) -> list[Path]:
        """Every file ``hrpqct refine`` may write."""
        return [self.segmentation, self.labels, *self.summary.values()]


# --- label tables -------------------------------------------------------------------------------
#: The two label tables a segmentation may use, in the order they are tried, with their kind.
KINDS: tuple[tuple[tuple[Region, ...], str], ...] = ((REGIONS, "regions"), (MODEL_CLASSES, "model"))


def label_table(matches: Callable[[tuple[Region, ...]], None]) -> tuple[tuple[Region, ...], str]:
    """``(REGIONS, "regions")`` if ``matches(REGIONS)`` passes, else ``(MODEL_CLASSES, "model")``
    if ``matches(MODEL_CLASSES)`` does; ``matches(table)`` raises :class:`InputError` when the
    segments are not that table's. If neither matches, the seven-region error is raised."""
    first: InputError | None = None
    for table, kind in KINDS:
        try:
            matches(table)
        except InputError as exc:
            first = first or exc
            continue
        return table, kind
    assert first is not None
    raise first


def output_kind(only: Optional[str], kind: str) -> str:
    """What a refine gives: the seven regions, except when only the topology rules run on the
    model's five classes (then five classes)."""
    return "model" if (only == "topology" and kind == "model") else "regions"


def table_of(kind: str) -> tuple[Region, ...]:
    """The label table of a kind: ``"regions"`` -> REGIONS, ``"model"`` -> MODEL_CLASSES."""
    return MODEL_CLASSES if kind == "model" else REGIONS


# --- segment ------------------------------------------------------------------------------------
def _needed_bytes(scan: Path) -> int:
    """A rough lower bound of the space the outputs of ``scan`` need (compressed label maps)."""
    try:
        return int(Path(scan).stat().st_size * 0.1) if Path(scan).is_file() else 0
    except OSError:
        return 0


def segment_scan(scan: Path, out: Path, *, model: Optional[str] = None, device: str = "auto",
                 batch_size: Optional[int] = None, fast_cpu: bool = True, upsample: Optional[str] = None,
                 cpu_backend: Optional[str] = None, int8: bool = False,
                 name: Optional[str] = None, quiet: bool = False,
                 progress_json: Optional[Path] = None) -> dict:
    """Read ``scan`` (HU), segment it, apply the topology rules and the soft-tissue split, write
    ``<name>.seg.nrrd``, ``<name>_labels.nrrd`` (7 regions), ``<name>_confidence.csv`` and the
    region summary (``<name>_regions.csv``, ``_slices.csv``, ``_scan.csv``) into ``out``, and two
    pictures: ``<name>_overlay.png`` (the middle and the least confident slice with their regions)
    and ``<name>_confidence.png`` (confidence per slice); names: :class:`SegmentOutputs`.

    ``device``: ``"auto"``, ``"cuda"``, ``"mps"`` or ``"cpu"``. ``cpu_backend``
    (``"torch"``, ``"onnxruntime"``) and ``int8`` choose the fast CPU path
    (:mod:`hrpqct.seg.fastcpu`; int8 changes about 0.01 % of the labels).

    ``progress_json``: a file to which each step appends machine-readable progress, one JSON
    object per line (:func:`hrpqct.progress.json_progress`, stages :data:`SEGMENT_STAGES`), for
    callers that run the command in the background (the Slicer module); the terminal bars are
    then off.

    Returns ``{"result": SegmentationResult, "labels7": Volume, "summary": Summary, "written": [...],
    "model", "previous", "warnings", "outputs": SegmentOutputs}``.
    """
    from ..io import read_scan, write_labelmap, write_segmentation
    from ..io.outputs import keep_previous, prepare_folder, refuse_inputs
    from .inference import segment_volume
    from .model import load_model, resolve_model
    from .postprocess import postprocess
    from .softtissue import split_soft_tissue
    from .summary import summarize, write_summary

    def stage(key: str, label: str, total: Optional[int]):
        return stage_progress(key, label, total, json_file=progress_json, bars=not quiet)

    files = SegmentOutputs(out, name or output_stem(scan))
    # the output location is checked before any work: a read-only folder, a file named like
    # the folder, a full disk or an output that is the scan itself fail now, not after inference
    model_dir = resolve_model(model)  # a missing model fails first, before anything is created
    prepare_folder(out, need_bytes=_needed_bytes(scan))
    refuse_inputs(files.all(), [scan])
    from ..checks import check_model_output, check_model_weights, check_scan, settle

    loaded = load_model(model_dir)  # fails early, before reading a large scan
    settle(check_model_weights(loaded.model, loaded.folder or loaded.card.name), model=True)
    with stage(READ, "Reading", None) as cb:
        image = read_scan(scan, unit="HU", progress=cb)
    # garbage in (blank, 8-bit, a mask as the scan, tiny field of view...) stops here, before
    # the inference; doubtful input (non-square pixels, thick slices) is carried as warnings
    warnings = settle(check_scan(image, scan))
    with stage(SEGMENT, f"Segmenting ({device})", image.shape[0]) as cb:
        result = segment_volume(image, loaded, device=device, batch_size=batch_size, progress=cb,
                                fast_cpu=fast_cpu, upsample=upsample, cpu_backend=cpu_backend,
                                quantize=int8)
    settle(check_model_output(result.confidence, loaded.folder or loaded.card.name), model=True)
    if result.limb_truncated:
        warnings.append(f"{scan}: the limb is wider than the model's crop; its edges are "
                        "labelled background")
    # both steps work in place on the network's labels: one label volume in memory, not three
    # (a 168 x 2304 x 2304 scan: 0.9 GB each); result.labels then holds the seven regions
    labels7 = result.labels.array
    with stage(TOPOLOGY, "Topology rules", image.shape[0]) as cb:
        postprocess(labels7, image.spacing, progress=cb, out=labels7)
    with stage(SPLIT, "Soft-tissue split", image.shape[0]) as cb:
        split_soft_tissue(labels7, image.array, image.spacing, progress=cb, out=labels7)
    vol7 = image.with_array(labels7, unit="label", label_map="regions7",
                            segmentation_model=loaded.card.name)
    vol7.calibration = None
    summary = summarize(labels7, image.array, image.spacing, calibration=image.calibration)
    summary.warnings = list(warnings)

    out.mkdir(parents=True, exist_ok=True)
    if progress_json is not None:
        with stage(WRITE, "Writing files", None):
            pass  # one line: the last step has started
    pictures = _pictures(image, labels7, result, files)
    # the scan is no longer needed: free it before the writers copy the label volume (a full
    # scan: 1.7 GB), so the whole job stays under 4 GB (bench/bench_seg_memory.py --command)
    del image
    previous = keep_previous(files.segmentation)  # perhaps edited by hand: never lost
    written = [
        write_segmentation(vol7, files.segmentation, table=REGIONS),
        write_labelmap(vol7, files.labels, table=REGIONS),
        result.write_confidence_csv(files.confidence),
    ]
    written += write_summary(summary, out, files.stem)
    written += pictures
    return {"result": result, "labels7": vol7, "summary": summary, "written": written,
            "model": loaded, "previous": previous, "warnings": warnings, "outputs": files}


def _pictures(image, labels7, result, files: SegmentOutputs) -> list[Path]:
    """The middle and the least confident slice with their regions, and the confidence plot."""
    from ..viz import save_confidence_plot, save_overview

    stem = files.stem
    nz = image.shape[0]
    mid = nz // 2
    worst = int(result.least_confident(1)[0]) if nz else mid
    px = float(image.spacing[0])
    paths = [save_overview(files.overlay, image.array[mid], labels7[mid], pixel_mm=px,
                           title=f"{stem}: slice {mid} of {nz}")]
    if worst != mid:
        paths.append(save_overview(files.overlay_least_confident, image.array[worst],
                                   labels7[worst], pixel_mm=px,
                                   title=f"{stem}: least confident slice ({worst})"))
    paths.append(save_confidence_plot(files.confidence_plot, result.confidence,
                                      title=f"{stem}: confidence per slice"))
    return paths


# --- refine -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Refined:
    """What :func:`refine_labels` made of an edited label array."""

    labels: Any  # np.ndarray: the refined labels, in ``table_of(output_kind)``
    kind: str  # the input's kind: "regions" (7) or "model" (5)
    output_kind: str
    #: voxels whose label changed (None when the input and output tables differ)
    changed_voxels: Optional[int]
    changed_class_voxels: int  # voxels that changed between bone / soft tissue / background
    warnings: list[str] = field(default_factory=list)  # input warnings (hrpqct.checks)

    @property
    def table(self) -> tuple[Region, ...]:
        return table_of(self.output_kind)


def refine_labels(labels, image, kind: str = "auto", *, only: Optional[str] = None,
                  keep_edits: bool = True, erased_is_soft_tissue: bool = True,
                  scan_name: Any = None, labels_name: Any = None, segments=None,
                  name_errors: bool = False, progress: ProgressCallback | None = None,
                  progress_bar: Callable[[int], Any] | None = None) -> Refined:
    """Check, then refine the edited label :class:`~hrpqct.volume.Volume` ``labels`` of the scan
    ``image`` (HU) with :func:`hrpqct.seg.refine.refine`.

    ``kind``: ``"regions"``, ``"model"`` or ``"auto"`` (:func:`~hrpqct.seg.refine.detect_kind`).
    Errors of the scan and the labels (:func:`hrpqct.checks.check_scan`,
    :func:`~hrpqct.checks.check_labels`) are raised first, then those of the edited regions
    (:func:`~hrpqct.checks.check_refine_input`, with the ``.seg.nrrd``'s ``segments`` if known);
    warnings are returned. ``scan_name``/``labels_name`` name the inputs in the messages; with
    ``name_errors`` an error of the refine step that does not name ``labels_name`` is prefixed
    with it. ``progress(done, total)`` per slice (``False`` cancels); or ``progress_bar(n)``,
    a context manager yielding such a callback for ``n`` slices, entered once the checks pass
    (:func:`hrpqct.progress.stage_progress`).
    """
    from contextlib import nullcontext

    import numpy as np

    from ..checks import check_labels, check_refine_input, check_scan, settle
    from .refine import detect_kind, refine, to_model_classes

    arr = labels.array
    warnings = settle(check_scan(image, scan_name) + check_labels(labels, labels_name))
    try:
        if kind == "auto":
            kind = detect_kind(arr)
        warnings += settle(check_refine_input(arr, kind, labels_name, segments))
        with progress_bar(arr.shape[0]) if progress_bar else nullcontext(progress) as cb:
            out = refine(arr, image.array, image.spacing, only=only,
                         keep_soft_tissue_edits=keep_edits,
                         erased_is_soft_tissue=erased_is_soft_tissue, input_kind=kind, progress=cb)
    except InputError as exc:
        if not name_errors or str(labels_name) in str(exc):
            raise
        raise InputError(f"{labels_name}: {exc}") from None
    out_kind = output_kind(only, kind)
    changed = int(np.count_nonzero(arr != out)) if kind == out_kind else None
    classes = int(np.count_nonzero(to_model_classes(arr, kind) != to_model_classes(out, out_kind)))
    return Refined(out, kind, out_kind, changed, classes, warnings)


def segmentation_file_table(path: Path) -> tuple[tuple[Region, ...], str]:
    """For a ``.seg.nrrd``: the label table its segments match and the map kind
    (:func:`label_table`); other files ``(REGIONS, "auto")`` (their label values are used as
    stored)."""
    from ..io import detect_format, match_region

    if detect_format(path) != "seg.nrrd":
        return REGIONS, "auto"
    import slicerio

    try:
        segments = slicerio.read_segmentation(str(path), skip_voxels=True).get("segments", [])
    except Exception as exc:  # noqa: BLE001  slicerio / pynrrd raise assorted types
        raise InputError(f"{path}: not a readable Slicer segmentation ({exc})") from None

    def matches(table) -> None:
        if not (segments and all(match_region(s, table) is not None for s in segments)):
            raise InputError(table)

    try:
        return label_table(matches)
    except InputError:
        names = [str(s.get("name", s.get("id", "?"))) for s in segments]
        raise InputError(f"{path}: segments {names} are neither the seven regions "
                         f"({', '.join(r.code for r in REGIONS)}) nor the model's five classes "
                         f"({', '.join(r.code for r in MODEL_CLASSES)})") from None


@dataclass
class RefineRun:
    """What :func:`refine_file` did."""

    refined: Refined
    outputs: RefineOutputs
    image: Any  # the scan (Volume, HU)
    labels: Any  # the edited labels as read (Volume)
    written: list[Path]
    summary: Any = None  # hrpqct.seg.summary.Summary for seven-region output
    previous: Optional[Path] = None


def refine_file(seg: Path, image: Path, out: Path, *, only: Optional[str] = None,
                keep_edits: bool = True, erased_is_soft_tissue: bool = True,
                input_kind: str = "auto", name: Optional[str] = None,
                quiet: bool = False) -> RefineRun:
    """``hrpqct refine``: read the edited segmentation ``seg`` and its scan ``image`` (HU), refine
    (:func:`refine_labels`) and write :class:`RefineOutputs` (``<name>.seg.nrrd``, ``<name>.nrrd``
    and, for seven-region output, the summary tables) into ``out``. ``name`` defaults to
    ``<segmentation>_refined``. The output folder is checked before any work; a progress bar per
    slice unless ``quiet``."""
    from ..io import read_pair, write_labelmap, write_segmentation
    from ..io.outputs import keep_previous, prepare_folder, refuse_inputs
    from .refine import ONLY
    from .summary import summarize, write_summary

    if only not in ONLY:
        raise InputError(f"--only must be 'split' or 'topology', got {only!r}")
    if input_kind not in ("auto", *(kind for _, kind in KINDS)):
        raise InputError(f"--input-kind must be auto, regions or model, got {input_kind!r}")
    files = RefineOutputs(out, name or f"{output_stem(seg)}_refined")
    # before any work: the output folder must be writable, and no output may be an input
    # (--out = the scan's folder with --name = the scan's stem would overwrite the scan)
    prepare_folder(out)
    refuse_inputs(files.all(), [seg, image])
    table, kind = segmentation_file_table(seg)
    if input_kind != "auto":
        kind = input_kind
    img, lab = read_pair(image, seg, unit="HU", table=table)
    segments = lab.meta.get("segments") if lab.meta.get("format") == "seg.nrrd" else None
    refined = refine_labels(lab, img, kind, only=only, keep_edits=keep_edits,
                            erased_is_soft_tissue=erased_is_soft_tissue, scan_name=image,
                            labels_name=seg, segments=segments, name_errors=True,
                            progress_bar=lambda n: stage_progress(REFINE, "Refining slices", n,
                                                                  bars=not quiet))
    seven = refined.output_kind == "regions"
    out.mkdir(parents=True, exist_ok=True)
    result = lab.with_array(refined.labels, unit="label",
                            label_map="regions7" if seven else "model5")
    previous = keep_previous(files.segmentation)
    written = [write_segmentation(result, files.segmentation, table=refined.table),
               write_labelmap(result, files.labels, table=refined.table)]
    summary = None
    if seven:
        summary = summarize(refined.labels, img.array, img.spacing, calibration=img.calibration)
        summary.warnings = list(refined.warnings)
        written += write_summary(summary, out, files.stem)
    return RefineRun(refined, files, img, lab, written, summary, previous)
