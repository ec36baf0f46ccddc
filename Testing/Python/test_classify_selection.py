"""classify.selection and classify.classifiers: transformers, traces, grid search."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler

from hrpqct.classify.classifiers import FoldSelection, grid_search, param_grid
from hrpqct.classify.selection import (MRMR, CorrelationFilter, LassoRadscore, LassoSelector,
                                       RFESelector, VarianceFilter, make_selection,
                                       selection_trace)
from hrpqct.classify.splits import grouped_folds
from hrpqct.method import SELECTION


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    n = 300
    h = rng.standard_normal(n)
    y = (h + 0.5 * rng.standard_normal(n) < -0.5).astype(int)
    cols = {
        "sig": h + 0.3 * rng.standard_normal(n),
        "sig_copy": None,
        "sig2": h + 0.6 * rng.standard_normal(n),
        "noise1": rng.standard_normal(n),
        "noise2": rng.standard_normal(n) * 100,
        "spike": np.r_[np.zeros(n - 3), [50.0, 60.0, 70.0]] + 0.01 * rng.standard_normal(n),
    }
    cols["sig_copy"] = 3 * cols["sig"] + 0.05 * rng.standard_normal(n) + 7
    X = pd.DataFrame(cols)
    groups = np.repeat(np.arange(n // 3), 3)
    return X, y, groups


def test_variance_filter_threshold_on_scaled_values(data):
    X, y, _ = data
    Z = MinMaxScaler().fit_transform(X)
    f = VarianceFilter(0.02).set_output(transform="pandas").fit(pd.DataFrame(Z, columns=X.columns))
    expect = X.columns[np.var(Z, axis=0) > 0.02].tolist()
    assert f.get_feature_names_out().tolist() == expect
    assert "spike" not in expect and "sig" in expect  # the spike has var ~ 0.0003 after scaling
    f2 = VarianceFilter(10.0).fit(Z)  # nothing passes: the largest variance is kept
    assert f2.get_support().sum() == 1 and f2.n_kept_by_rule_ == 1


def test_correlation_filter_keeps_higher_variance_of_pair(data):
    X, y, _ = data
    Z = pd.DataFrame(MinMaxScaler().fit_transform(X), columns=X.columns)
    f = CorrelationFilter(0.9).fit(Z)
    kept = f.get_feature_names_out().tolist()
    assert ("sig" in kept) != ("sig_copy" in kept)  # r ~ 0.9998: exactly one survives
    r = np.abs(np.corrcoef(Z[kept].to_numpy().T))
    assert (r[np.triu_indices(len(kept), 1)] <= 0.9).all()
    v = Z[["sig", "sig_copy"]].var()
    assert v.idxmax() in kept
    first = CorrelationFilter(0.9, keep="first").fit(Z).get_feature_names_out().tolist()
    assert "sig" in first and "sig_copy" not in first


def test_lasso_top_k_and_groups(data):
    X, y, groups = data
    Z = pd.DataFrame(MinMaxScaler().fit_transform(X), columns=X.columns)
    las = LassoSelector(top_k=2).fit(Z, y, groups=groups)
    sel = las.get_feature_names_out().tolist()
    assert len(sel) <= 2 and any(s.startswith("sig") for s in sel)
    assert las.C_ in SELECTION.lasso_cs
    assert (np.abs(las.coef_[0][las.support_]) > 0).all()
    # radscore: the LASSO-weighted sum of its selected features plus intercept
    rad = LassoRadscore().set_output(transform="pandas").fit(Z, y)
    out = rad.transform(Z)
    w = pd.Series(rad.coefficients())
    np.testing.assert_allclose(out["radscore"], Z[w.index] @ w + rad.intercept_[0], rtol=1e-10)


def test_mrmr_prefers_non_redundant_feature():
    rng = np.random.default_rng(1)
    n = 400
    a = rng.standard_normal(n)
    b = rng.standard_normal(n)
    y = (a + b > 0).astype(int)
    X = pd.DataFrame({"a": a, "a2": a + 0.01 * rng.standard_normal(n), "b": b,
                      "n": rng.standard_normal(n)})
    m = MRMR(k=2).fit(X, y)
    assert set(m.get_feature_names_out()) in ({"a", "b"}, {"a2", "b"})


def test_rfe_and_pipeline_in_gridsearch(data):
    X, y, groups = data
    r = RFESelector(n_features=3).fit(MinMaxScaler().fit_transform(X), y)
    assert r.get_support().sum() == 3
    pipe = Pipeline(make_selection(("minmax", "variance", "correlation", "rfe"),
                                   params=SELECTION.__class__(rfe_n_features=2))
                    + [("clf", LogisticRegression())])
    gs = GridSearchCV(pipe, {"clf__C": [0.1, 1.0]}, cv=3, scoring="roc_auc").fit(X, y)
    assert gs.best_score_ > 0.8
    names = gs.best_estimator_[:-1].get_feature_names_out().tolist()
    assert len(names) == 2 and set(names) <= set(X.columns)
    tr = selection_trace(gs.best_estimator_, X)
    assert [s for s, _ in tr.steps] == ["input", "variance", "correlation", "rfe"]
    assert tr.selected == names and tr.train_matrix.shape == (len(X), 2)
    assert set(tr.coefficients) == set(names)


def test_grid_search_equals_sklearn_gridsearchcv(data):
    """Cached fold selection + our grid loop == GridSearchCV(Pipeline) on the same folds."""
    X, y, groups = data
    folds = grouped_folds(y, groups, 5, seed=0)
    steps = ("minmax", "variance", "correlation")
    sel = FoldSelection(steps, X, y, groups, folds)
    res = grid_search("logreg", sel, 2, level="image")
    pipe = Pipeline(make_selection(steps) + [("clf", LogisticRegression(max_iter=5000))])
    grid = {f"clf__{k}": v for k, v in param_grid("logreg", "image").items()}
    gs = GridSearchCV(pipe, grid, cv=folds, scoring="roc_auc").fit(X, y)
    assert res.best_params == {k.split("__")[1]: v for k, v in gs.best_params_.items()}
    assert res.cv_auroc_mean == pytest.approx(gs.best_score_, abs=1e-12)
    ours = sorted(m for _, m, _ in res.grid_scores)
    theirs = sorted(gs.cv_results_["mean_test_score"])
    np.testing.assert_allclose(ours, theirs, atol=1e-12)
    # the refitted model predicts like GridSearchCV's refit
    p1 = res.model.predict_proba(sel.Z)
    p2 = gs.best_estimator_.predict_proba(X)
    np.testing.assert_allclose(p1, p2, atol=1e-10)
    assert 0 < res.threshold < 1


@pytest.mark.parametrize("name", ["svm", "knn", "naive_bayes", "random_forest", "xgboost"])
def test_every_classifier_learns_the_signal(data, name):
    X, y, groups = data
    folds = grouped_folds(y, groups, 5, seed=0)
    sel = FoldSelection(("minmax", "variance", "correlation"), X, y, groups, folds)
    res = grid_search(name, sel, 2, level="patient", quick=True)
    assert res.cv_auroc_mean > 0.8
    assert res.oof_prob.shape == (len(y), 2) and np.isfinite(res.oof_prob).all()
    assert np.allclose(res.oof_prob.sum(axis=1), 1)
    assert 0 <= res.threshold <= 1


def test_l1_path_matches_sklearn_saga_optimum():
    """The proximal-Newton L1 path (classify/l1path.py) reaches the same optimum as sklearn's
    saga run to a tight tolerance: same non-zero set, same coefficients, objective no worse."""
    import warnings

    from hrpqct.classify.l1path import l1_logistic_path

    rng = np.random.default_rng(1)
    n, p = 300, 12
    X = rng.uniform(size=(n, p))
    X[:, 1] = 0.9 * X[:, 0] + 0.1 * rng.uniform(size=n)  # correlated pair
    y = (X[:, 0] - X[:, 2] + 0.3 * rng.standard_normal(n) > 0).astype(int)
    cs = [0.03, 0.3, 1.0, 10.0, 100.0]
    path = l1_logistic_path(X, y, cs)

    def objective(w, b, C):
        eta = X @ w + b
        return float(np.sum(np.logaddexp(0, eta) - y * eta) + np.abs(w).sum() / C)

    for C, (w, b) in zip(cs, path):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref = LogisticRegression(l1_ratio=1.0, C=C, solver="saga", tol=1e-10,
                                     max_iter=100000).fit(X, y)
        assert ((w != 0) == (ref.coef_[0] != 0)).all(), C
        np.testing.assert_allclose(w, ref.coef_[0], atol=2e-4)
        assert objective(w, b, C) <= objective(ref.coef_[0], ref.intercept_[0], C) + 1e-8
    assert (path[0][0] != 0).sum() < (path[-1][0] != 0).sum()  # the path does select
    # a wrong solver (penalising the intercept, as liblinear) gives another optimum
    wrong = LogisticRegression(l1_ratio=1.0, C=0.3, solver="liblinear", tol=1e-10).fit(X, y)
    assert abs(wrong.intercept_[0] - path[1][1]) > 1e-3


def test_parallel_folds_give_the_same_selection_and_search(data):
    """n_jobs=2 (fold selections and grid folds in threads) == n_jobs=1, LASSO included."""
    X, y, groups = data
    folds = grouped_folds(y, groups, 5, seed=0)
    steps = ("minmax", "variance", "correlation", "lasso")
    one = FoldSelection(steps, X, y, groups, folds, n_jobs=1)
    two = FoldSelection(steps, X, y, groups, folds, n_jobs=2)
    assert list(one.Z.columns) == list(two.Z.columns)
    for a, b in zip(one.fold_data, two.fold_data):
        assert list(a[0].columns) == list(b[0].columns)
        np.testing.assert_array_equal(a[2].to_numpy(), b[2].to_numpy())
    for name in ("logreg", "svm"):
        r1 = grid_search(name, one, 2, level="patient", n_jobs=1)
        r2 = grid_search(name, two, 2, level="patient", n_jobs=2)
        assert r1.best_params == r2.best_params
        np.testing.assert_allclose(r1.oof_prob, r2.oof_prob, atol=1e-12)
