"""Resume that checks what it trusts, and no orphan workers (issue 16, part 3).

A resumed ``hrpqct cohort`` redoes (and says so) results that are truncated or unreadable, that
carry no record of their inputs, or whose scan or segmentation was replaced since; it keeps
those whose inputs are unchanged (a file touched but identical included). Killing the main
process with SIGKILL, SIGTERM or SIGHUP while ``-j 2`` workers compute ends the workers too.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hrpqct.io import read_labelmap, write_segmentation
from hrpqct.radiomics.cohort import INPUTS_KEY, read_inputs_record, run_cohort

from test_seg_post_cli import files  # noqa: F401  (scan.nrrd + case.seg.nrrd)
from helpers import cli

REGIONS = ["TC"]


@pytest.fixture()
def cohort(files, tmp_path):  # noqa: F811
    """Two scans (P2 has its own copy of the segmentation, to be corrected later)."""
    seg2 = tmp_path / "p2.seg.nrrd"
    seg2.write_bytes(files["seg"].read_bytes())
    man = tmp_path / "manifest.csv"
    pd.DataFrame({"subject_id": ["P1", "P2"], "scan": [str(files["image"])] * 2,
                  "segmentation": [str(files["seg"]), str(seg2)]}).to_csv(man, index=False)
    out = tmp_path / "out"
    assert cli("cohort", str(man), "--out", str(out), "-q", "-j", "1", "-r", "TC") == 0
    return {"manifest": man, "out": out, "seg2": seg2, "files": files}


def _rerun(c, capsys):
    capsys.readouterr()
    code = cli("cohort", str(c["manifest"]), "--out", str(c["out"]), "-q", "-j", "1", "-r", "TC")
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def test_outputs_record_their_inputs(cohort):
    rec = read_inputs_record(cohort["out"] / "scans" / "P2.parquet")
    seg2 = cohort["seg2"]
    assert rec["segmentation"]["path"] == str(seg2.resolve())
    assert rec["segmentation"]["size"] == seg2.stat().st_size
    assert rec["segmentation"]["mtime_ns"] == seg2.stat().st_mtime_ns
    import hashlib

    assert rec["segmentation"]["sha256"] == hashlib.sha256(seg2.read_bytes()).hexdigest()
    assert rec["scan"]["path"] == str(cohort["files"]["image"].resolve())
    assert rec["preset"] == "paper" and rec["regions"] == REGIONS and len(rec["preset_digest"]) > 8


def test_unchanged_inputs_are_trusted(cohort, capsys):
    os.utime(cohort["seg2"])  # touched, same content: the hash says it is the same file
    code, out, err = _rerun(cohort, capsys)
    assert code == 0 and "0 computed, 2 already present, 0 failed" in out and "redoing" not in err


def test_truncated_result_is_redone_not_a_traceback(cohort, capsys):
    f = cohort["out"] / "scans" / "P1.parquet"
    good = pd.read_parquet(f)
    data = f.read_bytes()
    f.write_bytes(data[: len(data) // 2])
    code, out, err = _rerun(cohort, capsys)
    assert code == 0, err
    assert "redoing P1: its results file is unreadable (truncated?)" in err
    assert "1 computed (1 of them redone: stale or unreadable), 1 already present" in out
    pd.testing.assert_frame_equal(pd.read_parquet(f), good)


def test_replaced_segmentation_is_redone(cohort, capsys):
    f = cohort["out"] / "scans" / "P2.parquet"
    before = pd.read_parquet(f)
    lab = read_labelmap(cohort["seg2"])
    from hrpqct.regions import region

    tc = lab.array == region("TC").label
    tc[:, :, :80] = False
    lab.array[tc] = 0  # a corrected mask: half the tibial cortex erased
    write_segmentation(lab, cohort["seg2"])
    code, out, err = _rerun(cohort, capsys)
    assert code == 0
    assert f"redoing P2: the segmentation {cohort['seg2']} changed since" in err or \
        f"redoing P2: the segmentation {cohort['seg2']} was replaced since" in err
    assert "1 computed (1 of them redone" in out and "1 already present" in out
    after = pd.read_parquet(f)
    col = "original_shape2D_PixelSurface"
    assert not np.allclose(before[col].to_numpy(float), after[col].to_numpy(float))


def test_result_without_record_is_redone(cohort, capsys):
    import pyarrow.parquet as pq

    f = cohort["out"] / "scans" / "P1.parquet"
    t = pq.read_table(f)
    meta = {k: v for k, v in t.schema.metadata.items() if k != INPUTS_KEY}
    pq.write_table(t.replace_schema_metadata(meta), f)  # as an older version wrote it
    code, out, err = _rerun(cohort, capsys)
    assert code == 0 and "redoing P1: its results file has no record of its inputs" in err


def test_manifest_pointing_elsewhere_is_redone(cohort, tmp_path):
    other = tmp_path / "other.seg.nrrd"
    other.write_bytes(cohort["seg2"].read_bytes())
    man = pd.read_csv(cohort["manifest"])
    man.loc[1, "segmentation"] = str(other)
    man.to_csv(cohort["manifest"], index=False)
    seen = []
    res = run_cohort(cohort["manifest"], cohort["out"], workers=1, regions=REGIONS,
                     on_stale=lambda s, why: seen.append((s, why)))
    assert res.skipped == 1 and res.computed == 1
    assert seen == [("P2", f"the segmentation: made from {cohort['seg2'].resolve()}, not {other}")]


# --- workers die with their parent -------------------------------------------------------------
def _children(pid: int) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text(encoding="utf-8")
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(d.name))
    return out


def _alive(pid: int) -> bool:
    if not Path("/proc/self/stat").exists():
        from hrpqct.lifeline import pid_alive

        return pid_alive(pid)
    try:
        state = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8").rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _start_long_cohort(files, tmp_path, *extra: str, n: int = 40):
    """``hrpqct cohort -j 2`` on ``n`` copies of the test scan, in its own session:
    ``(process, out folder, n)``."""
    man = tmp_path / "manifest.csv"
    pd.DataFrame({"subject_id": [f"P{i}" for i in range(n)], "scan": [str(files["image"])] * n,
                  "segmentation": [str(files["seg"])] * n}).to_csv(man, index=False)
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "hrpqct", "cohort", str(man), "--out", str(out),
                             "-q", "-j", "2", "-r", "TC", *extra], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, start_new_session=True)
    return proc, out, n


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc (Linux)")
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM, signal.SIGHUP])
def test_workers_die_with_the_main_process(files, tmp_path, sig):  # noqa: F811
    proc, out, n = _start_long_cohort(files, tmp_path)
    workers: list[int] = []
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            workers = [p for p in _children(proc.pid)
                       if b"spawn_main" in Path(f"/proc/{p}/cmdline").read_bytes()]
            if len(workers) == 2 and list((out / "scans").glob("*.parquet")):
                break
            time.sleep(0.1)
        assert len(workers) == 2, "the workers did not start"
        os.kill(proc.pid, sig)
        proc.wait(timeout=30)
        end = time.monotonic() + 15
        while any(_alive(w) for w in workers) and time.monotonic() < end:
            time.sleep(0.1)
        left = [w for w in workers if _alive(w)]
        assert not left, f"workers {left} still running after the main process got {sig!r}"
        assert len(list((out / "scans").glob("*.parquet"))) < n  # killed mid-way
    finally:
        for w in workers:
            try:
                os.kill(w, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _descendants(pid: int) -> list[int]:
    todo, seen = [pid], []
    while todo:
        kids = _children(todo.pop())
        seen += kids
        todo += kids
    return seen


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc (Linux)")
def test_dask_cluster_dies_with_the_main_process(files, tmp_path):  # noqa: F811
    """``--scheduler local``: the embedded LocalCluster's nannies and workers end with SIGKILL.

    Measured: they end within about 0.6 s with or without hrpqct.lifeline's watchdog
    (distributed's own processes notice the lost parent), so this guards the behaviour, not the
    watchdog; the watchdog matters for a cluster whose processes outlive their starter.
    """
    proc, out, n = _start_long_cohort(files, tmp_path, "--scheduler", "local")
    tree: list[int] = []
    deadline = time.monotonic() + 180
    try:
        while time.monotonic() < deadline:
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            tree = _descendants(proc.pid)
            if len(tree) >= 2 and list((out / "scans").glob("*.parquet")):
                break
            time.sleep(0.2)
        assert list((out / "scans").glob("*.parquet")), "the cluster computed nothing"
        tree = _descendants(proc.pid)
        assert len(tree) >= 2, f"expected nanny and worker processes, found {tree}"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        end = time.monotonic() + 30
        while any(_alive(p) for p in tree) and time.monotonic() < end:
            time.sleep(0.2)
        left = [p for p in tree if _alive(p)]
        assert not left, f"cluster processes {left} still running after SIGKILL of the main process"
        assert len(list((out / "scans").glob("*.parquet"))) < n  # killed mid-way
    finally:
        for p in tree:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.skipif(os.name != "posix", reason="POSIX process tree")
def test_watchdog_alone_ends_an_orphan(tmp_path):
    """Without the Linux parent-death signal (macOS...), the watchdog thread ends the child."""
    pidfile = tmp_path / "child.pid"
    child = ("import os, sys, time; import hrpqct.lifeline as L; L._pdeathsig = lambda: False; "
             "L.die_with_parent(os.getppid(), poll_s=0.2); "
             f"open({str(pidfile)!r}, 'w').write(str(os.getpid())); time.sleep(120)")
    parent = (f"import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', {child!r}]); "
              "time.sleep(120)")
    proc = subprocess.Popen([sys.executable, "-c", parent], start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not (pidfile.exists() and pidfile.read_text(encoding="utf-8")) and time.monotonic() < deadline:
            time.sleep(0.05)
        pid = int(pidfile.read_text(encoding="utf-8"))
        proc.kill()
        proc.wait(timeout=10)
        end = time.monotonic() + 10
        while _alive(pid) and time.monotonic() < end:
            time.sleep(0.05)
        assert not _alive(pid), "the orphan kept running"
    finally:
        if proc.poll() is None:
            proc.kill()


def test_cohort_warnings_and_garbage(files, tmp_path, capsys):  # noqa: F811
    from hrpqct.io import write_labelmap

    lab = read_labelmap(files["seg"])
    empty = write_labelmap(lab.with_array(np.zeros_like(lab.array)), tmp_path / "empty.nrrd")
    man = tmp_path / "m.csv"
    pd.DataFrame({"subject_id": ["P1", "P2"], "scan": [str(files["image"])] * 2,
                  "segmentation": [str(files["seg"]), str(empty)]}).to_csv(man, index=False)
    out = tmp_path / "o"
    assert cli("cohort", str(man), "--out", str(out), "-q", "-j", "1", "-r", "TC,FC") == 1
    err = " ".join(capsys.readouterr().err.split())
    note = f"{files['seg']}: region(s) FC have no voxel; their rows are empty"
    assert f"warning: P1: {note}" in err
    warned = pd.read_csv(out / "warnings.csv")
    assert note in warned.loc[warned.scan_id == "P1", "warning"].tolist()
    errors = pd.read_csv(out / "errors.csv")
    assert errors.set_index("scan_id").loc["P2", "message"] == \
        f"{empty}: the segmentation is empty (no labelled voxel)"
