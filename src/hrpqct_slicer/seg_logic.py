"""What the HRpQCTSeg module does, below its widget: segment, load, review, refine, export.

* :class:`SegmentationTask`: a volume node segmented by ``hrpqct segment`` in a background
  process (:mod:`.jobs`); the volume is written to the job's work folder first, results go to an
  output folder and are loaded by :meth:`SegmentationTask.load`.
* :func:`load_segmentation_results`: the output files as nodes: a segmentation node (segment ids
  = region codes, names, colours, terminology), the per-region summary table and the
  per-slice confidence plot, plus the least confident slices.
* :func:`jump_to_slice`: every slice view centred on a slice of the scan.
* :func:`refine_segmentation`: :func:`hrpqct.seg.refine.refine` on an edited segmentation node,
  in place.
* :func:`export_for_training`: an edited segmentation node and its scan into a training folder
  (:func:`hrpqct.export.export_case`).
* :func:`segment_volume_node`: all of the above for the Python console, blocking.

Every function takes the scene and the Segmentations logic as arguments (see the package).
"""

from __future__ import annotations

import datetime as _dt
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

from hrpqct.errors import Cancelled, HRpQCTError, InputError
from hrpqct.progress import ProgressCallback
from hrpqct.regions import Region
from hrpqct.seg.pipeline import SEGMENT_STAGES
from hrpqct.volume import Volume

from .jobs import BackgroundJob, JobStatus, JobTask, segment_argv

__all__ = [
    "MODEL_ATTRIBUTE",
    "FOLDER_ATTRIBUTE",
    "JobFailed",
    "SegmentationResults",
    "SegmentationTask",
    "RefineResult",
    "safe_stem",
    "default_output_folder",
    "scan_volume",
    "segmentation_kind",
    "load_segmentation_results",
    "remove_results",
    "jump_to_slice",
    "refine_segmentation",
    "export_for_training",
    "segment_volume_node",
    "load_terminologies",
]

MODEL_ATTRIBUTE = "HRpQCT.model"  # on segmentation nodes: the model that made them
FOLDER_ATTRIBUTE = "HRpQCT.outputFolder"  # on segmentation nodes: where the run's files are


