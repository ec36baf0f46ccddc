"""The ONNX file cache of the fast CPU path (:mod:`hrpqct.seg.fastcpu`).

Exported networks live under ``$HRPQCT_CACHE_DIR/onnx``, else ``$XDG_CACHE_HOME/hrpqct/onnx``
(``~/.cache/hrpqct/onnx``), never in the model folder. Files are named by :func:`weights_key`
(a hash of the weights, the config, the torch version, :data:`OPSET` and :data:`EXPORT_FORMAT`)
and the input size; the :data:`CACHE_KEEP` most recently used are kept.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path

import torch
from torch import nn

__all__ = ["CACHE_ENV", "CACHE_KEEP", "EXPORT_FORMAT", "OPSET", "onnx_cache_dir", "weights_key",
           "prune_cache"]

CACHE_ENV = "HRPQCT_CACHE_DIR"
#: Bump when the exported graph changes: cached files of older formats are then not used.
EXPORT_FORMAT = 1
OPSET = 18
CACHE_KEEP = 6  # exported files kept in the cache (least recently used removed first)


def onnx_cache_dir() -> Path:
    """``$HRPQCT_CACHE_DIR/onnx``, else ``$XDG_CACHE_HOME/hrpqct/onnx`` (``~/.cache/hrpqct/onnx``)."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env) / "onnx"
    base = os.environ.get("XDG_CACHE_HOME") or (Path.home() / ".cache")
    return Path(base) / "hrpqct" / "onnx"


def weights_key(net: nn.Module) -> str:
    """A 20-hex-digit SHA-256 of a network's parameters and buffers (names, dtypes, shapes,
    values), its config, the torch version and :data:`EXPORT_FORMAT` (bumped when the folding
    or export code changes): the cache key of its exported files."""
    h = hashlib.sha256()
    h.update(f"format={EXPORT_FORMAT};torch={torch.__version__};opset={OPSET}".encode())
    cfg = getattr(net, "config", None)
    if cfg is not None and hasattr(cfg, "to_dict"):
        h.update(json.dumps(cfg.to_dict(), sort_keys=True, default=str).encode())
    for name, t in sorted(net.state_dict().items()):
        t = t.detach()
        if t.is_quantized:
            t = t.dequantize()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:20]


def prune_cache(folder: Path, keep: int = CACHE_KEEP) -> None:
    """Remove all but the ``keep`` most recently used exported files in ``folder``."""
    files = sorted(folder.glob("segformer-*.onnx"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in files[keep:]:
        with contextlib.suppress(OSError):
            old.unlink()
