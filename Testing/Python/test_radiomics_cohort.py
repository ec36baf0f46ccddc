"""Cohort runs: manifest checks, errors table, resume after SIGKILL, Dask LocalCluster, CLI."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("radiomics")

from hrpqct.errors import InputError  # noqa: E402
from hrpqct.io import write_image, write_labelmap  # noqa: E402
from hrpqct.radiomics.cohort import read_manifest, run_cohort  # noqa: E402
from hrpqct.radiomics.synthetic import synthetic_scan  # noqa: E402
from hrpqct.volume import Calibration, Volume  # noqa: E402

REGIONS = "TT,MT"  # two regions keep the runs short; the engine itself is tested elsewhere
N_GOOD = 4


@pytest.fixture(scope="module")
def cohort_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("cohort")
    (d / "data").mkdir()
    cal = Calibration(0.2402, 8192, 1632.72, -396.136)
    rows = []
    for i in range(N_GOOD):
        img, lab = synthetic_scan(2, 72, 1.0, seed=10 + i)
        sp = (1.0, 1.0, 1.2)
        write_image(Volume(img, spacing=sp, unit="HU", calibration=cal), d / "data" / f"s{i}.nrrd")
        write_labelmap(Volume(lab, spacing=sp, unit="label"), d / "data" / f"s{i}-seg.nrrd")
        rows.append({"subject_id": f"P{i}", "scan_id": f"P{i}-L", "scan": f"data/s{i}.nrrd",
                     "segmentation": f"data/s{i}-seg.nrrd", "osteoporosis": i % 2, "age": 60 + i})
    # a scan that cannot be read: recorded in the errors table, the others go on
    rows.insert(1, {"subject_id": "X", "scan_id": "X-L", "scan": "data/missing.nrrd",
                    "segmentation": "data/s0-seg.nrrd", "osteoporosis": 0, "age": 1})
    pd.DataFrame(rows).to_csv(d / "manifest.csv", index=False)
    return d


@pytest.fixture(scope="module")
def clean(cohort_dir):
    """An uninterrupted serial run: the reference for the other runs."""
    res = run_cohort(cohort_dir / "manifest.csv", cohort_dir / "clean", workers=1, regions=REGIONS)
    return res


def _done(out: Path) -> list[Path]:
    """Completed scan files (temporary files of unfinished writes start with a dot)."""
    return sorted(p for p in (out / "scans").glob("*.parquet") if not p.name.startswith("."))


def _scan_tables(out: Path) -> dict[str, pd.DataFrame]:
    return {p.stem: pd.read_parquet(p) for p in _done(out)}


def assert_same_results(out: Path, ref: Path):
    a, b = _scan_tables(out), _scan_tables(ref)
    assert sorted(a) == sorted(b) == sorted(f"P{i}-L" for i in range(N_GOOD))
    for k in a:
        pd.testing.assert_frame_equal(a[k], b[k], check_exact=True)
    pd.testing.assert_frame_equal(pd.read_parquet(out / "patients.parquet"),
                                  pd.read_parquet(ref / "patients.parquet"), check_exact=True)
    assert not [p for p in out.rglob(".*") if p.is_file()], "temporary files left behind"


def test_clean_run_tables(cohort_dir, clean):
    p = clean.patients
    assert (clean.computed, clean.skipped, clean.failed) == (N_GOOD, 0, 1)
    assert p.shape[0] == N_GOOD * 2
    assert p.columns[:6].tolist() == ["subject_id", "scan_id", "osteoporosis", "age", "region",
                                      "n_slices"]
    assert p["region"].tolist() == ["TT", "MT"] * N_GOOD
    assert (p["n_slices"] == 2).all() and p["mean_mgHA_ccm"].notna().all()
    assert p["original_firstorder_Mean"].notna().all()
    e = pd.read_csv(cohort_dir / "clean" / "errors.csv")
    assert e["scan_id"].tolist() == ["X-L"] and "missing.nrrd" in e["message"][0]
    t = pd.read_parquet(cohort_dir / "clean" / "scans" / "P0-L.parquet")
    assert t.shape == (2 * 2, 2 + 9 + 939)
    assert t.columns[:4].tolist() == ["subject_id", "scan_id", "slice", "region"]
    # a second run finds everything done (and retries the failed scan)
    again = run_cohort(cohort_dir / "manifest.csv", cohort_dir / "clean", workers=1,
                       regions=REGIONS)
    assert (again.computed, again.skipped, again.failed) == (0, N_GOOD, 1)
    # other settings into the same folder are refused
    with pytest.raises(InputError, match="other settings"):
        run_cohort(cohort_dir / "manifest.csv", cohort_dir / "clean", workers=1, regions="TT")


def test_killed_run_resumes_to_the_clean_result(cohort_dir, clean):
    out = cohort_dir / "killed"
    code = ("from hrpqct.radiomics.cohort import run_cohort; "
            f"run_cohort({str(cohort_dir / 'manifest.csv')!r}, {str(out)!r}, workers=1, "
            f"regions={REGIONS!r})")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    deadline = time.monotonic() + 180
    try:
        while not _done(out):
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "no scan file appeared"
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    done = _done(out)
    assert 1 <= len(done) < N_GOOD, "the run was not interrupted mid-way"
    assert not (out / "patients.parquet").exists()
    # a half-written file from the crash must not count as a result
    (out / "scans" / ".P3-L.tmp-dead.parquet").write_bytes(b"PAR1 truncated")
    res = run_cohort(cohort_dir / "manifest.csv", out, workers=1, regions=REGIONS)
    assert res.skipped == len(done) and res.computed == N_GOOD - len(done)
    assert_same_results(out, cohort_dir / "clean")


def test_local_cluster_and_process_pool_match_serial(cohort_dir, clean):
    dask_out = cohort_dir / "dask"
    res = run_cohort(cohort_dir / "manifest.csv", dask_out, workers=2, scheduler="local",
                     regions=REGIONS)
    assert (res.computed, res.failed) == (N_GOOD, 1)
    assert_same_results(dask_out, cohort_dir / "clean")
    pool_out = cohort_dir / "pool"
    res = run_cohort(cohort_dir / "manifest.csv", pool_out, workers=2, regions=REGIONS)
    assert (res.computed, res.failed) == (N_GOOD, 1)
    assert_same_results(pool_out, cohort_dir / "clean")


def test_manifest_checks(tmp_path):
    def write(text):
        f = tmp_path / "m.csv"
        f.write_text(text, encoding="utf-8")
        return f

    with pytest.raises(InputError, match="lacks"):
        read_manifest(write("subject_id,scan\nA,a.nrrd\n"))
    with pytest.raises(InputError, match="unique"):
        read_manifest(write("subject_id,scan,segmentation\nA,a,b\nA,c,d\n"))
    with pytest.raises(InputError, match="file names"):
        read_manifest(write("subject_id,scan,segmentation\nA/../x,a,b\n"))
    with pytest.raises(InputError, match="empty"):
        read_manifest(write("subject_id,scan,segmentation\nA,,b\n"))
    with pytest.raises(InputError, match="not found"):
        read_manifest(tmp_path / "none.csv")
    m = read_manifest(write("subject_id,scan,segmentation,age\nA,a.nrrd,/abs/b.nrrd,70\n"))
    assert m["scan_id"].tolist() == ["A"]
    assert m["scan"][0] == str(tmp_path.resolve() / "a.nrrd")
    assert m["segmentation"][0] == "/abs/b.nrrd"


def test_cli_commands(cohort_dir, clean, tmp_path):
    from typer.testing import CliRunner

    from hrpqct._cli import app
    from hrpqct.radiomics import commands  # noqa: F401  registers the commands

    runner = CliRunner()
    out = tmp_path / "one.parquet"
    r = runner.invoke(app, ["radiomics", str(cohort_dir / "data" / "s1.nrrd"),
                            str(cohort_dir / "data" / "s1-seg.nrrd"), "--out", str(out),
                            "--regions", "MT", "--regions", "ST4mm", "--stats", "mean,sd",
                            "--slices", "1", "-q"])
    assert r.exit_code == 0, r.output
    t = pd.read_parquet(out)
    assert t["region"].tolist() == ["MT", "ST4mm"] and t["slice"].tolist() == [1, 1]
    ref = pd.read_parquet(cohort_dir / "clean" / "scans" / "P1-L.parquet")
    mt = ref[(ref.region == "MT") & (ref.slice == 1)].iloc[0]
    assert t.iloc[0]["original_glcm_Idmn"] == mt["original_glcm_Idmn"]
    pat = pd.read_parquet(tmp_path / "one.patient.parquet")
    assert pat.shape[0] == 2 and "original_glcm_Idmn__sd" in pat
    r = runner.invoke(app, ["radiomics", str(cohort_dir / "data" / "s1.nrrd"),
                            str(cohort_dir / "data" / "s1-seg.nrrd"), "--out",
                            str(tmp_path / "x.txt")])
    assert r.exit_code != 0
    man = cohort_dir / "manifest.csv"
    r = runner.invoke(app, ["cohort", str(man), "--out", str(cohort_dir / "clean"), "-j", "1",
                            "--regions", REGIONS, "-q"])
    assert r.exit_code == 1 and "0 computed, 4 already present, 1 failed" in r.output
