"""The fast CPU path: the same SegFormer, rewritten to do less arithmetic (PyTorch or ONNX Runtime).

Every step below is exact (the logits change only by float rounding, ~1e-6; the tests hold each
to 1e-4); int8 quantisation is the one approximation and is off unless asked for.

* **Folded decode head** (exact algebra). SegFormer's all-MLP head projects each encoder stage to
  D channels (a linear map), upsamples bilinearly to 1/4 of the input, concatenates the four maps
  (4D channels), and fuses them with a 1x1 convolution to D channels followed by batch
  normalisation. Linear maps commute with bilinear interpolation (its weights sum to one, so
  biases pass through), so ``BN(W_fuse [up(P_i x_i)]_i)`` equals ``sum_i up(W'_i x_i) + b'`` with
  ``W'_i = s * W_fuse,i @ P_i`` (``s`` the BN scale) and one folded bias. The fusion then runs on
  each stage at its own resolution with its own width (64...512 input channels) instead of a
  3072 -> 768 convolution at 200 x 200: for B3 at 800 x 800 that removes ~94 of the ~200 GMAC
  of a forward pass.
* **Channels-last activations** in PyTorch: convolution kernels in channels-last layout and
  token-major (NHWC) stage outputs, so the depthwise and reduction convolutions run on the
  activations as they are, without NCHW round trips.
* **Fused attention**: the encoder's efficient self-attention runs through
  ``torch.nn.functional.scaled_dot_product_attention`` (transformers >= 5 dispatches SegFormer's
  attention on ``config._attn_implementation``; the fast path sets ``"sdpa"`` on its own copy
  of the encoder whatever the model was loaded with). It never materialises the 40,000 x 625
  attention matrix of stage 1 on the PyTorch path.
* **ONNX Runtime** (opt-in backend, ``pip install "hrpqct[fastcpu]"``): the folded network is exported
  once per weights and input size to ONNX (``torch.onnx``; cached under
  ``~/.cache/hrpqct/onnx``, or ``$HRPQCT_CACHE_DIR/onnx``, keyed by a hash of the weights, see
  :mod:`.onnxcache`; never written into the model folder; no network needed) and run by ONNX Runtime with all graph
  optimisations (MatMul + bias fused into Gemm, fused LayerNorm/GELU, blocked NCHWc
  convolutions), one intra-op thread per torch thread, one slice per run (static shapes let ONNX
  Runtime fuse more). A fresh export is checked against the PyTorch fast path (max logit
  difference <= 1e-4 + 1e-4 x max |logit|) before it is cached. When onnxruntime is not
  installed, the export fails or the check does not pass, the PyTorch fast path is used and the
  log says why.
* Optional int8 (``quantize=True``): dynamic int8 quantisation of the MatMul weights (ONNX
  Runtime's ``quantize_dynamic``), or of the encoder's ``nn.Linear`` layers on the PyTorch path.
  It changes the logits (on the bench B3: 99.99 % of labels unchanged) for ~1.15x more speed
  with ONNX Runtime on this AVX2 CPU (no VNNI int8 instructions).

Backend choice (``backend=``, or ``$HRPQCT_CPU_BACKEND``): ``"auto"`` (the default) measures the
installed backends (``torch``, ``onnxruntime``, ``openvino``; with ``quantize=True`` also their
int8 forms, gated on label agreement) on the first slice of a model's first run and keeps the
fastest, cached per weights, input size and machine (:mod:`hrpqct.seg.cpu_select`; small networks
skip the measurement and run on PyTorch). ``"onnxruntime"`` asks for ONNX Runtime (raises
:class:`~hrpqct.errors.ModelError` if it is not installed; falls back to PyTorch with a warning if
the export or its check fails), ``"openvino"`` for OpenVINO (:mod:`hrpqct.seg.accel_openvino`),
``"torch"`` never exports. :data:`DEFAULT_BACKEND` is what small networks run. Figures and the
bench command: ``docs/segmentation.md`` ("Fast CPU path").

Use :func:`fast_cpu_model` on a model in eval mode (what :class:`hrpqct.seg.inference.Predictor`
does); the result is a callable taking ``pixel_values [b, 1, S, S]`` (float32, CPU) and
returning logits ``[b, C, S/4, S/4]``. :func:`optimise_for_cpu` gives the PyTorch form only.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import os
import warnings
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ModelError
from ..io.atomic import atomic_path
from .onnxcache import CACHE_ENV, CACHE_KEEP, EXPORT_FORMAT, OPSET  # noqa: F401 - re-exported
from .onnxcache import onnx_cache_dir, weights_key
from .onnxcache import prune_cache as _prune_cache

log = logging.getLogger(__name__)

__all__ = [
    "FoldedDecodeHead",
    "FastSegformer",
    "OrtSegformer",
    "optimise_for_cpu",
    "fast_cpu_model",
    "encoder_features",
    "onnxruntime_available",
    "resolve_backend",
    "onnx_cache_dir",
    "weights_key",
    "export_onnx",
    "CPU_BACKENDS",
    "DEFAULT_BACKEND",
]

CPU_BACKENDS = ("auto", "onnxruntime", "openvino", "torch")
BACKEND_ENV = "HRPQCT_CPU_BACKEND"
#: What ``backend="auto"`` runs for networks too small to measure (hrpqct.seg.cpu_select.MIN_WORK).
DEFAULT_BACKEND = "torch"
PARITY_ATOL = 1e-4  # export check: max |ORT - torch| <= PARITY_ATOL * (1 + max |logit|)


def _stage_parts(encoder: nn.Module):
    """The stages' (patch_embeddings, blocks, layer_norm) if this transformers version has them."""
    stages = getattr(encoder, "stages", None)
    if stages is None:
        return None
    try:
        return [(st.patch_embeddings, st.blocks, st.layer_norm) for st in stages]
    except AttributeError:
        return None