class JobFailed(HRpQCTError):
    """A background run ended without results; ``status`` and ``log`` say why."""

    def __init__(self, message: str, status: JobStatus | None = None, log: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.log = log


def safe_stem(name: str) -> str:
    """A node name as a file stem: letters, digits, ``.``, ``_``, ``-`` (others become ``_``)."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", str(name)).strip("._-")
    return stem or "scan"


def default_output_folder(stem: str, root: str | os.PathLike | None = None) -> Path:
    """``<root or the temporary folder>/HRpQCT/<stem>-<UTC time>``: a new folder per run."""
    now = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%d-%H%M%S-%f")
    return Path(root or tempfile.gettempdir()) / "HRpQCT" / f"{safe_stem(stem)}-{now}"


def scan_volume(volume_node: Any, assume_unit: str = "HU") -> Volume:
    """The scan of ``volume_node`` in HU.

    Volumes loaded by Slicer carry no unit; they are taken to be in ``assume_unit`` (HU: what
    Slicer's DICOM and NRRD readers give for CT). A node in mgHA/ccm with its calibration (put
    there by :func:`hrpqct_slicer.volume_to_node`) is converted to HU.
    """
    vol = _node_to_volume(volume_node)
    name = volume_node.GetName()
    if volume_node.IsA("vtkMRMLLabelMapVolumeNode") or vol.unit == "label":
        raise InputError(f"volume {name!r} is a label map; choose the scan")
    if vol.unit == "native":
        vol = vol.with_array(vol.array, unit=assume_unit)
    if vol.unit == "mgHA/ccm":
        if vol.calibration is None:
            raise InputError(f"volume {name!r} is in mgHA/ccm without a calibration; HU needed")
        vol = vol.with_array(vol.calibration.density_to_hu(vol.array), unit="HU")
    if vol.unit != "HU":
        raise InputError(f"volume {name!r} is in {vol.unit}; the method needs HU")
    vol.source = Path(f"{safe_stem(name)}.nrrd")
    return vol


def _node_to_volume(node: Any) -> Volume:
    from .volumes import node_to_volume

    return node_to_volume(node)


def segmentation_kind(seg_node: Any) -> tuple[tuple[Region, ...], str]:
    """``(REGIONS, "regions")`` if the segments are the seven regions, ``(MODEL_CLASSES,
    "model")`` if they are the model's five classes; else :class:`InputError` (the seven-region
    message, which lists what does not match)."""
    from hrpqct.seg.pipeline import label_table

    from .segmentations import match_segments

    return label_table(lambda table: match_segments(seg_node, table))


# --- results ------------------------------------------------------------------------------------
@dataclass
class SegmentationResults:
    """The nodes a segmentation run added and where its files are."""

    segmentation: Any  # vtkMRMLSegmentationNode
    summary: Any  # vtkMRMLTableNode: per-region volume, mean HU, ...
    confidence: Any  # hrpqct_slicer.ConfidencePlot (table, series, chart)
    least_confident: list[int]  # slice indices, least confident first
    folder: Path
    stem: str
    files: list[Path] = field(default_factory=list)
    model: str = ""
    #: input warnings of the run (hrpqct.checks), to show next to the results
    warnings: list[str] = field(default_factory=list)


def segmentation_warnings(folder: str | os.PathLike, stem: str) -> list[str]:
    """The input warnings ``hrpqct segment`` wrote as ``warning`` rows of ``<stem>_scan.csv``."""
    import pandas as pd

    from hrpqct.seg.pipeline import SegmentOutputs

    path = SegmentOutputs(folder, stem).scan
    if not path.is_file():
        return []
    table = pd.read_csv(path)
    if "quantity" not in table.columns:
        return []
    return [str(v) for v in table.loc[table["quantity"] == "warning", "value"]]


def load_segmentation_results(scene: Any, logic: Any, folder: str | os.PathLike, stem: str,
                              reference: Any, *, segmentation_node: Any = None,
                              review_slices: int = 10, model: str = "") -> SegmentationResults:
    """Load ``hrpqct segment``'s files ``<folder>/<stem>_*`` into ``scene``.

    The segmentation comes from ``<stem>_labels.nrrd`` through
    :func:`hrpqct_slicer.labelmap_to_segmentation` (names, colours and terminology from
    :mod:`hrpqct.regions`), on the grid of ``reference`` (the scan's node), into
    ``segmentation_node`` if given (its segments replaced) or a new node. The summary table
    (``<stem>_regions.csv``) and the confidence plot (``mean_max_prob`` of
    ``<stem>_confidence.csv``) are new nodes.
    """
    import pandas as pd

    from hrpqct.io import read_labelmap
    from hrpqct.seg.pipeline import SegmentOutputs

    from .plots import confidence_plot, least_confident_slices
    from .segmentations import labelmap_to_segmentation
    from .tables import dataframe_to_table_node

    folder = Path(folder)
    names = SegmentOutputs(folder, stem)
    paths = {"labels": names.labels, "regions": names.regions, "confidence": names.confidence}
    for p in paths.values():
        if not p.is_file():
            raise InputError(f"{p}: missing; is {folder} the output of `hrpqct segment`?")
    labels = read_labelmap(paths["labels"])
    seg = labelmap_to_segmentation(scene, logic, labels, reference=reference,
                                   name=f"{reference.GetName()} HRpQCT regions",
                                   node=segmentation_node)
    seg.SetAttribute(MODEL_ATTRIBUTE, model)
    seg.SetAttribute(FOLDER_ATTRIBUTE, str(folder))
    summary = dataframe_to_table_node(scene, pd.read_csv(paths["regions"]),
                                      name=f"{stem} regions")
    conf = pd.read_csv(paths["confidence"])
    if "mean_max_prob" not in conf.columns:
        raise InputError(f"{paths['confidence']}: no mean_max_prob column")
    plot = confidence_plot(scene, conf["mean_max_prob"].to_numpy(), name=f"{stem} slice confidence")
    worst = [int(k) for k in least_confident_slices(conf["mean_max_prob"].to_numpy(),
                                                    max(0, int(review_slices)))]
    files = sorted(p for p in folder.glob(f"{stem}*") if p.is_file())
    return SegmentationResults(seg, summary, plot, worst, folder, stem, files, model,
                               segmentation_warnings(folder, stem))


def remove_results(scene: Any, results: SegmentationResults, keep_segmentation: bool = True
                   ) -> None:
    """Remove the summary table and confidence plot nodes of an earlier run (and, unless
    ``keep_segmentation``, its segmentation node)."""
    nodes = [results.summary, results.confidence.chart, results.confidence.series,
             results.confidence.table]
    if not keep_segmentation:
        nodes.append(results.segmentation)
    for node in nodes:
        if node is not None and scene.IsNodePresent(node):
            if hasattr(node, "GetDisplayNode") and node.GetDisplayNode() is not None:
                scene.RemoveNode(node.GetDisplayNode())
            scene.RemoveNode(node)


def jump_to_slice(scene: Any, volume_node: Any, k: int) -> tuple[float, float, float]:
    """Centre every slice view of ``scene`` on slice ``k`` of ``volume_node``; returns the RAS
    point (mm). Slicer's own ``vtkMRMLSliceNode.JumpAllSlices``, so it works on any layout."""
    import slicer

    from .plots import slice_center_ras

    ras = slice_center_ras(volume_node, int(k))
    slicer.vtkMRMLSliceNode.JumpAllSlices(scene, *ras, slicer.vtkMRMLSliceNode.CenteredJumpSlice)
    return ras


# --- the background run -------------------------------------------------------------------------
class SegmentationTask(JobTask):
    """``hrpqct segment`` of one volume node in a background process.

    Create it (the volume is written to the job's work folder, uncompressed), :meth:`start`,
    call :meth:`poll` from a timer (or :meth:`wait`), :meth:`cancel` at any time, and once
    ``status.state == "succeeded"`` :meth:`load` the results. ``out_dir`` defaults to
    :func:`default_output_folder`; the files are ``<stem>.seg.nrrd``, ``<stem>_labels.nrrd``,
    ``<stem>_confidence.csv``/``.png``, ``<stem>_regions.csv``, ``_slices.csv``, ``_scan.csv``
    and ``<stem>_overlay.png``.
    """

    def __init__(self, volume_node: Any, *, model: Optional[str] = None, device: str = "auto",
                 fast_cpu: bool = True, batch_size: Optional[int] = None,
                 out_dir: str | os.PathLike | None = None, name: Optional[str] = None,
                 assume_unit: str = "HU", threads: Optional[int] = None,
                 python: Optional[str] = None) -> None:
        from hrpqct.io import write_image

        self.volume_node = volume_node
        self.model = model or ""
        self.stem = safe_stem(name or volume_node.GetName())
        self.out_dir = Path(out_dir) if out_dir else default_output_folder(self.stem)
        volume = scan_volume(volume_node, assume_unit)

        def argv(staging: Path, progress: Path) -> list[str]:  # the scan is in the work folder
            return list(segment_argv(input_path, model=model, device=device, fast_cpu=fast_cpu,
                                     batch_size=batch_size, name=self.stem, threads=threads,
                                     python=python)(staging, progress))

        self.job = BackgroundJob(argv, self.out_dir, stages=SEGMENT_STAGES, name="hrpqct-seg")
        input_path = self.job.work_dir / f"{self.stem}.nrrd"
        try:
            write_image(volume, input_path, compress=False)
        except BaseException:
            self.job.cleanup()
            raise

    def load(self, scene: Any, logic: Any, segmentation_node: Any = None,
             review_slices: int = 10) -> SegmentationResults:
        """Load the finished run's files (:func:`load_segmentation_results`)."""
        status = self.job.status
        if status.state != "succeeded":
            raise JobFailed(f"segmentation of {self.volume_node.GetName()!r} {status.state}"
                            + (f": {status.message}" if status.message else ""), status,
                            self.job.log_text)
        return load_segmentation_results(scene, logic, self.out_dir, self.stem, self.volume_node,
                                         segmentation_node=segmentation_node,
                                         review_slices=review_slices, model=self.model)


def segment_volume_node(scene: Any, logic: Any, volume_node: Any, *,
                        model: Optional[str] = None, device: str = "auto",
                        fast_cpu: bool = True, batch_size: Optional[int] = None,
                        out_dir: str | os.PathLike | None = None,
                        segmentation_node: Any = None, review_slices: int = 10,
                        assume_unit: str = "HU", timeout: Optional[float] = None,
                        progress: Optional[Callable[[JobStatus], Optional[bool]]] = None,
                        python: Optional[str] = None) -> SegmentationResults:
    """Segment ``volume_node`` in a background process, wait, and load the results (blocking).

    ``progress(status)`` is called as the run advances; returning ``False`` cancels. Raises
    :class:`hrpqct.errors.Cancelled` when cancelled and :class:`JobFailed` when the run fails.
    """
    task = SegmentationTask(volume_node, model=model, device=device, fast_cpu=fast_cpu,
                            batch_size=batch_size, out_dir=out_dir, assume_unit=assume_unit,
                            python=python)
    status = task.wait(timeout=timeout, progress=progress)
    if status.state == "cancelled":
        raise Cancelled(f"segmentation of {volume_node.GetName()!r} cancelled"
                        + (f" ({status.message})" if status.message else ""))
    return task.load(scene, logic, segmentation_node=segmentation_node,
                     review_slices=review_slices)


# --- refine and export --------------------------------------------------------------------------
@dataclass(frozen=True)
class RefineResult:
    """What :func:`refine_segmentation` changed."""

    changed_voxels: int  # voxels whose label changed (same label table in and out)
    changed_class_voxels: int  # voxels that changed between bone / soft tissue / background
    kind: str  # input: "regions" (7) or "model" (5)
    output_kind: str
    warnings: tuple[str, ...] = ()  # input warnings (hrpqct.checks)


def refine_segmentation(scene: Any, logic: Any, seg_node: Any, volume_node: Any, *,
                        only: Optional[str] = None, keep_edits: bool = True,
                        erased_is_soft_tissue: bool = True, assume_unit: str = "HU",
                        progress: ProgressCallback | None = None) -> RefineResult:
    """Re-apply the topology rules and/or the soft-tissue split to the edited ``seg_node``.

    The segmentation (seven regions or the model's five classes, matched by id, name or
    terminology) is exported on ``volume_node``'s grid, refined with
    :func:`hrpqct.seg.refine.refine` (``only``: None for both, ``"split"`` or ``"topology"``;
    ``keep_edits``: hand-painted MT/AT stay) and written back into ``seg_node`` (segments
    replaced; the node, its name and display are kept). ``progress(done, total)`` per slice;
    returning ``False`` cancels (:class:`hrpqct.errors.Cancelled`, the node untouched).
    """
    from hrpqct.seg.pipeline import refine_labels

    from .segmentations import labelmap_to_segmentation, segmentation_to_labelmap

    table, kind = segmentation_kind(seg_node)
    labels = segmentation_to_labelmap(scene, logic, seg_node, volume_node, table=table)
    image = scan_volume(volume_node, assume_unit)
    r = refine_labels(labels, image, kind, only=only, keep_edits=keep_edits,
                      erased_is_soft_tissue=erased_is_soft_tissue,
                      scan_name=volume_node.GetName(), labels_name=seg_node.GetName(),
                      progress=progress)
    labelmap_to_segmentation(scene, logic, labels.with_array(r.labels, unit="label"),
                             reference=volume_node, table=r.table, node=seg_node)
    changed = -1 if r.changed_voxels is None else r.changed_voxels
    return RefineResult(changed, r.changed_class_voxels, r.kind, r.output_kind, tuple(r.warnings))


def export_for_training(scene: Any, logic: Any, seg_node: Any, volume_node: Any,
                        folder: str | os.PathLike, case_id: str, *,
                        subject_id: Optional[str] = None, annotator: Optional[str] = None,
                        source: Optional[str] = None, assume_unit: str = "HU",
                        compress: bool = True):
    """Write the corrected ``seg_node`` and its scan ``volume_node`` into the training folder
    ``folder`` as case ``case_id`` (:func:`hrpqct.export.export_case`: image, 5-class map,
    7-region map, manifest row; again = replaced). Returns the :class:`~hrpqct.export.ExportedCase`.
    """
    from hrpqct.export import export_case

    from .segmentations import segmentation_to_labelmap

    table, kind = segmentation_kind(seg_node)
    labels = segmentation_to_labelmap(scene, logic, seg_node, volume_node, table=table)
    image = scan_volume(volume_node, assume_unit)
    if source is None:
        source = (f"3D Slicer: segmentation {seg_node.GetName()!r} of volume "
                  f"{volume_node.GetName()!r}")
        where = seg_node.GetAttribute(FOLDER_ATTRIBUTE)
        if where:
            source += f" (first made in {where})"
    labels.source = Path(seg_node.GetName())
    return export_case(image, labels, folder, case_id, subject_id=subject_id or None, kind=kind,
                       annotator=annotator or None, source=source,
                       model=seg_node.GetAttribute(MODEL_ATTRIBUTE) or "", compress=compress)


def load_terminologies(terminologies_logic: Any) -> tuple[str, str]:
    """Load the HRpQCT terminology and anatomic context files into Slicer's Terminologies logic
    (``slicer.modules.terminologies.logic()``); returns their context names."""
    from hrpqct.terminology import ANATOMIC_FILE, TERMINOLOGY_FILE, resources_dir

    folder = Path(resources_dir())
    name = terminologies_logic.LoadTerminologyFromFile(str(folder / TERMINOLOGY_FILE))
    load_region = getattr(terminologies_logic, "LoadRegionContextFromFile", None) or getattr(
        terminologies_logic, "LoadAnatomicContextFromFile")
    anatomic = load_region(str(folder / ANATOMIC_FILE))
    if not name or not anatomic:
        raise InputError(f"{folder}: Slicer could not load the HRpQCT terminology files")
    return name, anatomic
