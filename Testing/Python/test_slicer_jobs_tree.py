"""Cancel stops the worker's whole process tree (POSIX process group; Windows taskkill /T).

On Windows the worker command is PythonSlicer.exe, a launcher whose child is the real Python:
ending only the launcher left the segmentation running. Windows itself is not available here,
so its branch is checked by the command it runs, with the process then ended as POSIX does."""

from __future__ import annotations

import os
import sys
import textwrap
import time

import pytest

from hrpqct_slicer import jobs as J

# a launcher that starts a child (the real worker), writes the child's pid and waits for it
LAUNCHER = textwrap.dedent("""
    import subprocess, sys, time
    staging, progress = sys.argv[1], sys.argv[2]
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    open(staging + "/child.pid", "w", encoding="utf-8").write(str(child.pid))
    open(progress, "a", encoding="utf-8").write('{"stage": "segment", "done": 0, "total": 1}\\n')
    child.wait()
""")


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (exited, not yet reaped by its parent) counts as gone
        with open(f"/proc/{pid}/stat", encoding="utf-8") as f:
            return f.read().split(") ", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def _start(tmp_path):
    job = J.BackgroundJob(lambda s, p: [sys.executable, "-c", LAUNCHER, str(s), str(p)],
                          tmp_path / "out", stages=(("segment", 1.0),))
    job.start()
    deadline = time.monotonic() + 30
    while not (job.staging / "child.pid").is_file() or job.poll().stage != "segment":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    child = int((job.staging / "child.pid").read_text(encoding="utf-8"))
    return job, child


@pytest.mark.skipif(os.name == "nt", reason="POSIX process groups")
def test_cancel_ends_the_workers_children(tmp_path):
    job, child = _start(tmp_path)
    assert _alive(child)
    assert job.cancel().state == "cancelled"
    deadline = time.monotonic() + 10
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child)


@pytest.mark.skipif(os.name == "nt", reason="emulates Windows on POSIX")
def test_cancel_on_windows_runs_taskkill_on_the_tree(tmp_path, monkeypatch):
    calls = []

    def fake_taskkill(argv):
        calls.append(argv)
        os.killpg(int(argv[2]), 9)  # what taskkill /T /F does to the tree

    monkeypatch.setattr(J, "_SYSTEM", "nt")
    monkeypatch.setattr(J, "_run_quietly", fake_taskkill)
    job, child = _start(tmp_path)
    pid = job.pid
    assert job.cancel().state == "cancelled"
    assert calls and calls[0] == ["taskkill", "/PID", str(pid), "/T", "/F"]
    deadline = time.monotonic() + 10
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child)
