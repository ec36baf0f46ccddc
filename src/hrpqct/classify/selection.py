"""Feature selection as scikit-learn transformers, fitted on training data only.

Every step is an estimator with ``fit``/``transform``/``get_feature_names_out``, so it works in a
``Pipeline`` and under ``GridSearchCV``: inside a cross-validation each step is refitted on the
fold's training rows and never sees the held-out rows. Steps (names used in
``hrpqct.method.SELECTION.image_steps`` / ``patient_steps``):

==============  =================================================================================
``impute``      training median for missing values (only with the ``"impute"`` NaN rule)
``minmax``      min-max scaling to [0, 1] (scikit-learn's ``MinMaxScaler``)
``variance``    :class:`VarianceFilter`: drop features with variance <= 0.02 after scaling
``correlation`` :class:`CorrelationFilter`: of each pair with Pearson ``|r| > 0.9`` keep one
``lasso``       :class:`LassoSelector`: L1-penalised logistic regression, strength by CV;
                features with a non-zero coefficient (patient level: the top 5 by ``|coef|``)
``mrmr``        :class:`MRMR`: minimum-redundancy maximum-relevance, top K (F-test / mean
                ``|r|`` quotient)
``rfe``         :class:`RFESelector`: recursive feature elimination with a logistic regression
``radscore``    :class:`LassoRadscore`: the LASSO-weighted sum of the selected features, one column
==============  =================================================================================

:func:`make_selection` builds the list of ``(name, step)`` pairs from a tuple of names and the
defaults in :mod:`hrpqct.method`; :func:`selection_trace` reads the features that survived each
step of a fitted pipeline into a :class:`hrpqct.classify.results.SelectionTrace`.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.feature_selection import SelectorMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from ..errors import InputError
from ..method import SELECTION, Selection
from .results import SelectionTrace

__all__ = [
    "VarianceFilter",
    "CorrelationFilter",
    "LassoSelector",
    "LassoRadscore",
    "MRMR",
    "RFESelector",
    "make_selection",
    "fit_selection",
    "transform_selection",
    "selection_trace",
    "STEPS",
]

STEPS = ("impute", "minmax", "variance", "correlation", "lasso", "mrmr", "rfe", "radscore")


class VarianceFilter(SelectorMixin, BaseEstimator):
    """Keep features whose variance (population, NaN ignored) exceeds ``threshold``.

    Run after min-max scaling, so the threshold is on the [0, 1] scale (the paper's 0.02). If no
    feature passes, the one with the largest variance is kept (so a pipeline never ends empty);
    ``n_kept_by_rule_`` says whether that happened.
    """

    def __init__(self, threshold: float = SELECTION.variance_threshold):
        self.threshold = threshold

    def fit(self, X, y=None):
        X = validate_data(self, X, ensure_all_finite="allow-nan", dtype=np.float64)
        self.variances_ = np.nanvar(X, axis=0)
        v = np.nan_to_num(self.variances_, nan=-1.0)
        self.support_ = v > self.threshold
        self.n_kept_by_rule_ = 0
        if not self.support_.any():
            self.support_[int(np.argmax(v))] = True
            self.n_kept_by_rule_ = 1
        return self

    def _get_support_mask(self):
        check_is_fitted(self, "support_")
        return self.support_


def _corr(X: np.ndarray) -> np.ndarray:
    """Pearson correlation matrix of the columns; a constant column correlates 0 with all."""
    Xc = X - X.mean(axis=0)
    sd = np.sqrt((Xc * Xc).sum(axis=0))
    sd[sd == 0] = np.inf
    Z = Xc / sd
    return Z.T @ Z


class CorrelationFilter(SelectorMixin, BaseEstimator):
    """Of every pair of features with Pearson ``|r| > threshold`` keep one.

    Greedy: features are visited by decreasing variance (``keep="variance"``; ties by column
    order) or in column order (``keep="first"``); a feature is kept when its ``|r|`` with every
    feature kept so far is at most ``threshold``. The result has no pair above the threshold.
    """

    def __init__(self, threshold: float = SELECTION.correlation_threshold,
                 keep: str = SELECTION.correlation_keep):
        self.threshold = threshold
        self.keep = keep

    def fit(self, X, y=None):
        X = validate_data(self, X, dtype=np.float64)
        if self.keep not in ("variance", "first"):
            raise InputError(f"CorrelationFilter keep={self.keep!r}: choose 'variance' or 'first'")
        R = np.abs(_corr(X))
        n = X.shape[1]
        order = (np.argsort(-X.var(axis=0), kind="stable") if self.keep == "variance"
                 else np.arange(n))
        kept: list[int] = []
        for j in order:
            if not kept or R[j, kept].max() <= self.threshold:
                kept.append(int(j))
        self.support_ = np.zeros(n, bool)
        self.support_[kept] = True
        return self

    def _get_support_mask(self):
        check_is_fitted(self, "support_")
        return self.support_


def _l1_logistic(C: float, n_classes: int, seed: int, warm_start: bool = False):
    """L1 logistic regression for three or more classes (multinomial, as glmnet): sklearn's saga
    with warm starts (min-max scaled inputs converge quickly)."""
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(l1_ratio=1.0, C=C, solver="saga", max_iter=2000, tol=1e-4,
                              random_state=seed, warm_start=warm_start)


def _l1_path(X, y, cs, n_classes, seed):
    """Fits along increasing ``cs`` with warm starts; returns ``[(coef (k', p), intercept (k',)),
    ...]`` in the order of ``cs`` (binary: ``k' = 1``, the coefficients of class 1; ``y`` coded
    0 .. k-1). Binary problems use the proximal-Newton path of :mod:`hrpqct.classify.l1path`
    (same optimum as sklearn's saga, much faster); three or more classes sklearn's saga."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    if n_classes <= 2:
        from .l1path import l1_logistic_path

        return [(w[None, :], np.array([b])) for w, b in l1_logistic_path(X, y, cs)]
    m = _l1_logistic(cs[0], n_classes, seed, warm_start=True)
    out = []
    for C in cs:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            m.set_params(C=C).fit(X, y)
        out.append((np.atleast_2d(m.coef_).copy(), np.atleast_1d(m.intercept_).copy()))
    return out


def _l1_proba(X, coef, intercept):
    """Class probabilities (n, k) of an L1 fit from :func:`_l1_path`."""
    eta = X @ coef.T + intercept
    if coef.shape[0] == 1:
        p1 = 0.5 * (1.0 + np.tanh(0.5 * eta[:, 0]))
        return np.c_[1.0 - p1, p1]
    eta = eta - eta.max(axis=1, keepdims=True)
    e = np.exp(eta)
    return e / e.sum(axis=1, keepdims=True)


class LassoSelector(SelectorMixin, BaseEstimator):
    """LASSO selection: L1-penalised logistic regression (binomial, or multinomial for three
    classes, as glmnet), with its strength ``C = 1/lambda`` chosen among ``cs`` by
    ``cv``-fold cross-validation on log-loss (the lambda.min rule). ``fit(X, y, groups=...)``
    groups the internal folds by patient (the study runner passes them); without groups the
    folds are stratified over rows.

    Keeps the features with a non-zero coefficient (largest ``|coef|`` over classes), at most
    ``top_k`` of them by ``|coef|`` when given (the paper's patient level: 5). If no coefficient
    is non-zero at the chosen strength, the feature with the largest ``|coef|`` of the weakest
    penalty is kept. Fitted attributes: ``C_``, ``coef_`` (classes x features), ``intercept_``,
    ``importance_``, ``cv_log_loss_``.
    """

    def __init__(self, cs: Sequence[float] = SELECTION.lasso_cs, cv: int = SELECTION.lasso_cv_folds,
                 top_k: int | None = None, random_state: int = 0):
        self.cs = cs
        self.cv = cv
        self.top_k = top_k
        self.random_state = random_state

    def fit(self, X, y, groups=None):
        from sklearn.metrics import log_loss
        from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

        X, y = validate_data(self, X, y, dtype=np.float64)
        y = np.asarray(y).astype(int)
        classes = np.unique(y)
        k = len(classes)
        yc = np.searchsorted(classes, y)  # coded 0 .. k-1
        cs = sorted(float(c) for c in self.cs)
        scores = np.full(len(cs), np.inf)
        if len(cs) > 1:
            if groups is not None:
                splitter = StratifiedGroupKFold(self.cv, shuffle=True, random_state=self.random_state)
                folds = list(splitter.split(X, y, groups))
            else:
                splitter = StratifiedKFold(self.cv, shuffle=True, random_state=self.random_state)
                folds = list(splitter.split(X, y))
            losses = [[] for _ in cs]
            for tr, va in folds:
                if len(np.unique(y[tr])) < k:
                    continue
                for i, (coef, b0) in enumerate(_l1_path(X[tr], yc[tr], cs, k, self.random_state)):
                    losses[i].append(log_loss(yc[va], _l1_proba(X[va], coef, b0),
                                              labels=np.arange(k)))
            scores = np.array([np.mean(v) if v else np.inf for v in losses])
            best = int(np.argmin(scores))
        else:
            best = 0
        self.cv_log_loss_ = scores
        self.C_ = cs[best]
        coef, b0 = _l1_path(X, yc, cs[: best + 1], k, self.random_state)[-1]
        self.coef_ = np.atleast_2d(coef)
        self.intercept_ = np.atleast_1d(b0)
        self.classes_ = classes
        imp = np.abs(self.coef_).max(axis=0)
        if not (imp > 0).any():
            weak, _ = _l1_path(X, yc, cs, k, self.random_state)[-1]
            alt = np.abs(np.atleast_2d(weak)).max(axis=0)
            imp = np.zeros_like(imp)
            imp[int(np.argmax(alt))] = alt.max() if alt.max() > 0 else 1.0
        self.importance_ = imp
        support = imp > 0
        if self.top_k is not None and support.sum() > self.top_k:
            order = np.argsort(-imp, kind="stable")[: int(self.top_k)]
            support = np.zeros_like(support)
            support[order] = True
        self.support_ = support
        return self

    def _get_support_mask(self):
        check_is_fitted(self, "support_")
        return self.support_

    def coefficients(self) -> dict[str, float]:
        """Selected feature -> LASSO coefficient (binary: of the positive class; else max |coef|)."""
        names = self.get_feature_names_out()
        c = self.coef_[0] if self.coef_.shape[0] == 1 else self.importance_
        return {n: float(v) for n, v in zip(names, c[self.support_])}


class LassoRadscore(LassoSelector):
    """The radscore (vertebral paper): the LASSO-weighted sum of the selected features plus the
    LASSO intercept, one output column ``radscore`` (binary labels only). Fitting is
    :class:`LassoSelector`'s."""

    def fit(self, X, y, groups=None):
        if len(np.unique(y)) > 2:
            raise InputError("the radscore needs binary labels")
        return super().fit(X, y, groups=groups)

    def transform(self, X):
        check_is_fitted(self, "support_")
        X = validate_data(self, X, reset=False, dtype=np.float64)
        w = np.where(self.support_, self.coef_[0], 0.0)
        return (X @ w + self.intercept_[0])[:, None]

    def get_feature_names_out(self, input_features=None):
        return np.asarray(["radscore"], dtype=object)

    def selected_names(self) -> list[str]:
        return list(super().get_feature_names_out())

    def coefficients(self) -> dict[str, float]:
        names = np.asarray(self.feature_names_in_ if hasattr(self, "feature_names_in_")
                           else [f"x{i}" for i in range(self.n_features_in_)], dtype=object)
        return {str(n): float(v) for n, v in zip(names[self.support_], self.coef_[0][self.support_])}

    def _more_tags(self):  # pragma: no cover - older scikit-learn
        return {"preserves_dtype": []}


class MRMR(SelectorMixin, BaseEstimator):
    """Minimum-redundancy maximum-relevance (Ding and Peng 2005, the F-test correlation
    quotient): relevance is the ANOVA F statistic of a feature against the classes, redundancy
    its mean ``|r|`` with the features already chosen; start from the most relevant, then add the
    feature with the largest relevance / redundancy until ``k`` are chosen (all if fewer)."""

    def __init__(self, k: int = SELECTION.mrmr_k):
        self.k = k

    def fit(self, X, y):
        from sklearn.feature_selection import f_classif

        X, y = validate_data(self, X, y, dtype=np.float64)
        n = X.shape[1]
        with np.errstate(divide="ignore", invalid="ignore"):
            F, _ = f_classif(X, y)
        F = np.nan_to_num(F, nan=0.0, posinf=np.finfo(float).max / 1e6)
        R = np.abs(_corr(X))
        k = min(int(self.k), n)
        chosen = [int(np.argmax(F))]
        red_sum = R[chosen[0]].copy()
        avail = np.ones(n, bool)
        avail[chosen[0]] = False
        while len(chosen) < k:
            red = red_sum / len(chosen)
            score = np.where(avail, F / np.maximum(red, 1e-12), -np.inf)
            j = int(np.argmax(score))
            chosen.append(j)
            avail[j] = False
            red_sum += R[j]
        self.relevance_ = F
        self.order_ = np.asarray(chosen)
        self.support_ = np.zeros(n, bool)
        self.support_[chosen] = True
        return self

    def _get_support_mask(self):
        check_is_fitted(self, "support_")
        return self.support_


class RFESelector(SelectorMixin, BaseEstimator):
    """Recursive feature elimination with an L2 logistic regression: drop the ``step`` fraction
    of features with the smallest ``|coef|`` per round until ``n_features`` remain (all are kept
    when there are fewer)."""

    def __init__(self, n_features: int = SELECTION.rfe_n_features, step: float = SELECTION.rfe_step,
                 random_state: int = 0):
        self.n_features = n_features
        self.step = step
        self.random_state = random_state

    def fit(self, X, y):
        from sklearn.feature_selection import RFE
        from sklearn.linear_model import LogisticRegression

        X, y = validate_data(self, X, y, dtype=np.float64)
        n = X.shape[1]
        if n <= self.n_features:
            self.support_ = np.ones(n, bool)
            self.ranking_ = np.ones(n, int)
            return self
        rfe = RFE(LogisticRegression(max_iter=2000, random_state=self.random_state),
                  n_features_to_select=int(self.n_features), step=self.step).fit(X, y)
        self.support_ = rfe.support_.copy()
        self.ranking_ = rfe.ranking_.copy()
        return self

    def _get_support_mask(self):
        check_is_fitted(self, "support_")
        return self.support_


def make_selection(steps: Sequence[str] = SELECTION.image_steps, params: Selection = SELECTION,
                   level: str = "image", impute: bool = False, seed: int = 0) -> list[tuple[str, object]]:
    """``[(name, transformer), ...]`` for a Pipeline: the named ``steps`` with the defaults of
    ``params``; ``level="patient"`` adds the top-k rule (``params.patient_top_k``) to the LASSO;
    ``impute`` puts a median imputer first."""
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import MinMaxScaler

    unknown = [s for s in steps if s not in STEPS]
    if unknown:
        raise InputError(f"unknown selection step(s) {unknown}; choose from {list(STEPS)}")
    out: list[tuple[str, object]] = []
    if impute and "impute" not in steps:
        out.append(("impute", SimpleImputer(strategy="median")))
    top_k = params.patient_top_k if level == "patient" else None
    for s in steps:
        if s == "impute":
            out.append((s, SimpleImputer(strategy="median")))
        elif s == "minmax":
            out.append((s, MinMaxScaler()))
        elif s == "variance":
            out.append((s, VarianceFilter(params.variance_threshold)))
        elif s == "correlation":
            out.append((s, CorrelationFilter(params.correlation_threshold, params.correlation_keep)))
        elif s == "lasso":
            out.append((s, LassoSelector(params.lasso_cs, params.lasso_cv_folds, top_k, seed)))
        elif s == "radscore":
            out.append((s, LassoRadscore(params.lasso_cs, params.lasso_cv_folds, None, seed)))
        elif s == "mrmr":
            out.append((s, MRMR(params.mrmr_k)))
        elif s == "rfe":
            out.append((s, RFESelector(params.rfe_n_features, params.rfe_step, seed)))
    return out


def fit_selection(steps: list[tuple[str, object]], X, y, groups=None):
    """Fit selection steps in order on ``(X, y)``; LASSO steps get ``groups``. Returns the
    transformed training matrix (the steps are fitted in place)."""
    Z = X
    for name, step in steps:
        step.set_output(transform="pandas")
        if isinstance(step, LassoSelector):
            step.fit(Z, y, groups=groups)
        else:
            step.fit(Z, y)
        Z = step.transform(Z)
    return Z


def transform_selection(steps: list[tuple[str, object]], X):
    """Apply fitted selection steps in order."""
    Z = X
    for _, step in steps:
        Z = step.transform(Z)
    return Z


_SCALING = ("impute", "minmax")


def selection_trace(pipeline, X_train: pd.DataFrame | None = None, keep_matrix: bool = True
                    ) -> SelectionTrace:
    """The features left after each selection step of a fitted pipeline (or list of steps).

    ``steps`` starts with ``("input", all input features)``; scaling steps (impute, min-max) are
    not listed. A radscore step is listed by the features it weights. ``train_matrix``: the
    training rows of the finally selected features (raw values), when ``X_train`` is given.
    ``coefficients``: the final classifier's coefficients when it is linear, else the LASSO's.
    """
    steps = list(pipeline.steps) if hasattr(pipeline, "steps") else list(pipeline)
    final = None
    if steps and not hasattr(steps[-1][1], "transform"):
        final = steps[-1][1]
        steps = steps[:-1]
    if not steps:
        return SelectionTrace()
    first = steps[0][1]
    names = list(getattr(first, "feature_names_in_", []))
    trace = [("input", names)]
    current = names
    coefs: dict[str, float] = {}
    for name, step in steps:
        if isinstance(step, LassoRadscore):
            current = step.selected_names()
            coefs = step.coefficients()
        elif hasattr(step, "get_feature_names_out"):
            current = [str(c) for c in step.get_feature_names_out(current)]
            if isinstance(step, LassoSelector):
                coefs = step.coefficients()
        if name not in _SCALING:
            trace.append((name, list(current)))
    if final is not None and hasattr(final, "coef_") and np.ndim(final.coef_) == 2 \
            and final.coef_.shape[0] == 1:
        out = (["radscore"] if isinstance(steps[-1][1], LassoRadscore) else current)
        if len(out) == final.coef_.shape[1] and not isinstance(steps[-1][1], LassoRadscore):
            coefs = {n: float(v) for n, v in zip(out, final.coef_[0])}
    matrix = None
    if keep_matrix and X_train is not None and all(c in X_train.columns for c in current):
        matrix = X_train[current].reset_index(drop=True)
    return SelectionTrace(steps=trace, train_matrix=matrix, coefficients=coefs)
