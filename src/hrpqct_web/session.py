"""What the browser app does, below its page: open, segment, correct, refine, review, save, export.

:class:`CorrectionSession` holds one scan and its seven-region segmentation in an MRML scene
(trame-slicer's, or any ``vtkMRMLScene`` with a Segmentations logic) and calls the same bridge
(:mod:`hrpqct_slicer`) and core functions as the Slicer module; nothing here knows about the
page, so it is tested headless.

* :meth:`~CorrectionSession.open_scan`: any scan :func:`hrpqct.io.read_scan` reads, in HU; a
  ``<stem>.seg.nrrd`` next to it is loaded as well (and ``<stem>_confidence.csv`` for review).
* :meth:`~CorrectionSession.start_segmentation` / :meth:`poll` / :meth:`cancel`: ``hrpqct
  segment`` in a background process (:class:`hrpqct_slicer.SegmentationTask`).
* :meth:`~CorrectionSession.refine`: :func:`hrpqct.seg.refine.refine` on the edited segments.
* :meth:`~CorrectionSession.next_review_slice`: the least confident slices (mean max-softmax
  probability per slice, as ``hrpqct segment`` writes it), least confident first, in turn.
* :meth:`~CorrectionSession.summary`: :func:`hrpqct.seg.summary.summarize` of the current masks.
* :meth:`~CorrectionSession.save`: ``<stem>.seg.nrrd`` next to the scan, atomically; an earlier
  file is first kept as ``<stem>.previous-<UTC time>.seg.nrrd``.
* :meth:`~CorrectionSession.export`: the corrected case into a training folder
  (:func:`hrpqct.export.export_case`).
* :meth:`~CorrectionSession.start_analysis` / :meth:`poll_analysis` / :meth:`cancel_analysis`:
  "Radiomics + classify": the radiomics of the open scan with the current (corrected)
  segmentation in a background process (:class:`hrpqct_slicer.RadiomicsTask`, the worker
  ``hrpqct radiomics`` uses: :func:`hrpqct.radiomics.tables.extract_scan` and
  :func:`~hrpqct.radiomics.tables.aggregate`), then :func:`hrpqct.classify.model.predict` with
  the classifier (the bundled demo classifier unless told; loaded in a thread meanwhile).
  :meth:`classify` predicts again from the same features (another model, clinical values).

Errors are :class:`hrpqct.errors.HRpQCTError` with a one-line message naming the file; a failed
open leaves the session (and every file) as it was.
"""

from __future__ import annotations

import datetime as _dt
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np

from hrpqct.errors import HRpQCTError, InputError
from hrpqct.regions import REGIONS
from hrpqct.seg.pipeline import SegmentOutputs

__all__ = ["CorrectionSession", "SavedFiles", "scan_stem", "previous_name", "SCAN_SUFFIXES"]

#: File endings listed in the data folder as scans (``.seg.nrrd`` and label maps excluded).
SCAN_SUFFIXES = (".nrrd", ".nhdr", ".nii", ".nii.gz", ".mha", ".mhd", ".aim", ".isq", ".dcm")
_SEG = ".seg.nrrd"


def scan_stem(path: str | os.PathLike) -> str:
    """The scan's file name without its format extension (``.nii.gz`` and ``.seg.nrrd`` whole)."""
    from hrpqct.io.atomic import full_suffix

    name = Path(path).name
    suffix = full_suffix(name)
    return name[: len(name) - len(suffix)] if suffix else name


def previous_name(stem: str, now: _dt.datetime | None = None) -> str:
    """``<stem>.previous-<UTC time, microseconds>.seg.nrrd``: where an overwritten file is kept."""
    now = (now or _dt.datetime.now(_dt.timezone.utc)).astimezone(_dt.timezone.utc)
    return f"{stem}.previous-{now.strftime('%Y%m%dT%H%M%S%fZ')}{_SEG}"


@dataclass
class SavedFiles:
    """What :meth:`CorrectionSession.save` wrote."""

    segmentation: Path
    previous: Optional[Path] = None  # the earlier file, kept
    confidence: Optional[Path] = None


@dataclass
class _Review:
    confidence: np.ndarray  # per slice, mean max-softmax probability
    order: list[int] = field(default_factory=list)  # least confident first
    position: int = -1


