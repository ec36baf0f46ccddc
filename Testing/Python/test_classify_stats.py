"""Statistics of a classification study, each checked against an independent implementation or a
published worked example (not only against itself), and shown able to fail."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from hrpqct.classify import stats as S
from hrpqct.classify.results import ModelResult
from hrpqct.errors import InputError

sm = pytest.importorskip("statsmodels.api")


def _scores(rng, n_pos, n_neg, shift=1.0, ties=False):
    pos = rng.normal(shift, 1.0, n_pos)
    neg = rng.normal(0.0, 1.0, n_neg)
    if ties:
        pos, neg = np.round(pos), np.round(neg)
    y = np.r_[np.ones(n_pos, int), np.zeros(n_neg, int)]
    return y, np.r_[pos, neg]


# ------------------------------------------------------------------------------------- Wilson
def test_wilson_matches_statsmodels():
    from statsmodels.stats.proportion import proportion_confint

    for n in (1, 7, 24, 98, 4032):
        for k in sorted({0, 1, n // 3, n // 2, n - 1, n}):
            lo, hi = S.wilson_ci(k, n)
            rlo, rhi = proportion_confint(k, n, alpha=0.05, method="wilson")
            assert lo == pytest.approx(rlo, abs=1e-12) and hi == pytest.approx(rhi, abs=1e-12)
    lo, hi = S.wilson_ci(np.array([3, 10]), np.array([12, 40]), level=0.9)
    rlo, rhi = proportion_confint(np.array([3, 10]), np.array([12, 40]), alpha=0.1,
                                  method="wilson")
    np.testing.assert_allclose(lo, rlo, atol=1e-12)
    np.testing.assert_allclose(hi, rhi, atol=1e-12)
    # able to fail: the Wald interval (what a naive implementation gives) is different
    wlo, _ = proportion_confint(3, 24, alpha=0.05, method="normal")
    assert abs(S.wilson_ci(3, 24)[0] - wlo) > 0.02
    assert np.isnan(S.wilson_ci(0, 0)[0])


# ------------------------------------------------------------------------------------- DeLong
# Hanley & McNeil (1982), Radiology 143:29-36, Table 1: CT images of 109 patients rated by a
# radiologist on a 5-point scale (1 = definitely normal ... 5 = definitely abnormal).
# Truly normal (n = 58): 33, 6, 6, 11, 2; truly abnormal (n = 51): 3, 2, 2, 11, 33.
# Published: area (Wilcoxon, ties counted 1/2) W = 0.893, SE(W) = 0.032 (their formula).
HM_NORMAL = [33, 6, 6, 11, 2]
HM_ABNORMAL = [3, 2, 2, 11, 33]


def _hanley_mcneil():
    r = np.arange(1, 6)
    s = np.r_[np.repeat(r, HM_NORMAL), np.repeat(r, HM_ABNORMAL)].astype(float)
    y = np.r_[np.zeros(58, int), np.ones(51, int)]
    return y, s


def test_delong_hanley_mcneil_published_example():
    y, s = _hanley_mcneil()
    auc, var = S.delong_auc(y, s)
    assert round(auc, 3) == 0.893  # published W
    # DeLong's nonparametric SE estimates the same quantity as Hanley-McNeil's SE formula
    # (published 0.032); the two estimators agree to 0.002 here
    assert np.sqrt(var) == pytest.approx(0.032, abs=0.002)
    # able to fail: ignoring ties (counting them 0 instead of 1/2) gives a clearly lower area
    strict = np.mean(s[y == 1][:, None] > s[y == 0][None, :])
    assert strict < 0.85


def _brute_force_delong(y, s):
    """DeLong's structural components straight from the O(n*m) definition."""
    x, z = s[y == 1], s[y == 0]
    psi = (x[:, None] > z[None, :]) + 0.5 * (x[:, None] == z[None, :])
    v10, v01 = psi.mean(axis=1), psi.mean(axis=0)
    auc = psi.mean()
    var = np.var(v10, ddof=1) / x.size + np.var(v01, ddof=1) / z.size
    return auc, v10, v01, var


