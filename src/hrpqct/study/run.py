"""Running a study: the stages one after the other, each scan's work on local worker processes
or a Dask cluster, with a bounded number of scans in flight.

Executors (:class:`Executor`):

* local (default): segmentation in ``seg_workers`` processes (default 1: the model uses the
  machine's threads or its GPU), radiomics and morphometry in ``workers`` single-threaded
  processes; with 1 worker the scans run in this process. Worker processes die with this one
  (:mod:`hrpqct.lifeline`).
* Dask (``scheduler``): ``"local"`` starts an embedded ``LocalCluster`` of ``workers`` CPU
  workers (resource ``CPU=1``) and ``gpu_workers`` workers declaring ``GPU=1``; any other value
  is a scheduler address. Segmentation tasks ask for ``resources={"GPU": 1}`` and so run only on
  workers that declare a GPU; radiomics and morphometry ask for ``CPU=1`` when some worker
  declares CPU (else any worker).

At most ``in_flight`` scans (default twice the workers) are submitted at a time, the next one
when one finishes, so memory stays flat however large the cohort. Every finished task is
appended to ``logs/tasks.csv`` (stage, scan, status, worker, seconds).

Test hook: the environment variable ``HRPQCT_STUDY_KILL=<stage>:<n>`` makes the run kill itself
(SIGKILL) after ``n`` finished scans of ``<stage>`` (``classify:1``: after the predictions
are written, before their record), to test that a killed run resumes.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import pandas as pd

from ..errors import InputError, OutputError
from ..method import INFERENCE, RADIOMICS
from .plan import (STAGES, Decision, Layout, classify_inputs, model_digest, morphometry_digest,
                   plan_classify, plan_morphometry, plan_radiomics, plan_segment, read_json)

__all__ = ["StudySettings", "StudyResult", "run_study", "plan_study", "Executor"]


@dataclass
class StudySettings:
    model: Optional[str] = None  # segmentation model folder or catalogue id (None: default)
    device: str = INFERENCE.device
    preset: str = RADIOMICS.preset
    regions: Optional[list] = None
    morphometry: bool = True
    classifier: Optional[str] = None  # model folder, "demo" (bundled), or None
    train: bool = False
    scheme: str = "binary"
    t_score: str = "t_score_fn"
    label: Optional[str] = None
    quick: bool = False
    workers: Optional[int] = None
    seg_workers: int = 1
    gpu_workers: int = 1
    scheduler: Optional[str] = None
    in_flight: Optional[int] = None
    threads: Optional[int] = None  # torch threads per segmentation worker


@dataclass
class StudyResult:
    out: Path
    decisions: dict = field(default_factory=dict)  # stage -> [Decision]
    done: dict = field(default_factory=dict)  # stage -> ok count this run
    failed: dict = field(default_factory=dict)  # stage -> failures this run
    failures: pd.DataFrame | None = None


# --- hooks and logs ---------------------------------------------------------------------------
def _kill_point(stage: str, n: int) -> None:
    spec = os.environ.get("HRPQCT_STUDY_KILL", "")
    want, _, count = spec.partition(":")
    if want == stage and count.strip().isdigit() and n >= int(count):
        os.kill(os.getpid(), signal.SIGKILL)


class _TaskLog:
    FIELDS = ("time", "stage", "scan_id", "status", "worker", "seconds", "error")

    def __init__(self, path: Path):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)

    def add(self, rec: dict) -> None:
        new = not self.path.exists()
        with open(self.path, "a", encoding="utf-8", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=self.FIELDS, extrasaction="ignore")
            if new:
                w.writeheader()
            w.writerow({"time": f"{time.time():.3f}", **rec,
                        "seconds": f"{rec.get('seconds', float('nan')):.3f}"})


# --- executors --------------------------------------------------------------------------------
def _worker_init(parent_pid: int) -> None:
    from ..lifeline import die_with_parent

    die_with_parent(parent_pid)


def _died(fn_stage: str, job: dict, exc: BaseException) -> dict:
    rec = {"stage": fn_stage, "scan_id": job["scan_id"], "subject_id": job["subject_id"],
           "worker": "?", "status": "error", "error": type(exc).__name__,
           "message": f"worker failed: {exc}", "seconds": float("nan")}
    from .tasks import _write_json

    _write_json(Path(job["failure_file"]), rec)
    return rec


class Executor:
    """Runs one stage's tasks: ``map(stage, fn, jobs, on_done)``."""

    def __init__(self, settings: StudySettings):
        self.s = settings
        self.workers = int(settings.workers or os.cpu_count() or 1)
        if self.workers < 1:
            raise InputError(f"--workers must be >= 1, got {self.workers}")
        self.client = None
        self.cluster = None
        self.gpu_addresses: list[str] = []
        self.cpu_constrained = False

    # Dask
    def start(self) -> None:
        if not self.s.scheduler:
            return
        import logging

        from distributed import Client, LocalCluster

        if self.s.scheduler == "local":
            self.cluster = LocalCluster(n_workers=self.workers, threads_per_worker=1,
                                        processes=True, dashboard_address=None,
                                        silence_logs=logging.ERROR, resources={"CPU": 1})
            base = self.cluster.new_spec
            for i in range(max(0, int(self.s.gpu_workers))):
                opts = {**base["options"], "resources": {"GPU": 1}}
                self.cluster.worker_spec[f"gpu-{i}"] = {"cls": base["cls"], "options": opts}
            self.cluster.scale(len(self.cluster.worker_spec))
            self.client = Client(self.cluster)
            self.client.wait_for_workers(len(self.cluster.worker_spec), timeout=120)
            from ..radiomics.cohort import _watch_main

            try:  # the embedded cluster's processes end with this one (hrpqct.lifeline)
                self.client.run(_watch_main, os.getpid(), nanny=True)
                self.client.run(_watch_main, os.getpid())
            except Exception:  # noqa: BLE001  best effort
                pass
        else:
            try:
                self.client = Client(self.s.scheduler, timeout="20s")
            except Exception as exc:  # noqa: BLE001
                raise InputError(f"cannot reach the Dask scheduler at {self.s.scheduler!r}: "
                                 f"{exc}") from None
        self._read_resources()

    def _read_resources(self) -> None:
        info = self.client.scheduler_info(n_workers=-1) if _accepts_n_workers(self.client) \
            else self.client.scheduler_info()
        workers = info.get("workers", {})
        self.gpu_addresses = sorted(a for a, w in workers.items()
                                    if (w.get("resources") or {}).get("GPU", 0) > 0)
        self.cpu_constrained = any((w.get("resources") or {}).get("CPU", 0) > 0
                                   for w in workers.values())
        self.worker_resources = {a: dict(w.get("resources") or {}) for a, w in workers.items()}

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()

    def map(self, stage: str, fn: Callable, jobs: list, on_done: Callable[[dict], None]) -> None:
        if not jobs:
            return
        if self.client is not None:
            return self._map_dask(stage, fn, jobs, on_done)
        n = self.s.seg_workers if stage == "segment" else self.workers
        if n <= 1 or len(jobs) == 1:
            for job in jobs:
                on_done(fn(job))
            return
        self._map_pool(stage, fn, jobs, min(n, len(jobs)), on_done)

    def _limit(self, n: int) -> int:
        return int(self.s.in_flight) if self.s.in_flight else 2 * n

    def _map_pool(self, stage, fn, jobs, n, on_done) -> None:
        import multiprocessing as mp
        from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

        pool = ProcessPoolExecutor(max_workers=n, mp_context=mp.get_context("spawn"),
                                   initializer=_worker_init, initargs=(os.getpid(),))
        todo = iter(jobs)
        running: dict = {}
        try:
            def submit() -> bool:
                job = next(todo, None)
                if job is None:
                    return False
                running[pool.submit(fn, job)] = job
                return True

            for _ in range(self._limit(n)):
                if not submit():
                    break
            while running:
                finished, _ = wait(list(running), return_when=FIRST_COMPLETED)
                for fut in finished:
                    job = running.pop(fut)
                    try:
                        res = fut.result()
                    except OutputError:
                        raise
                    except Exception as exc:  # noqa: BLE001  the worker died
                        res = _died(stage, job, exc)
                    on_done(res)
                    submit()
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown(wait=True)

    def _map_dask(self, stage, fn, jobs, on_done) -> None:
        from distributed import as_completed

        if stage == "segment":
            if not self.gpu_addresses:
                raise InputError(
                    "no Dask worker declares a GPU resource, so no worker may segment: start "
                    "one with `dask worker ADDRESS --resources GPU=1` (its device may be a CPU)")
            resources, n = {"GPU": 1}, len(self.gpu_addresses)
        else:
            resources = {"CPU": 1} if self.cpu_constrained else None
            n = sum(1 for r in self.worker_resources.values()
                    if r.get("CPU", 0) > 0) if self.cpu_constrained else len(self.worker_resources)
        stamp = time.time_ns()
        todo = iter(jobs)
        by_key: dict = {}
        ac = as_completed()

        def submit() -> bool:
            job = next(todo, None)
            if job is None:
                return False
            fut = self.client.submit(fn, job, pure=False, resources=resources,
                                     key=f"hrpqct-{stage}-{job['scan_id']}-{stamp}")
            by_key[fut.key] = job
            ac.add(fut)
            return True

        for _ in range(self._limit(max(1, n))):
            if not submit():
                break
        try:
            for fut in ac:
                job = by_key.pop(fut.key)
                try:
                    res = fut.result()
                except OutputError:
                    raise
                except Exception as exc:  # noqa: BLE001  the worker died or was lost
                    res = _died(stage, job, exc)
                fut.release()
                on_done(res)
                submit()
        except BaseException:
            self.client.cancel(list(ac.futures) if hasattr(ac, "futures") else [])
            raise


