"""Automatic choice of the CPU backend, on first use, cached per model and machine.

``backend="auto"`` (the default of :func:`hrpqct.seg.fastcpu.fast_cpu_model`) gives an
:class:`AutoSegformer`. On its first call for an input size it looks up
``<cache>/cpu-backend.json`` (the ONNX cache folder, ``~/.cache/hrpqct/onnx``) under a key made of
the weights hash (:func:`~hrpqct.seg.fastcpu.weights_key`), the input size and
:func:`machine_id` (CPU model and instruction-set flags, core count, torch threads, and the
versions of torch, onnxruntime, openvino and nncf). On a miss it measures the candidates on the
caller's first slice and writes the choice (with its timings) to that file; nothing is
downloaded.

Candidates, all installed ones:

* exact (``quantize=False``): ``torch`` (the PyTorch fast path), ``onnxruntime`` and
  ``openvino`` (fp32, each checked against PyTorch to 1e-4 when first built);
* with ``quantize=True`` also the int8 forms: ``torch-int8`` (dynamic, linear layers),
  ``onnxruntime-int8`` (dynamic, MatMul weights) and ``openvino-int8`` (NNCF static int8,
  calibrated on phantom slices); an int8 candidate is eligible only if at least
  :data:`MIN_AGREEMENT` of its labels (argmax at the network's output resolution) on the probe
  slice equal the exact PyTorch path's.

Each candidate is built (exported, quantised, compiled: cached for next time), run once to warm
up, then timed :data:`PROBE_RUNS` times; the fastest eligible one (median) is kept, the others
are released. A candidate that fails to build is recorded with its error and skipped.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..errors import ModelError

log = logging.getLogger(__name__)

__all__ = ["AutoSegformer", "machine_id", "selection_file", "candidates", "MIN_AGREEMENT",
           "SELECT_FORMAT", "EXACT_BACKENDS", "INT8_BACKENDS"]

SELECT_FORMAT = 1  # bump when candidates or their meaning change: older choices are redone
MIN_AGREEMENT = 0.999  # int8: fraction of probe labels equal to the exact path's, to be eligible
PROBE_RUNS = 2
#: Networks smaller than this (parameters x input pixels) run on the PyTorch fast path without a
#: measurement: too little work to repay an export on first use (the bundled demo model, 2 M
#: parameters at 640 x 640, is 8e11; SegFormer-B0 at 512 x 512 1e12; the paper's B3 at
#: 800 x 800 3e13).
MIN_WORK = 2e12
EXACT_BACKENDS = ("torch", "onnxruntime", "openvino")
INT8_BACKENDS = ("torch-int8", "onnxruntime-int8", "openvino-int8")
SELECTION_NAME = "cpu-backend.json"


def _cpu_facts() -> str:
    model, flags = platform.processor(), ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name") and not model:
                    model = line.split(":", 1)[1].strip()
                elif line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                elif line.startswith("flags"):
                    flags = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{platform.machine()}|{model}|{flags}"


def _version(name: str) -> str:
    try:
        from importlib.metadata import version

        return version(name)
    except Exception:  # noqa: BLE001 - not installed
        return "-"


def machine_id() -> str:
    """16 hex digits identifying this machine and software for the cached choice."""
    facts = [_cpu_facts(), str(os.cpu_count()), str(torch.get_num_threads()),
             *(f"{p}={_version(p)}" for p in ("torch", "onnxruntime", "openvino", "nncf"))]
    return hashlib.sha256("|".join(facts).encode()).hexdigest()[:16]


def selection_file(cache: str | os.PathLike | None = None) -> Path:
    from .fastcpu import onnx_cache_dir

    return (Path(cache) if cache is not None else onnx_cache_dir()) / SELECTION_NAME


def _read(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) and data.get("format") == SELECT_FORMAT else {}


def _write(path: Path, key: str, entry: dict) -> None:
    from ..io.atomic import atomic_path

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        data = _read(path) or {"format": SELECT_FORMAT, "choices": {}}
        data.setdefault("choices", {})[key] = entry
        with atomic_path(path, verify=False) as tmp:
            tmp.write_text(json.dumps(data, indent=1, sort_keys=True), encoding="utf-8")
    except Exception as exc:  # noqa: BLE001 - a read-only cache only costs a new measurement
        log.warning("could not save the CPU backend choice to %s: %s", path, exc)


def candidates(quantize: bool = False) -> list[str]:
    """The backends installed here that ``auto`` considers."""
    from .accel_openvino import nncf_available, openvino_available
    from .fastcpu import onnxruntime_available

    ort, ov = onnxruntime_available(), openvino_available() and onnxruntime_available()
    names = ["torch"] + (["onnxruntime"] if ort else []) + (["openvino"] if ov else [])
    if quantize:
        names += ["torch-int8"] + (["onnxruntime-int8"] if ort else [])
        names += ["openvino-int8"] if ov and nncf_available() else []
    return names


def build(name: str, model: nn.Module, *, threads: int | None = None, cache=None):
    """The network of backend ``name`` (see :data:`EXACT_BACKENDS`, :data:`INT8_BACKENDS`)."""
    from .fastcpu import OrtSegformer, optimise_for_cpu

    base, _, q = name.partition("-")
    quantize = q == "int8"
    if base == "torch":
        return optimise_for_cpu(model, quantize=quantize)
    if base == "onnxruntime":
        return OrtSegformer(model, quantize=quantize, threads=threads, cache=cache, strict=True)
    if base == "openvino":
        from .accel_openvino import OvSegformer

        return OvSegformer(model, quantize=quantize, threads=threads, cache=cache)
    raise ModelError(f"unknown CPU backend {name!r}")


class AutoSegformer:
    """Runs the backend chosen for this model, input size and machine (see the module doc).

    Callable like the other fast forms: ``pixel_values [b, 1, h, w] -> logits``. ``choice``
    (after the first call) says which backend answers; ``report`` holds the probe's figures
    when a measurement was made in this process.
    """

    def __init__(self, model: nn.Module, *, quantize: bool = False, threads: int | None = None,
                 cache: str | os.PathLike | None = None) -> None:
        self.model = model.eval()
        self.quantize = bool(quantize)
        self.threads = threads
        self.cache = cache
        self.file = selection_file(cache)
        self.choice: str | None = None
        self.report: dict | None = None
        self._nets: dict[tuple[int, int], object] = {}
        self._key: str | None = None

    @property
    def backend(self) -> str:
        """The chosen backend's name (``"auto"`` before the first call)."""
        return self.choice or "auto"

    def key(self, h: int, w: int) -> str:
        if self._key is None:
            from .fastcpu import weights_key

            self._key = weights_key(self.model)
        return f"{self._key}|{h}x{w}|{machine_id()}|{'int8' if self.quantize else 'exact'}"

    def _measure(self, x: torch.Tensor, key: str):
        probe = x[:1].detach().to("cpu", torch.float32).contiguous()
        figures, nets, ref = {}, {}, None
        names = candidates(self.quantize)
        n_params = sum(p.numel() for p in self.model.parameters())
        if n_params * probe.shape[-2] * probe.shape[-1] < MIN_WORK:
            names = ["torch"]  # small network: not worth measuring (nor caching)
        for name in names:
            t0 = time.perf_counter()
            try:
                net = build(name, self.model, threads=self.threads, cache=self.cache)
                with torch.inference_mode():
                    out = net(probe)  # warm-up (exports / quantises / compiles once)
                    setup = time.perf_counter() - t0
                    times = []
                    for _ in range(PROBE_RUNS):
                        t1 = time.perf_counter()
                        out = net(probe)
                        times.append(time.perf_counter() - t1)
            except Exception as exc:  # noqa: BLE001 - skip a backend that cannot run here
                figures[name] = {"error": f"{type(exc).__name__}: {exc}"[:300]}
                log.info("CPU backend %s unavailable: %s", name, exc)
                continue
            labels = out.argmax(1).numpy()
            if ref is None:  # "torch" comes first: the exact reference
                ref = labels
            agree = float(np.mean(labels == ref))
            figures[name] = {"seconds": float(np.median(times)), "setup_seconds": setup,
                             "agreement": agree}
            nets[name] = net
            log.info("CPU backend %s: %.2f s per slice, labels %.4f %% as exact",
                     name, figures[name]["seconds"], agree * 100)
        ok = [n for n, f in figures.items() if "seconds" in f
              and (n in EXACT_BACKENDS or f["agreement"] >= MIN_AGREEMENT)]
        if not ok:
            raise ModelError("no CPU backend could run this model: "
                             + "; ".join(f"{n}: {f.get('error')}" for n, f in figures.items()))
        choice = min(ok, key=lambda n: figures[n]["seconds"])
        if names == ["torch"]:
            self.report = {"backend": "torch", "figures": figures, "small": True}
            return choice, nets[choice]
        for name in list(nets):
            if name != choice:
                del nets[name]  # release the others (sessions, compiled models)
        entry = {"backend": choice, "figures": figures, "measured": time.strftime("%Y-%m-%dT%H:%M:%S"),
                 "min_agreement": MIN_AGREEMENT}
        _write(self.file, key, entry)
        self.report = entry
        return choice, nets[choice]

    def __call__(self, pixel_values: torch.Tensor) -> torch.Tensor:
        h, w = (int(v) for v in pixel_values.shape[-2:])
        net = self._nets.get((h, w))
        if net is not None:
            return net(pixel_values)
        key = self.key(h, w)
        entry = _read(self.file).get("choices", {}).get(key)
        choice = entry.get("backend") if isinstance(entry, dict) else None
        if choice in candidates(self.quantize):
            try:
                net = build(choice, self.model, threads=self.threads, cache=self.cache)
                with torch.inference_mode():
                    out = net(pixel_values)
            except Exception as exc:  # noqa: BLE001 - measure again
                log.warning("cached CPU backend choice %s failed (%s); measuring again", choice, exc)
            else:
                self.choice, self._nets[(h, w)] = choice, net
                return out
        log.info("choosing the fastest CPU backend for this model and machine (once; cached in %s)",
                 self.file)
        self.choice, net = self._measure(pixel_values, key)
        self._nets[(h, w)] = net
        with torch.inference_mode():
            return net(pixel_values)
