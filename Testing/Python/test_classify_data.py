"""classify.data / classify.splits: joins, labels, NaN rule, errors, patient-level splits."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hrpqct.classify.data import (clinical_matrix, is_radiomics_feature, load_cohort, make_labels)
from hrpqct.classify.splits import grouped_folds, split_from_column, split_patients
from hrpqct.classify.synthetic import synthetic_cohort_tables
from hrpqct.errors import InputError
from hrpqct.radiomics.tables import aggregate


@pytest.fixture(scope="module")
def tables():
    return synthetic_cohort_tables(60, n_slices=4, n_features=20, seed=3)


def test_feature_names():
    assert is_radiomics_feature("wavelet-H_glcm_Idmn")
    assert is_radiomics_feature("log-sigma-2-0-mm-3D_firstorder_10Percentile")
    assert is_radiomics_feature("original_firstorder_Mean__median")
    assert not is_radiomics_feature("mean_HU")
    assert not is_radiomics_feature("MT_original_firstorder_Mean")  # a wide column, not a feature


def test_labels_binary_three_and_given():
    s = pd.DataFrame({"subject_id": list("abcde"), "t": [-3.0, -2.5, -2.49, -1.0, 0.5],
                      "lab": ["osteoporosis", "Control", "no", "yes", "normal"]})
    b = make_labels(s, t_score="t")
    assert b.y.tolist() == [1, 1, 0, 0, 0] and b.classes[-1] == "osteoporosis"
    three = make_labels(s, scheme="three", t_score="t")
    assert three.y.tolist() == [2, 2, 1, 0, 0]
    g = make_labels(s, label="lab")
    assert g.y.tolist() == [1, 0, 0, 1, 0]
    s.loc[2, "t"] = np.nan
    with pytest.raises(InputError, match=r"column 't' has no T-score for subject\(s\) \['c'\]"):
        make_labels(s, t_score="t")
    with pytest.raises(InputError, match="unknown label"):
        make_labels(s.assign(lab=["x"] * 5), label="lab")
    with pytest.raises(InputError, match="lacks the label column 'nope'"):
        make_labels(s, label="nope")


def test_join_and_nan_rule(tables):
    subjects, slices = tables
    c = load_cohort(slices=slices, subjects=subjects)
    assert c.regions == ["TC", "TT", "FC", "FT", "MT", "AT"]
    assert len(c.features) == 20 and c.patients.shape == (60, 6 * 20)
    # the patient table is the mean over slices: equal to aggregate() of the slice table
    agg = aggregate(slices[slices.subject_id == "sub-0001"].drop(columns="subject_id"),
                    by=["scan_id"])
    f = c.features[5]
    assert c.patients.loc["sub-0001", f"MT_{f}"] == pytest.approx(
        agg.set_index("region").loc["MT", f], rel=1e-12)
    # NaN rule: absent fibula slices are dropped from the FC model only, and counted
    X, y, g, dropped = c.image_matrix("FC")
    n_absent = int(((slices.region == "FC") & slices.reason.notna()).sum())
    assert n_absent > 0 and dropped == n_absent and len(X) == 60 * 4 - n_absent
    assert not X.isna().any().any()
    X2, _, _, d2 = c.image_matrix("MT")
    assert d2 == 0 and len(X2) == 240
    # rows sorted by patient; labels follow the patient
    assert list(g) == sorted(g)
    assert (y == c.y.reindex(g).to_numpy()).all()
    # impute keeps the rows (NaN stays NaN here; the pipeline's imputer fills it)
    Xi, _, _, di = c.image_matrix("FC", nan_rule="impute")
    assert di == 0 and Xi.isna().any(axis=1).sum() == n_absent
    # non-radiomics variables: no label, T-score, BMD or synthetic truth
    cols = c.clinical.columns
    assert "age" in cols and "sex=M" in cols
    assert not any(k in cols for k in ("health", "t_score_fn", "osteoporosis", "bmd_fn_g_cm2", "seed"))


def test_patient_level_missing_value_dropped(tables):
    subjects, slices = tables
    s = subjects.copy()
    s.loc[3, "grip_strength_kg"] = np.nan
    c = load_cohort(slices=slices, subjects=s)
    X, y, ids, dropped = c.patient_matrix(["age", "grip_strength_kg"])
    assert dropped == 1 and s.subject_id[3] not in ids and len(X) == 59


def test_clear_errors(tables, tmp_path):
    subjects, slices = tables
    f = tmp_path / "subjects.csv"
    subjects.iloc[1:].to_csv(f, index=False)
    with pytest.raises(InputError, match=r"slice-level table.*'subject_id' has id\(s\) \['sub-0001'\]"
                                         r".*subjects table \(.*subjects.csv\)"):
        load_cohort(slices=slices, subjects=f)
    with pytest.raises(InputError, match="lacks the T-score column 'tscore'"):
        load_cohort(slices=slices, subjects=subjects, t_score="tscore")
    with pytest.raises(InputError, match="lacks the clinical column 'nope'"):
        load_cohort(slices=slices, subjects=subjects, clinical=["age", "nope"])
    p = tmp_path / "patients.parquet"
    agg = aggregate(slices, by=["subject_id", "scan_id"])
    agg.drop(columns=[c for c in agg.columns if is_radiomics_feature(c)][0]).to_parquet(p)
    with pytest.raises(InputError, match=r"patient-level table \(.*patients.parquet\): lacks feature"):
        load_cohort(slices=slices, patients=p, subjects=subjects)
    c = load_cohort(slices=slices, subjects=subjects)
    with pytest.raises(InputError, match=r"region\(s\) \['XX'\] not in the radiomics tables"):
        c.group_columns("MT+XX")


def test_cohort_folder_without_subject_table(tables, tmp_path):
    """`hrpqct cohort` folder: scans/*.parquet + patients.parquet with the manifest's variables."""
    subjects, slices = tables
    (tmp_path / "scans").mkdir()
    for sid, g in slices.groupby("subject_id"):
        g.to_parquet(tmp_path / "scans" / f"{sid}.parquet", index=False)
    agg = aggregate(slices.drop(columns="subject_id"), by=["scan_id"])
    agg.insert(0, "subject_id", agg["scan_id"])
    pat = agg.merge(subjects[["subject_id", "t_score_fn", "age"]], on="subject_id")
    pat.to_parquet(tmp_path / "patients.parquet", index=False)
    c = load_cohort(slices=tmp_path, patients=tmp_path)
    assert len(c.y) == 60 and (c.y.to_numpy() == (subjects.t_score_fn <= -2.5).to_numpy()).all()
    assert list(c.clinical.columns) == ["age"]


def test_split_patients_stratified_seeded(tables):
    subjects, _ = tables
    y = pd.Series((subjects.t_score_fn <= -2.5).astype(int).to_numpy(), index=subjects.subject_id)
    tr, te = split_patients(y, 0.2, seed=1)
    assert len(te) == 12 and len(tr) == 48 and not set(tr) & set(te)
    assert abs(y[te].mean() - y.mean()) <= 1 / 12 + 1e-9
    tr2, te2 = split_patients(y, 0.2, seed=1)
    assert (te == te2).all()
    assert not (split_patients(y, 0.2, seed=2)[1] == te).all()
    y122 = pd.Series(np.r_[np.ones(61), np.zeros(61)].astype(int), index=[f"p{i}" for i in range(122)])
    tr, te = split_patients(y122)
    assert (len(tr), len(te)) == (98, 24) and y122[te].sum() == 12  # the paper's 98 / 24


def test_split_column():
    s = pd.DataFrame({"subject_id": ["a", "b", "c"], "split": ["Train", "test", " train"]})
    tr, te = split_from_column(s, "split")
    assert tr.tolist() == ["a", "c"] and te.tolist() == ["b"]
    with pytest.raises(InputError, match="must hold 'train' or 'test'"):
        split_from_column(s.assign(split=["train", "val", "test"]), "split")


def test_grouped_folds_never_split_a_patient():
    rng = np.random.default_rng(0)
    groups = np.repeat([f"p{i}" for i in range(40)], rng.integers(3, 9, 40))
    lab = {f"p{i}": int(i % 3 == 0) for i in range(40)}
    y = np.array([lab[g] for g in groups])
    folds = grouped_folds(y, groups, 5, seed=0)
    seen = np.zeros(len(y), int)
    for tr, va in folds:
        assert not set(groups[tr]) & set(groups[va])
        assert 0 < y[va].mean() < 1
        seen[va] += 1
    assert (seen == 1).all()
    with pytest.raises(InputError, match="at least 5 patients per class"):
        grouped_folds(y[:10], groups[:10], 5)
