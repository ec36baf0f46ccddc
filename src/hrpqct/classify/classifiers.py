"""The six classifiers, their grids, and the patient-grouped grid search.

Grid search (:func:`grid_search`): every grid point is scored by AUROC (binary; macro one-vs-rest
for three classes) over the same patient-grouped folds of the training set; the selection steps
of each fold are fitted once on that fold's training rows (:class:`FoldSelection`) and shared by
every classifier and grid point, which is what ``GridSearchCV`` over a ``Pipeline`` with fixed
selection parameters computes, without refitting the selection for every grid point (a test checks
the equality). The best point (highest mean CV AUROC, ties to the earlier point) is refitted on
the whole training set; the decision threshold is the Youden-optimal one on the out-of-fold
training probabilities of that point (:func:`hrpqct.classify.stats.youden_threshold`).

SVM: ``SVC`` has no probabilities of its own; the search scores its decision function, and the
refitted model is ``CalibratedClassifierCV(SVC, method="sigmoid", cv=<the same folds>,
ensemble=False)`` (Platt scaling on out-of-fold decision values), whose calibrator also maps the
search's out-of-fold decision values to the out-of-fold probabilities.

Grids (``level="image"``: thousands of slice rows; ``"patient"``: about a hundred patients;
``quick=True``: reduced grids and fewer trees for tests) are in :func:`param_grid`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import pandas as pd
from sklearn.base import clone

from ..errors import InputError
from ..method import CLASSIFICATION
from .selection import fit_selection, make_selection, transform_selection

__all__ = ["CLASSIFIERS", "make_classifier", "param_grid", "auroc", "FoldSelection",
           "SearchResult", "grid_search"]

CLASSIFIERS = CLASSIFICATION.classifiers


def make_classifier(name: str, seed: int = 0, n_jobs: int = CLASSIFICATION.n_jobs,
                    quick: bool = False, level: str = "patient"):
    """An unfitted classifier by key (``hrpqct.method.CLASSIFICATION.classifiers``).

    ``level="image"``: the random forest has 100 trees instead of 200 (thousands of slice rows,
    168 near-duplicates per patient: a forest of 100 full-depth trees on 16,000 rows costs ~10 s
    CPU per fit and the 21 fits of its grid search were most of the study's time; the paper
    gives no tree count)."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.naive_bayes import GaussianNB
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.svm import SVC

    if name == "logreg":
        return LogisticRegression(max_iter=5000)
    if name == "svm":
        return SVC(kernel="rbf", gamma="scale", random_state=seed)
    if name == "knn":
        return KNeighborsClassifier()
    if name == "naive_bayes":
        return GaussianNB()
    if name == "random_forest":
        trees = 60 if quick else (100 if level == "image" else 200)
        return RandomForestClassifier(n_estimators=trees, max_features="sqrt",
                                      random_state=seed, n_jobs=n_jobs)
    if name == "xgboost":
        from xgboost import XGBClassifier

        return XGBClassifier(n_estimators=60 if quick else 200, tree_method="hist", subsample=0.8,
                             colsample_bytree=1.0, random_state=seed, n_jobs=n_jobs, verbosity=0)
    raise InputError(f"unknown classifier {name!r}; choose from {list(CLASSIFIERS)}")


def param_grid(name: str, level: str = "image", quick: bool = False) -> dict[str, list]:
    """The grid searched for a classifier (see the module docstring)."""
    image = level == "image"
    grids = {
        "logreg": {"C": [0.01, 0.1, 1.0, 10.0, 100.0]},
        "svm": ({"C": [0.1, 1.0, 10.0]} if image
                else {"kernel": ["linear", "rbf"], "C": [0.1, 1.0, 10.0]}),
        "knn": ({"n_neighbors": [5, 25, 75, 151]} if image
                else {"n_neighbors": [3, 5, 9, 15], "weights": ["uniform", "distance"]}),
        "naive_bayes": {"var_smoothing": [1e-9, 1e-6, 1e-3, 1e-1]},
        "random_forest": ({"max_depth": [None, 12], "min_samples_leaf": [1, 10]} if image
                          else {"max_depth": [None, 4], "min_samples_leaf": [1, 3]}),
        "xgboost": {"max_depth": [3, 6], "learning_rate": [0.05, 0.2]},
    }
    quick_grids = {
        "logreg": {"C": [0.1, 10.0]},
        "svm": {"C": [1.0]},
        "knn": {"n_neighbors": [15] if image else [5, 9]},
        "naive_bayes": {"var_smoothing": [1e-9]},
        "random_forest": {"max_depth": [None] if image else [4], "min_samples_leaf": [5 if image else 1]},
        "xgboost": {"max_depth": [3], "learning_rate": [0.1]},
    }
    if name not in grids:
        raise InputError(f"unknown classifier {name!r}; choose from {list(CLASSIFIERS)}")
    return (quick_grids if quick else grids)[name]