def encoder_features(encoder: nn.Module, pixel_values: torch.Tensor, channels_last: bool = False):
    """The four stage outputs of a ``SegformerModel``.

    ``channels_last=False``: ``[b, C_i, h_i, w_i]`` tensors as transformers returns them.
    ``channels_last=True``: ``[b, h_i, w_i, C_i]`` contiguous tensors, computed without the
    NCHW copies between stages (each stage's tokens are viewed as a channels-last image for the
    next patch embedding); needs the transformers >= 5 module layout, else falls back.
    """
    parts = _stage_parts(encoder) if channels_last else None
    if parts is None:
        feats = list(encoder(pixel_values, output_hidden_states=True).hidden_states)
        return [f.permute(0, 2, 3, 1).contiguous() for f in feats] if channels_last else feats
    feats, h = [], pixel_values
    b = pixel_values.shape[0]
    for embed, blocks, norm in parts:
        tokens, height, width = embed(h)
        for block in blocks:
            tokens = block(tokens, height, width)
        tokens = norm(tokens)
        nhwc = tokens.reshape(b, height, width, -1)
        feats.append(nhwc)
        h = nhwc.permute(0, 3, 1, 2)  # a channels-last view, no copy
    return feats


class FoldedDecodeHead(nn.Module):
    """``SegformerDecodeHead`` (eval mode) with projections, fusion and batch norm folded.

    Takes the stage outputs as ``[b, h_i, w_i, C_i]`` (channels last) and returns logits
    ``[b, num_labels, h_1, w_1]``, equal to the original head's up to float rounding.
    """

    def __init__(self, head: nn.Module) -> None:
        super().__init__()
        cfg = head.config
        if getattr(cfg, "reshape_last_stage", True) is False:
            raise ValueError("folding needs reshape_last_stage=True (the default)")
        n = len(head.linear_projections)
        d = cfg.decoder_hidden_size
        bn = head.batch_norm
        with torch.no_grad():
            w_fuse = head.linear_fuse.weight[:, :, 0, 0].double()  # [D, n*D]
            scale = bn.weight.double() / torch.sqrt(bn.running_var.double() + bn.eps)
            bias = bn.bias.double() - bn.running_mean.double() * scale
            weights = []
            for i, proj in enumerate(head.linear_projections):
                j = n - 1 - i  # the head concatenates the stages in reverse order
                wf = w_fuse[:, j * d:(j + 1) * d]
                w = scale[:, None] * (wf @ proj.proj.weight.double())  # [D, C_i]
                bias = bias + scale * (wf @ proj.proj.bias.double())
                weights.append(w.t().float().contiguous())  # [C_i, D] for tokens @ w
            cls_w = head.classifier.weight.detach()[:, :, 0, 0].t().float().contiguous()  # [D, K]
            cls_b = head.classifier.bias.detach().float().clone()
        for i, w in enumerate(weights):
            self.register_buffer(f"w{i}", w)
        self.register_buffer("bias", bias.float().contiguous())
        self.register_buffer("cls_w", cls_w)
        self.register_buffer("cls_b", cls_b)
        self.n = n

    def forward(self, feats: list[torch.Tensor]) -> torch.Tensor:
        size = feats[0].shape[1:3]
        acc = None
        for i, x in enumerate(feats):  # x: [b, h, w, C_i]
            y = torch.matmul(x, getattr(self, f"w{i}"))  # [b, h, w, D]
            if y.shape[1:3] != size:  # bilinear on a channels-last view: fast path in torch
                y = F.interpolate(y.permute(0, 3, 1, 2), size=size, mode="bilinear",
                                  align_corners=False).permute(0, 2, 3, 1)
            acc = y if acc is None else acc.add_(y)
        acc.add_(self.bias).relu_()
        logits = torch.addmm(self.cls_b, acc.reshape(-1, acc.shape[-1]), self.cls_w)
        return logits.reshape(*acc.shape[:3], -1).permute(0, 3, 1, 2).contiguous()


