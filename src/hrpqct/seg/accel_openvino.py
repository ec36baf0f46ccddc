"""OpenVINO backend of the fast CPU path: the folded SegFormer run by OpenVINO's CPU plugin.

``pip install "hrpqct[fastcpu]"`` (``openvino``; ``nncf`` for int8). The network is the same
folded form as :class:`hrpqct.seg.fastcpu.FastSegformer`; it reaches OpenVINO through the ONNX
file that the ONNX Runtime backend exports and checks once per weights and input size
(:class:`hrpqct.seg.fastcpu.OrtSegformer`, cached under ``~/.cache/hrpqct/onnx``), so there is one
export for both runtimes and no second trace of the model.

* fp32 (``quantize=False``): OpenVINO reads the ONNX file and compiles it for this CPU with
  ``INFERENCE_PRECISION_HINT=f32`` (no bf16/fp16 down-casting, so the logits equal PyTorch's to
  float rounding; checked once per compiled model, max logit difference <= 1e-4 x (1 + max |logit|))
  and the latency hint (one stream, one inference thread per torch thread).
* int8 (``quantize=True``): post-training static quantisation by NNCF (``nncf.quantize`` with
  ``model_type=TRANSFORMER``: int8 weights and activations for convolutions and matrix products,
  with NNCF's transformer rules keeping the sensitive parts in fp32) calibrated on
  :data:`CALIBRATION_SLICES` synthetic phantom slices (``hrpqct.phantom``, generated on the fly,
  no download), preprocessed with the model's input size. It changes the logits; the label
  agreement is measured by ``bench/bench_seg_cpu.py`` and checked by the automatic choice
  (:mod:`hrpqct.seg.cpu_select`) on the caller's own first slice before it is ever chosen.
  The quantised model is saved as OpenVINO IR next to the ONNX file (same key) and reused.

The compiled model's kernels are cached by OpenVINO (``CACHE_DIR``, under the same folder), so a
later process starts in about a second.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..errors import ModelError

log = logging.getLogger(__name__)

__all__ = ["OvSegformer", "openvino_available", "nncf_available", "phantom_calibration_inputs",
           "CALIBRATION_SLICES"]

CALIBRATION_SLICES = 3  # phantom slices for the int8 calibration (NNCF)
CALIBRATION_SEED = 7311  # phantom subject used for calibration (fixed: the same file every time)
PARITY_ATOL = 1e-4
COMPILED_KEEP = 2  # compiled models kept alive in this process (B3: ~0.2 GB each)
_COMPILED: "OrderedDict[tuple[str, int], object]" = OrderedDict()


def openvino_available() -> bool:
    """True if ``openvino`` imports (and its CPU plugin loads)."""
    try:
        import openvino  # noqa: F401
    except Exception:  # noqa: BLE001 - ImportError, or a broken binary install
        return False
    return True


def nncf_available() -> bool:
    """True if ``nncf`` (OpenVINO's quantiser, needed for int8) imports."""
    try:
        with _quiet_logs():
            import nncf  # noqa: F401
    except Exception:  # noqa: BLE001
        return False
    return True


@contextlib.contextmanager
def _quiet_logs():
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        yield
    finally:
        logging.disable(previous)


def phantom_calibration_inputs(h: int, w: int, n: int = CALIBRATION_SLICES) -> list[np.ndarray]:
    """``n`` network inputs ``[1, 1, h, w]`` (float32) from full-size synthetic phantom slices,
    spread along the scan, preprocessed as the default :class:`~hrpqct.seg.preprocess.InputSpec`
    with ``input_px = h`` (square inputs only)."""
    from dataclasses import replace

    from ..phantom.anatomy import Anatomy
    from ..phantom.render import Grid
    from ..phantom.scan import iter_slices
    from .preprocess import InputSpec, plan_crop, preprocess_slices

    if h != w:
        raise ModelError(f"int8 calibration needs square inputs, got {h} x {w}")
    spec = replace(InputSpec(), input_px=int(h))
    grid = Grid()
    anat = Anatomy(seed=CALIBRATION_SEED)
    ks = np.linspace(10, grid.n_slices - 10, n).astype(int)
    out = []
    for k in ks:
        for _, hu, _, _ in iter_slices(anat, grid, int(k), int(k) + 1):
            vol = hu[None].astype(np.float32)
            box, _ = plan_crop(vol, (grid.pixel_mm, grid.pixel_mm, grid.z_mm), spec)
            out.append(preprocess_slices(vol, box, spec).numpy().astype(np.float32))
    return out


class OvSegformer:
    """A SegFormer's fast CPU form run by OpenVINO (one compiled model per input size).

    ``model``: a ``SegformerForSemanticSegmentation`` in eval mode (not modified). Call with
    ``pixel_values [b, 1, h, w]`` (float32, CPU) for logits ``[b, C, h/4, w/4]`` (a CPU tensor);
    slices run one at a time. Raises :class:`ModelError` when OpenVINO (or NNCF for int8) is
    missing; an export, compile or parity failure raises too (the caller decides on a fallback).
    """

    def __init__(self, model: nn.Module, *, quantize: bool = False, threads: int | None = None,
                 cache: str | os.PathLike | None = None) -> None:
        if not openvino_available():
            raise ModelError("the openvino CPU backend needs openvino: pip install 'hrpqct[fastcpu]'")
        if quantize and not nncf_available():
            raise ModelError("openvino int8 needs nncf: pip install 'hrpqct[fastcpu]'")
        from .fastcpu import OrtSegformer

        self.model = model.eval()
        self.quantize = bool(quantize)
        self.threads = int(threads) if threads else max(1, torch.get_num_threads())
        self._ort = OrtSegformer(model, threads=self.threads, cache=cache, strict=True)
        self.cache = self._ort.cache
        self._compiled: dict[tuple[int, int], object] = {}
        self.paths: dict[tuple[int, int], Path] = {}

    @property
    def backend(self) -> str:
        return "openvino"

    @property
    def key(self) -> str:
        return self._ort.key

    # -- files
    def _ir_int8(self, onnx_path: Path, h: int, w: int) -> Path:
        import nncf
        import openvino as ov

        xml = onnx_path.with_name(f"{onnx_path.stem}-ov-int8.xml")
        if xml.is_file() and xml.with_suffix(".bin").is_file():
            return xml
        log.info("quantising the network to int8 with NNCF (once per weights; %d phantom slices)",
                 CALIBRATION_SLICES)
        core = ov.Core()
        fp32 = core.read_model(str(onnx_path))
        data = phantom_calibration_inputs(h, w)
        with _quiet_logs():
            q = nncf.quantize(fp32, nncf.Dataset(data), model_type=nncf.ModelType.TRANSFORMER,
                              subset_size=len(data))
        tmp = xml.with_name(f".{xml.stem}.{os.getpid()}.tmp.xml")
        try:
            ov.save_model(q, str(tmp), compress_to_fp16=False)
            os.replace(tmp.with_suffix(".bin"), xml.with_suffix(".bin"))
            os.replace(tmp, xml)
        finally:
            tmp.unlink(missing_ok=True)
            tmp.with_suffix(".bin").unlink(missing_ok=True)
        return xml

    def _compile(self, h: int, w: int):
        import openvino as ov

        onnx_path = self._ort._fp32_file(h, w)  # exported and checked against PyTorch once
        path = self._ir_int8(onnx_path, h, w) if self.quantize else onnx_path
        self.paths[(h, w)] = path
        key = (str(path), self.threads)
        hit = _COMPILED.get(key)
        if hit is not None:  # compiled (and checked) earlier in this process
            _COMPILED.move_to_end(key)
            return hit
        core = ov.Core()
        blobs = self.cache / "openvino-blobs"
        with contextlib.suppress(OSError):
            blobs.mkdir(parents=True, exist_ok=True)
            core.set_property({"CACHE_DIR": str(blobs)})
        cfg = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": self.threads,
               "INFERENCE_PRECISION_HINT": "f32"}
        compiled = core.compile_model(str(path), "CPU", cfg)
        if not self.quantize:
            self._check(compiled, (1, 1, h, w))
        self._ort._torch_net = None
        _COMPILED[key] = compiled
        while len(_COMPILED) > COMPILED_KEEP:
            _COMPILED.popitem(last=False)
        return compiled

    def _check(self, compiled, shape) -> float:
        x = torch.rand(shape, generator=torch.Generator().manual_seed(1))  # as OrtSegformer._check
        done = getattr(self._ort, "checked", None)
        if done is not None and done[0] == tuple(shape):
            ref = done[1]  # computed by the ONNX export's check just now: not run again
        else:
            with torch.inference_mode():
                ref = self._ort.torch_net(x).numpy()
        got = compiled.create_infer_request().infer({0: x.numpy()})[0]
        diff = float(np.abs(got - ref).max())
        if got.shape != ref.shape or not diff <= PARITY_ATOL * (1.0 + float(np.abs(ref).max())):
            raise ModelError(f"OpenVINO network differs from PyTorch by {diff:.3g} (logits)")
        return diff

    def compiled(self, h: int, w: int):
        c = self._compiled.get((h, w))
        if c is None:
            c = self._compiled[(h, w)] = self._compile(h, w)
            self._request = {}
        return c

    def __call__(self, pixel_values: torch.Tensor) -> torch.Tensor:
        h, w = (int(v) for v in pixel_values.shape[-2:])
        compiled = self.compiled(h, w)
        req = getattr(self, "_request", {}).get((h, w))
        if req is None:
            req = compiled.create_infer_request()
            self._request = {**getattr(self, "_request", {}), (h, w): req}
        x = pixel_values.detach().to("cpu", torch.float32).contiguous().numpy()
        out = [np.array(req.infer({0: x[i:i + 1]})[0]) for i in range(x.shape[0])]
        return torch.from_numpy(np.concatenate(out) if len(out) > 1 else out[0])
