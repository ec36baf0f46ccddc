"""The work of one scan in one stage: top-level functions that run in a worker process (local
pool or Dask worker) and never raise (a failure becomes a record)."""

from __future__ import annotations

import json
import os
import time
import traceback
from pathlib import Path

from ..errors import OutputError

__all__ = ["segment_task", "radiomics_task", "morphometry_task", "worker_name"]


def worker_name() -> str:
    """The Dask worker's address, else ``local:<pid>``."""
    try:
        from distributed import get_worker

        return get_worker().address
    except Exception:  # noqa: BLE001  not on a Dask worker
        return f"local:{os.getpid()}"


def _write_json(path: Path, obj: dict) -> None:
    from ..io import atomic_path

    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=1), encoding="utf-8")


class _Failed(Exception):
    """A failure already described by a library call (its kind and message)."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


def _wrap(stage: str, job: dict, work) -> dict:
    t0 = time.perf_counter()
    base = {"stage": stage, "scan_id": job["scan_id"], "subject_id": job["subject_id"],
            "worker": worker_name()}
    fail = Path(job["failure_file"])
    try:
        extra = work(job) or {}
    except OutputError:  # a full disk or read-only folder: every scan would fail, stop the run
        raise
    except Exception as exc:  # noqa: BLE001  one bad scan must not stop the study
        kind = exc.kind if isinstance(exc, _Failed) else type(exc).__name__
        rec = {**base, "status": "error", "error": kind, "message": str(exc),
               "seconds": time.perf_counter() - t0}
        _write_json(fail, {**rec, "traceback": traceback.format_exc(limit=-3)})
        return rec
    if fail.exists():
        fail.unlink()
    return {**base, "status": "ok", "seconds": time.perf_counter() - t0, **extra}


# --- segmentation -----------------------------------------------------------------------------
def _segment(job: dict) -> dict:
    from ..io.provenance import fingerprint
    try:  # the single-scan pipeline of `hrpqct segment` (moving to hrpqct.seg.pipeline)
        from ..seg.pipeline import segment_scan
    except ImportError:
        from ..seg.commands_segment import segment_scan

    if job.get("threads"):
        import torch

        torch.set_num_threads(int(job["threads"]))
    out, sid = Path(job["out_dir"]), job["scan_id"]
    record = Path(job["record"])
    if not Path(job["scan"]).exists():
        from ..errors import InputError

        raise InputError(f"{job['scan']}: scan not found")
    scan_fp = fingerprint(job["scan"])  # before the work: a scan replaced meanwhile is stale
    _write_json(record, {"status": "running", "scan": scan_fp})
    res = segment_scan(Path(job["scan"]), out, model=job["model_dir"], device=job["device"],
                       name=sid, quiet=True)
    _write_json(record, {"status": "done", "scan": scan_fp, "model": job["model_name"],
                         "model_digest": job["model_digest"],
                         "output": fingerprint(out / f"{sid}.seg.nrrd"),
                         "device": str(res["result"].device),
                         "warnings": list(res.get("warnings") or [])})
    return {"device": str(res["result"].device)}


def segment_task(job: dict) -> dict:
    return _wrap("segment", job, _segment)


# --- radiomics --------------------------------------------------------------------------------
def _radiomics(job: dict) -> dict:
    from ..radiomics.cohort import process_scan

    res = process_scan({**job, "morphometry": False})
    if res["status"] != "ok":
        raise _Failed(res.get("error", "Error"), res.get("message", ""))
    return {"rows": res["rows"]}


def radiomics_task(job: dict) -> dict:
    return _wrap("radiomics", job, _radiomics)


# --- morphometry ------------------------------------------------------------------------------
def _morphometry(job: dict) -> dict:
    from ..io import read_pair
    from ..io.provenance import fingerprint
    from ..morphometry.cohort import scan_morphometry
    from ..radiomics.cohort import _single_threaded

    _single_threaded()
    out, sid = Path(job["out_dir"]), job["scan_id"]
    inputs = {"scan": fingerprint(job["scan"]), "segmentation": fingerprint(job["segmentation"]),
              "method_digest": job["method_digest"]}
    Path(job["record"]).unlink(missing_ok=True)  # the table first, its record last
    image, labels = read_pair(job["scan"], job["segmentation"], unit="HU")
    scan_morphometry(image, labels, out, sid, job["subject_id"])
    _write_json(Path(job["record"]), inputs)
    return {}


def morphometry_task(job: dict) -> dict:
    return _wrap("morphometry", job, _morphometry)