class FastSegformer(nn.Module):
    """SegFormer encoder + :class:`FoldedDecodeHead`: ``pixel_values -> logits`` (a tensor).

    The encoder is a copy (the caller's model is not modified), with ``"sdpa"`` attention and,
    if ``channels_last``, channels-last convolution kernels.
    """

    backend = "torch"

    def __init__(self, model: nn.Module, channels_last: bool = True) -> None:
        super().__init__()
        # a copy of the module tree that shares the caller's weights, except the convolution
        # kernels (4D), which become channels-last below: the paper's B3 keeps one copy of its
        # ~45 M linear-layer weights (180 MB) instead of two. Nothing here writes to a weight.
        shared = {id(p): p for p in model.segformer.parameters() if p.dim() != 4}
        enc = copy.deepcopy(model.segformer, memo=shared)
        _use_sdpa(enc)
        if channels_last:
            # convolution kernels in channels-last layout: oneDNN then keeps the token-major
            # activations as they are instead of converting them to NCHW and back (same values)
            enc = enc.to(memory_format=torch.channels_last)
        self.encoder = enc
        self.channels_last = channels_last
        self.head = FoldedDecodeHead(model.decode_head)
        self.config = enc.config

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        feats = encoder_features(self.encoder, pixel_values, channels_last=True)
        return self.head(feats)


def _use_sdpa(encoder: nn.Module) -> None:
    """Make a (copied) transformers SegFormer encoder use ``scaled_dot_product_attention``.

    transformers >= 5 dispatches the attention on ``config._attn_implementation``; the copy's
    config is its own (``deepcopy``), so the caller's model keeps its setting. Older versions
    compute the attention explicitly and ignore the setting.
    """
    cfg = getattr(encoder, "config", None)
    if cfg is None or getattr(cfg, "_attn_implementation", None) in (None, "sdpa"):
        return
    try:
        cfg._attn_implementation = "sdpa"
    except Exception as exc:  # noqa: BLE001 - a faster kernel is optional
        log.debug("could not switch the encoder to sdpa attention: %s", exc)


