"""Cohort runs: radiomics of many scans, in parallel, resumable, with an errors table.

Manifest (CSV, one row per scan; paths relative to the manifest's folder):

================  ==========================================================================
``subject_id``    required; the patient
``scan``          required; the scan file (any format :func:`hrpqct.io.read_scan` reads, HU)
``segmentation``  required; the final 7-region label map (label image or Slicer ``.seg.nrrd``)
``scan_id``       optional; unique per row (file names use it); default: ``subject_id``
anything else     labels and clinical variables (``osteoporosis``, ``t_score``, ``age`` ...),
                  copied unchanged into the patient table
================  ==========================================================================

Output folder:

* ``scans/<scan_id>.parquet``: the slice-level table of one scan (:mod:`.tables`) with
  ``subject_id`` and ``scan_id`` columns. Written atomically (temporary file, then rename), so
  a file that exists is complete; a run that is killed and started again skips the scans whose
  file exists and redoes the others, giving the same values as an uninterrupted run.
* ``errors/<scan_id>.json`` per failed scan, gathered into ``errors.csv`` (``scan_id``,
  ``subject_id``, ``scan``, ``segmentation``, ``error``, ``message``); a failure never stops the
  other scans, and failed scans are tried again on the next run.
* ``patients.parquet`` (and ``patients.csv``): one row per scan and region, features averaged
  over slices (:func:`.tables.aggregate`), with the manifest's variables.
* ``run.json``: the preset (name and digest), regions and method parameters of the run; a later
  run into the same folder with other settings is refused rather than mixing results.

Parallelism: local worker processes by default (``workers``, default: all cores); with
``scheduler`` a Dask cluster: ``"local"`` starts an embedded ``dask.distributed.LocalCluster``
with ``workers`` single-threaded worker processes, any other value is a scheduler address
(``tcp://host:8786``). Every worker limits BLAS and SimpleITK to one thread, so ``workers``
processes use ``workers`` cores. Worker processes are started with ``spawn`` (no threads or locks
inherited from the caller), so a script calling :func:`run_cohort` with more than one worker
needs the usual ``if __name__ == "__main__":`` guard (the ``hrpqct cohort`` command has it).
"""

from __future__ import annotations

import json
import os
import re
import time
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

import pandas as pd

from ..errors import Cancelled, InputError, OutputError
from ..method import RADIOMICS, Radiomics
from ..progress import ProgressCallback
from .masks import parse_regions
from .presets import Preset, load_preset
from .tables import aggregate

__all__ = ["CohortResult", "read_manifest", "run_cohort", "process_scan", "MANIFEST_COLUMNS"]

MANIFEST_COLUMNS = ("subject_id", "scan", "segmentation")
_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass
class CohortResult:
    """What a cohort run produced (tables are also on disk in ``out_dir``)."""

    out_dir: Path
    patients: pd.DataFrame
    errors: pd.DataFrame
    computed: int  # scans computed by this run
    skipped: int  # scans already present from an earlier run
    failed: int


