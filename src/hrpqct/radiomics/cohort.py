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
  ``subject_id`` and ``scan_id`` columns. Written atomically (temporary file, checked, then
  renamed). Its Parquet metadata (key ``hrpqct.inputs``) records what it was made from: the scan
  and segmentation (resolved path, size, modification time, SHA-256), the preset (name and
  digest), the regions, the PyRadiomics version and the segmentation model when the file names
  one. A run started again keeps a scan's file only if it is readable and every one of these
  still holds; a truncated or unreadable file, one without the record, and one whose scan or
  segmentation was replaced since (a corrected mask) are computed again, and the run says
  which and why (:attr:`CohortResult.redone`). An interrupted run so gives the same values as
  an uninterrupted one.
* ``errors/<scan_id>.json`` per failed scan, gathered into ``errors.csv`` (``scan_id``,
  ``subject_id``, ``scan``, ``segmentation``, ``error``, ``message``); a failure never stops the
  other scans, and failed scans are tried again on the next run.
* ``warnings.csv`` (``scan_id``, ``warning``): the input warnings of the scans computed
  (:mod:`hrpqct.checks`: a mask padded onto the scan, regions without voxels, non-square
  pixels...); inputs that are wrong (a blank scan, an empty mask) fail their scan instead.
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


def check_scan_ids(man, path) -> None:
    """Strip ``subject_id`` and ``scan_id`` of the manifest frame ``man`` (in place) and refuse
    repeated scan ids and ids that cannot be file names (:class:`InputError` naming ``path``)."""
    for col in ("subject_id", "scan_id"):
        man[col] = man[col].astype(str).str.strip()
    dup = man["scan_id"][man["scan_id"].duplicated()].tolist()
    if dup:
        raise InputError(f"{path}: scan_id must be unique (add a scan_id column); repeated: {dup}")
    unsafe = [s for s in man["scan_id"] if not _SAFE_ID.match(s)]
    if unsafe:
        raise InputError(f"{path}: scan ids used as file names may hold only letters, digits, "
                         f"'.', '_' and '-': {unsafe}")