def optimise_for_cpu(model: nn.Module, *, quantize: bool = False) -> FastSegformer:
    """The PyTorch form of the fast CPU path (folded head, channels-last, sdpa attention).

    The model is not modified. ``quantize``: int8 dynamic quantisation of the encoder's
    ``nn.Linear`` layers (``torch.ao.quantization``, deprecated by torch; changes the logits).
    """
    fast = FastSegformer(model.eval())
    if quantize:
        fast.encoder = torch.ao.quantization.quantize_dynamic(fast.encoder, {nn.Linear}, dtype=torch.qint8)
    return fast.eval()


# --- backend choice --------------------------------------------------------------------------
def onnxruntime_available() -> bool:
    """True if ``onnxruntime`` and ``onnx`` (needed by the exporter) import."""
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except Exception:  # noqa: BLE001 - ImportError, or a broken binary install
        return False
    return True


def resolve_backend(backend: str | None = None) -> str:
    """``backend``, else ``$HRPQCT_CPU_BACKEND``, else ``"auto"``; checked against :data:`CPU_BACKENDS`."""
    name = (backend or os.environ.get(BACKEND_ENV) or "auto").strip().lower()
    if name in ("ort", "onnx"):
        name = "onnxruntime"
    if name in ("ov",):
        name = "openvino"
    if name not in CPU_BACKENDS:
        raise ModelError(f"unknown CPU backend {name!r}; choose one of {', '.join(CPU_BACKENDS)}")
    return name


def fast_cpu_model(model: nn.Module, *, backend: str | None = None, quantize: bool = False,
                   threads: int | None = None, cache: str | os.PathLike | None = None):
    """The project's fastest robust CPU form of a ``SegformerForSemanticSegmentation``.

    ``backend``: ``"auto"`` (an :class:`~hrpqct.seg.cpu_select.AutoSegformer`: the fastest
    backend, measured once and cached), ``"openvino"``, ``"onnxruntime"`` (raise
    :class:`ModelError` if it is not installed) or ``"torch"``; ``None`` reads
    ``$HRPQCT_CPU_BACKEND``. ``threads``: intra-op threads for ONNX Runtime
    (default ``torch.get_num_threads()``). ``cache``: folder for exported files (default
    :func:`onnx_cache_dir`). Returns a :class:`OrtSegformer` or a :class:`FastSegformer`; both
    take ``pixel_values [b, 1, S, S]`` and return logits ``[b, C, S/4, S/4]``, and say which
    backend ran in ``.backend``.
    """
    name = resolve_backend(backend)
    model = model.eval()
    if name == "auto":  # measured once per model, input size and machine (hrpqct.seg.cpu_select)
        from .cpu_select import AutoSegformer

        return AutoSegformer(model, quantize=quantize, threads=threads, cache=cache)
    if name == "openvino":
        from .accel_openvino import OvSegformer

        return OvSegformer(model, quantize=quantize, threads=threads, cache=cache)
    if name == "onnxruntime" and not onnxruntime_available():
        raise ModelError("the onnxruntime CPU backend needs onnxruntime and onnx: "
                         "pip install 'hrpqct[fastcpu]' (or use the default PyTorch backend)")
    if name == "torch":
        return optimise_for_cpu(model, quantize=quantize)
    return OrtSegformer(model, quantize=quantize, threads=threads, cache=cache)