def read_manifest(path: str | os.PathLike) -> pd.DataFrame:
    """Read and check a manifest CSV (module docstring); paths become absolute."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: manifest not found")
    try:
        man = pd.read_csv(path, dtype={"subject_id": str, "scan_id": str, "scan": str,
                                       "segmentation": str})
    except Exception as exc:
        raise InputError(f"{path}: not a readable CSV manifest: {exc}") from None
    missing = [c for c in MANIFEST_COLUMNS if c not in man.columns]
    if missing:
        raise InputError(f"{path}: manifest lacks column(s) {missing}; "
                         f"needs {list(MANIFEST_COLUMNS)}")
    if len(man) == 0:
        raise InputError(f"{path}: manifest has no rows")
    if "scan_id" not in man.columns:
        man.insert(1, "scan_id", man["subject_id"])
    man["scan_id"] = man["scan_id"].fillna(man["subject_id"])
    for col in (*MANIFEST_COLUMNS, "scan_id"):
        bad = man[col].isna() | (man[col].astype(str).str.strip() == "")
        if bad.any():
            raise InputError(f"{path}: empty {col!r} in row(s) {list(man.index[bad] + 2)}")
    man["subject_id"] = man["subject_id"].astype(str).str.strip()
    man["scan_id"] = man["scan_id"].astype(str).str.strip()
    dup = man["scan_id"][man["scan_id"].duplicated()].tolist()
    if dup:
        raise InputError(f"{path}: scan_id must be unique (add a scan_id column); repeated: {dup}")
    unsafe = [s for s in man["scan_id"] if not _SAFE_ID.match(s)]
    if unsafe:
        raise InputError(f"{path}: scan ids used as file names may hold only letters, digits, "
                         f"'.', '_' and '-': {unsafe}")
    base = path.resolve().parent
    for col in ("scan", "segmentation"):
        man[col] = [str(base / p.strip()) for p in man[col].astype(str)]  # absolute p wins
    return man.reset_index(drop=True)


# --- one scan (runs in a worker) ------------------------------------------------------------
def _single_threaded():
    """BLAS and SimpleITK to one thread (one worker = one core)."""
    import SimpleITK as sitk

    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)


def process_scan(job: dict) -> dict:
    """Compute and write one scan's slice-level table; never raises (errors become records).

    ``job``: ``scan_id``, ``subject_id``, ``scan``, ``segmentation``, ``out_dir``, ``preset``
    (a :class:`Preset`), ``regions``, ``params``. Returns ``{"scan_id", "status": "ok" |
    "error", "seconds", "cpu_seconds", "rows" | "error", "message"}``.
    """
    from ..io import atomic_path, read_pair
    from .engine import blas_threads
    from .tables import extract_volume

    t0, c0 = time.perf_counter(), time.process_time()
    out = Path(job["out_dir"])
    scan_id = job["scan_id"]
    err_file = out / "errors" / f"{scan_id}.json"
    try:
        _single_threaded()
        with blas_threads(1):
            image, labels = read_pair(job["scan"], job["segmentation"], unit="HU")
            table = extract_volume(image, labels, preset=job["preset"], regions=job["regions"],
                                   params=job["params"])
        table.insert(0, "scan_id", scan_id)
        table.insert(0, "subject_id", job["subject_id"])
        with atomic_path(out / "scans" / f"{scan_id}.parquet") as tmp:
            table.to_parquet(tmp, index=False)
        if err_file.exists():
            err_file.unlink()
        return {"scan_id": scan_id, "status": "ok", "rows": len(table),
                "seconds": time.perf_counter() - t0, "cpu_seconds": time.process_time() - c0}
    except OutputError:  # a full disk or read-only folder stops the run: every scan would fail
        raise
    except Exception as exc:  # one bad scan must not stop the cohort
        record = {
            "scan_id": scan_id, "subject_id": job["subject_id"], "scan": job["scan"],
            "segmentation": job["segmentation"], "error": type(exc).__name__,
            "message": str(exc), "traceback": traceback.format_exc(limit=-3),
        }
        with atomic_path(err_file) as tmp:
            tmp.write_text(json.dumps(record, indent=1), encoding="utf-8")
        return {"scan_id": scan_id, "status": "error", "error": type(exc).__name__,
                "message": str(exc), "seconds": time.perf_counter() - t0}


# --- executors --------------------------------------------------------------------------------
def _run_serial(jobs, on_done):
    for job in jobs:
        on_done(process_scan(job))


def _run_processes(jobs, workers, on_done):
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed

    # spawn: workers start clean (no inherited threads or locks from the caller); the calling
    # script therefore needs the usual `if __name__ == "__main__":` guard
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"))
    futures = {pool.submit(process_scan, job): job for job in jobs}
    try:
        for fut in as_completed(futures):
            job = futures[fut]
            try:
                res = fut.result()
            except OutputError:
                raise
            except Exception as exc:  # the worker process itself died (killed, out of memory)
                res = _worker_died(job, exc)
            on_done(res)
    except BaseException:  # cancelled, Ctrl-C: do not wait for the queued scans
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def _run_dask(jobs, workers, scheduler, on_done):
    import logging

    from distributed import Client, LocalCluster, as_completed

    cluster = None
    if scheduler == "local":
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                               dashboard_address=None, silence_logs=logging.ERROR)
        client = Client(cluster)
    else:
        try:
            client = Client(scheduler, timeout="20s")
        except Exception as exc:
            raise InputError(f"cannot reach the Dask scheduler at {scheduler!r}: {exc}") from None
    try:
        stamp = time.time_ns()
        futures = [client.submit(process_scan, job, pure=False,
                                 key=f"hrpqct-radiomics-{job['scan_id']}-{stamp}")
                   for job in jobs]
        by_key = {f.key: job for f, job in zip(futures, jobs)}
        try:
            for fut in as_completed(futures):
                try:
                    res = fut.result()
                except OutputError:
                    raise
                except Exception as exc:  # the worker died or the cluster lost it
                    res = _worker_died(by_key[fut.key], exc)
                on_done(res)
        except BaseException:
            client.cancel(futures)
            raise
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _worker_died(job, exc) -> dict:
    from ..io import atomic_path

    record = {"scan_id": job["scan_id"], "subject_id": job["subject_id"], "scan": job["scan"],
              "segmentation": job["segmentation"], "error": type(exc).__name__,
              "message": f"worker failed: {exc}"}
    with atomic_path(Path(job["out_dir"]) / "errors" / f"{job['scan_id']}.json") as tmp:
        tmp.write_text(json.dumps(record, indent=1), encoding="utf-8")
    return {"status": "error", "seconds": float("nan"), **record}


# --- the run --------------------------------------------------------------------------------
def _run_record(preset: Preset, regions: list[str], params: Radiomics) -> dict:
    import radiomics

    return {
        "preset": preset.name,
        "preset_digest": preset.digest,
        "regions": regions,
        "params": json.loads(json.dumps(asdict(params), default=list)),
        "pyradiomics": radiomics.__version__,
    }


def _check_run_record(out: Path, record: dict) -> None:
    from ..io import atomic_path

    path = out / "run.json"
    if path.exists():
        try:
            old = json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            old = None
        keys = ("preset_digest", "regions", "params")
        if old is None or any(old.get(k) != record[k] for k in keys):
            raise InputError(
                f"{out}: holds results of a run with other settings (see {path}); "
                "use another output folder or delete it"
            )
        return
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(record, indent=1), encoding="utf-8")


def _clean_temporaries(folder: Path) -> None:
    from ..io.outputs import clean_temporaries

    clean_temporaries(folder)  # only those whose writer is gone (a killed run)


def collect(out_dir: str | os.PathLike, manifest: pd.DataFrame,
            stats: Sequence[str] = (RADIOMICS.aggregation,)) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(patients, errors)`` tables from the per-scan files in ``out_dir`` (manifest order)."""
    out = Path(out_dir)
    parts = []
    extra = [c for c in manifest.columns if c not in (*MANIFEST_COLUMNS, "scan_id")]
    for _, row in manifest.iterrows():
        f = out / "scans" / f"{row['scan_id']}.parquet"
        if not f.exists():
            continue
        table = pd.read_parquet(f)
        agg = aggregate(table.drop(columns=["subject_id"]), stats=stats, by=["scan_id"])
        agg.insert(0, "subject_id", row["subject_id"])
        for i, c in enumerate(extra):
            agg.insert(2 + i, c, row[c])
        parts.append(agg)
    patients = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    errs = []
    for _, row in manifest.iterrows():
        f = out / "errors" / f"{row['scan_id']}.json"
        if f.exists() and not (out / "scans" / f"{row['scan_id']}.parquet").exists():
            rec = json.loads(f.read_text(encoding="utf-8"))
            rec.pop("traceback", None)
            errs.append(rec)
    errors = pd.DataFrame(errs, columns=["scan_id", "subject_id", "scan", "segmentation",
                                         "error", "message"])
    return patients, errors