@dataclass
class CohortResult:
    """What a cohort run produced (tables are also on disk in ``out_dir``)."""

    out_dir: Path
    patients: pd.DataFrame
    errors: pd.DataFrame
    computed: int  # scans computed by this run
    skipped: int  # scans already present from an earlier run (and still valid)
    failed: int
    redone: list = None  # [(scan_id, why)]: earlier results found stale or unreadable, redone

    def __post_init__(self):
        if self.redone is None:
            self.redone = []


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
    check_scan_ids(man, path)
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
        # fingerprints first: a file replaced while this scan is computed makes it stale
        inputs = _inputs_record(job)
        with blas_threads(1):
            image, labels = read_pair(job["scan"], job["segmentation"], unit="HU")
            # garbage in fails this scan (errors.csv); doubtful input is recorded as warnings
            from ..checks import radiomics_input_checks, settle

            warnings = settle(radiomics_input_checks(image, labels, job["regions"],
                                                     job["scan"], job["segmentation"]))
            table = extract_volume(image, labels, preset=job["preset"], regions=job["regions"],
                                   params=job["params"])
            if job.get("morphometry", True):  # written before scans/<id>: see hrpqct.morphometry.cohort
                from ..morphometry.cohort import scan_morphometry

                scan_morphometry(image, labels, out, scan_id, job["subject_id"])
        inputs["model"] = labels.meta.get("segmentation_model")
        inputs["warnings"] = warnings
        table.insert(0, "scan_id", scan_id)
        table.insert(0, "subject_id", job["subject_id"])
        _write_scan_table(table, out / "scans" / f"{scan_id}.parquet", inputs)
        if err_file.exists():
            err_file.unlink()
        return {"scan_id": scan_id, "status": "ok", "rows": len(table), "warnings": warnings,
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


INPUTS_KEY = b"hrpqct.inputs"


def _inputs_record(job: dict) -> dict:
    from ..io.provenance import fingerprint

    import radiomics

    preset = job["preset"]
    return {"scan": fingerprint(job["scan"]), "segmentation": fingerprint(job["segmentation"]),
            "preset": preset.name, "preset_digest": preset.digest,
            "regions": list(job["regions"]), "pyradiomics": radiomics.__version__}


def _write_scan_table(table: pd.DataFrame, path: Path, inputs: dict) -> None:
    """The scan's table as Parquet with ``inputs`` in its metadata (atomic, checked)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from ..io import atomic_path

    at = pa.Table.from_pandas(table, preserve_index=False)
    meta = dict(at.schema.metadata or {})
    meta[INPUTS_KEY] = json.dumps(inputs).encode("utf-8")
    at = at.replace_schema_metadata(meta)
    with atomic_path(path, expect={"rows": len(table)}) as tmp:
        pq.write_table(at, tmp)


def read_inputs_record(path: str | os.PathLike) -> dict | None:
    """The ``hrpqct.inputs`` record of a scan table, None if it has none; raises
    :class:`InputError` if the file is not a readable Parquet file (truncated...)."""
    import pyarrow.parquet as pq

    try:
        meta = pq.read_schema(path).metadata or {}
        pq.read_metadata(path)
    except Exception as exc:  # noqa: BLE001  pyarrow raises assorted types
        raise InputError(f"{path}: not a readable Parquet file ({str(exc).splitlines()[0]})") from None
    raw = meta.get(INPUTS_KEY)
    if raw is None:
        return None
    try:
        return json.loads(raw.decode("utf-8"))
    except ValueError:
        return None


def stale_reason(path: Path, row, preset: Preset, regions: list[str]) -> str | None:
    """None if the scan table ``path`` can be trusted for manifest ``row``, else why not."""
    from ..io.provenance import compare

    try:
        rec = read_inputs_record(path)
    except InputError:
        return "its results file is unreadable (truncated?)"
    if rec is None:
        return "its results file has no record of its inputs (an older version made it)"
    if rec.get("preset_digest") != preset.digest or rec.get("regions") != list(regions):
        return "its results were made with another preset or other regions"
    for key in ("scan", "segmentation"):
        why = compare(rec.get(key), row[key])
        if why is not None:
            return f"the {key} {why}" if not why.startswith(("made", "no ")) else f"the {key}: {why}"
    return None


# --- executors --------------------------------------------------------------------------------
def _run_serial(jobs, on_done):
    for job in jobs:
        on_done(process_scan(job))


def _run_processes(jobs, workers, on_done):
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed

    # spawn: workers start clean (no inherited threads or locks from the caller); the calling
    # script therefore needs the usual `if __name__ == "__main__":` guard
    # workers die with this process, however it ends (SIGKILL, SIGTERM, SIGHUP): no orphans
    # computing for hours under init (hrpqct.lifeline)
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"),
                               initializer=_worker_init, initargs=(os.getpid(),))
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


def _worker_init(parent_pid: int) -> None:
    from ..lifeline import die_with_parent

    die_with_parent(parent_pid)


def _watch_main(main_pid: int) -> None:
    """On a Dask worker or nanny of the embedded cluster: end when the main process ends."""
    from ..lifeline import die_with_parent

    die_with_parent(main_pid, direct=False)


def _run_dask(jobs, workers, scheduler, on_done):
    import logging

    from distributed import Client, LocalCluster, as_completed

    cluster = None
    if scheduler == "local":
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                               dashboard_address=None, silence_logs=logging.ERROR)
        client = Client(cluster)
        try:  # the embedded cluster's processes end with this one (hrpqct.lifeline)
            client.run(_watch_main, os.getpid(), nanny=True)
            client.run(_watch_main, os.getpid())
        except Exception:  # noqa: BLE001  best effort: an old distributed without nanny=True
            pass
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
        try:
            table = pd.read_parquet(f)
        except Exception as exc:  # noqa: BLE001  pyarrow raises assorted types
            raise InputError(f"{f}: not a readable Parquet file ({str(exc).splitlines()[0]}); "
                             "run the cohort again to recompute it") from None
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
    on_stale: Callable[[str, str], None] | None = None,
    morphometry: bool = True,
) -> CohortResult:
    """Radiomics of every scan of a manifest into ``out_dir`` (module docstring).

    ``workers``: local processes (default: all cores; 1 = in this process) or Dask workers
    of the embedded cluster. ``scheduler``: ``None`` (local processes), ``"local"`` (embedded
    LocalCluster) or a Dask scheduler address. ``progress(done, total)`` counts scans,
    including those already present; ``on_scan`` receives each scan's status record;
    ``on_stale(scan_id, why)`` is called for each earlier result that is redone (stale or
    unreadable), before the work starts.
    ``morphometry``: also the standard morphometry of every scan (``morphometry/<scan_id>.parquet``
    and ``morphometry.parquet``, :mod:`hrpqct.morphometry.cohort`).
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

    jobs, skipped, redone = [], 0, []
    for _, row in man.iterrows():
        done_file = out / "scans" / f"{row['scan_id']}.parquet"
        if done_file.exists():
            why = stale_reason(done_file, row, preset, names)
            if why is None:
                skipped += 1
                continue
            redone.append((row["scan_id"], why))
            if on_stale is not None:
                on_stale(row["scan_id"], why)
            _remove_stale(done_file)
        jobs.append({"scan_id": row["scan_id"], "subject_id": row["subject_id"],
                     "scan": row["scan"], "segmentation": row["segmentation"],
                     "out_dir": str(out), "preset": preset, "regions": names, "params": params,
                     "morphometry": morphometry})
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
    warned = _collect_warnings(out, man)
    with atomic_path(out / "warnings.csv") as tmp:
        warned.to_csv(tmp, index=False)
    if morphometry:  # morphometry.parquet: hrpqct.morphometry.cohort
        from ..morphometry.cohort import write_cohort_morphometry

        write_cohort_morphometry(out, man)
    return CohortResult(out, patients, errors, computed=state["ok"], skipped=skipped,
                        failed=state["failed"], redone=redone)


def _collect_warnings(out: Path, manifest: pd.DataFrame) -> pd.DataFrame:
    """``scan_id, warning``: the input warnings recorded in each scan's table."""
    rows = []
    for sid in manifest["scan_id"]:
        f = out / "scans" / f"{sid}.parquet"
        if f.exists():
            try:
                rec = read_inputs_record(f) or {}
            except InputError:
                continue
            rows += [{"scan_id": sid, "warning": w} for w in rec.get("warnings") or []]
    return pd.DataFrame(rows, columns=["scan_id", "warning"])


def _remove_stale(path: Path) -> None:
    from ..io.outputs import output_error

    try:
        path.unlink()
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise output_error(path, exc, "cannot remove the stale result") from None


def _single_threaded_serial(jobs, on_done):
    """Serial run in this process, with the same one-thread limits as a worker (restored after)."""
    import SimpleITK as sitk

    before = sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()
    try:
        _run_serial(jobs, on_done)
    finally:
        sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(before)