@pytest.mark.parametrize("ties", [False, True])
def test_delong_matches_brute_force_and_mann_whitney(ties):
    rng = np.random.default_rng(1)
    y, s = _scores(rng, 37, 52, shift=0.8, ties=ties)
    auc, v10, v01 = S.delong_placements(y, s)
    b_auc, b10, b01, b_var = _brute_force_delong(y, s)
    assert auc[0] == pytest.approx(b_auc, abs=1e-12)
    np.testing.assert_allclose(v10[:, 0], b10, atol=1e-12)
    np.testing.assert_allclose(v01[:, 0], b01, atol=1e-12)
    assert S.delong_auc(y, s)[1] == pytest.approx(b_var, rel=1e-10)
    u = sps.mannwhitneyu(s[y == 1], s[y == 0]).statistic
    assert auc[0] == pytest.approx(u / (37 * 52), abs=1e-12)
    from sklearn.metrics import roc_auc_score
    assert auc[0] == pytest.approx(roc_auc_score(y, s), abs=1e-12)


def test_delong_se_agrees_with_bootstrap():
    rng = np.random.default_rng(2)
    y, s = _scores(rng, 60, 80, shift=1.0)
    auc, var = S.delong_auc(y, s)
    reps = np.concatenate([S.weighted_auroc(w, y, s)
                           for w in S.bootstrap_weights(y, None, 4000, seed=3, grouped=False)])
    assert np.sqrt(var) == pytest.approx(reps.std(ddof=1), rel=0.1)
    a, lo, hi = S.auroc_ci(y, s)
    assert lo < a < hi and hi - lo == pytest.approx(2 * 1.959964 * np.sqrt(var), rel=1e-6)


def test_paired_delong_test_variance_and_null_distribution():
    rng = np.random.default_rng(4)
    n_pos, n_neg = 50, 70
    y = np.r_[np.ones(n_pos, int), np.zeros(n_neg, int)]
    latent = rng.normal(size=y.size) + 1.0 * y
    a = latent + rng.normal(0, 0.5, y.size)
    b = latent + rng.normal(0, 1.0, y.size)  # correlated with a, noisier
    res = S.delong_test(y, a, b)
    # brute-force covariance of the structural components
    _, a10, a01, va = _brute_force_delong(y, a)
    _, b10, b01, vb = _brute_force_delong(y, b)
    cov = np.cov(a10, b10)[0, 1] / n_pos + np.cov(a01, b01)[0, 1] / n_neg
    assert res["se"] == pytest.approx(np.sqrt(va + vb - 2 * cov), rel=1e-10)
    # bootstrap SD of the paired difference
    diffs = []
    for w in S.bootstrap_weights(y, None, 3000, seed=5, grouped=False):
        diffs.append(S.weighted_auroc(w, y, a) - S.weighted_auroc(w, y, b))
    assert res["se"] == pytest.approx(np.concatenate(diffs).std(ddof=1), rel=0.12)
    # able to fail: the unpaired SE (ignoring the covariance) is much larger here
    assert np.sqrt(va + vb) > 1.3 * res["se"]
    assert res["p_value"] == pytest.approx(2 * sps.norm.sf(abs(res["difference"] / res["se"])))
    # identical scores: no difference, p = 1
    assert S.delong_test(y, a, a)["p_value"] == 1.0
    # under H0 (two exchangeable scores) p-values are ~uniform
    ps = []
    for i in range(300):
        r = np.random.default_rng(100 + i)
        lat = r.normal(size=80) + 0.8 * (np.arange(80) < 35)
        yy = (np.arange(80) < 35).astype(int)
        ps.append(S.delong_test(yy, lat + r.normal(0, 1, 80),
                                lat + r.normal(0, 1, 80))["p_value"])
    assert sps.kstest(ps, "uniform").pvalue > 0.01
    assert 0.02 < np.mean(np.array(ps) < 0.05) < 0.09