def _accepts_n_workers(client) -> bool:
    import inspect

    try:
        return "n_workers" in inspect.signature(client.scheduler_info).parameters
    except (TypeError, ValueError):
        return False


# --- planning ---------------------------------------------------------------------------------
class _Context:
    def __init__(self, manifest: pd.DataFrame, out: Path, settings: StudySettings):
        from ..radiomics.masks import parse_regions
        from ..radiomics.presets import load_preset

        self.man = manifest
        self.layout = Layout(out)
        self.s = settings
        self.preset = load_preset(settings.preset)
        self.regions = parse_regions(settings.regions)
        self.morph_digest = morphometry_digest()
        self._model = None
        self.classify_what = _classify_what(settings)

    @property
    def model(self) -> dict:
        if self._model is None:
            from ..seg.model import resolve_model

            folder = resolve_model(self.s.model)
            self._model = {"dir": str(folder), "name": folder.name, "digest": model_digest(folder)}
        return self._model

    def rows(self):
        return [r for _, r in self.man.iterrows()]

    def needs_model(self) -> bool:
        return any(not r["segmentation"] for r in self.rows())


def _classify_what(s: StudySettings) -> dict | None:
    if s.train:
        return {"mode": "train", "scheme": s.scheme, "t_score": s.t_score, "label": s.label,
                "quick": s.quick}
    if s.classifier:
        folder = _classifier_folder(s.classifier)
        from ..io.provenance import sha256

        return {"mode": "predict", "model": str(folder), "model_digest": sha256(folder)}
    return None