# --- ONNX export (the file cache is hrpqct.seg.onnxcache) ----------------------------------
@contextlib.contextmanager
def _quiet():
    """Silence the exporters' and quantiser's warnings (deprecation, tracer, 'pre-process')."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        previous = logging.root.manager.disable
        logging.disable(logging.WARNING)
        try:
            yield
        finally:
            logging.disable(previous)


def export_onnx(net: nn.Module, path: str | os.PathLike, shape: tuple[int, int, int, int]) -> str:
    """Write ``net`` (``pixel_values -> logits``) as an ONNX file for inputs of ``shape``.

    Static shapes (ONNX Runtime fuses more on them). The TorchScript exporter is tried first
    (seconds for B3), then the ``torch.export``-based one (about a minute; needs onnxscript).
    Returns the exporter's name; raises the last error if none worked.
    """
    path = Path(path)
    errors = []
    with torch.inference_mode(False), torch.no_grad(), _quiet():
        x = torch.rand(shape, generator=torch.Generator().manual_seed(0))
        for dynamo in (False, True):
            try:
                kw = dict(external_data=False, optimize=True) if dynamo else dict(do_constant_folding=True)
                torch.onnx.export(net, (x,), str(path), dynamo=dynamo, input_names=["pixel_values"],
                                  output_names=["logits"], opset_version=OPSET, **kw)
                return "torch.export" if dynamo else "torchscript"
            except Exception as exc:  # noqa: BLE001 - try the other exporter, then report both
                errors.append(f"{'torch.export' if dynamo else 'torchscript'} exporter: "
                              f"{type(exc).__name__}: {exc}")
                path.unlink(missing_ok=True)
    raise RuntimeError("ONNX export failed: " + "; ".join(errors))


_SESSIONS: "OrderedDict[tuple[str, int, int], object]" = OrderedDict()
SESSIONS_KEEP = 2  # ONNX Runtime sessions kept alive in this process (B3: ~0.2 GB each)


class OrtSegformer:
    """A SegFormer's fast CPU form run by ONNX Runtime (one session per input size, on first use).

    ``model``: a ``SegformerForSemanticSegmentation`` in eval mode (not modified). Call with
    ``pixel_values [b, 1, h, w]`` (float32, CPU) to get logits ``[b, C, h/4, w/4]`` (a CPU
    tensor); slices run one at a time through a session made for ``[1, 1, h, w]``. The first
    use of a size exports :class:`FastSegformer` (or takes the cached file) and checks it; the
    last :data:`SESSIONS_KEEP` sessions stay open in the process, so later runs with the same
    weights start at once. If a session cannot be made (export, load or parity check failed)
    the PyTorch fast path answers instead, with a warning, and :attr:`fallback` says why; with
    ``strict=True`` that raises :class:`ModelError` instead.
    """

    def __init__(self, model: nn.Module, *, quantize: bool = False, threads: int | None = None,
                 cache: str | os.PathLike | None = None, strict: bool = False) -> None:
        self.model = model.eval()
        self.quantize = bool(quantize)
        self.threads = int(threads) if threads else max(1, torch.get_num_threads())
        self.cache = Path(cache) if cache is not None else onnx_cache_dir()
        self.strict = bool(strict)
        self.fallback: str | None = None
        self.exporter: str | None = None  # which exporter made a new file in this object
        self.paths: dict[tuple[int, int], Path] = {}
        self._sessions: dict[tuple[int, int], object] = {}
        self._key: str | None = None
        self._torch_net: nn.Module | None = None

    @property
    def backend(self) -> str:
        return "torch (onnxruntime fallback)" if self.fallback else "onnxruntime"

    @property
    def key(self) -> str:
        """:func:`weights_key` of the model (computed once)."""
        if self._key is None:
            self._key = weights_key(self.model)
        return self._key

    @property
    def torch_net(self) -> nn.Module:
        """The PyTorch fast path (built on demand: for the export, its check and the fallback)."""
        if self._torch_net is None:
            self._torch_net = optimise_for_cpu(self.model, quantize=self.quantize and bool(self.fallback))
        return self._torch_net

    # -- sessions
    def _options(self):
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.intra_op_num_threads = self.threads
        so.inter_op_num_threads = 1
        so.log_severity_level = 3  # errors only
        return so

    def _open(self, path: Path):
        import onnxruntime as ort

        return ort.InferenceSession(str(path), self._options(), providers=["CPUExecutionProvider"])

    def _check(self, session, shape) -> float:
        """Max |ORT - torch| on a fixed random input of ``shape``; raises if over the tolerance."""
        with torch.inference_mode():
            x = torch.rand(shape, generator=torch.Generator().manual_seed(1))
            ref = self.torch_net(x).numpy()
        got = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
        if got.shape != ref.shape:
            raise RuntimeError(f"exported network gives {got.shape}, PyTorch {ref.shape}")
        diff = float(np.abs(got - ref).max())
        if not diff <= PARITY_ATOL * (1.0 + float(np.abs(ref).max())):
            raise RuntimeError(f"exported network differs from PyTorch by {diff:.3g} (logits)")
        self.checked = (tuple(shape), ref)  # the PyTorch answer, for the OpenVINO check
        return diff

    def _fp32_file(self, h: int, w: int) -> Path:
        final = self.cache / f"segformer-{self.key}-{h}x{w}.onnx"
        if final.is_file():
            return final
        self.cache.mkdir(parents=True, exist_ok=True)
        with atomic_path(final, verify=False) as tmp:
            log.info("exporting the network to ONNX for %d x %d inputs (once per weights) -> %s",
                     h, w, final)
            self.exporter = export_onnx(self.torch_net, tmp, (1, 1, h, w))
            diff = self._check(self._open(tmp), (1, 1, h, w))
            log.info("ONNX export (%s exporter) matches PyTorch: max logit difference %.2g",
                     self.exporter, diff)
        return final

    def _int8_file(self, fp32: Path) -> Path:
        final = fp32.with_name(fp32.stem + "-int8.onnx")
        if final.is_file():
            return final
        from onnxruntime.quantization import QuantType, quantize_dynamic

        with atomic_path(final, verify=False) as tmp, _quiet():
            quantize_dynamic(str(fp32), str(tmp), op_types_to_quantize=["MatMul"],
                             weight_type=QuantType.QInt8)
        return final

    def _file(self, h: int, w: int) -> Path:
        fp32 = self._fp32_file(h, w)
        return self._int8_file(fp32) if self.quantize else fp32

    def _session(self, h: int, w: int):
        path = self._file(h, w)
        hit = _SESSIONS.get((str(path), self.threads, path.stat().st_mtime_ns))
        if hit is not None:
            session = hit
        else:
            try:
                session = self._open(path)
            except Exception:  # noqa: BLE001 - a damaged cache file: export again, once
                log.warning("cached ONNX file %s cannot be loaded; exporting again", path)
                for stale in {path, self.cache / f"segformer-{self.key}-{h}x{w}.onnx"}:
                    stale.unlink(missing_ok=True)
                path = self._file(h, w)
                session = self._open(path)
            with contextlib.suppress(OSError):
                os.utime(path)  # most recently used: pruned last
            _prune_cache(self.cache)
            _SESSIONS[(str(path), self.threads, path.stat().st_mtime_ns)] = session
        key = next(k for k, v in _SESSIONS.items() if v is session)
        _SESSIONS.move_to_end(key)
        while len(_SESSIONS) > SESSIONS_KEEP:
            _SESSIONS.popitem(last=False)
        self.paths[(h, w)] = path
        if not self.fallback:
            self._torch_net = None  # only needed again for a new size or a fallback
        return session

    def session(self, h: int, w: int):
        """The ONNX Runtime session for ``h x w`` inputs (exported and checked on first use)."""
        s = self._sessions.get((h, w))
        if s is None:
            s = self._sessions[(h, w)] = self._session(h, w)
        return s

    # -- running
    def __call__(self, pixel_values: torch.Tensor) -> torch.Tensor:
        if self.fallback is None:
            h, w = (int(v) for v in pixel_values.shape[-2:])
            try:
                sess = self.session(h, w)
            except Exception as exc:  # noqa: BLE001 - any failure: the exact PyTorch path
                msg = f"ONNX Runtime path unavailable ({type(exc).__name__}: {exc})"
                if self.strict:
                    raise ModelError(msg) from exc
                self.fallback = msg + "; using the PyTorch fast path"
                self._torch_net = None  # rebuilt with the int8 setting if asked
                log.warning(self.fallback)
            else:
                x = pixel_values.detach().to("cpu", torch.float32).contiguous().numpy()
                name = sess.get_inputs()[0].name
                out = [sess.run(None, {name: x[i:i + 1]})[0] for i in range(x.shape[0])]
                return torch.from_numpy(np.concatenate(out) if len(out) > 1 else out[0])
        with torch.inference_mode():
            return self.torch_net(pixel_values)