# ---------------------------------------------------------------------------------- bootstrap
def test_bootstrap_weights_group_patients_and_keep_class_counts():
    ids = np.repeat(np.arange(10), [3, 1, 4, 2, 2, 5, 1, 3, 2, 2])
    y = np.isin(ids, [0, 2, 5, 7]).astype(int)
    for w in S.bootstrap_weights(y, ids, 50, seed=0):
        for row in w:
            per = pd.Series(row).groupby(ids).agg(["min", "max"])
            assert (per["min"] == per["max"]).all()  # a patient's rows are drawn together
            drawn = pd.Series(row).groupby(ids).first()
            assert drawn[[0, 2, 5, 7]].sum() == 4 and drawn.drop([0, 2, 5, 7]).sum() == 6
    # weighted AUROC with integer weights = AUROC of the repeated data
    rng = np.random.default_rng(0)
    s = rng.normal(size=ids.size) + y
    w = next(S.bootstrap_weights(y, ids, 5, seed=1))
    from sklearn.metrics import roc_auc_score
    for row in w:
        rep = np.repeat(np.arange(ids.size), row)
        assert S.weighted_auroc(row[None], y, s)[0] == pytest.approx(
            roc_auc_score(y[rep], s[rep]), abs=1e-12)
    with pytest.raises(InputError, match="different classes"):
        next(S.bootstrap_weights(np.r_[y[:-1], 1 - y[-1]], ids, 5))


# ----------------------------------------------------------------------------- binary metrics
def test_binary_metrics_match_sklearn_and_statsmodels():
    from sklearn import metrics as skm
    from statsmodels.stats.proportion import proportion_confint

    rng = np.random.default_rng(6)
    ids = np.repeat(np.arange(40), 5)
    y = np.repeat((rng.uniform(size=40) < 0.45).astype(int), 5)
    u = np.repeat(rng.normal(size=40), 5)  # patient effect: a patient's rows are correlated
    p = 1 / (1 + np.exp(-(1.5 * y - 0.7 + u + 0.3 * rng.normal(size=y.size))))
    t = 0.43
    df = S.binary_metrics(y, p, t, ids=ids).set_index("metric")
    pred = (p >= t).astype(int)
    assert df.loc["accuracy", "value"] == pytest.approx(skm.accuracy_score(y, pred))
    assert df.loc["sensitivity", "value"] == pytest.approx(skm.recall_score(y, pred))
    assert df.loc["specificity", "value"] == pytest.approx(skm.recall_score(1 - y, 1 - pred))
    assert df.loc["ppv", "value"] == pytest.approx(skm.precision_score(y, pred))
    assert df.loc["npv", "value"] == pytest.approx(skm.precision_score(1 - y, 1 - pred))
    assert df.loc["f1", "value"] == pytest.approx(skm.f1_score(y, pred))
    assert df.loc["auroc", "value"] == pytest.approx(skm.roc_auc_score(y, p))
    tn, fp, fn, tp = skm.confusion_matrix(y, pred).ravel()
    lo, hi = proportion_confint(tp, tp + fn, method="wilson")
    assert (df.loc["sensitivity", "ci_low"], df.loc["sensitivity", "ci_high"]) == pytest.approx(
        (lo, hi), abs=1e-12)
    assert df.loc["sensitivity", "method"] == "Wilson" and df.loc["auroc", "method"] == "DeLong"
    assert "patients" in df.loc["f1", "method"]
    assert df.loc["f1", "ci_low"] < df.loc["f1", "value"] < df.loc["f1", "ci_high"]
    # bootstrap on request: every interval from the patient bootstrap, and wider than the
    # row-wise Wilson interval because five rows of a patient are not independent
    b = S.binary_metrics(y, p, t, ids=ids, bootstrap=1000).set_index("metric")
    assert b["method"].str.startswith("bootstrap").all()
    w_wil = df.loc["accuracy", "ci_high"] - df.loc["accuracy", "ci_low"]
    w_boot = b.loc["accuracy", "ci_high"] - b.loc["accuracy", "ci_low"]
    assert w_boot > w_wil
    assert (b["value"] == df["value"]).all()
    # seeded: the same numbers again
    b2 = S.binary_metrics(y, p, t, ids=ids, bootstrap=1000).set_index("metric")
    pd.testing.assert_frame_equal(b, b2)