def _classifier_folder(name: str) -> Path:
    if name == "demo":
        from ..classify.model import bundled_classifier

        entry = bundled_classifier()
        if entry is None:
            raise InputError("the bundled demo classifier is not installed; give --classifier "
                             "FOLDER")
        return Path(entry["path"])
    p = Path(name)
    if not p.is_dir():
        raise InputError(f"{p}: classifier model folder not found")
    return p


def _plan_seg(ctx: _Context) -> list[Decision]:
    model = ctx.model if ctx.needs_model() else {"name": None, "digest": None}
    return [plan_segment(ctx.layout, r, model) for r in ctx.rows()]


def plan_study(manifest: pd.DataFrame, out: str | os.PathLike, settings: StudySettings) -> dict:
    """Every stage's decisions without doing anything (``--dry-run``): later stages assume the
    earlier ones run as planned."""
    ctx = _Context(manifest, Path(out), settings)
    seg = _plan_seg(ctx)
    by = {d.scan_id: d for d in seg}
    plan = {"segment": seg}
    plan["radiomics"] = [plan_radiomics(ctx.layout, r, ctx.preset, ctx.regions, by[r["scan_id"]])
                         for r in ctx.rows()]
    if settings.morphometry:
        plan["morphometry"] = [plan_morphometry(ctx.layout, r, ctx.morph_digest, by[r["scan_id"]])
                               for r in ctx.rows()]
    c = plan_classify(ctx.layout, ctx.man, ctx.classify_what,
                      upstream_runs=any(d.run for d in plan["radiomics"]))
    if c is not None:
        plan["classify"] = [c]
    return plan


