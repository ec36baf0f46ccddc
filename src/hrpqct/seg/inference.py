"""Whole-scan SegFormer inference: streaming, on CUDA / Apple MPS / CPU, with per-slice confidence.

:func:`segment_volume` runs a model over a scan slice by slice in batches and returns the
5-class label volume on the scan's own grid (same shape, spacing, origin, direction) and a
per-slice confidence table. Only one batch of slices, its network input and one upsampled crop
are in memory at a time besides the input and output volumes: no per-slice logits are kept.

* Device: ``"auto"`` is CUDA, then MPS, then CPU. GPUs run in float16; on a GPU out-of-memory
  error the batch is halved and retried, and at batch 1 the run moves to the CPU and says so
  (a warning in the log and :attr:`SegmentationResult.fallback`).
* CPU: the fast path of :mod:`hrpqct.seg.fastcpu` by default (exact; PyTorch, or ONNX Runtime
  with ``cpu_backend="onnxruntime"``; ``quantize=True`` for int8; ``fast_cpu=False`` turns it off).
* Progress: ``progress(done_slices, total_slices)``; returning ``False`` (or a cancelled
  :class:`hrpqct.progress.CancelToken`) stops the run with :class:`hrpqct.errors.Cancelled`.
* Confidence per slice, over the limb (tissue above the preprocessing threshold, at the network
  output's resolution): mean of the maximum softmax probability (0-1, higher is surer) and mean
  entropy of the softmax (nats, 0 = certain, ln 6 = 1.79 = uniform). Sort by either to send an
  annotator to the slices most likely to need correction.
"""

from __future__ import annotations

import copy
import logging
import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from ..errors import InputError, ModelError
from ..progress import ProgressCallback, report
from ..volume import Volume
from ..method import INFERENCE
from .device import empty_cache, inference_dtype, is_out_of_memory, select_device
from .preprocess import CropBox, InputSpec, extract_crops, logits_to_labels, normalise, plan_crop, resample_to_input

log = logging.getLogger(__name__)

__all__ = [
    "SegmentationResult",
    "BatchOutput",
    "Predictor",
    "make_predictor",
    "default_batch_size",
    "segment_batches",
    "segment_volume",
    "slice_confidence",
    "CONFIDENCE_COLUMNS",
]

CONFIDENCE_COLUMNS = ("slice", "mean_max_prob", "mean_entropy", "limb_pixels")
_DEFAULT_BATCH = {"cuda": 8, "mps": 4, "cpu": 2}


LARGE_SCAN_BYTES = 1 << 30  # CPU: scans larger than this (in memory) run one slice at a time


def default_batch_size(device, scan_bytes: int = 0) -> int:
    """Slices per forward pass: 8 on CUDA, 4 on MPS, 2 on the CPU (see bench/bench_seg_cpu.py).

    On the CPU a scan of more than :data:`LARGE_SCAN_BYTES` runs one slice at a time: a full
    XtremeCT II scan (1.7 GB as int16) then stays under 4 GB of memory in all
    (``bench/bench_seg_memory.py --command``; batch 2 holds ~260 MB more network activations of
    the paper's B3 and is ~6 % faster).
    """
    import torch

    kind = torch.device(device).type
    if kind == "cpu" and scan_bytes > LARGE_SCAN_BYTES:
        return 1
    return _DEFAULT_BATCH.get(kind, 1)