def test_multiclass_metrics_match_sklearn():
    from sklearn import metrics as skm

    rng = np.random.default_rng(7)
    n = 240
    y = rng.integers(0, 3, n)
    prob = rng.dirichlet([1, 1, 1], n)
    prob[np.arange(n), y] += 0.6
    prob /= prob.sum(axis=1, keepdims=True)
    classes = ["normal", "osteopenia", "osteoporosis"]
    df = S.multiclass_metrics(y, prob, classes=classes)
    pred = prob.argmax(axis=1)
    cm = df.attrs["confusion"]
    np.testing.assert_array_equal(cm, skm.confusion_matrix(y, pred))
    np.testing.assert_array_equal(S.confusion_matrix(y, pred, 3), cm)
    get = df.set_index(["metric", "class"])["value"]
    rec = skm.recall_score(y, pred, average=None)
    prec = skm.precision_score(y, pred, average=None)
    f1 = skm.f1_score(y, pred, average=None)
    for c, name in enumerate(classes):
        assert get[("auroc", name)] == pytest.approx(skm.roc_auc_score(y == c, prob[:, c]))
        assert get[("sensitivity", name)] == pytest.approx(rec[c])
        assert get[("specificity", name)] == pytest.approx(
            skm.recall_score(y != c, pred != c))
        assert get[("ppv", name)] == pytest.approx(prec[c])
        assert get[("f1", name)] == pytest.approx(f1[c])
    assert get[("auroc", "macro")] == pytest.approx(
        skm.roc_auc_score(y, prob, multi_class="ovr", average="macro"))
    assert get[("sensitivity", "macro")] == pytest.approx(rec.mean())
    assert get[("f1", "macro")] == pytest.approx(skm.f1_score(y, pred, average="macro"))
    assert get[("accuracy", "all")] == pytest.approx(skm.accuracy_score(y, pred))
    macro = df.set_index(["metric", "class"]).loc[("auroc", "macro")]
    assert macro["ci_low"] < macro["value"] < macro["ci_high"]
    # one-vs-rest DeLong interval per class = the binary DeLong interval of that class
    a, lo, hi = S.auroc_ci(y == 1, prob[:, 1])
    r = df.set_index(["metric", "class"]).loc[("auroc", "osteopenia")]
    assert (r["ci_low"], r["ci_high"]) == pytest.approx((lo, hi))


def _result(y, prob, ids, level="patient", threshold=0.5, name="m", classes=None):
    classes = classes or ["no osteoporosis", "osteoporosis"]
    return ModelResult(name=name, level=level, feature_group="MT", classifier="logreg",
                       classes=classes, y_true=np.asarray(y), y_prob=np.asarray(prob),
                       ids=np.asarray(ids), threshold=threshold)


def test_metrics_table_and_compare_models_use_patients():
    rng = np.random.default_rng(8)
    pat = np.arange(30)
    ypat = (np.arange(30) % 2).astype(int)
    ids = np.repeat(pat, 6)
    y = np.repeat(ypat, 6)
    p1 = 1 / (1 + np.exp(-(2 * y - 1 + rng.normal(size=y.size))))
    img = _result(y, np.c_[1 - p1, p1], ids, level="image", threshold=0.4, name="image MT")
    t = S.metrics_table(img)
    ref = S.binary_metrics(y, p1, 0.4, ids=ids, positive_name="osteoporosis")
    pd.testing.assert_frame_equal(t, ref)
    assert t.attrs["threshold"] == 0.4
    # patient-level model on 25 of the 30 patients, in another order
    keep = rng.permutation(30)[:25]
    p2 = 1 / (1 + np.exp(-(2 * ypat[keep] - 1 + rng.normal(size=25))))
    pat_model = _result(ypat[keep], np.c_[1 - p2, p2], pat[keep], name="patient")
    with pytest.warns(UserWarning, match="5 patients"):
        c = S.compare_models(img, pat_model)
    view = img.patient_view()
    sel = np.isin(view.ids, pat[keep])
    order = np.argsort(pat[keep])
    ref = S.delong_test(view.y_true[sel], view.y_prob[sel, 1], p2[order])
    assert c["p_value"] == pytest.approx(ref["p_value"]) and c["n_patients"] == 25
    three = _result(y % 3, np.full((y.size, 3), 1 / 3), ids, threshold=None,
                    classes=["normal", "osteopenia", "osteoporosis"])
    with pytest.raises(InputError, match="binary"):
        S.compare_models(img, three)


