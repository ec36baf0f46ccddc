"""Device choice for inference: CUDA, then Apple MPS, then CPU, or as asked."""

from __future__ import annotations

import logging

from ..errors import HRpQCTError
from ..method import DEVICES  # re-exported: the choices live in hrpqct.method

log = logging.getLogger(__name__)

__all__ = ["DEVICES", "DeviceUnavailable", "select_device", "inference_dtype", "is_out_of_memory",
           "empty_cache"]



class DeviceUnavailable(HRpQCTError):
    """A device was asked for by name but this machine (or this torch build) does not have it."""


def _mps_available() -> bool:
    import torch

    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def select_device(requested: str = "auto"):
    """``torch.device`` for ``"auto"`` (CUDA > MPS > CPU), ``"cuda[:N]"``, ``"mps"`` or ``"cpu"``.

    Asking by name for a device that is not there raises :class:`DeviceUnavailable` (no silent
    switch to the CPU: a 20-minute CPU run where a GPU was expected should be a decision).
    """
    import torch

    req = str(requested or "auto").lower()
    if req == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    kind = req.split(":")[0]
    if kind not in DEVICES:
        raise DeviceUnavailable(f"unknown device {requested!r}; use one of {', '.join(DEVICES)}")
    if kind == "cuda" and not torch.cuda.is_available():
        raise DeviceUnavailable(f"device {requested!r} asked for, but torch {torch.__version__} "
                                "sees no CUDA GPU; use --device auto or cpu")
    if kind == "mps" and not _mps_available():
        raise DeviceUnavailable(f"device {requested!r} asked for, but Apple MPS is not available")
    return torch.device(req)


def inference_dtype(device):
    """float16 on GPUs (CUDA, MPS), float32 on the CPU (bf16/fp16 on CPU are slow or unsupported)."""
    import torch

    return torch.float16 if torch.device(device).type in ("cuda", "mps") else torch.float32


def is_out_of_memory(exc: BaseException) -> bool:
    """True for CUDA/MPS out-of-memory errors (which torch raises as several exception types)."""
    import torch

    oom = getattr(torch.cuda, "OutOfMemoryError", None)
    if oom is not None and isinstance(exc, oom):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def empty_cache(device) -> None:
    """Give cached GPU memory back after an out-of-memory error (no-op on the CPU)."""
    import torch

    kind = torch.device(device).type
    try:
        if kind == "cuda":
            torch.cuda.empty_cache()
        elif kind == "mps":
            torch.mps.empty_cache()
    except Exception:  # pragma: no cover - best effort
        log.debug("could not empty the %s cache", kind, exc_info=True)