def run_cohort(
    manifest: str | os.PathLike | pd.DataFrame,
    out_dir: str | os.PathLike,
    *,
    preset: str | Preset = RADIOMICS.preset,
    regions: str | Iterable[str] | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    stats: Sequence[str] = (RADIOMICS.aggregation,),
    params: Radiomics = RADIOMICS,
    progress: ProgressCallback | None = None,
    on_scan: Callable[[dict], None] | None = None,
) -> CohortResult:
    """Radiomics of every scan of a manifest into ``out_dir`` (module docstring).

    ``workers``: local processes (default: all cores; 1 = in this process) or Dask workers
    of the embedded cluster. ``scheduler``: ``None`` (local processes), ``"local"`` (embedded
    LocalCluster) or a Dask scheduler address. ``progress(done, total)`` counts scans,
    including those already present; ``on_scan`` receives each scan's status record.
    """
    from ..io import atomic_path

    man = manifest if isinstance(manifest, pd.DataFrame) else read_manifest(manifest)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "scans").mkdir(exist_ok=True)
    (out / "errors").mkdir(exist_ok=True)
    preset = load_preset(preset)
    names = parse_regions(regions)
    _check_run_record(out, _run_record(preset, names, params))
    for folder in (out, out / "scans", out / "errors"):
        _clean_temporaries(folder)
    workers = int(workers) if workers else (os.cpu_count() or 1)
    if workers < 1:
        raise InputError(f"workers must be >= 1, got {workers}")

    jobs, skipped = [], 0
    for _, row in man.iterrows():
        if (out / "scans" / f"{row['scan_id']}.parquet").exists():
            skipped += 1
            continue
        jobs.append({"scan_id": row["scan_id"], "subject_id": row["subject_id"],
                     "scan": row["scan"], "segmentation": row["segmentation"],
                     "out_dir": str(out), "preset": preset, "regions": names, "params": params})
    total = len(man)
    state = {"done": skipped, "ok": 0, "failed": 0}

    def on_done(res: dict) -> None:
        state["done"] += 1
        state["ok" if res["status"] == "ok" else "failed"] += 1
        if on_scan is not None:
            on_scan(res)
        if progress is not None and progress(state["done"], total) is False:
            raise Cancelled(f"cancelled after {state['done']} of {total} scans")

    if progress is not None:
        progress(skipped, total)
    if jobs:
        if scheduler:
            _run_dask(jobs, workers, scheduler, on_done)
        elif workers == 1 or len(jobs) == 1:
            _single_threaded_serial(jobs, on_done)
        else:
            _run_processes(jobs, min(workers, len(jobs)), on_done)

    patients, errors = collect(out, man, stats)
    with atomic_path(out / "patients.parquet") as tmp:
        patients.to_parquet(tmp, index=False)
    with atomic_path(out / "patients.csv") as tmp:
        patients.to_csv(tmp, index=False)
    with atomic_path(out / "errors.csv") as tmp:
        errors.to_csv(tmp, index=False)
    return CohortResult(out, patients, errors, computed=state["ok"], skipped=skipped,
                        failed=state["failed"])


def _single_threaded_serial(jobs, on_done):
    """Serial run in this process, with the same one-thread limits as a worker (restored after)."""
    import SimpleITK as sitk

    before = sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()
    try:
        _run_serial(jobs, on_done)
    finally:
        sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(before)