class CorrectionSession:
    """One scan and its segmentation in ``scene`` (see the module docstring).

    ``scene``/``logic``: an MRML scene and a ``vtkSlicerSegmentationsModuleLogic`` with that
    scene. ``data_dir``: the folder the page lists scans from (relative paths are taken there).
    ``model``: model folder or catalogue id for the segmentation (default: the bundled model).
    ``classifier``: classifier folder or catalogue id for "Radiomics + classify" (default: the
    bundled demo classifier, :func:`hrpqct_web.results.resolve_classifier`).
    """

    def __init__(self, scene: Any, logic: Any, data_dir: str | os.PathLike = ".", *,
                 model: Optional[str] = None, device: str = "cpu",
                 review_slices: int = 10, classifier: Optional[str] = None) -> None:
        self.scene = scene
        self.logic = logic
        self.data_dir = Path(data_dir).resolve()
        self.model = model
        self.device = device
        self.review_slices = review_slices
        self.scan_path: Optional[Path] = None
        self.volume_node: Any = None
        self.seg_node: Any = None
        self.task: Any = None
        self.results: Any = None
        self._review: Optional[_Review] = None
        self.classifier = classifier
        self.analysis_task: Any = None
        self.analysis: Any = None  # hrpqct_web.results.AnalysisResult of the open scan
        self._analysis_scan: Optional[Path] = None
        self._analysis_clinical: dict = {}
        self._models: dict = {}  # folder -> Future of SavedModel
        self._pool: Any = None

    # --- scans -----------------------------------------------------------------------------
    def list_scans(self) -> list[str]:
        """Scan files in the data folder (names, sorted; not its subfolders); segmentation
        files, label maps and kept previous versions excluded."""
        if not self.data_dir.is_dir():
            return []
        out = []
        for p in sorted(self.data_dir.iterdir()):
            name = p.name.lower()
            if not p.is_file() or name.startswith(".") or name.endswith(_SEG):
                continue
            if "label" in name or ".previous-" in name:
                continue
            if any(name.endswith(s) for s in SCAN_SUFFIXES):
                out.append(p.relative_to(self.data_dir).as_posix())
        return out

    def resolve(self, name: str | os.PathLike) -> Path:
        p = Path(name)
        return p if p.is_absolute() else self.data_dir / p

    @property
    def stem(self) -> str:
        return scan_stem(self.scan_path) if self.scan_path else "scan"

    @property
    def segmentation_path(self) -> Optional[Path]:
        """``<stem>.seg.nrrd`` next to the scan."""
        return self.scan_path.with_name(f"{self.stem}{_SEG}") if self.scan_path else None

    def open_scan(self, name: str | os.PathLike) -> Any:
        """Read the scan (HU) into a new volume node and drop the previous scan's nodes.

        The scan is read completely before anything in the scene changes, so a file that is not
        a scan raises :class:`InputError` and leaves the session as it was. A segmentation saved
        next to the scan is then loaded (see :meth:`open_segmentation`).
        """
        from hrpqct.io import read_scan
        from hrpqct_slicer import volume_to_node

        path = self.resolve(name)
        if not path.exists():
            raise InputError(f"{path}: no such file")
        try:
            volume = read_scan(path, unit="HU")
        except HRpQCTError:
            raise
        except Exception as exc:  # noqa: BLE001  readers of foreign formats raise anything
            raise InputError(f"{path.name}: not a readable scan ({type(exc).__name__}: "
                             f"{str(exc).splitlines()[0] if str(exc) else 'unreadable'})") from exc
        if volume.array.ndim != 3:
            raise InputError(f"{path.name}: not a 3D scan (shape {volume.array.shape})")
        self.cancel()
        self.cancel_analysis()
        self._clear()
        self.scan_path = path
        self.volume_node = volume_to_node(self.scene, volume, name=self.stem)
        self._load_confidence(SegmentOutputs(path.parent, self.stem).confidence)
        seg = self.segmentation_path
        if seg is not None and seg.is_file():
            self.open_segmentation(seg)
        return self.volume_node

    def _clear(self) -> None:
        for node in (self.seg_node, self.volume_node):
            if node is not None and self.scene.IsNodePresent(node):
                for i in range(node.GetNumberOfDisplayNodes()):
                    d = node.GetNthDisplayNode(i)
                    if d is not None:
                        self.scene.RemoveNode(d)
                self.scene.RemoveNode(node)
        if self.results is not None:
            from hrpqct_slicer.seg_logic import remove_results

            remove_results(self.scene, self.results, keep_segmentation=True)
        self.volume_node = self.seg_node = self.results = None
        self._review = None
        self.analysis = None
        self.analysis_task = None
        self.scan_path = None

    def open_segmentation(self, name: str | os.PathLike) -> Any:
        """Load a ``.seg.nrrd`` (seven regions or the model's five classes, matched by id, name
        or terminology) onto the open scan. A file on another grid raises
        :class:`hrpqct.errors.GeometryError`; the current segmentation stays as it was."""
        from hrpqct.io import read_segmentation_file
        from hrpqct.regions import MODEL_CLASSES

        self._need_scan()
        path = self.resolve(name)
        try:
            labels = read_segmentation_file(path)
            table = REGIONS
        except InputError:
            labels = read_segmentation_file(path, table=MODEL_CLASSES)
            table = MODEL_CLASSES
        labels.source = Path(path.name)
        self._set_labels(labels, table)
        return self.seg_node

    def _set_labels(self, labels, table=REGIONS) -> None:
        """Put a label map into the segmentation node (new node, swapped in only on success)."""
        from hrpqct_slicer import labelmap_to_segmentation

        node = labelmap_to_segmentation(self.scene, self.logic, labels, reference=self.volume_node,
                                        table=table, name=f"{self.stem} regions")
        if self.seg_node is not None and self.scene.IsNodePresent(self.seg_node):
            self.scene.RemoveNode(self.seg_node)
        self.seg_node = node
        self.ensure_all_regions()

    def ensure_all_regions(self) -> None:
        """Give the segmentation a segment for every one of the seven regions (empty ones too,
        so a region the model missed can be painted), in label order, names and colours from
        :mod:`hrpqct.regions`. A 5-class segmentation is left as it is."""
        from hrpqct.terminology import terminology_entry

        if self.seg_node is None:
            return
        seg = self.seg_node.GetSegmentation()
        ids = [seg.GetNthSegmentID(i) for i in range(seg.GetNumberOfSegments())]
        if "ST" in ids:
            return
        for r in REGIONS:
            if seg.GetSegment(r.segment_id) is None:
                seg.AddEmptySegment(r.segment_id, r.name, list(r.color_float))
                segment = seg.GetSegment(r.segment_id)
                segment.SetTerminology(terminology_entry(r))
                segment.SetNameAutoGenerated(False)
                segment.SetColorAutoGenerated(False)
        # label order in the segment list
        for k, r in enumerate(REGIONS):
            seg.SetSegmentIndex(r.segment_id, k)

    def _need_scan(self) -> None:
        if self.volume_node is None:
            raise InputError("open a scan first")

    def _need_segmentation(self) -> None:
        self._need_scan()
        if self.seg_node is None:
            raise InputError(f"{self.stem}: no segmentation yet; run the segmentation first")

    # --- segmentation in the background ----------------------------------------------------
    def start_segmentation(self):
        """Start ``hrpqct segment`` of the open scan in a background process; returns its
        :class:`~hrpqct_slicer.JobStatus`. Poll with :meth:`poll`."""
        from hrpqct_slicer import SegmentationTask

        self._need_scan()
        if self.task is not None and not self.task.status.finished:
            raise InputError(f"{self.stem}: a segmentation is already running")
        out = Path(tempfile.mkdtemp(prefix=f"hrpqct-web-{self.stem}-"))
        self.task = SegmentationTask(self.volume_node, model=self.model, device=self.device,
                                     out_dir=out, name=self.stem)
        return self.task.start()

    def poll(self):
        """Advance the background run; once it has succeeded its segmentation replaces the
        current one (and its confidence drives :meth:`next_review_slice`). Returns the status
        (``None`` without a run)."""
        if self.task is None:
            return None
        status = self.task.poll()
        if status.state == "succeeded" and self.results is None:
            self._load_run()
        return status

    def _load_run(self) -> None:
        from hrpqct_slicer import load_segmentation_results
        from hrpqct_slicer.seg_logic import remove_results

        if self.results is not None:
            remove_results(self.scene, self.results, keep_segmentation=True)
        task = self.task
        res = load_segmentation_results(self.scene, self.logic, task.out_dir, task.stem,
                                        self.volume_node, segmentation_node=self.seg_node,
                                        review_slices=self.review_slices, model=task.model)
        self.results = res
        self.seg_node = res.segmentation
        self.seg_node.SetName(f"{self.stem} regions")
        self.ensure_all_regions()
        self._load_confidence(SegmentOutputs(task.out_dir, task.stem).confidence)

    def cancel(self):
        """Stop a running segmentation (its files are discarded); returns the status."""
        if self.task is None or self.task.status.finished:
            return None if self.task is None else self.task.status
        return self.task.cancel()

    # --- review ----------------------------------------------------------------------------
    def _load_confidence(self, path: Path) -> None:
        import pandas as pd

        from hrpqct_slicer import least_confident_slices

        if not path.is_file():
            return
        conf = pd.read_csv(path)
        if "mean_max_prob" not in conf.columns:
            return
        values = conf["mean_max_prob"].to_numpy(dtype=float)
        nz = self._n_slices()
        if nz is not None and len(values) != nz:
            return  # another scan's file
        order = [int(k) for k in least_confident_slices(values, max(1, self.review_slices))]
        self._review = _Review(values, order)

    def _n_slices(self) -> Optional[int]:
        image = self.volume_node.GetImageData() if self.volume_node is not None else None
        return image.GetDimensions()[2] if image is not None else None

    @property
    def review_order(self) -> list[int]:
        """Slices to review, least confident first (empty without a confidence table)."""
        return list(self._review.order) if self._review else []

    def confidence(self, k: int) -> Optional[float]:
        return float(self._review.confidence[k]) if self._review else None

    def next_review_slice(self) -> tuple[int, int, float]:
        """The next of the least confident slices, in turn (after the last, the first again):
        ``(slice index, its rank from 1, its confidence)``. Centres the slice views on it."""
        from hrpqct_slicer import jump_to_slice

        self._need_scan()
        if not self._review or not self._review.order:
            raise InputError(f"{self.stem}: no per-slice confidence; run the segmentation first")
        r = self._review
        r.position = (r.position + 1) % len(r.order)
        k = r.order[r.position]
        jump_to_slice(self.scene, self.volume_node, k)
        return k, r.position + 1, float(r.confidence[k])

    # --- labels, refine, summary -------------------------------------------------------------
    def labels(self):
        """The current segmentation as a label map on the scan's grid
        (:func:`hrpqct_slicer.segmentation_to_labelmap`): ``(Volume, kind)``."""
        from hrpqct_slicer import segmentation_to_labelmap
        from hrpqct_slicer.seg_logic import segmentation_kind

        self._need_segmentation()
        table, kind = segmentation_kind(self.seg_node)
        return segmentation_to_labelmap(self.scene, self.logic, self.seg_node, self.volume_node,
                                        table=table), kind

    def refine(self, only: Optional[str] = None, progress=None):
        """Re-apply the topology rules (``only="topology"``), the soft-tissue split
        (``"split"``) or both (``None``) to the edited segmentation, in place
        (:func:`hrpqct_slicer.refine_segmentation`; hand-painted MT/AT are kept). Returns its
        :class:`~hrpqct_slicer.seg_logic.RefineResult`."""
        from hrpqct_slicer import refine_segmentation

        self._need_segmentation()
        result = refine_segmentation(self.scene, self.logic, self.seg_node, self.volume_node,
                                     only=only, progress=progress)
        self.ensure_all_regions()
        return result

    def summary(self):
        """:func:`hrpqct.seg.summary.summarize` of the current segmentation: a DataFrame, one
        row per region (voxels, volume mm3, mean area mm2, mean HU, ...)."""
        from hrpqct.seg.summary import summarize
        from hrpqct_slicer.seg_logic import scan_volume

        labels, kind = self.labels()
        table = REGIONS
        if kind == "model":
            from hrpqct.regions import MODEL_CLASSES

            table = MODEL_CLASSES
        image = scan_volume(self.volume_node)
        return summarize(labels.array, image.array, image.spacing, table=table).regions

    # --- save and export ---------------------------------------------------------------------
    def save(self, now: _dt.datetime | None = None) -> SavedFiles:
        """Write the segmentation to ``<stem>.seg.nrrd`` next to the scan.

        Never loses a saved version: an existing file is first copied to
        ``<stem>.previous-<UTC time>.seg.nrrd``, then the new file is written to a temporary
        name in the same folder and moved over the old one (:func:`hrpqct_slicer.save_segmentation`).
        If anything fails, the old file is still in place. The per-slice confidence, if known, is
        written as ``<stem>_confidence.csv`` so the review order survives a restart.
        """
        from hrpqct_slicer import save_segmentation

        self._need_segmentation()
        self.labels()  # refuse unmatched / overlapping segments before touching any file
        target = self.segmentation_path
        previous = None
        if target.exists():
            previous = target.with_name(previous_name(self.stem, now))
            from hrpqct.io.atomic import atomic_path

            with atomic_path(previous, verify=False) as tmp:
                shutil.copy2(target, tmp)
        save_segmentation(self.scene, self.seg_node, target)
        conf = None
        if self._review is not None:
            import pandas as pd

            from hrpqct.seg.inference import write_csv_atomic

            conf = write_csv_atomic(
                SegmentOutputs(target.parent, self.stem).confidence,
                pd.DataFrame({"slice": np.arange(len(self._review.confidence)),
                              "mean_max_prob": self._review.confidence}))
        return SavedFiles(target, previous, conf)

    def export(self, folder: str | os.PathLike, case_id: Optional[str] = None,
               annotator: Optional[str] = None):
        """Export the corrected scan as a training case (:func:`hrpqct_slicer.export_for_training`,
        the layout ``hrpqct train-seg`` reads) into ``folder`` (relative: in the data folder)."""
        from hrpqct_slicer import export_for_training

        self._need_segmentation()
        from hrpqct_slicer.seg_logic import safe_stem

        return export_for_training(
            self.scene, self.logic, self.seg_node, self.volume_node, self.resolve(folder),
            case_id or safe_stem(self.stem), annotator=annotator,
            source=f"hrpqct serve: {self.scan_path}")

    # --- radiomics + classification ----------------------------------------------------------
    def _model_future(self, folder: Path):
        """The classifier at ``folder``, loaded once in a worker thread (skops' import takes
        seconds; the page keeps working meanwhile)."""
        from concurrent.futures import ThreadPoolExecutor

        from hrpqct.classify.model import load_model

        key = str(folder)
        fut = self._models.get(key)
        if fut is None or (fut.done() and fut.exception() is not None):
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hrpqct-model")
            fut = self._pool.submit(load_model, folder)
            self._models[key] = fut
        return fut

    def start_analysis(self, *, slices: Optional[str] = None,
                       clinical: Optional[dict] = None, classifier: Optional[str] = None):
        """Start "Radiomics + classify" of the open scan with its current segmentation (the
        seven regions, as edited): the paper preset's radiomics of the six regions in a
        background process, ``slices`` (``"0:168:4"``, ``"10,20"``; default all) for a quick
        look. Returns the :class:`~hrpqct_slicer.JobStatus`; poll with :meth:`poll_analysis`.
        ``classifier``: folder or catalogue id (default: the session's)."""
        from hrpqct.method import RADIOMICS
        from hrpqct.regions import RADIOMICS_REGIONS
        from hrpqct_slicer import RadiomicsTask

        from .results import resolve_classifier

        self._need_segmentation()
        if self.analysing:
            raise InputError(f"{self.stem}: radiomics are already running")
        if self.task is not None and not self.task.status.finished:
            raise InputError(f"{self.stem}: wait for the segmentation to finish")
        if slices is not None and not str(slices).strip():
            slices = None
        if slices is not None:
            from hrpqct.radiomics.commands import _parse_slices

            nz = self._n_slices() or 0
            zs = _parse_slices(str(slices), nz)
            if not zs or any(not 0 <= z < nz for z in zs):
                raise InputError(f"slices {slices!r}: choose slices of 0..{nz - 1} "
                                 "('start:stop:step' or a comma list)")
        if classifier is not None:
            self.classifier = classifier
        folder = resolve_classifier(self.classifier)
        self._model_future(folder)  # loads while the radiomics run
        out = Path(tempfile.mkdtemp(prefix=f"hrpqct-web-radiomics-{self.stem}-"))
        from hrpqct_slicer.seg_logic import safe_stem

        task = RadiomicsTask(self.scene, self.logic, self.volume_node, self.seg_node,
                             preset=RADIOMICS.preset, regions=RADIOMICS_REGIONS,
                             out_file=out / f"{safe_stem(self.stem)}_features.parquet",
                             slices=None if slices is None else str(slices))
        self.analysis_task = task
        self._analysis_scan = self.scan_path
        self._analysis_folder = folder
        self._analysis_clinical = dict(clinical or {})
        self.analysis = None
        return task.start()

    def poll_analysis(self):
        """Advance "Radiomics + classify": once the radiomics have succeeded and the classifier
        is loaded, :attr:`analysis` holds the tables and the prediction (state ``"classifying"``
        until the model is loaded). Returns the status (``None`` without a run)."""
        task = self.analysis_task
        if task is None:
            return None
        status = task.poll()
        if status.state != "succeeded" or self.analysis is not None:
            return status
        if self._analysis_scan != self.scan_path:
            return status  # another scan was opened meanwhile
        fut = self._model_future(self._analysis_folder)
        if not fut.done():
            return _Classifying(status)
        import pandas as pd

        from .results import AnalysisResult

        slices = pd.read_parquet(task.slice_file)
        patient = pd.read_parquet(task.patient_file)
        self.analysis = AnalysisResult(slices=slices, patient=patient, slice_file=task.slice_file)
        self.classify(clinical=self._analysis_clinical)
        return status

    def classify(self, classifier: Optional[str] = None, clinical: Optional[dict] = None):
        """Predict with the classifier (folder or catalogue id; default the session's) from the
        radiomics of the last run, waiting for the model to load. A model made for other
        features (another preset, missing regions or features) or needing a clinical value not
        given leaves :attr:`analysis` with no prediction and its one-line ``error``. Returns
        :attr:`analysis`."""
        from hrpqct.classify.model import predict
        from hrpqct.errors import HRpQCTError

        from .results import resolve_classifier

        if self.analysis is None:
            raise InputError(f"{self.stem}: run the radiomics first")
        a = self.analysis
        a.prediction, a.error = None, ""
        try:
            folder = resolve_classifier(classifier if classifier is not None else self.classifier)
            a.model_folder = folder
            model = self._model_future(folder).result()
        except HRpQCTError as exc:
            a.error = f"classifier: {str(exc).splitlines()[0]}"
            return a
        meta = model.metadata
        a.model_title = str(meta.get("title", folder.name))
        a.clinical_use = bool(meta.get("clinical_use", False))
        a.notes = list(meta.get("notes", []))
        a.metadata = meta
        try:
            a.prediction = predict(model, a.slices, clinical=clinical, preset="paper")[0]
        except HRpQCTError as exc:
            text = str(exc).splitlines()[0].replace("(e.g. --clinical age=70)",
                                                    "in the Clinical field, e.g. age=70")
            a.error = f"the classifier {folder.name} does not fit these features: {text}"
        return a

    def cancel_analysis(self):
        """Stop running radiomics (nothing is kept); returns the status."""
        task = self.analysis_task
        if task is None or task.status.finished:
            return None if task is None else task.status
        return task.cancel()

    @property
    def analysing(self) -> bool:
        """A "Radiomics + classify" run is under way (radiomics running or the model loading)."""
        task = self.analysis_task
        if task is None or self.analysis is not None:
            return False
        return task.status.state in ("created", "running", "succeeded")


class _Classifying:
    """A running-looking view of a finished radiomics job while the classifier loads."""

    def __init__(self, status) -> None:
        self._s = status

    def __getattr__(self, name):
        return getattr(self._s, name)

    finished = False
    state = "running"
    fraction = 0.99

    def text(self) -> str:
        return "Radiomics done; loading the classifier..."
