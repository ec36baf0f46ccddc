"""Long runs (segmentation, radiomics) in a background process, with progress and cancel.

Slicer's user interface must stay responsive while a scan is segmented (minutes on a CPU), and a
crash or an out-of-memory kill of the worker must not take Slicer down. So, as in
SlicerMONAIAuto3DSeg and SlicerTotalSegmentator, the work runs in a separate Python process:

* ``hrpqct segment SCAN --out STAGING --progress-json FILE`` for a segmentation,
* ``python -m hrpqct_slicer.worker radiomics ... --progress-json FILE`` for radiomics.

The process appends one JSON object per progress step to ``FILE`` (``stage``, ``label``,
``done``, ``total``); :meth:`BackgroundJob.poll` reads what is new without blocking, so a Qt timer
in the module widget can call it a few times a second, and :meth:`BackgroundJob.wait` loops on it
for scripts and tests. The process writes into a hidden staging folder inside the output folder;
only when it exits successfully are its files moved into the output folder (``os.replace``, file
by file). :meth:`BackgroundJob.cancel` terminates the process (then kills it if it does not stop)
and deletes the staging folder, so a cancelled or failed run leaves no partial output.

Nothing here imports Qt or Slicer: the same class runs inside Slicer and in the tests.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence

from .worker import RADIOMICS_STAGES

__all__ = [
    "Progress",
    "JobStatus",
    "BackgroundJob",
    "JobTask",
    "read_progress",
    "python_executable",
    "child_environment",
    "segment_argv",
    "radiomics_argv",
    "SEGMENT_STAGES",
    "RADIOMICS_STAGES",
]

# Steps and their share of the run time (for one progress bar) are declared where the steps are
# reported: SEGMENT_STAGES in hrpqct.seg.pipeline (read lazily: this module imports only the
# standard library), RADIOMICS_STAGES in hrpqct_slicer.worker.


def __getattr__(name: str):
    if name == "SEGMENT_STAGES":
        from hrpqct.seg.pipeline import SEGMENT_STAGES

        return SEGMENT_STAGES
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

STATES = ("created", "running", "succeeded", "failed", "cancelled")


@dataclass(frozen=True)
class Progress:
    """One line of a progress file."""

    stage: str
    label: str
    done: int
    total: Optional[int]


def read_progress(path: str | os.PathLike, offset: int = 0) -> tuple[list[Progress], int]:
    """New progress lines of ``path`` from byte ``offset``: ``(events, new offset)``.

    Only complete lines count (a line being written is read at the next call); lines that are
    not progress JSON are skipped. A missing file gives no events.
    """
    try:
        with open(path, "rb") as fh:
            fh.seek(offset)
            data = fh.read()
    except FileNotFoundError:
        return [], offset
    end = data.rfind(b"\n")
    if end < 0:
        return [], offset
    events = []
    for raw in data[: end + 1].splitlines():
        try:
            d = json.loads(raw.decode("utf-8"))
            total = d.get("total")
            events.append(Progress(str(d["stage"]), str(d.get("label", d["stage"])),
                                   int(d.get("done", 0)), None if total is None else int(total)))
        except (ValueError, KeyError, TypeError, UnicodeDecodeError, AttributeError):
            continue
    return events, offset + end + 1


@dataclass
class JobStatus:
    """Where a background job is: state, current step, overall fraction, outcome."""

    state: str = "created"  # one of STATES
    stage: str = ""
    label: str = ""
    done: int = 0
    total: Optional[int] = None
    fraction: float = 0.0  # 0..1 over all steps, from the stage weights
    message: str = ""  # why it failed or was cancelled
    returncode: Optional[int] = None
    outputs: list[Path] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def finished(self) -> bool:
        return self.state in ("succeeded", "failed", "cancelled")

    def text(self) -> str:
        """One line for a status label or a progress bar."""
        if self.state == "running":
            if not self.label:
                return "Starting (loading Python packages)..."
            if self.total:
                return f"{self.label}: {self.done} / {self.total}"
            return f"{self.label}..."
        if self.state == "succeeded":
            return f"Done in {self.seconds:.1f} s"
        if self.state in ("failed", "cancelled"):
            return f"{self.state.capitalize()}: {self.message}" if self.message else self.state
        return "Not started"


def python_executable() -> str:
    """The Python to run workers with: ``$HRPQCT_PYTHON``, Slicer's ``PythonSlicer`` inside the
    Slicer application, else this interpreter."""
    env = os.environ.get("HRPQCT_PYTHON")
    if env:
        return env
    slicer = sys.modules.get("slicer")
    if slicer is not None and getattr(slicer, "app", None) is not None:
        found = shutil.which("PythonSlicer")
        if found:
            return found
    return sys.executable


def _package_roots() -> list[str]:
    """Folders holding the ``hrpqct`` and ``hrpqct_slicer`` packages (bundled in an extension's
    ``qt-scripted-modules`` folder, which a worker process would not otherwise have on its path)."""
    import hrpqct

    roots = [str(Path(hrpqct.__file__).resolve().parent.parent),
             str(Path(__file__).resolve().parent.parent)]
    return list(dict.fromkeys(roots))


def child_environment(extra: Optional[dict[str, str]] = None) -> dict[str, str]:
    """This process's environment with the core packages on ``PYTHONPATH``, unbuffered output
    and no terminal colours."""
    env = dict(os.environ)
    paths = _package_roots() + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    env["PYTHONUNBUFFERED"] = "1"
    env.setdefault("NO_COLOR", "1")
    env.setdefault("TERM", "dumb")
    env["COLUMNS"] = "1000"  # rich wraps at 80 columns without a terminal; keep errors on a line
    if extra:
        env.update(extra)
    return env


_SYSTEM = os.name  # the platform kill_process_tree acts for (tests set "nt")


def _run_quietly(argv: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, timeout=60,
                          creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0))


def kill_process_tree(pid: int, *, force: bool = False,
                      run: Optional[Callable[[list[str]], object]] = None) -> None:
    """Stop process ``pid`` and every process it started.

    POSIX: the worker is started in its own session, so SIGTERM (SIGKILL when ``force``) goes to
    its whole process group. Windows: ``PythonSlicer.exe`` is a launcher
    that starts the real Python as a child, so ending the launcher alone left the worker
    running; ``taskkill /PID pid /T /F`` ends the tree (``/F``: windowless console processes
    ignore a polite close request, so there is no graceful step to wait for)."""
    try:
        if _SYSTEM == "nt":
            (run or _run_quietly)(["taskkill", "/PID", str(pid), "/T", "/F"])
        else:
            os.killpg(pid, signal.SIGKILL if force else signal.SIGTERM)
    except (ProcessLookupError, PermissionError, OSError, subprocess.SubprocessError):
        pass


ArgvFactory = Callable[[Path, Path], Sequence[str]]


class BackgroundJob:
    """A worker process that writes into a staging folder and reports progress in a file.

    ``argv_for(staging, progress_file)`` returns the command line. ``out_dir`` receives the
    files when the process succeeds. ``stages``: ``(stage, weight)`` pairs giving the overall
    fraction (default: ``hrpqct segment``'s, :data:`hrpqct.seg.pipeline.SEGMENT_STAGES`). Inputs
    for the worker may be written to :attr:`work_dir` (removed by
    :meth:`cleanup`, which :meth:`poll` calls once the job has finished, unless ``keep_work``).
    """

    def __init__(self, argv_for: ArgvFactory, out_dir: str | os.PathLike, *,
                 stages: Optional[Sequence[tuple[str, float]]] = None,
                 env: Optional[dict[str, str]] = None, name: str = "hrpqct",
                 keep_work: bool = False, terminate_timeout_s: float = 10.0) -> None:
        self.out_dir = Path(out_dir)
        self.name = name
        if stages is None:
            from hrpqct.seg.pipeline import SEGMENT_STAGES as stages
        self.stages = tuple(stages)
        self.keep_work = keep_work
        self.terminate_timeout_s = terminate_timeout_s
        self.work_dir = Path(tempfile.mkdtemp(prefix=f"{name}-job-"))
        self.progress_file = self.work_dir / "progress.jsonl"
        self.log_file = self.work_dir / "log.txt"
        self.staging: Optional[Path] = None
        self.status = JobStatus()
        self._argv_for = argv_for
        self._env = env
        self._proc: Optional[subprocess.Popen] = None
        self._log = None
        self._offset = 0
        self._cancel = False
        self._t0 = 0.0
        self.log_text = ""
        self.argv: list[str] = []
        self.events: list[Progress] = []  # every progress line read, in order

    # --- running ------------------------------------------------------------------------------
    def start(self) -> JobStatus:
        """Start the process (once); returns the status."""
        if self._proc is not None or self.status.finished:
            return self.status
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.staging = self.out_dir / f".{self.name}-staging-{secrets.token_hex(4)}"
        self.staging.mkdir()
        self.argv = [str(a) for a in self._argv_for(self.staging, self.progress_file)]
        self._log = open(self.log_file, "wb")
        kwargs: dict = {}
        if os.name == "nt":
            kwargs["creationflags"] = (subprocess.CREATE_NEW_PROCESS_GROUP
                                       | getattr(subprocess, "CREATE_NO_WINDOW", 0))
        else:
            kwargs["start_new_session"] = True  # its own process group: cancel reaches children
        self._t0 = time.monotonic()
        try:
            self._proc = subprocess.Popen(self.argv, stdout=self._log, stderr=subprocess.STDOUT,
                                          stdin=subprocess.DEVNULL, env=self._env or
                                          child_environment(), cwd=str(self.work_dir), **kwargs)
        except OSError as exc:
            self._finish("failed", f"could not start {self.argv[0]}: {exc}", None)
            return self.status
        self.status.state = "running"
        return self.status

    def poll(self) -> JobStatus:
        """Read new progress and, if the process has ended, finish the job; never blocks long."""
        if self._proc is None or self.status.finished:
            return self.status
        self._read_progress()
        rc = self._proc.poll()
        if rc is not None:
            self._read_progress()
            if self._cancel:
                self._finish("cancelled", "cancelled by the user", rc)
            elif rc == 0:
                try:
                    self._commit()
                except OSError as exc:
                    self._finish("failed", f"could not move the results into {self.out_dir}: "
                                           f"{exc}", rc)
                else:
                    self._finish("succeeded", "", rc)
            else:
                self._finish("failed", self._failure_message(rc), rc)
        self.status.seconds = time.monotonic() - self._t0
        return self.status

    def cancel(self) -> JobStatus:
        """Stop the process (terminate, then kill after ``terminate_timeout_s``) and discard its
        output. Safe to call at any time; a finished job is left as it is."""
        if self.status.finished:
            return self.status
        self._cancel = True
        if self._proc is None:
            self._finish("cancelled", "cancelled before it started", None)
            return self.status
        if self._proc.poll() is None:
            self._signal()
            try:
                self._proc.wait(self.terminate_timeout_s)
            except subprocess.TimeoutExpired:
                self._signal(kill=True)
                self._proc.wait()
        return self.poll()

    def wait(self, timeout: Optional[float] = None, interval: float = 0.2,
             progress: Optional[Callable[[JobStatus], Optional[bool]]] = None) -> JobStatus:
        """Poll until the job ends. ``progress(status)`` is called on each change of step or
        count; returning ``False`` cancels. After ``timeout`` seconds the job is cancelled."""
        self.start()
        deadline = None if timeout is None else time.monotonic() + timeout
        last = None
        while True:
            status = self.poll()
            key = (status.state, status.stage, status.done)
            if progress is not None and key != last:
                last = key
                if progress(status) is False:
                    return self.cancel()
            if status.finished:
                return status
            if deadline is not None and time.monotonic() > deadline:
                self.cancel()
                self.status.message = f"timed out after {timeout:g} s"
                return self.status
            time.sleep(interval)

    @property
    def pid(self) -> Optional[int]:
        return None if self._proc is None else self._proc.pid

    def cleanup(self) -> None:
        """Remove the work folder (progress file, log, inputs) and any staging folder."""
        if self.staging is not None:
            shutil.rmtree(self.staging, ignore_errors=True)
        if not self.keep_work:
            shutil.rmtree(self.work_dir, ignore_errors=True)

    # --- internals -----------------------------------------------------------------------------
    def _signal(self, kill: bool = False) -> None:
        kill_process_tree(self._proc.pid, force=kill)

    def _read_progress(self) -> None:
        events, self._offset = read_progress(self.progress_file, self._offset)
        self.events.extend(events)
        for ev in events:
            self.status.stage, self.status.label = ev.stage, ev.label
            self.status.done, self.status.total = ev.done, ev.total
        if events:
            self.status.fraction = max(self.status.fraction, self._fraction())

    def _fraction(self) -> float:
        s = self.status
        before, weight = 0.0, None
        for name, w in self.stages:
            if name == s.stage:
                weight = w
                break
            before += w
        if weight is None:
            return self.status.fraction
        part = min(1.0, s.done / s.total) if s.total else 0.0
        total = sum(w for _, w in self.stages) or 1.0
        return min(1.0, (before + weight * part) / total)

    def _commit(self) -> None:
        outputs = []
        for src in sorted(self.staging.iterdir()):
            if src.name.startswith("."):
                continue  # a writer's temporary file
            dst = self.out_dir / src.name
            if src.is_dir():
                from hrpqct.io.atomic import swap_folder  # the old folder stays if this fails

                swap_folder(src, dst)
            else:
                os.replace(src, dst)
            outputs.append(dst)
        self.status.outputs = outputs

    def _failure_message(self, rc: int) -> str:
        text = self._read_log()
        lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
        errors = [ln for ln in lines if ln.lower().startswith("error:")]
        if errors:
            return errors[-1][len("error:"):].strip()
        tail = " | ".join(lines[-5:])
        return f"the worker exited with status {rc}" + (f": {tail}" if tail else "")

    def _read_log(self) -> str:
        try:
            return self.log_file.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    def _finish(self, state: str, message: str, rc: Optional[int]) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None
        self.log_text = self._read_log()
        self.status.state = state
        self.status.message = message
        self.status.returncode = rc
        if state == "succeeded":
            self.status.fraction = 1.0
        self.cleanup()


def segment_argv(scan: str | os.PathLike, *, model: Optional[str] = None, device: str = "auto",
                 fast_cpu: bool = True, batch_size: Optional[int] = None,
                 name: Optional[str] = None, threads: Optional[int] = None,
                 python: Optional[str] = None) -> ArgvFactory:
    """The ``hrpqct segment`` command line for :class:`BackgroundJob`."""

    def argv(staging: Path, progress: Path) -> list[str]:
        cmd = [python or python_executable(), "-m", "hrpqct", "segment", str(scan),
               "--out", str(staging), "--progress-json", str(progress), "--device", device,
               "--fast-cpu" if fast_cpu else "--no-fast-cpu", "--quiet"]
        if model:
            cmd += ["--model", str(model)]
        if batch_size:
            cmd += ["--batch-size", str(int(batch_size))]
        if name:
            cmd += ["--name", name]
        if threads:
            cmd += ["--threads", str(int(threads))]
        return cmd

    return argv


def radiomics_argv(image: str | os.PathLike, labels: str | os.PathLike, out_name: str, *,
                   preset: str = "paper", regions: Sequence[str] = (),
                   stats: Sequence[str] = ("mean",), slices: Optional[str] = None,
                   scan_id: Optional[str] = None, python: Optional[str] = None) -> ArgvFactory:
    """The radiomics worker's command line (``python -m hrpqct_slicer.worker radiomics``);
    ``out_name`` is the slice-level table's file name (``.csv`` or ``.parquet``)."""

    def argv(staging: Path, progress: Path) -> list[str]:
        cmd = [python or python_executable(), "-m", "hrpqct_slicer.worker", "radiomics",
               str(image), str(labels), "--out", str(staging / out_name),
               "--progress-json", str(progress), "--preset", str(preset),
               "--stats", ",".join(stats)]
        if regions:
            cmd += ["--regions", ",".join(regions)]
        if slices:
            cmd += ["--slices", slices]
        if scan_id:
            cmd += ["--scan-id", scan_id]
        return cmd

    return argv


class JobTask:
    """Base of the modules' background tasks: start, poll, cancel and wait on ``self.job`` (a
    :class:`BackgroundJob` the subclass creates)."""

    job: BackgroundJob

    @property
    def status(self) -> JobStatus:
        return self.job.status

    def start(self) -> JobStatus:
        return self.job.start()

    def poll(self) -> JobStatus:
        return self.job.poll()

    def cancel(self) -> JobStatus:
        return self.job.cancel()

    def wait(self, timeout: Optional[float] = None,
             progress: Optional[Callable[[JobStatus], Optional[bool]]] = None) -> JobStatus:
        return self.job.wait(timeout=timeout, progress=progress)
