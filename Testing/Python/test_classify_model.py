"""classify.model: the model folder, safe loading, refusing edits, predicting in a fresh process."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import pickle
import subprocess
import sys

import numpy as np
import pytest

from hrpqct.classify.data import load_cohort
from hrpqct.classify.model import _checksum, load_model, predict, train_model
from hrpqct.classify.study import StudyConfig
from hrpqct.classify.synthetic import synthetic_cohort_tables
from hrpqct.errors import InputError, ModelError
from hrpqct.method import SELECTION

FAST = dataclasses.replace(SELECTION, lasso_cs=(0.1, 1.0, 10.0), lasso_cv_folds=3)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A model on tables with the paper preset's 939 features (MT, AT, TC regions)."""
    subjects, slices = synthetic_cohort_tables(70, n_slices=2, n_features=939, seed=8,
                                               regions=("TC", "MT", "AT"))
    cohort = load_cohort(slices=slices, subjects=subjects)
    cfg = StudyConfig(quick=True, patient_groups={}, radscore_group=None, selection=FAST)
    out = tmp_path_factory.mktemp("m") / "model"
    study, folder = train_model(cohort, out, config=cfg, notes=["test model, synthetic data"])
    test_ids = study.oracle.ids
    scans = slices[slices.subject_id.isin(set(test_ids[:3]))].drop(columns="subject_id")
    return study, folder, scans


def test_folder_and_predictions(trained):
    study, folder, scans = trained
    assert sorted(p.name for p in folder.iterdir()) == ["main.skops", "metadata.json", "regions"]
    assert sorted(p.name for p in (folder / "regions").iterdir()) == ["AT.skops", "MT.skops", "TC.skops"]
    meta = json.loads((folder / "metadata.json").read_text(encoding="utf-8"))
    assert meta["preset"]["name"] == "paper" and meta["preset"]["features"] == 939
    assert meta["classes"] == ["no osteoporosis", "osteoporosis"] and meta["clinical_use"] is False
    assert len(meta["main"]["features"]) > 5 and meta["main"]["features"][0].startswith("MT_")
    assert meta["versions"]["scikit-learn"] and meta["checksum"] == _checksum(meta)
    model = load_model(folder)
    preds = predict(model, scans, preset="paper")
    assert [p.scan_id for p in preds] == sorted(set(scans.scan_id))
    m = study.model("patient / radiomics soft tissue (MT+AT) / logreg")
    for p in preds:  # same probability as the study's test prediction for that patient
        i = list(m.ids).index(p.scan_id)
        assert p.probability == pytest.approx(m.y_prob[i, 1], rel=1e-9)
        assert p.label == ("osteoporosis" if p.probability >= m.threshold else "no osteoporosis")
        assert set(p.regions) == {"TC", "MT", "AT"} and p.regions["MT"]["n_slices"] == 2
        r = study.model("image / MT / logreg")
        assert p.regions["MT"]["probability"] == pytest.approx(
            r.y_prob[r.ids == p.scan_id, 1].mean(), rel=1e-9)


def test_fresh_process_reproduces_predictions_exactly(trained, tmp_path):
    _, folder, scans = trained
    f = tmp_path / "scans.parquet"
    scans.to_parquet(f)
    here = [p.as_dict() for p in predict(load_model(folder), scans)]
    code = ("import json, sys, pandas as pd\n"
            "from hrpqct.classify.model import load_model, predict\n"
            f"m = load_model({str(folder)!r})\n"
            f"print(json.dumps([p.as_dict() for p in predict(m, pd.read_parquet({str(f)!r}))]))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    there = json.loads(out.stdout.strip().splitlines()[-1])
    assert there == json.loads(json.dumps(here))  # bit-identical floats through JSON's repr


def _copy(folder, tmp_path):
    import shutil

    dst = tmp_path / "copy"
    shutil.copytree(folder, dst)
    return dst


def _rewrite(meta, dst):
    meta["checksum"] = _checksum(meta)
    (dst / "metadata.json").write_text(json.dumps(meta), encoding="utf-8")


def test_edited_metadata_refused(trained, tmp_path):
    _, folder, _ = trained
    dst = _copy(folder, tmp_path)
    meta = json.loads((dst / "metadata.json").read_text(encoding="utf-8"))
    meta["main"]["threshold"] = 0.01
    (dst / "metadata.json").write_text(json.dumps(meta), encoding="utf-8")
    with pytest.raises(ModelError, match="metadata was edited"):
        load_model(dst)


def test_modified_pipeline_file_refused(trained, tmp_path):
    _, folder, _ = trained
    dst = _copy(folder, tmp_path)
    with open(dst / "regions" / "MT.skops", "ab") as fh:
        fh.write(b"\0")
    with pytest.raises(ModelError, match="SHA-256 mismatch"):
        load_model(dst)


def test_file_that_would_run_code_is_refused(trained, tmp_path):
    """A skops file holding a reference to os.system, with metadata re-checksummed as an
    attacker would: refused before anything is instantiated."""
    import os

    import skops.io as sio
    from sklearn.preprocessing import FunctionTransformer

    _, folder, _ = trained
    dst = _copy(folder, tmp_path)
    (dst / "main.skops").write_bytes(sio.dumps(FunctionTransformer(func=os.system)))
    meta = json.loads((dst / "metadata.json").read_text(encoding="utf-8"))
    meta["main"]["sha256"] = hashlib.sha256((dst / "main.skops").read_bytes()).hexdigest()
    _rewrite(meta, dst)
    with pytest.raises(ModelError, match=r"refused, it would load untrusted type\(s\).*system"):
        load_model(dst)
    # a pickle renamed to .skops is never unpickled
    (dst / "main.skops").write_bytes(pickle.dumps({"a": 1}))
    meta["main"]["sha256"] = hashlib.sha256((dst / "main.skops").read_bytes()).hexdigest()
    _rewrite(meta, dst)
    with pytest.raises(ModelError, match="not a skops file"):
        load_model(dst)


def test_mismatched_features_refused(trained):
    _, folder, scans = trained
    model = load_model(folder)
    with pytest.raises(InputError, match="preset '3d'"):
        predict(model, scans, preset="3d")
    feat = model.metadata["main"]["features"][0].split("_", 1)[1]
    with pytest.raises(InputError, match="939"):
        predict(model, scans.drop(columns=[feat]))
    with pytest.raises(InputError, match=r"no rows of region\(s\) \['AT'\]"):
        predict(model, scans[scans.region != "AT"])