# --- the network on a device -----------------------------------------------------------------
class Predictor:
    """A model on one device: ``pixel_values [b, 1, S, S]`` (CPU float32) -> float32 logits.

    GPU: a float16 copy of the model on the device (the caller's model stays on the CPU in
    float32, for a fallback). CPU: :func:`hrpqct.seg.fastcpu.fast_cpu_model` if ``fast_cpu``
    (per ``cpu_backend``: ``"auto"`` (fastest measured, cached), ``"onnxruntime"``, ``"openvino"``,
    ``"torch"``, or ``None`` for ``$HRPQCT_CPU_BACKEND``/auto), else the model as is. Logits stay on the
    device (labels are computed there too).
    """

    def __init__(self, model, device="cpu", *, fast_cpu: bool = True, quantize: bool = False,
                 cpu_backend: str | None = None) -> None:
        import torch

        self.model = model.eval()
        self.device = torch.device(device)
        self.dtype = inference_dtype(self.device)
        self.fast_cpu = bool(fast_cpu) and self.device.type == "cpu"
        self.quantize = bool(quantize)
        self.cpu_backend = cpu_backend
        if self.device.type == "cpu":
            if self.fast_cpu:
                from .fastcpu import fast_cpu_model

                self.net = fast_cpu_model(self.model, backend=cpu_backend, quantize=quantize)
            else:
                self.net = self.model
        else:
            self.net = copy.deepcopy(self.model).to(device=self.device, dtype=self.dtype).eval()

    def __call__(self, pixel_values):
        import torch

        with torch.inference_mode():
            x = pixel_values.to(device=self.device, dtype=self.dtype)
            out = self.net(x)
            logits = out if isinstance(out, torch.Tensor) else out.logits
            return logits.float()

    def on_cpu(self) -> "Predictor":
        """The same model as a CPU predictor (float32, fast path as configured)."""
        self.net = None  # release the GPU copy first
        empty_cache(self.device)
        return Predictor(self.model, "cpu", fast_cpu=True, quantize=self.quantize,
                         cpu_backend=getattr(self, "cpu_backend", None))

    @property
    def backend(self) -> str:
        """What computes the logits: ``"onnxruntime"``, ``"torch"``, ``"torch (onnxruntime
        fallback)"`` (fast path), ``"plain"`` (CPU, no fast path) or ``"float16"`` (GPU)."""
        if self.device.type != "cpu":
            return "float16"
        return getattr(self.net, "backend", "torch") if self.fast_cpu else "plain"

    def describe(self) -> str:
        what = f"fast CPU path, {self.backend}" if self.fast_cpu else self.backend
        if self.fast_cpu and self.quantize:
            what += ", int8"
        return f"{self.device} ({what})"


def make_predictor(model, device, *, fast_cpu: bool = True, quantize: bool = False,
                   cpu_backend: str | None = None) -> Predictor:
    """Build the :class:`Predictor` (a seam for tests that simulate GPUs)."""
    return Predictor(model, device, fast_cpu=fast_cpu, quantize=quantize, cpu_backend=cpu_backend)


# --- confidence ------------------------------------------------------------------------------
def slice_confidence(logits, limb_fraction,
                     min_fraction: float = INFERENCE.confidence_limb_fraction) -> np.ndarray:
    """Per slice ``[b, 3]``: mean max-probability, mean entropy (nats), limb pixel count.

    ``logits [b, C, h, w]``; ``limb_fraction [b, h, w]``: fraction of each output pixel that is
    tissue; pixels with fraction >= ``min_fraction`` are averaged (all pixels if a slice has none).
    """
    import torch

    p = torch.softmax(logits.float(), dim=1)
    maxp = p.amax(dim=1)
    ent = -(p * torch.log(p.clamp_min(1e-12))).sum(dim=1)
    limb = (limb_fraction >= min_fraction).to(maxp.device)
    out = np.zeros((logits.shape[0], 3), dtype=np.float64)
    for i in range(logits.shape[0]):
        m = limb[i]
        n = int(m.sum())
        if n == 0:
            m = torch.ones_like(m)
        out[i] = (float(maxp[i][m].mean()), float(ent[i][m].mean()), n)
    return out