# --- the run ----------------------------------------------------------------------------------
def _cohort_manifest(ctx: _Context) -> pd.DataFrame:
    """The manifest as ``hrpqct cohort`` has it (segmentation = the file the stages read)."""
    man = ctx.man.drop(columns=["corrected"]).copy()
    man["segmentation"] = [str(ctx.layout.segmentation_of(r)) for r in ctx.rows()]
    return man


def _progress(label: str, total: int, quiet: bool):
    from ..progress import cli_progress

    return cli_progress(label, total, enabled=not quiet)


def run_study(manifest: pd.DataFrame, out: str | os.PathLike, settings: StudySettings, *,
              quiet: bool = False, on_decision: Callable[[Decision], None] | None = None,
              on_failure: Callable[[dict], None] | None = None) -> StudyResult:
    """Run every stage of a study into ``out`` (module docstring)."""
    from ..io.outputs import clean_temporaries

    ctx = _Context(manifest, Path(out), settings)
    L = ctx.layout
    for d in (L.out, L.seg, L.scans, L.morph, L.failures, L.logs, L.cohort / "errors"):
        d.mkdir(parents=True, exist_ok=True)
        clean_temporaries(d)
    _write_settings(ctx)
    log = _TaskLog(L.logs / "tasks.csv")
    result = StudyResult(L.out)
    ex = Executor(settings)
    ex.start()
    try:
        if ex.client is not None:
            _write_workers(L, ex)
        failed_seg = _stage_segment(ctx, ex, log, result, quiet, on_decision, on_failure)
        _stage_radiomics(ctx, ex, log, result, quiet, failed_seg, on_decision, on_failure)
        if settings.morphometry:
            _stage_morphometry(ctx, ex, log, result, quiet, failed_seg, on_decision, on_failure)
    finally:
        ex.close()
    _stage_classify(ctx, result, quiet, on_decision, on_failure)
    result.failures = write_failures(ctx)
    return result


def _write_settings(ctx: _Context) -> None:
    from .tasks import _write_json

    rec = {"preset": ctx.preset.name, "preset_digest": ctx.preset.digest,
           "regions": ctx.regions, "morphometry": ctx.s.morphometry,
           "classify": ctx.classify_what, "scheduler": ctx.s.scheduler}
    if ctx.needs_model():
        rec["model"] = {"name": ctx.model["name"], "digest": ctx.model["digest"]}
    _write_json(ctx.layout.out / "study.json", rec)


def _write_workers(L: Layout, ex: Executor) -> None:
    from .tasks import _write_json

    _write_json(L.logs / "workers.json", {"workers": ex.worker_resources,
                                          "gpu": ex.gpu_addresses})