# ------------------------------------------------------------------------- Hosmer-Lemeshow
def _hl_independent(y, p, g=10):
    """Textbook Hosmer-Lemeshow C-hat: deciles of risk by pandas.qcut, 2 x g Pearson table."""
    grp = pd.qcut(p, g, labels=False, duplicates="drop")
    chat = 0.0
    for k in np.unique(grp):
        sel = grp == k
        o1, e1 = y[sel].sum(), p[sel].sum()
        o0, e0 = sel.sum() - o1, sel.sum() - e1
        chat += (o1 - e1) ** 2 / e1 + (o0 - e0) ** 2 / e0
    dof = len(np.unique(grp)) - 2
    return chat, dof, sps.chi2.sf(chat, dof)


def test_hosmer_lemeshow_matches_independent_computation():
    rng = np.random.default_rng(9)
    p = rng.uniform(0.05, 0.95, 300)
    y = (rng.uniform(size=300) < p).astype(int)
    hl = S.hosmer_lemeshow(y, p)
    chat, dof, pv = _hl_independent(y, p)
    assert hl.statistic == pytest.approx(chat, rel=1e-10)
    assert hl.df == dof == 8 and hl.p_value == pytest.approx(pv, rel=1e-10)
    assert hl.table["n"].sum() == 300 and hl.table["observed"].sum() == y.sum()
    # with ties (a rounded score): tied probabilities stay in one group, like qcut
    pr = np.round(p, 1)
    hl2 = S.hosmer_lemeshow(y, pr)
    chat2, dof2, _ = _hl_independent(y, pr)
    assert hl2.statistic == pytest.approx(chat2, rel=1e-10) and hl2.df == dof2
    # able to fail: the events-only Pearson sum (a common slip) is a different number
    t = hl.table
    assert abs(((t.observed - t.expected) ** 2 / t.expected).sum() - hl.statistic) > 1.0


def test_hosmer_lemeshow_calibration_behaviour():
    # Hosmer & Lemeshow (1980): for a fitted logistic model C-hat ~ chi-square(g - 2); with the
    # true probabilities (nothing fitted) it is ~ chi-square(g); miscalibration is rejected
    fitted, known, bad = [], [], []
    for i in range(200):
        r = np.random.default_rng(1000 + i)
        x = r.normal(size=400)
        p = 1 / (1 + np.exp(-(-0.3 + 1.2 * x)))
        y = (r.uniform(size=400) < p).astype(int)
        fit = sm.Logit(y, sm.add_constant(x)).fit(disp=0)
        fitted.append(S.hosmer_lemeshow(y, fit.predict()).p_value)
        known.append(S.hosmer_lemeshow(y, p).statistic)
        bad.append(S.hosmer_lemeshow(y, np.clip(p ** 0.5, 0, 1)).p_value)
    assert sps.kstest(fitted, "uniform").pvalue > 0.01
    assert sps.kstest(known, sps.chi2(10).cdf).pvalue > 0.01
    assert np.mean(known) == pytest.approx(10, abs=1.0)
    assert np.median(bad) < 1e-3


