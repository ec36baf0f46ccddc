"""``hrpqct study --train``: a study of 24 small phantoms (segmentations given) trains, saves and
reports a classifier, a second run keeps it; the saved model applied with ``--classifier`` to the
same manifest writes predictions and a validation report whose AUROC is that of its predictions
against the manifest's T-scores; without labels the report shows predictions only."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("radiomics")

from hrpqct.radiomics.presets import first_order_preset  # noqa: E402

PRESET = first_order_preset(("Mean", "Median", "Energy", "Variance", "Skewness", "Kurtosis"))
N = 24


def study(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "HRPQCT_STUDY_KILL"}
    return subprocess.run([sys.executable, "-m", "hrpqct", "study", *args, "-j", "2",
                           "--threads", "1", "--no-morphometry", "-q"], env=env,
                          capture_output=True, text=True, encoding="utf-8", timeout=1200)


@pytest.fixture(scope="module")
def cohort(tmp_path_factory) -> Path:
    from hrpqct.phantom.files import write_cohort
    from hrpqct.phantom.render import Grid

    root = tmp_path_factory.mktemp("study-train")
    write_cohort(root, N, Grid(size=256, n_slices=2), seed=7)
    man = pd.read_csv(root / "manifest.csv").drop(columns=["segmentation5"])
    man.to_csv(root / "study.csv", index=False)
    man.drop(columns=[c for c in man.columns if c.startswith("t_score") or
                      c in ("osteoporosis", "bmd_class")]).to_csv(root / "unlabelled.csv",
                                                                    index=False)
    (root / "small.yaml").write_text(PRESET, encoding="utf-8")
    assert 3 <= (man["t_score_fn"] <= -2.5).sum() <= N - 3  # both classes
    return root


@pytest.fixture(scope="module")
def trained(cohort) -> Path:
    out = cohort / "trained"
    r = study(str(cohort / "study.csv"), "--out", str(out), "--preset",
              str(cohort / "small.yaml"), "--train", "--quick")
    assert r.returncode == 0, r.stderr
    assert "classify: 1 done now" in r.stdout and f"segment: 0 done now, {N} kept" in r.stdout
    return out


def test_train_writes_model_study_and_report(trained):
    c = trained / "classification"
    meta = json.loads((c / "model" / "metadata.json").read_text(encoding="utf-8"))
    assert meta["classes"] == ["no osteoporosis", "osteoporosis"]
    assert meta["label_rule"] == "osteoporosis = t_score_fn <= -2.5"
    assert (c / "model" / "main.skops").is_file() and (c / "study" / "study.json").is_file()
    html = (c / "report.html").read_text(encoding="utf-8")
    sections = re.findall(r"<h2[^>]*>([^<]*)</h2>", html)
    assert "Table V. Patient-level models" in sections and "Calibration" in sections
    assert "Decision curves" in sections


def test_second_run_keeps_the_trained_model(cohort, trained):
    report = trained / "classification" / "report.html"
    before = report.stat().st_mtime_ns
    r = study(str(cohort / "study.csv"), "--out", str(trained), "--preset",
              str(cohort / "small.yaml"), "--train", "--quick")
    assert r.returncode == 0, r.stderr
    assert "classify: 0 done now, 1 kept" in r.stdout
    assert report.stat().st_mtime_ns == before


def _auroc(y, p) -> float:
    from hrpqct.classify.stats import auroc_ci

    return auroc_ci(y, p)[0]


def test_given_model_predicts_and_validates(cohort, trained):
    out = cohort / "applied"
    r = study(str(cohort / "study.csv"), "--out", str(out), "--preset",
              str(cohort / "small.yaml"), "--classifier", str(trained / "classification" / "model"))
    assert r.returncode == 0, r.stderr
    pred = pd.read_csv(out / "classification" / "predictions.csv")
    assert len(pred) == N and pred["probability"].between(0, 1).all()
    man = pd.read_csv(cohort / "study.csv").set_index("subject_id")
    y = (man.loc[pred["subject_id"], "t_score_fn"] <= -2.5).astype(int).to_numpy()
    html = (out / "classification" / "report.html").read_text(encoding="utf-8")
    assert "Performance on this cohort" in html and "external validation" in html
    # one scan per subject: the report's AUROC is that of the predictions
    auc = _auroc(y, pred["probability"].to_numpy())
    assert 0.0 <= auc <= 1.0 and f"{auc:.3f}" in html
    assert html.count('data:image/png;base64') >= 5  # ROC, calibration, DCA, confusion, histogram
    rows = re.search(r"Every subject.*?</table>", html, re.S).group(0)
    assert rows.count("<tr>") == N + 1  # header and one row per subject
    assert "not marked for clinical use" in html  # trained on phantoms: never a clinical model


def test_given_model_without_labels_shows_predictions_only(cohort, trained):
    out = cohort / "unlabelled"
    r = study(str(cohort / "unlabelled.csv"), "--out", str(out), "--preset",
              str(cohort / "small.yaml"), "--classifier", str(trained / "classification" / "model"))
    assert r.returncode == 0, r.stderr
    html = (out / "classification" / "report.html").read_text(encoding="utf-8")
    assert "nothing to validate against" in html and "AUROC" not in html
    assert len(pd.read_csv(out / "classification" / "predictions.csv")) == N
    assert np.isfinite(pd.read_csv(out / "classification" / "predictions.csv")["probability"]).all()