def _counter(stage, log, result, bar, total, start, on_failure):
    state = {"n": start}
    result.done.setdefault(stage, 0)
    result.failed.setdefault(stage, 0)

    def on_done(rec: dict) -> None:
        log.add(rec)
        state["n"] += 1
        if rec["status"] == "ok":
            result.done[stage] += 1
        else:
            result.failed[stage] += 1
            if on_failure is not None:
                on_failure(rec)
        bar(state["n"], total)
        _kill_point(stage, state["n"] - start)

    return on_done


def _announce(decisions, on_decision):
    if on_decision is not None:
        for d in decisions:
            if d.state != "done":
                on_decision(d)


def _jobs(ctx, decisions, stage: str, fields) -> list[dict]:
    """One task per decision that runs: the scan's ids and file, ``fields(decision, row)`` and
    the stage's failure file."""
    rows = {r["scan_id"]: r for r in ctx.rows()}
    jobs = []
    for d in decisions:
        if d.run:
            r = rows[d.scan_id]
            jobs.append({"scan_id": d.scan_id, "subject_id": r["subject_id"], "scan": r["scan"],
                         **fields(d, r),
                         "failure_file": str(ctx.layout.failure_file(stage, d.scan_id))})
    return jobs


def _stage_segment(ctx, ex, log, result, quiet, on_decision, on_failure) -> set:
    from .tasks import segment_task

    decisions = _plan_seg(ctx)
    result.decisions["segment"] = decisions
    _announce(decisions, on_decision)
    jobs = _jobs(ctx, decisions, "segment", lambda d, r: {
        "out_dir": str(ctx.layout.seg), "record": str(ctx.layout.seg_record(d.scan_id)),
        "model_dir": ctx.model["dir"], "model_name": ctx.model["name"],
        "model_digest": ctx.model["digest"], "device": ctx.s.device, "threads": ctx.s.threads})
    failed = set()
    total = len(decisions)
    with _progress("segmentation", total, quiet) as bar:
        bar(total - len(jobs), total)
        inner = _counter("segment", log, result, bar, total, total - len(jobs), on_failure)

        def on_done(rec):
            if rec["status"] != "ok":
                failed.add(rec["scan_id"])
            inner(rec)

        ex.map("segment", segment_task, jobs, on_done)
    return failed


def _stage_radiomics(ctx, ex, log, result, quiet, failed_seg, on_decision, on_failure) -> None:
    from ..io import atomic_path
    from ..radiomics.cohort import _collect_warnings, _remove_stale, _run_record, collect
    from .tasks import _write_json, radiomics_task

    L = ctx.layout
    decisions = [plan_radiomics(L, r, ctx.preset, ctx.regions, None, failed_seg)
                 for r in ctx.rows()]
    result.decisions["radiomics"] = decisions
    _announce(decisions, on_decision)
    for d in decisions:
        if d.run and d.state == "stale":
            _remove_stale(L.radiomics_file(d.scan_id))
    jobs = _jobs(ctx, decisions, "radiomics", lambda d, r: {
        "segmentation": str(L.segmentation_of(r)), "out_dir": str(L.cohort),
        "preset": ctx.preset, "regions": ctx.regions, "params": RADIOMICS})
    _write_json(L.cohort / "run.json", _run_record(ctx.preset, ctx.regions, RADIOMICS))
    total = len(decisions)
    with _progress("radiomics", total, quiet) as bar:
        start = total - len(jobs)
        bar(start, total)
        ex.map("radiomics", radiomics_task, jobs,
               _counter("radiomics", log, result, bar, total, start, on_failure))
    man = _cohort_manifest(ctx)
    patients, errors = collect(L.cohort, man)
    with atomic_path(L.cohort / "patients.parquet") as tmp:
        patients.to_parquet(tmp, index=False)
    with atomic_path(L.cohort / "patients.csv") as tmp:
        patients.to_csv(tmp, index=False)
    with atomic_path(L.cohort / "errors.csv") as tmp:
        errors.to_csv(tmp, index=False)
    with atomic_path(L.cohort / "warnings.csv") as tmp:
        _collect_warnings(L.cohort, man).to_csv(tmp, index=False)