def auroc(y, P, n_classes: int) -> float:
    """AUROC of probabilities ``P`` (n, k): binary on the last column; three classes: macro
    one-vs-rest. NaN when ``y`` has a single class."""
    from sklearn.metrics import roc_auc_score

    y = np.asarray(y).astype(int)
    if len(np.unique(y)) < 2:
        return float("nan")
    P = np.asarray(P, dtype=float)
    if n_classes == 2:
        return float(roc_auc_score(y, P[:, -1]))
    present = np.unique(y)
    if len(present) < n_classes:
        return float("nan")
    return float(roc_auc_score(y, P, multi_class="ovr", average="macro",
                               labels=list(range(n_classes))))


def _softmax(d):
    d = np.asarray(d, dtype=float)
    if d.ndim == 1:
        return np.c_[-d, d]  # ranks only (binary decision values); calibrated later
    e = np.exp(d - d.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _scores(model, X, n_classes):
    """Class scores (n, k): probabilities, or for SVC the (softmaxed) decision function."""
    if hasattr(model, "predict_proba") and not _is_svc(model):
        return model.predict_proba(X)
    return _softmax(model.decision_function(X))


def _is_svc(model) -> bool:
    from sklearn.svm import SVC

    return isinstance(model, SVC)


class FoldSelection:
    """Selection steps fitted once per CV fold (on the fold's training rows) and on the whole
    training set, shared by every classifier and grid point."""

    def __init__(self, steps, X: pd.DataFrame, y, groups, folds, level="image",
                 impute=False, seed=0, params=None, progress=None, n_jobs: int = 1):
        """``steps``: step names (:func:`make_selection`) or a callable returning fresh
        ``[(name, transformer), ...]``. ``n_jobs > 1`` fits the folds in parallel threads (the
        LASSO path and the filters spend their time in BLAS and numba code without the GIL);
        the result is the same as with ``n_jobs=1``."""
        from joblib import Parallel, delayed

        from ..method import SELECTION

        self.factory = steps if callable(steps) else None
        self.steps = None if callable(steps) else tuple(steps)
        self.level, self.impute, self.seed = level, impute, seed
        self.params = params or SELECTION
        self.X, self.y, self.groups, self.folds = X, np.asarray(y).astype(int), np.asarray(groups), folds
        t0 = time.perf_counter()
        total = len(folds) + 1
        jobs = [(np.asarray(tr), np.asarray(va)) for tr, va in folds] + [(None, None)]

        def fit_one(tr, va):
            st = self.make()
            if tr is None:  # the whole training set
                return st, fit_selection(st, X, self.y, self.groups), None
            Ztr = fit_selection(st, X.iloc[tr], self.y[tr], self.groups[tr])
            return st, Ztr, transform_selection(st, X.iloc[va])

        results = []
        run = Parallel(n_jobs=max(1, int(n_jobs)), backend="threading", return_as="generator")
        for i, r in enumerate(run(delayed(fit_one)(tr, va) for tr, va in jobs)):
            results.append(r)
            if progress is not None:
                progress(i + 1, total)
        self.fold_data = [(Ztr, self.y[tr], Zva, self.y[va])
                          for (_, Ztr, Zva), (tr, va) in zip(results[:-1], jobs[:-1])]
        self.fitted, self.Z, _ = results[-1]
        self.seconds = time.perf_counter() - t0

    def make(self):
        if self.factory is not None:
            return self.factory()
        return make_selection(self.steps, self.params, level=self.level, impute=self.impute,
                              seed=self.seed)


@dataclass
class SearchResult:
    """Outcome of :func:`grid_search` for one classifier."""

    name: str
    best_params: dict
    cv_auroc_mean: float
    cv_auroc_sd: float
    model: object  # the refitted classifier (on the selected training features)
    oof_prob: np.ndarray  # (n_train, k) out-of-fold probabilities of the best grid point
    threshold: float | None
    train_prob: np.ndarray  # (n_train, k) in-sample probabilities of the refitted model
    grid_scores: list = field(default_factory=list)  # [(params, mean, sd), ...]
    seconds: float = float("nan")


def grid_search(name: str, sel: FoldSelection, n_classes: int, level: str = "image",
                quick: bool = False, seed: int = 0, n_jobs: int = CLASSIFICATION.n_jobs,
                grid: dict | None = None) -> SearchResult:
    """Grid search of classifier ``name`` on the folds of ``sel`` (module docstring)."""
    from sklearn.model_selection import ParameterGrid

    from .stats import youden_threshold

    t0 = time.perf_counter()
    base = make_classifier(name, seed=seed, n_jobs=n_jobs, quick=quick, level=level)
    points = list(ParameterGrid(grid if grid is not None else param_grid(name, level, quick)))
    n = len(sel.y)
    best = None
    table = []
    # folds in parallel threads for the classifiers without threads of their own (libsvm, the
    # k-NN search and lbfgs release the GIL); the forests use their own n_jobs threads
    from joblib import Parallel, delayed

    own_threads = name in ("random_forest", "xgboost")
    run = Parallel(n_jobs=1 if own_threads else max(1, int(n_jobs)), backend="threading")
    for p in points:
        oof = np.full((n, n_classes), np.nan)
        raw = np.full((n,) if n_classes == 2 else (n, n_classes), np.nan)
        scores = []
        fits = run(delayed(_fit_fold)(base, p, Ztr, ytr, Zva, n_classes, name == "svm")
                   for Ztr, ytr, Zva, _ in sel.fold_data)
        for (s, d), (_, _, _, yva), (_, va) in zip(fits, sel.fold_data, sel.folds):
            if name == "svm":
                raw[va] = d
            oof[va] = s
            scores.append(auroc(yva, s, n_classes))
        mean = float(np.nanmean(scores))
        sd = float(np.nanstd(scores, ddof=1)) if len(scores) > 1 else 0.0
        table.append((p, mean, sd))
        if best is None or mean > best[1] + 1e-12:
            best = (p, mean, sd, oof, raw)
    p, mean, sd, oof, raw = best
    model = clone(base).set_params(**p)
    if name == "svm":
        from sklearn.calibration import CalibratedClassifierCV

        model = CalibratedClassifierCV(model, method="sigmoid", cv=[(np.asarray(a), np.asarray(b))
                                                                    for a, b in sel.folds],
                                       ensemble=False)
        model.fit(sel.Z, sel.y)
        oof = _calibrate_oof(model, raw, n_classes)
    else:
        model.fit(sel.Z, sel.y)
    threshold = None
    if n_classes == 2:
        threshold = youden_threshold(sel.y, oof[:, 1])
    train_prob = model.predict_proba(sel.Z)
    return SearchResult(name=name, best_params=dict(p), cv_auroc_mean=mean, cv_auroc_sd=sd,
                        model=model, oof_prob=oof, threshold=threshold, train_prob=train_prob,
                        grid_scores=table, seconds=time.perf_counter() - t0)


def _fit_fold(base, params, Ztr, ytr, Zva, n_classes, want_decision):
    """One grid point on one fold: (validation scores, SVC decision values or None)."""
    m = clone(base).set_params(**params).fit(Ztr, ytr)
    return _scores(m, Zva, n_classes), (m.decision_function(Zva) if want_decision else None)


def _calibrate_oof(cal, raw, n_classes):
    """Map the search's out-of-fold SVC decision values to probabilities with the refitted
    model's Platt calibrator(s), which were fitted on the same out-of-fold values."""
    cc = cal.calibrated_classifiers_[0]
    if n_classes == 2:
        p = np.clip(cc.calibrators[0].predict(raw), 0, 1)
        return np.c_[1 - p, p]
    P = np.column_stack([np.clip(c.predict(raw[:, k]), 0, 1) for k, c in enumerate(cc.calibrators)])
    s = P.sum(axis=1, keepdims=True)
    s[s == 0] = 1
    return P / s
