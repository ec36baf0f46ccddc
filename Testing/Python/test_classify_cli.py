"""`hrpqct classify evaluate | train | predict | report` end to end on synthetic tables."""

from __future__ import annotations

import json

import pytest

from hrpqct.classify.model import load_model, predict
from hrpqct.classify.study import load_study
from hrpqct.classify.synthetic import synthetic_cohort_tables
from hrpqct.cli import main


def run(*args: str) -> int:
    try:
        main(["classify", *args])
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("clf")
    subjects, slices = synthetic_cohort_tables(60, n_slices=2, n_features=939, seed=9,
                                               regions=("TC", "TT", "MT", "AT"))
    subjects.to_csv(d / "subjects.csv", index=False)
    slices.to_parquet(d / "slices.parquet", index=False)
    one = slices[slices.subject_id == "sub-0003"].drop(columns="subject_id")
    one.to_parquet(d / "scan.parquet", index=False)
    return d


def test_evaluate_train_predict_report(files, capsys):
    d = files
    assert run("evaluate", "--slices", str(d / "slices.parquet"), "--subjects",
               str(d / "subjects.csv"), "--out", str(d / "study"), "--regions", "MT",
               "--classifiers", "logreg", "--quick", "--quiet") == 0
    study = load_study(d / "study")
    names = [m.name for m in study.models]
    assert names[0] == "image / MT / logreg" and "patient / non-radiomics / logreg" in names
    out = capsys.readouterr().out
    assert "models (test set used once)" in out and "study ->" in out

    assert run("train", "--slices", str(d / "slices.parquet"), "--subjects", str(d / "subjects.csv"),
               "--out", str(d / "model"), "--regions", "MT,AT", "--quick", "--quiet",
               "--note", "synthetic test model") == 0
    m = load_model(d / "model")
    assert set(m.regions) == {"MT", "AT"} and m.metadata["notes"] == ["synthetic test model"]

    assert run("predict", str(d / "model"), str(d / "scan.parquet"), "--json",
               str(d / "pred.json"), "--preset", "paper") == 0
    pred = json.loads((d / "pred.json").read_text(encoding="utf-8"))
    import pandas as pd

    direct = predict(m, pd.read_parquet(d / "scan.parquet"))[0]
    assert pred[0]["probability"] == direct.probability and pred[0]["class"] == direct.label
    out = capsys.readouterr().out
    assert "not a clinical model" in out and "P(osteoporosis)" in out

    try:
        import hrpqct.classify.report  # noqa: F401  (from the statistics helper's branch)
    except ImportError:
        pytest.skip("hrpqct.classify.report is not merged yet")
    assert run("report", str(d / "study"), "--out", str(d / "report.html")) == 0
    html = (d / "report.html").read_text(encoding="utf-8")
    assert "image / MT / logreg" in html or "MT" in html


def test_errors_are_one_line(files, capsys):
    d = files
    assert run("evaluate", "--slices", str(d / "slices.parquet"), "--subjects",
               str(d / "subjects.csv"), "--out", str(d / "x"), "--t-score", "nope") == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "lacks the T-score column 'nope'" in err and "Traceback" not in err
    assert run("predict", str(d), str(d / "scan.parquet")) == 2
    assert "not a model folder" in " ".join(capsys.readouterr().err.split())