def _stage_morphometry(ctx, ex, log, result, quiet, failed_seg, on_decision, on_failure) -> None:
    from ..morphometry.cohort import write_cohort_morphometry
    from .tasks import morphometry_task

    L = ctx.layout
    decisions = [plan_morphometry(L, r, ctx.morph_digest, None, failed_seg) for r in ctx.rows()]
    result.decisions["morphometry"] = decisions
    _announce(decisions, on_decision)
    jobs = _jobs(ctx, decisions, "morphometry", lambda d, r: {
        "segmentation": str(L.segmentation_of(r)), "out_dir": str(L.cohort),
        "record": str(L.morph_record(d.scan_id)), "method_digest": ctx.morph_digest})
    total = len(decisions)
    with _progress("morphometry", total, quiet) as bar:
        start = total - len(jobs)
        bar(start, total)
        ex.map("morphometry", morphometry_task, jobs,
               _counter("morphometry", log, result, bar, total, start, on_failure))
    man = _cohort_manifest(ctx)
    ok = [sid for sid in man["scan_id"] if L.morph_record(sid).exists()]
    write_cohort_morphometry(L.cohort, man[man["scan_id"].isin(ok)])


# --- classification ---------------------------------------------------------------------------
def _stage_classify(ctx, result, quiet, on_decision, on_failure) -> None:
    from .tasks import _write_json

    L = ctx.layout
    d = plan_classify(L, ctx.man, ctx.classify_what)
    if d is None:
        return
    result.decisions["classify"] = [d]
    _announce([d], on_decision)
    result.done["classify"] = result.failed["classify"] = 0
    fail = L.failure_file("classify", "cohort")
    if not d.run:
        return
    L.classify.mkdir(parents=True, exist_ok=True)
    L.classify_record().unlink(missing_ok=True)
    inputs = classify_inputs(L, ctx.man, ctx.classify_what)
    try:
        with _progress("classification", 1, quiet) as bar:
            bar(0, 1)
            if ctx.classify_what["mode"] == "train":
                _train(ctx)
            else:
                _predict(ctx)
            bar(1, 1)
    except OutputError:
        raise
    except Exception as exc:  # noqa: BLE001  recorded; the other stages' results stand
        rec = {"stage": "classify", "scan_id": "*", "subject_id": "*", "status": "error",
               "error": type(exc).__name__, "message": str(exc)}
        _write_json(fail, rec)
        result.failed["classify"] = 1
        if on_failure is not None:
            on_failure(rec)
        return
    fail.unlink(missing_ok=True)
    _kill_point("classify", 1)
    _write_json(L.classify_record(), inputs)
    result.done["classify"] = 1


def _scan_tables(ctx) -> pd.DataFrame:
    L = ctx.layout
    parts = [pd.read_parquet(L.radiomics_file(sid)) for sid in ctx.man["scan_id"]
             if L.radiomics_file(sid).exists()]
    if not parts:
        raise InputError(f"{L.scans}: no radiomics table to classify")
    return pd.concat(parts, ignore_index=True)