# --- result ----------------------------------------------------------------------------------
@dataclass
class SegmentationResult:
    """Labels (model classes 0-5, uint8) on the input grid, per-slice confidence, and run facts."""

    labels: Volume
    confidence: Any  # pandas.DataFrame with CONFIDENCE_COLUMNS, one row per slice
    device: str  # where the run finished
    requested_device: str
    batch_size: int  # at the end of the run (smaller than asked after an out-of-memory retry)
    fast_cpu: bool
    seconds: float
    crop: CropBox
    input_spec: InputSpec
    model_name: str = ""
    fallback: str | None = None  # what went wrong on the GPU and what was done instead
    notes: list[str] = field(default_factory=list)
    limb_truncated: bool = False  # the limb is wider than the crop: its edges are background
    #: slice -> bone Dice of the slice's labels and its mirror's (``flip_check``; test-time
    #: augmentation, :func:`hrpqct.seg.ood.flip_agreement`)
    flip_agreement: dict = field(default_factory=dict)

    @property
    def slices_per_second(self) -> float:
        return self.labels.shape[0] / self.seconds if self.seconds > 0 else float("nan")

    def confidence_array(self, column: str = "mean_max_prob") -> np.ndarray:
        return self.confidence[column].to_numpy()

    def least_confident(self, n: int = 10) -> np.ndarray:
        """Indices of the ``n`` slices with the lowest mean max-probability (most doubtful first)."""
        return np.argsort(self.confidence_array(), kind="stable")[:n]

    def write_confidence_csv(self, path: str | os.PathLike) -> Path:
        """Write the per-slice confidence table as CSV (atomically)."""
        return write_csv_atomic(path, self.confidence)


def write_csv_atomic(path: str | os.PathLike, frame) -> Path:
    from ..io.atomic import atomic_path

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="", encoding="utf-8") as fh:
            frame.to_csv(fh, index=False, float_format="%.6g")
    return path


# --- streaming core --------------------------------------------------------------------------
@dataclass
class BatchOutput:
    """One processed batch: slices ``start:stop`` of the output were written; their confidence."""

    start: int
    stop: int
    confidence: np.ndarray  # [stop - start, 3]: mean_max_prob, mean_entropy, limb_pixels
    device: str
    batch_size: int


@dataclass
class _RunState:
    predictor: Predictor
    batch_size: int
    fallback: str | None = None
    notes: list[str] = field(default_factory=list)


def _to_hu(volume: Volume):
    """``None`` for HU volumes, else the function converting stored values to HU."""
    if volume.unit == "HU":
        return None
    if volume.unit == "mgHA/ccm" and volume.calibration is not None:
        return volume.calibration.density_to_hu
    raise InputError(f"{volume.source or 'volume'}: segmentation needs HU (or mgHA/ccm with a "
                     f"calibration), got unit {volume.unit!r}")


def _file_map(array: np.ndarray):
    """The read-only ``mmap`` behind ``array`` (a view of a ``np.memmap``), else ``None``."""
    a = array
    while a is not None:
        if isinstance(a, np.memmap) and getattr(a, "mode", None) == "r":
            return getattr(a, "_mmap", None)
        a = getattr(a, "base", None)
    return None


