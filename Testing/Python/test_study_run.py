"""``hrpqct study``: four small phantoms from raw scans to predictions, killed (SIGKILL) in each
stage and resumed, with every table equal to an uninterrupted run's; what is stale after a
corrected segmentation, another model or another preset; Dask with one GPU-declaring worker."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("radiomics")
pytest.importorskip("distributed")

from hrpqct.radiomics.presets import first_order_preset  # noqa: E402

SMALL_PRESET = first_order_preset()


def study(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """``hrpqct study ARGS`` in a subprocess (so that it can be killed)."""
    e = {k: v for k, v in os.environ.items() if k != "HRPQCT_STUDY_KILL"}
    e.update(env or {})
    return subprocess.run([sys.executable, "-m", "hrpqct", "study", *args], env=e,
                          capture_output=True, text=True, encoding="utf-8", timeout=1200)


@pytest.fixture(scope="module")
def cohort(tmp_path_factory) -> Path:
    """Four 256 x 256 x 2 phantoms (sub-0004's segmentation given: its ground truth) and a fifth
    row whose scan does not exist; the manifest carries the subjects' T-scores and clinical data."""
    from hrpqct.phantom.files import write_cohort
    from hrpqct.phantom.render import Grid

    root = tmp_path_factory.mktemp("study-cohort")
    write_cohort(root, 4, Grid(size=256, n_slices=2), seed=7)
    man = pd.read_csv(root / "manifest.csv").drop(columns=["segmentation5"])
    man.loc[man["subject_id"] != "sub-0004", "segmentation"] = ""
    bad = man.iloc[[0]].copy()
    bad["subject_id"], bad["scan"], bad["segmentation"] = "sub-0099", "scans/none/image.nrrd", ""
    man = pd.concat([man, bad], ignore_index=True)
    man.to_csv(root / "study.csv", index=False)
    (root / "small.yaml").write_text(SMALL_PRESET, encoding="utf-8")
    return root


COMMON = ("-j", "1", "--threads", "1", "--classifier", "demo", "-q")


@pytest.fixture(scope="module")
def clean(cohort, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("study-clean") / "s"
    r = study(str(cohort / "study.csv"), "--out", str(out), *COMMON)
    assert r.returncode == 1, r.stderr  # the missing scan fails, the others do not
    return out


def tables(out: Path) -> dict:
    """Every table of a study folder (values only; file metadata differs by design)."""
    t = {
        "patients": pd.read_parquet(out / "cohort" / "patients.parquet"),
        "morphometry": pd.read_parquet(out / "cohort" / "morphometry.parquet"),
        "predictions": pd.read_csv(out / "classification" / "predictions.csv"),
        "failures": pd.read_csv(out / "failures.csv"),
        "errors": pd.read_csv(out / "cohort" / "errors.csv"),
    }
    for f in sorted((out / "cohort" / "scans").glob("*.parquet")):
        t[f"scans/{f.name}"] = pd.read_parquet(f)
    for f in sorted((out / "cohort" / "morphometry").glob("*.parquet")):
        t[f"morphometry/{f.name}"] = pd.read_parquet(f)
    for f in sorted((out / "segmentations").glob("*_regions.csv")):
        t[f"seg/{f.name}"] = pd.read_csv(f)
    return t


def labels(path: Path) -> np.ndarray:
    from hrpqct.io import read_labelmap

    return read_labelmap(path).array


def assert_same_study(a: Path, b: Path) -> None:
    ta, tb = tables(a), tables(b)
    assert sorted(ta) == sorted(tb)
    for k in ta:
        pd.testing.assert_frame_equal(ta[k], tb[k], obj=k)
    for f in sorted((a / "segmentations").glob("*.seg.nrrd")):
        if ".previous-" not in f.name:
            assert np.array_equal(labels(f), labels(b / "segmentations" / f.name)), f.name


def test_clean_run_outputs(clean):
    t = tables(clean)
    assert list(t["patients"]["scan_id"].unique()) == ["sub-0001", "sub-0002", "sub-0003", "sub-0004"]
    assert t["predictions"]["scan_id"].tolist() == ["sub-0001", "sub-0002", "sub-0003", "sub-0004"]
    assert t["predictions"]["probability"].between(0, 1).all()
    assert set(t["morphometry"]["scan_id"]) == {"sub-0001", "sub-0002", "sub-0003", "sub-0004"}
    f = t["failures"]
    assert f[["stage", "scan_id"]].values.tolist() == [["segment", "sub-0099"]]
    assert f["error"][0] == "InputError" and f["message"][0].endswith("image.nrrd: scan not found")
    # the given segmentation is read, not made: no study segmentation of sub-0004
    assert not (clean / "segmentations" / "sub-0004.seg.nrrd").exists()
    assert sorted(p.name for p in (clean / "segmentations").glob("*.seg.nrrd")) == [
        "sub-0001.seg.nrrd", "sub-0002.seg.nrrd", "sub-0003.seg.nrrd"]
    log = pd.read_csv(clean / "logs" / "tasks.csv")
    assert (log["stage"] == "segment").sum() == 4  # three made, one failed


def test_killed_in_each_stage_resumes_to_the_same_tables(cohort, clean, tmp_path):
    out = tmp_path / "s"
    args = (str(cohort / "study.csv"), "--out", str(out), *COMMON)
    for stage, n in (("segment", 1), ("radiomics", 2), ("morphometry", 2), ("classify", 1)):
        r = study(*args, env={"HRPQCT_STUDY_KILL": f"{stage}:{n}"})
        assert r.returncode == -9, (stage, r.returncode, r.stderr[-2000:])
    log = pd.read_csv(out / "logs" / "tasks.csv")
    ok = log[log["status"] == "ok"]
    # each kill came inside its stage and nothing finished was done twice (the missing scan
    # fails again in every run: failed scans are retried)
    assert (ok["stage"] == "segment").sum() == 3 and (ok["stage"] == "radiomics").sum() == 4
    assert (ok["stage"] == "morphometry").sum() == 4
    assert ((log["stage"] == "segment") & (log["status"] == "error")).sum() == 3  # runs 2-4
    assert not (out / "classification" / "inputs.json").exists()  # killed before its record
    r = study(*args)
    assert r.returncode == 1, r.stderr
    assert "classify: 1 done now" in r.stdout and "segment: 0 done now" in r.stdout
    assert_same_study(clean, out)
    # and a run after a complete one does nothing
    r = study(*args, "--dry-run")
    assert r.returncode == 0, r.stderr
    assert "segment: 1 to do (3 done, 1 given, 1 missing)" in r.stdout  # the missing scan is retried
    # only the failed scan is tried again (and, were it to succeed, the classification redone)
    assert "radiomics: 1 to do (4 done, 1 missing)" in r.stdout
    assert "morphometry: 1 to do (4 done, 1 missing)" in r.stdout
    assert "classify: 1 to do (1 stale)" in r.stdout


def _dry(cohort, out, *extra) -> pd.DataFrame:
    r = study(str(cohort / "study.csv"), "--out", str(out), *COMMON, "--dry-run", *extra)
    assert r.returncode == 0, r.stderr
    rows = [line.split(None, 3) for line in r.stdout.splitlines()
            if line.split(None, 1)[0] in ("segment", "radiomics", "morphometry", "classify")]
    return pd.DataFrame(rows, columns=["stage", "scan_id", "state", "why"])


def _states(plan, stage) -> dict:
    p = plan[plan["stage"] == stage]
    return dict(zip(p["scan_id"], p["state"]))


def test_dask_segmentation_only_on_the_gpu_worker(cohort, clean, tmp_path):
    out = tmp_path / "s"
    r = study(str(cohort / "study.csv"), "--out", str(out), *COMMON, "--scheduler", "local",
              "--gpu-workers", "1")
    assert r.returncode == 1, r.stderr
    workers = json.loads((out / "logs" / "workers.json").read_text(encoding="utf-8"))
    gpu = set(workers["gpu"])
    assert len(gpu) == 1 and len(workers["workers"]) == 2
    log = pd.read_csv(out / "logs" / "tasks.csv")
    seg = log[log["stage"] == "segment"]
    other = log[log["stage"] != "segment"]
    assert len(seg) == 4 and set(seg["worker"]) == gpu
    assert len(other) == 8 and not (set(other["worker"]) & gpu)
    assert_same_study(clean, out)


def test_invalidation_is_exact(cohort, clean, tmp_path):
    """Last: it changes the clean study (a corrected segmentation)."""
    import shutil

    from hrpqct.io import read_labelmap, write_segmentation
    from hrpqct.regions import REGIONS

    out = clean
    # another preset: the radiomics and the classification, not the segmentation or morphometry
    plan = _dry(cohort, out, "--preset", str(cohort / "small.yaml"))
    assert set(_states(plan, "segment").values()) == {"done", "given", "missing"}
    assert set(_states(plan, "radiomics").values()) == {"stale", "missing"}  # sub-0099: missing
    assert set(_states(plan, "morphometry").values()) == {"done", "missing"}
    assert _states(plan, "classify") == {"*": "stale"}
    # another segmentation model (a copy with a changed card): the segmentations made by the
    # study, and through them their radiomics; not the given one
    from hrpqct.seg.model import resolve_model

    model = tmp_path / "model"
    shutil.copytree(resolve_model(None), model)
    card = json.loads((model / "model_card.json").read_text(encoding="utf-8"))
    card["notes"] = list(card.get("notes") or []) + ["retrained"]
    (model / "model_card.json").write_text(json.dumps(card), encoding="utf-8")
    plan = _dry(cohort, out, "--model", str(model))
    assert _states(plan, "segment") == {"sub-0001": "stale", "sub-0002": "stale",
                                        "sub-0003": "stale", "sub-0004": "given",
                                        "sub-0099": "missing"}
    assert _states(plan, "radiomics")["sub-0004"] == "done"
    assert _states(plan, "radiomics")["sub-0001"] == "stale"
    # an annotator corrects sub-0001: never segmented again, even with another model; only its
    # own radiomics and morphometry are redone
    seg = out / "segmentations" / "sub-0001.seg.nrrd"
    vol = read_labelmap(seg)
    arr = vol.array.copy()
    arr[0, :3, :3] = REGIONS[-1].label
    write_segmentation(vol.with_array(arr), seg, table=REGIONS)
    plan = _dry(cohort, out, "--model", str(model))
    assert _states(plan, "segment")["sub-0001"] == "corrected"
    plan = _dry(cohort, out)
    assert _states(plan, "segment") == {"sub-0001": "corrected", "sub-0002": "done",
                                        "sub-0003": "done", "sub-0004": "given",
                                        "sub-0099": "missing"}
    assert _states(plan, "radiomics") == {"sub-0001": "stale", "sub-0002": "done",
                                          "sub-0003": "done", "sub-0004": "done",
                                          "sub-0099": "missing"}
    assert _states(plan, "morphometry")["sub-0001"] == "stale"
    assert _states(plan, "morphometry")["sub-0002"] == "done"
    before = seg.read_bytes()
    r = study(str(cohort / "study.csv"), "--out", str(out), *COMMON)
    assert r.returncode == 1, r.stderr
    assert seg.read_bytes() == before  # the correction is untouched
    assert "radiomics: 1 done now, 3 kept" in r.stdout
    assert "morphometry: 1 done now, 3 kept" in r.stdout