def test_calibration_curve_and_brier_match_sklearn():
    from sklearn.calibration import calibration_curve
    from sklearn.metrics import brier_score_loss

    rng = np.random.default_rng(10)
    p = rng.beta(2, 3, 500)
    y = (rng.uniform(size=500) < p).astype(int)
    for strategy in ("quantile", "uniform"):
        cc = S.calibration_curve(y, p, bins=8, strategy=strategy)
        obs, pred = calibration_curve(y, p, n_bins=8, strategy=strategy)
        np.testing.assert_allclose(cc["observed"], obs, atol=1e-12)
        np.testing.assert_allclose(cc["mean_predicted"], pred, atol=1e-12)
        assert ((cc.ci_low <= cc.observed) & (cc.observed <= cc.ci_high)).all()
    assert S.brier_score(y, p) == pytest.approx(brier_score_loss(y, p))


# -------------------------------------------------------------------------- decision curves
def test_net_benefit_matches_dcurves():
    dcurves = pytest.importorskip("dcurves")
    rng = np.random.default_rng(11)
    n = 300
    y = (rng.uniform(size=n) < 0.3).astype(int)
    p = np.clip(1 / (1 + np.exp(-(2.0 * y - 1.5 + rng.normal(size=n)))), 0, 1)
    p[:20] = 0.25  # exact ties on a threshold: treated when p >= pt
    th = np.round(np.arange(0.01, 1.0, 0.01), 2)
    ours = S.net_benefit(y, p, th)
    ref = dcurves.dca(data=pd.DataFrame({"y": y, "m": p}), outcome="y", modelnames=["m"],
                      thresholds=th)
    ref = ref.assign(threshold=ref.threshold.round(2))
    m = ref[ref.model == "m"].set_index("threshold").loc[th]
    a = ref[ref.model == "all"].set_index("threshold").loc[th]
    nn = ref[ref.model == "none"].set_index("threshold").loc[th]
    np.testing.assert_allclose(ours["model"], m["net_benefit"], atol=1e-12)
    np.testing.assert_allclose(ours["treat_all"], a["net_benefit"], atol=1e-12)
    np.testing.assert_allclose(ours["treat_none"], nn["net_benefit"], atol=1e-12)
    # able to fail: treating only p > pt (strict) changes the curve at the tied threshold
    strict = (((p > 0.25) & (y == 1)).sum() - ((p > 0.25) & (y == 0)).sum() * 0.25 / 0.75) / n
    assert abs(strict - ours.set_index("threshold").loc[0.25, "model"]) > 1e-3
    long = S.decision_curve(y, {"a": p, "b": 1 - p}, th)
    assert set(long.model) == {"a", "b", "treat all", "treat none"} and len(long) == 4 * th.size


# ---------------------------------------------------------------------- ROC curve and band
def test_roc_points_match_sklearn_and_band_contains_curve():
    from sklearn.metrics import auc, roc_curve

    rng = np.random.default_rng(12)
    y, s = _scores(rng, 40, 60, ties=True)
    fpr, tpr, _ = S.roc_curve_points(y, s)
    rf, rt, _ = roc_curve(y, s, drop_intermediate=False)
    np.testing.assert_allclose(fpr, rf)
    np.testing.assert_allclose(tpr, rt)
    assert auc(fpr, tpr) == pytest.approx(S.delong_auc(y, s)[0])
    band = S.roc_band(y, s, n_boot=300)
    assert (band.tpr_low <= band.tpr).all() and (band.tpr <= band.tpr_high).all()
    assert (band.tpr_high - band.tpr_low).iloc[10:90].mean() > 0.05


# ---------------------------------------------------------------- logistic table (Table IV)
def _design(rng, n=150):
    a = rng.normal(size=n)
    b = 0.6 * a + 0.8 * rng.normal(size=n)
    c = rng.normal(size=n) * 3 + 10
    X = pd.DataFrame({"MT feature": a, "AT feature": b, "clinical": c})
    eta = -0.3 + 1.0 * a - 0.7 * b + 0.2 * (c - 10)
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-eta))).astype(int)
    return X, y


