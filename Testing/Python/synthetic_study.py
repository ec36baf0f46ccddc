"""A realistic synthetic StudyResult (no fitting): what the study runner hands to the report.

Patients have a latent health score ``h``; the femoral-neck T-score is ``h`` plus noise, so the
binary label (T <= -2.5) and the three classes carry real but imperfect signal. Each "model"
predicts from ``h`` plus model-specific noise (bone regions noisier than soft tissue, as in the
paper), so AUROCs land in a plausible 0.65-0.9 range. Selection traces use radiomics-style
feature names, and training matrices hold correlated columns for the heat-maps.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from hrpqct.classify.results import ModelResult, SelectionTrace, StudyResult
from hrpqct.classify.stats import logistic_table, youden_threshold

REGIONS = {"TC": 1.1, "TT": 1.0, "FC": 0.9, "FT": 1.6, "MT": 0.7, "AT": 0.75}  # noise SD
CLASSIFIERS = {"logreg": 0.0, "svm": 0.1, "knn": 0.35, "naive_bayes": 0.25,
               "random_forest": 0.2, "xgboost": 0.15}
FILTERS = ["original", "wavelet-H", "wavelet-L", "log-sigma-2-0-mm-3D", "logarithm",
           "exponential", "gradient", "lbp-2D", "square", "squareroot"]
FCLASS = {"firstorder": ["Mean", "Kurtosis", "Maximum", "10Percentile", "Entropy",
                         "InterquartileRange", "Skewness"],
          "glcm": ["Autocorrelation", "Idmn", "Imc1", "MCC", "Contrast"],
          "glrlm": ["RunEntropy", "ShortRunEmphasis"], "glszm": ["ZoneEntropy"],
          "ngtdm": ["Coarseness"], "gldm": ["DependenceEntropy"]}
BINARY = ["no osteoporosis", "osteoporosis"]
THREE = ["normal", "osteopenia", "osteoporosis"]


def _sig(x):
    return 1.0 / (1.0 + np.exp(-x))


def _names(rng, region, n):
    out = set()
    while len(out) < n:
        cls = rng.choice(list(FCLASS), p=[0.5, 0.25, 0.08, 0.07, 0.05, 0.05])
        out.add(f"{region}_{rng.choice(FILTERS)}_{cls}_{rng.choice(FCLASS[cls])}")
    return sorted(out)


def _trace(rng, region, h_train, k):
    names = _names(rng, region, k)
    var = sorted(set(names) | set(_names(rng, region, 60)))
    corr = sorted(set(names) | set(rng.choice(var, 20, replace=False)))
    lasso = sorted(set(names) | set(rng.choice(corr, 3, replace=False)))
    base = rng.normal(size=(h_train.size, 2))
    cols = {}
    for i, nm in enumerate(names):
        w = rng.normal(size=2) * 0.6
        cols[nm] = (0.5 * h_train + base @ w + rng.normal(size=h_train.size)) * (1 + i)
    steps = [("input", [f"{region}_f{i}" for i in range(939)]), ("variance 0.02", var),
             ("correlation 0.9", corr), ("LASSO", lasso), ("top-k", names)]
    coef = {nm: float(rng.normal()) for nm in names}
    return SelectionTrace(steps=steps, train_matrix=pd.DataFrame(cols), coefficients=coef)


def make_study(seed: int = 0, n_train: int = 98, n_test: int = 24, slices: int = 12,
               synthetic: bool = True) -> StudyResult:
    rng = np.random.default_rng(seed)
    n = n_train + n_test
    h = rng.normal(size=n)
    t_score = -2.3 + 1.2 * h + 0.5 * rng.normal(size=n)
    y = (t_score <= -2.5).astype(int)
    # stratified split by patient
    order = rng.permutation(n)
    test = np.sort(np.r_[order[y[order] == 1][: max(2, round(n_test * y.mean()))],
                         order[y[order] == 0][: n_test - max(2, round(n_test * y.mean()))]])
    train = np.setdiff1d(np.arange(n), test)
    y3 = np.where(t_score >= -1.0, 0, np.where(t_score <= -2.5, 2, 1))
    ids = np.array([f"P{i:03d}" for i in range(n)])
    models = []
    for region, noise in REGIONS.items():
        k = int(rng.integers(3, 9))
        trace = _trace(rng, region, h[train], k)
        for clf, extra in CLASSIFIERS.items():
            def prob(rows):
                pat = np.repeat(rows, slices)
                u = rng.normal(size=rows.size)  # patient-level model error
                z = -1.6 * h[pat] - 0.2 + noise * np.repeat(u, slices) \
                    + (0.6 + extra) * rng.normal(size=pat.size)
                return pat, _sig(z)
            pat_tr, p_tr = prob(train)
            pat_te, p_te = prob(test)
            thr = youden_threshold(y[pat_tr], p_tr)
            models.append(ModelResult(
                name=f"image / {region} / {clf}", level="image", feature_group=region,
                classifier=clf, classes=list(BINARY), y_true=y[pat_te],
                y_prob=np.c_[1 - p_te, p_te], ids=ids[pat_te], threshold=thr,
                best_params={"C": 1.0} if clf == "logreg" else {},
                cv_auroc_mean=float(0.8 - 0.2 * noise + rng.normal(0, 0.02)),
                cv_auroc_sd=0.03, train_y_true=y[pat_tr], train_y_prob=np.c_[1 - p_tr, p_tr],
                selection=trace, fit_seconds=float(rng.uniform(1, 30))))
    groups = {"non-radiomics": 1.0, "radiomics tibia (TC+TT)": 0.8,
              "radiomics soft tissue (MT+AT)": 0.45, "radscore": 0.6,
              "radscore + BMD": 0.5}
    for group, noise in groups.items():
        trace = _trace(rng, {"non-radiomics": "clin", "radiomics tibia (TC+TT)": "TC",
                             "radiomics soft tissue (MT+AT)": "MT"}.get(group, "MT"),
                       h[train], 5)
        if group == "non-radiomics":
            trace.train_matrix.columns = ["Whole body % fat", "TbN", "CtvBMD", "Stiffness",
                                          "Tb.F/TF prox"]
            trace.steps[-1] = ("top-k", list(trace.train_matrix.columns))
        z_tr = -1.7 * h[train] - 0.2 + noise * rng.normal(size=train.size)
        z_te = -1.7 * h[test] - 0.2 + noise * rng.normal(size=test.size)
        p_tr, p_te = _sig(z_tr), _sig(z_te)
        lt = None
        if group.startswith("radiomics") or group == "non-radiomics":
            X = trace.train_matrix.copy()
            lt = logistic_table(X, y[train])
        models.append(ModelResult(
            name=f"patient / {group} / logreg", level="patient", feature_group=group,
            classifier="radscore" if group.startswith("radscore") else "logreg",
            classes=list(BINARY), y_true=y[test], y_prob=np.c_[1 - p_te, p_te], ids=ids[test],
            threshold=youden_threshold(y[train], p_tr), cv_auroc_mean=0.8, cv_auroc_sd=0.05,
            train_y_true=y[train], train_y_prob=np.c_[1 - p_tr, p_tr], selection=trace,
            logistic_table=lt))
    # three classes, patient level
    logits = np.c_[1.8 * h[test], np.zeros(test.size), -1.8 * h[test] - 0.5]
    logits += 0.7 * rng.normal(size=logits.shape)
    p3 = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    models.append(ModelResult(
        name="patient / soft tissue (MT+AT) / random_forest, three classes", level="patient",
        feature_group="soft tissue", classifier="random_forest", classes=list(THREE),
        y_true=y3[test], y_prob=p3, ids=ids[test], threshold=None,
        selection=_trace(rng, "AT", h[train], 6)))
    oracle = ModelResult(name="oracle (latent health score)", level="patient",
                         feature_group="oracle", classifier="oracle", classes=list(BINARY),
                         y_true=y[test], y_prob=np.c_[1 - _sig(-2 * h[test]),
                                                      _sig(-2 * h[test])], ids=ids[test])
    comparisons = [("patient / radiomics soft tissue (MT+AT) / logreg",
                    "patient / non-radiomics / logreg"),
                   ("patient / radiomics tibia (TC+TT) / logreg",
                    "patient / non-radiomics / logreg"),
                   ("patient / radscore + BMD / logreg", "patient / radscore / logreg")]
    return StudyResult(
        title="Synthetic demo study", models=models, n_patients_train=int(train.size),
        n_patients_test=int(test.size),
        label_rule="osteoporosis = femoral-neck T-score <= -2.5", seed=seed,
        preset="paper (sha256 0123abcd)",
        notes=["12 image rows dropped: region absent on the slice (NaN features)"],
        comparisons=comparisons, oracle=oracle, synthetic=synthetic)