def _predict(ctx) -> None:
    from ..classify.model import load_model, predict
    from ..io import atomic_path

    L = ctx.layout
    m = load_model(ctx.classify_what["model"])
    table = _scan_tables(ctx)
    extra = [c for c in ctx.man.columns if c not in ("subject_id", "scan_id", "scan",
                                                     "segmentation", "corrected")]
    rows, recs, probs, done = [], [], [], []
    for i, r in ctx.man.iterrows():
        t = table[table["scan_id"] == r["scan_id"]]
        if t.empty:
            continue
        clinical = {}
        for c in extra:
            try:
                clinical[c] = float(r[c])
            except (TypeError, ValueError):
                pass
        (p,) = predict(m, t, clinical=clinical, preset=ctx.s.preset)
        recs.append({"subject_id": r["subject_id"], **p.as_dict()})
        pp = p.probability
        probs.append([1.0 - pp, pp] if isinstance(pp, float) else list(pp))
        done.append(i)
        row = {"subject_id": r["subject_id"], "scan_id": r["scan_id"],
               "probability": p.probability if isinstance(p.probability, float) else max(p.probability),
               "class": p.label, "threshold": p.threshold}
        for code, reg in p.regions.items():
            row[f"{code}_probability"] = reg["probability"]
            row[f"{code}_class"] = reg["class"]
        rows.append(row)
    with atomic_path(L.classify / "predictions.csv") as tmp:
        pd.DataFrame(rows).to_csv(tmp, index=False)
    with atomic_path(L.classify / "predictions.json") as tmp:
        tmp.write_text(json.dumps({"model": ctx.classify_what["model"],
                                   "clinical_use": bool(m.metadata.get("clinical_use", False)),
                                   "notes": m.metadata.get("notes", []), "predictions": recs},
                                  indent=1), encoding="utf-8")
    _validation_report(ctx, m, ctx.man.loc[done], np.asarray(probs, dtype=float))


def _validation_report(ctx, m, scans: pd.DataFrame, prob: np.ndarray) -> None:
    """``classification/report.html``: the given model on the study's scans, validated against
    the manifest's labels (``--label``) or T-scores (``--t-score``) when every scan has one."""
    from ..classify.data import make_labels
    from ..classify.validation import validation_result, write_validation_report

    if not len(scans):
        return
    scheme = "binary" if len(m.classes) == 2 else "three"
    y, rule = None, ""
    try:
        lab = make_labels(scans.reset_index(drop=True), scheme=scheme, t_score=ctx.s.t_score,
                          label=ctx.s.label)
        y, rule = lab.y.to_numpy(), lab.rule
    except InputError as exc:
        rule = f"none ({exc})"
    res = validation_result(m, scans["subject_id"].astype(str), prob, y)
    write_validation_report(m, res, ctx.layout.classify / "report.html", label_rule=rule,
                            title="HR-pQCT study")


def _train(ctx) -> None:
    from dataclasses import replace

    from ..classify.data import load_cohort
    from ..classify.model import train_model
    from ..classify.report import write_study_report
    from ..classify.study import StudyConfig, save_study
    from ..method import SELECTION

    L = ctx.layout
    s = ctx.s
    cohort = load_cohort(slices=L.cohort, patients=L.cohort / "patients.parquet",
                         scheme=s.scheme, t_score=s.t_score, label=s.label)
    cfg = StudyConfig(title="HR-pQCT study", quick=s.quick)
    if s.quick:
        cfg = replace(cfg, selection=replace(SELECTION, lasso_cs=(0.1, 1.0, 10.0), lasso_cv_folds=3))
    study, _ = train_model(cohort, L.classify / "model", config=cfg, preset=s.preset)
    save_study(study, L.classify / "study")
    write_study_report(study, L.classify / "report.html")


# --- failures ---------------------------------------------------------------------------------
def write_failures(ctx) -> pd.DataFrame:
    """``failures.csv``: every stage's failed scans (stage, scan_id, subject_id, error,
    message), in stage and manifest order."""
    from ..io import atomic_path

    L = ctx.layout
    rows = []
    order = {sid: i for i, sid in enumerate(ctx.man["scan_id"])}
    for stage in STAGES:
        folder = L.failures / stage
        if not folder.is_dir():
            continue
        recs = [read_json(f) for f in folder.glob("*.json")]
        recs = [r for r in recs if r]
        recs.sort(key=lambda r: order.get(r.get("scan_id"), -1))
        for r in recs:
            rows.append({k: r.get(k) for k in ("stage", "scan_id", "subject_id", "error",
                                               "message")})
    df = pd.DataFrame(rows, columns=["stage", "scan_id", "subject_id", "error", "message"])
    with atomic_path(L.out / "failures.csv") as tmp:
        df.to_csv(tmp, index=False)
    return df