def _release_pages(array: np.ndarray, start: int, stop: int) -> None:
    """Let the kernel drop slices ``start:stop`` of a read-only memory-mapped input from this
    process's resident memory once they are processed (they stay in the page cache and are read
    again if needed), so a memory-mapped scan does not accumulate in RSS. No-op otherwise."""
    import mmap

    mm = _file_map(array)
    if mm is None or not array.flags.c_contiguous or not hasattr(mm, "madvise"):
        return
    try:
        base = np.frombuffer(mm, dtype=np.uint8).ctypes.data
        lo = array[start].ctypes.data - base
        hi = lo + (stop - start) * array.strides[0]
        page = mmap.PAGESIZE
        lo, hi = -(-lo // page) * page, (hi // page) * page
        if hi > lo:
            mm.madvise(mmap.MADV_DONTNEED, lo, hi - lo)
    except (ValueError, OSError, AttributeError):  # pragma: no cover - best effort
        pass


def _hu_reader(volume: Volume):
    """A function ``(start, stop) -> float32 HU slices``, converting units batch by batch."""
    where = volume.source or "volume"
    conv = _to_hu(volume)
    arr = volume.array

    def read(start: int, stop: int) -> np.ndarray:
        s = np.array(arr[start:stop], dtype=np.float32)
        _release_pages(arr, start, stop)
        if conv is not None:
            s = conv(s)
        if not np.isfinite(s).all():
            bad = start + int(np.flatnonzero(~np.isfinite(s).reshape(s.shape[0], -1).all(axis=1))[0])
            raise InputError(f"{where}: slice {bad} contains NaN or infinite values")
        return s

    return read


def segment_batches(
    volume: Volume,
    predictor: Predictor,
    out: np.ndarray,
    box: CropBox,
    spec: InputSpec,
    batch_size: int,
    state: _RunState | None = None,
) -> Iterator[BatchOutput]:
    """Run the scan through ``predictor`` batch by batch, writing labels into ``out``.

    A generator: each step reads ``batch_size`` slices, predicts, writes their labels into
    ``out[start:stop]`` and yields a :class:`BatchOutput`; nothing else is kept between steps.
    Out-of-memory on a GPU: the batch size is halved and the same slices retried; at batch 1
    the predictor moves to the CPU (recorded in ``state``).
    """
    import torch
    import torch.nn.functional as F

    state = state or _RunState(predictor, batch_size)
    read = _hu_reader(volume)
    nz, h, w = volume.shape
    start = 0
    while start < nz:
        stop = min(start + state.batch_size, nz)
        crops = extract_crops(read(start, stop), box, spec.pad_hu)
        tissue = torch.from_numpy((crops > spec.limb_threshold_hu).astype(np.float32))[:, None]
        x = resample_to_input(normalise(crops, spec.clip_hu), spec)
        del crops
        try:
            logits = state.predictor(x)
            limb = F.adaptive_avg_pool2d(tissue, logits.shape[-2:])[:, 0]
            conf = slice_confidence(logits, limb)
            logits_to_labels(logits, box, (h, w), spec.upsample, out=out[start:stop])
        except Exception as exc:  # noqa: BLE001 - only out-of-memory is handled, the rest re-raised
            if not is_out_of_memory(exc) or state.predictor.device.type == "cpu":
                raise
            dev = state.predictor.device
            empty_cache(dev)
            if state.batch_size > 1:
                new = max(1, state.batch_size // 2)
                msg = f"{dev} out of memory at batch size {state.batch_size}; retrying with {new}"
                log.warning(msg)
                state.notes.append(msg)
                state.batch_size = new
            else:
                msg = f"{dev} out of memory at batch size 1; continuing on the CPU"
                log.warning(msg)
                state.notes.append(msg)
                state.fallback = msg
                state.predictor = state.predictor.on_cpu()
                state.batch_size = default_batch_size("cpu")
            continue
        yield BatchOutput(start, stop, conf, str(state.predictor.device), stop - start)
        start = stop


def _as_loaded(model, device_hint=None):
    """(torch model, input spec, name) from a folder/catalogue id/None, LoadedModel or nn.Module."""
    from .model import LoadedModel, load_model

    if model is None or isinstance(model, (str, os.PathLike)):
        model = load_model(model if model is not None else _default_model())
    if isinstance(model, LoadedModel):
        return model.model, model.input_spec, model.card.name
    if hasattr(model, "config") and hasattr(model, "decode_head"):
        return model, InputSpec(), type(model).__name__
    raise ModelError(f"not a SegFormer model or model folder: {type(model).__name__}")


def _default_model():
    from .model import resolve_model

    return resolve_model(None)


def segment_volume(
    volume: Volume,
    model=None,
    *,
    device: str = "auto",
    batch_size: int | None = None,
    progress: ProgressCallback | None = None,
    fast_cpu: bool = True,
    quantize: bool = False,
    cpu_backend: str | None = None,
    input_spec: InputSpec | None = None,
    upsample: str | None = None,
    out: np.ndarray | None = None,
    flip_check: int = 0,
) -> SegmentationResult:
    """Segment a scan (HU, or mgHA/ccm with calibration) into the 5 model classes.

    ``model``: a model folder, a catalogue id, a :class:`~hrpqct.seg.model.LoadedModel`, a
    ``SegformerForSemanticSegmentation`` or ``None`` (the catalogue's default model).
    ``input_spec`` overrides the model card's preprocessing, ``upsample`` just its
    ``"bilinear"``/``"nearest"`` choice. ``fast_cpu``/``quantize``/``cpu_backend``: the CPU path
    (see :class:`Predictor`). ``out``: optional uint8 array (e.g. a memory map) of the
    volume's shape to write the labels into. ``flip_check``: run this many evenly spaced
    slices again, mirrored left-right, and record the bone agreement of the two
    (:func:`hrpqct.seg.ood.flip_agreement`) in the confidence table's ``flip_agreement``
    column (NaN on the other slices). Returns a :class:`SegmentationResult`.
    """
    import pandas as pd

    t0 = time.perf_counter()
    net, spec, name = _as_loaded(model)
    spec = input_spec or spec
    if upsample is not None:
        spec = replace(spec, upsample=upsample)
    dev = select_device(device)
    bs = int(batch_size) if batch_size else default_batch_size(dev, np.asarray(volume.array).nbytes)
    if bs < 1:
        raise InputError(f"batch size must be >= 1, got {batch_size}")
    nz = volume.shape[0]
    if out is None:
        out = np.zeros(volume.shape, dtype=np.uint8)
    elif out.shape != volume.shape or out.dtype != np.uint8:
        raise InputError(f"output array must be uint8 of shape {volume.shape}, got {out.dtype} {out.shape}")

    box, facts = plan_crop(volume.array, volume.spacing, spec, to_hu=_to_hu(volume))
    if facts["limb_truncated"]:
        log.warning("%s: the limb (%s px) is wider than the %.1f mm crop; its edges are labelled "
                    "background", volume.source or "volume", facts["limb_box"], spec.crop_mm)
    if facts["limb_box"] is None:
        log.warning("%s: no tissue above %g HU found; cropping the slice centre",
                    volume.source or "volume", spec.limb_threshold_hu)

    state = _RunState(make_predictor(net, dev, fast_cpu=fast_cpu, quantize=quantize,
                                     cpu_backend=cpu_backend), bs)
    log.info("segmenting %d slices on %s, batch %d", nz, state.predictor.describe(), bs)
    conf = np.zeros((nz, 3), dtype=np.float64)
    report(progress, 0, nz)
    for b in segment_batches(volume, state.predictor, out, box, spec, bs, state):
        conf[b.start:b.stop] = b.confidence
        report(progress, b.stop, nz)

    table = pd.DataFrame({
        "slice": np.arange(nz, dtype=np.int64),
        "mean_max_prob": conf[:, 0],
        "mean_entropy": conf[:, 1],
        "limb_pixels": conf[:, 2].astype(np.int64),
    })
    flips: dict[int, float] = {}
    if flip_check and nz:
        from .ood import _sample_slices, flip_agreement

        flips = flip_agreement(volume, state.predictor, box, spec,
                               _sample_slices(nz, int(flip_check)))
        col = np.full(nz, np.nan)
        for k, v in flips.items():
            col[k] = v
        table["flip_agreement"] = col
    labels = volume.with_array(out, unit="label", segmentation_model=name)
    labels.calibration = None
    return SegmentationResult(
        labels=labels, confidence=table, device=str(state.predictor.device),
        requested_device=str(device), batch_size=state.batch_size,
        fast_cpu=state.predictor.fast_cpu, seconds=time.perf_counter() - t0, crop=box,
        input_spec=spec, model_name=name, fallback=state.fallback, notes=state.notes,
        limb_truncated=facts["limb_truncated"], flip_agreement=flips,
    )