def _newton_logit(X, y, iters=50):
    """Independent maximum-likelihood logistic fit (Newton-Raphson) with Wald SEs."""
    A = np.c_[np.ones(len(X)), X]
    beta = np.zeros(A.shape[1])
    for _ in range(iters):
        mu = 1 / (1 + np.exp(-A @ beta))
        H = A.T @ (A * (mu * (1 - mu))[:, None])
        beta = beta + np.linalg.solve(H, A.T @ (y - mu))
    mu = 1 / (1 + np.exp(-A @ beta))
    cov = np.linalg.inv(A.T @ (A * (mu * (1 - mu))[:, None]))
    return beta, np.sqrt(np.diag(cov))


def test_logistic_table_matches_statsmodels_and_newton():
    from statsmodels.stats.outliers_influence import variance_inflation_factor

    rng = np.random.default_rng(13)
    X, y = _design(rng)
    t = S.logistic_table(X, y, standardize=False)
    fit = sm.Logit(y, sm.add_constant(X)).fit(disp=0)
    np.testing.assert_allclose(t["beta"], fit.params, rtol=1e-6)
    np.testing.assert_allclose(t["p_value"], fit.pvalues, rtol=1e-5)
    ci = np.exp(fit.conf_int(alpha=0.05).to_numpy())
    np.testing.assert_allclose(t[["or_ci_low", "or_ci_high"]], ci, rtol=1e-6)
    beta, se = _newton_logit(X.to_numpy(), y)
    np.testing.assert_allclose(t["beta"], beta, rtol=1e-6)
    np.testing.assert_allclose(t["se"], se, rtol=1e-6)
    np.testing.assert_allclose(t["odds_ratio"], np.exp(beta), rtol=1e-6)
    exog = sm.add_constant(X).to_numpy()
    ref_vif = [variance_inflation_factor(exog, j) for j in range(1, exog.shape[1])]
    np.testing.assert_allclose(t["vif"].iloc[1:], ref_vif, rtol=1e-8)
    # able to fail: corr(a, b) = 0.6 by construction, so VIF(a) ~ 1 / (1 - 0.36) = 1.56 and
    # VIF(clinical) ~ 1; an implementation ignoring collinearity (all 1) or using the raw
    # covariance matrix (clinical has SD 3) would not give both
    assert t["vif"].iloc[1] == pytest.approx(1.5625, abs=0.3)
    assert t["vif"].iloc[3] == pytest.approx(1.0, abs=0.1)
    # standardized: beta per SD = raw beta * SD; p-values and VIF unchanged
    ts = S.logistic_table(X, y)
    per_sd = t["beta"].iloc[1:].to_numpy() * X.std(ddof=1).to_numpy()
    np.testing.assert_allclose(ts["beta"].iloc[1:], per_sd, rtol=1e-6)
    np.testing.assert_allclose(ts["p_value"].iloc[1:], t["p_value"].iloc[1:], rtol=1e-5)
    np.testing.assert_allclose(ts["vif"].iloc[1:], t["vif"].iloc[1:], rtol=1e-10)
    assert ts.attrs["standardized"] and ts.attrs["n"] == 150


def test_logistic_table_errors_name_the_problem():
    rng = np.random.default_rng(14)
    X, y = _design(rng, 40)
    with pytest.raises(InputError, match="clinical"):
        S.logistic_table(X.assign(clinical=np.nan), y)
    with pytest.raises(InputError, match="constant"):
        S.logistic_table(X.assign(clinical=1.0), y)
    with pytest.raises(InputError, match="rows"):
        S.logistic_table(X, y[:-1])
    sep = X.copy()
    ys = (sep["MT feature"] > 0).astype(int)  # perfectly separated
    with pytest.raises(InputError, match="separated"):
        S.logistic_table(sep, ys)
    t = S.logistic_table(sep, ys, on_separation="flag")
    assert t.attrs["separation"] and t["se"].iloc[1] > 100
