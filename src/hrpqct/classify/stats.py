"""Statistics of a classification study (see docs/statistics.md).

Everything takes plain arrays: ``y_true`` holds class codes (0/1 for binary, positive = 1),
``p`` / ``y_prob`` predicted probabilities, ``ids`` the patient id of each row (image-level rows
repeat a patient). Confidence intervals are two-sided at ``CLASSIFICATION.ci_level`` (95 %):

* proportions (accuracy, sensitivity, specificity, PPV, NPV): Wilson score interval;
* AUROC: DeLong's variance (DeLong, DeLong & Clarke-Pearson 1988, Biometrics 44:837) computed
  with the mid-rank algorithm of Sun & Xu (2014, IEEE Signal Process. Lett. 21:1389), normal
  interval clipped to [0, 1];
* F1 and (on request) everything: percentile bootstrap that resamples *patients* (all rows of a
  patient together), stratified by class.

The paired DeLong test compares two models on the same test patients; Hosmer-Lemeshow, the
calibration curve, Brier score and decision curves describe calibration and clinical use; the
logistic regression table (the paper's Table IV) uses statsmodels.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats as _sps

from ..errors import InputError
from ..method import CLASSIFICATION, STATISTICS

__all__ = [
    "youden_threshold",
    "wilson_ci",
    "delong_placements",
    "delong_auc",
    "auroc_ci",
    "delong_test",
    "compare_models",
    "bootstrap_weights",
    "weighted_auroc",
    "bootstrap_ci",
    "confusion_matrix",
    "predict_labels",
    "binary_metrics",
    "multiclass_metrics",
    "metrics_table",
    "HosmerLemeshow",
    "hosmer_lemeshow",
    "calibration_curve",
    "brier_score",
    "net_benefit",
    "decision_curve",
    "roc_curve_points",
    "roc_band",
    "logistic_table",
    "vif",
]


def youden_threshold(y_true, p_positive) -> float:
    """Probability threshold maximising Youden's J = sensitivity + specificity - 1.

    Chosen on training data only. Candidates are the observed probabilities (predict positive when
    ``p >= threshold``); ties in J go to the candidate closest to 0.5. ``y_true`` holds 0/1.
    """
    y = np.asarray(y_true).astype(int).ravel()
    p = np.asarray(p_positive, dtype=float).ravel()
    if y.shape != p.shape:
        raise ValueError(f"y_true has {y.size} values, p_positive {p.size}")
    if not np.isfinite(p).all():
        raise ValueError("p_positive has NaN or infinite values")
    pos, neg = (y == 1).sum(), (y == 0).sum()
    if pos == 0 or neg == 0:
        raise ValueError("Youden threshold needs both classes in y_true")
    cand = np.unique(p)
    order = np.argsort(p)
    ps, ys = p[order], y[order]
    # for each candidate t: positives predicted = those with p >= t
    idx = np.searchsorted(ps, cand, side="left")
    pos_below = np.concatenate([[0], np.cumsum(ys)])[idx]
    neg_below = idx - pos_below
    sens = (pos - pos_below) / pos
    spec = neg_below / neg
    j = sens + spec - 1.0
    best = np.flatnonzero(np.isclose(j, j.max(), rtol=0, atol=1e-12))
    return float(cand[best[np.argmin(np.abs(cand[best] - 0.5))]])


# --------------------------------------------------------------------------------------------
# input checks


def _level(level: float | None) -> float:
    level = CLASSIFICATION.ci_level if level is None else float(level)
    if not 0.0 < level < 1.0:
        raise InputError(f"confidence level must be in (0, 1), got {level}")
    return level


def _z(level: float) -> float:
    return float(_sps.norm.ppf(0.5 + level / 2.0))


def _binary_inputs(y_true, score, what: str = "score") -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true).ravel()
    s = np.asarray(score, dtype=float)
    if s.ndim == 1:
        s = s[:, None]
    if s.shape[0] != y.size:
        raise InputError(f"y_true has {y.size} values, {what} {s.shape[0]}")
    if not np.isfinite(s).all():
        raise InputError(f"{what} has NaN or infinite values")
    if not np.isin(y, (0, 1)).all():
        raise InputError(f"y_true must hold 0/1 (positive = 1), got values {np.unique(y)[:5]}")
    y = y.astype(int)
    if (y == 1).sum() == 0 or (y == 0).sum() == 0:
        raise InputError("AUROC needs both classes in y_true")
    return y, s


# --------------------------------------------------------------------------------------------
# proportions


def wilson_ci(k, n, level: float | None = None):
    """Wilson score interval of the proportion ``k / n`` (Wilson 1927, JASA 22:209).

    ``k`` and ``n`` may be arrays; returns ``(low, high)`` (floats or arrays); NaN where n == 0.
    """
    z = _z(_level(level))
    k = np.asarray(k, dtype=float)
    n = np.asarray(n, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = k / n
        denom = 1.0 + z * z / n
        centre = (p + z * z / (2.0 * n)) / denom
        half = z * np.sqrt(p * (1.0 - p) / n + z * z / (4.0 * n * n)) / denom
        low = np.where(n > 0, np.clip(centre - half, 0.0, 1.0), np.nan)
        high = np.where(n > 0, np.clip(centre + half, 0.0, 1.0), np.nan)
    if low.ndim == 0:
        return float(low), float(high)
    return low, high


# --------------------------------------------------------------------------------------------
# AUROC: DeLong


def delong_placements(y_true, score):
    """DeLong placement values from mid-ranks (Sun & Xu 2014).

    ``score``: ``(n,)`` or ``(n, k)`` (k models on the same rows). Returns ``(auc, v10, v01)``:
    ``auc`` ``(k,)``; ``v10`` ``(m, k)`` the placement of each positive (fraction of negatives it
    outranks, ties 1/2); ``v01`` ``(n_neg, k)`` one minus the fraction of positives a negative
    outranks. The mean of either is the Mann-Whitney AUROC.
    """
    y, s = _binary_inputs(y_true, score)
    pos, neg = s[y == 1], s[y == 0]
    m, n = pos.shape[0], neg.shape[0]
    r_all = _sps.rankdata(np.vstack([pos, neg]), axis=0)
    r_pos = _sps.rankdata(pos, axis=0)
    r_neg = _sps.rankdata(neg, axis=0)
    v10 = (r_all[:m] - r_pos) / n
    v01 = 1.0 - (r_all[m:] - r_neg) / m
    return v10.mean(axis=0), v10, v01


def _delong_cov(v10: np.ndarray, v01: np.ndarray) -> np.ndarray:
    m, n = v10.shape[0], v01.shape[0]
    s10 = np.atleast_2d(np.cov(v10, rowvar=False)) if m > 1 else np.zeros((v10.shape[1],) * 2)
    s01 = np.atleast_2d(np.cov(v01, rowvar=False)) if n > 1 else np.zeros((v01.shape[1],) * 2)
    return s10 / m + s01 / n


def delong_auc(y_true, score) -> tuple[float, float]:
    """AUROC and its DeLong variance for one score ``(n,)``."""
    auc, v10, v01 = delong_placements(y_true, np.asarray(score, dtype=float).ravel())
    return float(auc[0]), float(_delong_cov(v10, v01)[0, 0])


def auroc_ci(y_true, score, level: float | None = None) -> tuple[float, float, float]:
    """``(auc, low, high)``: AUROC with the DeLong normal interval, clipped to [0, 1]."""
    auc, var = delong_auc(y_true, score)
    half = _z(_level(level)) * np.sqrt(max(var, 0.0))
    return auc, max(0.0, auc - half), min(1.0, auc + half)


def delong_test(y_true, score_a, score_b) -> dict:
    """Paired DeLong test of AUROC(a) = AUROC(b) for two scores of the same rows (two-sided).

    Returns ``auc_a, auc_b, difference (a - b), se, z, p_value, n_pos, n_neg``. Identical
    rankings give ``se = 0`` and ``p = 1``.
    """
    a = np.asarray(score_a, dtype=float).ravel()
    b = np.asarray(score_b, dtype=float).ravel()
    if a.shape != b.shape:
        raise InputError(f"the two scores have {a.size} and {b.size} values; need the same rows")
    auc, v10, v01 = delong_placements(y_true, np.column_stack([a, b]))
    cov = _delong_cov(v10, v01)
    var = cov[0, 0] + cov[1, 1] - 2.0 * cov[0, 1]
    diff = float(auc[0] - auc[1])
    se = float(np.sqrt(max(var, 0.0)))
    if se <= 1e-15:
        z, p = 0.0, 1.0
    else:
        z = diff / se
        p = float(2.0 * _sps.norm.sf(abs(z)))
    return {"auc_a": float(auc[0]), "auc_b": float(auc[1]), "difference": diff, "se": se,
            "z": float(z), "p_value": p, "n_pos": int(v10.shape[0]), "n_neg": int(v01.shape[0])}


def _positive_score(result) -> np.ndarray:
    """The positive-class probability of a binary ModelResult."""
    prob = np.asarray(result.y_prob, dtype=float)
    return prob[:, -1] if prob.ndim == 2 else prob


def compare_models(a, b) -> dict:
    """Paired DeLong test between two binary ``ModelResult`` on their common test patients.

    Image-level models are compared through their patient view (mean probability per patient),
    so two region models that dropped different slices still pair by patient. Returns
    :func:`delong_test`'s dict plus ``model_a``, ``model_b``, ``n_patients``.
    """
    if not (a.binary and b.binary):
        raise InputError(f"DeLong test needs two binary models; {a.name!r} / {b.name!r}")
    pa, pb = a.patient_view(), b.patient_view()
    da = pd.DataFrame({"y": pa.y_true, "s": _positive_score(pa)}, index=pd.Index(pa.ids))
    db = pd.DataFrame({"y": pb.y_true, "s": _positive_score(pb)}, index=pd.Index(pb.ids))
    if not da.index.is_unique or not db.index.is_unique:
        raise InputError(f"{a.name!r} or {b.name!r}: patient ids repeat in a patient-level result")
    common = da.index.intersection(db.index)
    if len(common) < len(da) or len(common) < len(db):
        missing = len(da.index.union(db.index)) - len(common)
        if len(common) == 0:
            raise InputError(f"{a.name!r} and {b.name!r} share no test patients")
        warnings.warn(f"DeLong test {a.name!r} vs {b.name!r}: {missing} patients not in both, "
                      "compared on the common ones", stacklevel=2)
    da, db = da.loc[common], db.loc[common]
    if (da["y"].to_numpy() != db["y"].to_numpy()).any():
        raise InputError(f"{a.name!r} and {b.name!r} disagree on the label of a test patient")
    out = delong_test(da["y"].to_numpy(), da["s"].to_numpy(), db["s"].to_numpy())
    out.update(model_a=a.name, model_b=b.name, n_patients=int(len(common)))
    return out


# --------------------------------------------------------------------------------------------
# bootstrap


def bootstrap_weights(y_true, ids=None, n_boot: int | None = None, seed: int = 0,
                      grouped: bool | None = None, stratified: bool | None = None,
                      chunk: int = 200):
    """Yield ``(b, n)`` integer multiplicity matrices of bootstrap resamples of the rows.

    ``grouped``: resample patients (``ids``) and take all rows of each drawn patient as often as
    it was drawn; ``stratified``: resample within each class (a patient's class is that of its
    rows), so every resample keeps the class counts of patients. Seeded, reproducible.
    """
    y = np.asarray(y_true).ravel()
    n = y.size
    n_boot = CLASSIFICATION.n_bootstrap if n_boot is None else int(n_boot)
    grouped = STATISTICS.bootstrap_grouped if grouped is None else grouped
    stratified = STATISTICS.bootstrap_stratified if stratified is None else stratified
    if grouped and ids is not None:
        uniq, unit = np.unique(np.asarray(ids), return_inverse=True)
        unit = unit.ravel()
        lab = pd.Series(y).groupby(unit).agg(["first", "nunique"])
        if (lab["nunique"] > 1).any():
            raise InputError("bootstrap: a patient has rows of different classes")
        unit_class = lab["first"].to_numpy()
    else:
        unit = np.arange(n)
        unit_class = y
    n_units = unit_class.size
    strata = [np.flatnonzero(unit_class == c) for c in np.unique(unit_class)] if stratified \
        else [np.arange(n_units)]
    rng = np.random.default_rng(seed)
    done = 0
    while done < n_boot:
        b = min(chunk, n_boot - done)
        mult = np.zeros((b, n_units), dtype=np.int64)
        for members in strata:
            k = members.size
            draw = rng.integers(0, k, size=(b, k))
            flat = (draw + np.arange(b)[:, None] * k).ravel()
            mult[:, members] += np.bincount(flat, minlength=b * k).reshape(b, k)
        yield mult[:, unit]
        done += b


def weighted_auroc(w: np.ndarray, y_true, score) -> np.ndarray:
    """Mann-Whitney AUROC of each row of weights ``w`` ``(b, n)`` (ties count 1/2)."""
    y = np.asarray(y_true).astype(int).ravel()
    s = np.asarray(score, dtype=float).ravel()
    w = np.atleast_2d(np.asarray(w, dtype=float))
    order = np.argsort(s, kind="mergesort")
    s_sorted, y_sorted, w = s[order], y[order], w[:, order]
    starts = np.flatnonzero(np.r_[True, s_sorted[1:] != s_sorted[:-1]])
    wp = np.add.reduceat(w * y_sorted, starts, axis=1)
    wn = np.add.reduceat(w * (1 - y_sorted), starts, axis=1)
    below = np.cumsum(wn, axis=1) - wn
    num = (wp * (below + 0.5 * wn)).sum(axis=1)
    den = wp.sum(axis=1) * wn.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / den, np.nan)


def bootstrap_ci(values: np.ndarray, level: float | None = None) -> tuple[float, float]:
    """Percentile interval of bootstrap replicates (NaN replicates ignored)."""
    level = _level(level)
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return float("nan"), float("nan")
    lo, hi = np.percentile(v, [100 * (1 - level) / 2, 100 * (1 + level) / 2])
    return float(lo), float(hi)


# --------------------------------------------------------------------------------------------
# metrics


def confusion_matrix(y_true, y_pred, n_classes: int | None = None) -> np.ndarray:
    """Counts ``(k, k)``: rows = true class, columns = predicted class."""
    y = np.asarray(y_true).astype(int).ravel()
    pr = np.asarray(y_pred).astype(int).ravel()
    if y.shape != pr.shape:
        raise InputError(f"y_true has {y.size} values, y_pred {pr.size}")
    k = int(max(y.max(initial=0), pr.max(initial=0)) + 1) if n_classes is None else int(n_classes)
    return np.bincount(y * k + pr, minlength=k * k).reshape(k, k)


def predict_labels(y_prob, threshold: float | None = None) -> np.ndarray:
    """Class codes: binary ``p(positive) >= threshold``; more classes (or no threshold) arg-max."""
    prob = np.asarray(y_prob, dtype=float)
    if prob.ndim == 1:
        t = STATISTICS.default_threshold if threshold is None else threshold
        return (prob >= t).astype(int)
    if prob.shape[1] == 2 and threshold is not None:
        return (prob[:, 1] >= threshold).astype(int)
    return prob.argmax(axis=1)


_BINARY_METRICS = ("accuracy", "sensitivity", "specificity", "ppv", "npv", "f1", "auroc")


def _counts_from_weights(w, y, pred):
    tp = w @ ((y == 1) & (pred == 1)).astype(float)
    fn = w @ ((y == 1) & (pred == 0)).astype(float)
    tn = w @ ((y == 0) & (pred == 0)).astype(float)
    fp = w @ ((y == 0) & (pred == 1)).astype(float)
    return tp, fn, tn, fp


def _proportions(tp, fn, tn, fp) -> dict:
    with np.errstate(invalid="ignore", divide="ignore"):
        tot = tp + fn + tn + fp
        return {
            "accuracy": (tp + tn) / tot,
            "sensitivity": tp / (tp + fn),
            "specificity": tn / (tn + fp),
            "ppv": tp / (tp + fp),
            "npv": tn / (tn + fn),
            "f1": np.where(2 * tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), np.nan),
        }


def _boot_label(n_boot, grouped, ids) -> str:
    unit = "patients" if grouped and ids is not None else "rows"
    return f"bootstrap percentile ({n_boot} resamples of {unit}, stratified)"


def binary_metrics(y_true, p_positive, threshold: float | None = None, ids=None,
                   level: float | None = None, bootstrap: int = 0, seed: int = 0,
                   grouped: bool | None = None, positive_name: str = "positive") -> pd.DataFrame:
    """Accuracy, sensitivity, specificity, PPV, NPV, F1 and AUROC with confidence intervals.

    Predict positive when ``p_positive >= threshold`` (default ``STATISTICS.default_threshold``).
    ``bootstrap=0``: Wilson intervals for the proportions, DeLong for AUROC, and F1 (no closed
    form) by a ``CLASSIFICATION.n_bootstrap`` patient-grouped bootstrap; ``bootstrap=B``: every
    interval from one B-resample bootstrap (patients resampled when ``ids`` are given).
    Returns one row per metric: ``metric, class, value, ci_low, ci_high, method, k, n``
    (``k / n`` for proportions).
    """
    level = _level(level)
    y, s = _binary_inputs(y_true, p_positive, "p_positive")
    s = s[:, 0]
    t = STATISTICS.default_threshold if threshold is None else float(threshold)
    pred = (s >= t).astype(int)
    tp, fn, tn, fp = _counts_from_weights(np.ones((1, y.size)), y, pred)
    props = {k: float(v[0]) for k, v in _proportions(tp, fn, tn, fp).items()}
    num_den = {"accuracy": (tp + tn, tp + tn + fp + fn), "sensitivity": (tp, tp + fn),
               "specificity": (tn, tn + fp), "ppv": (tp, tp + fp), "npv": (tn, tn + fn)}
    grouped_eff = STATISTICS.bootstrap_grouped if grouped is None else grouped
    rows = []
    boot = None
    n_boot = bootstrap if bootstrap else CLASSIFICATION.n_bootstrap
    if True:  # F1 always needs the bootstrap; one pass serves every metric when asked for
        reps = {k: [] for k in _BINARY_METRICS}
        for w in bootstrap_weights(y, ids, n_boot, seed, grouped_eff):
            c = _counts_from_weights(w.astype(float), y, pred)
            for k, v in _proportions(*c).items():
                reps[k].append(v)
            if bootstrap:
                reps["auroc"].append(weighted_auroc(w, y, s))
        boot = {k: np.concatenate(v) if v else np.array([]) for k, v in reps.items()}
    auc, a_lo, a_hi = auroc_ci(y, s, level)
    blabel = _boot_label(n_boot, grouped_eff, ids)
    for name in _BINARY_METRICS:
        value = auc if name == "auroc" else props[name]
        k = n = np.nan
        if name in num_den:
            k, n = float(num_den[name][0][0]), float(num_den[name][1][0])
        if bootstrap or name == "f1":
            lo, hi = bootstrap_ci(boot[name], level)
            method = blabel
        elif name == "auroc":
            lo, hi, method = a_lo, a_hi, "DeLong"
        else:
            lo, hi = wilson_ci(k, n, level)
            method = "Wilson"
        rows.append({"metric": name, "class": positive_name, "value": value, "ci_low": lo,
                     "ci_high": hi, "method": method, "k": k, "n": n})
    out = pd.DataFrame(rows)
    out.attrs.update(threshold=t, level=level, n_rows=int(y.size),
                     n_patients=int(np.unique(ids).size) if ids is not None else int(y.size))
    return out


def multiclass_metrics(y_true, y_prob, ids=None, classes=None, level: float | None = None,
                       bootstrap: int = 0, seed: int = 0, grouped: bool | None = None
                       ) -> pd.DataFrame:
    """Three (or more) classes: per-class one-vs-rest AUROC, sensitivity, specificity, PPV, F1;
    macro averages; overall accuracy. Predicted class = arg-max of ``y_prob`` ``(n, k)``.

    Per-class intervals: DeLong (AUROC) and Wilson (proportions); F1 and the macro averages
    (mean of the classes) by the patient-grouped bootstrap (``CLASSIFICATION.n_bootstrap``
    resamples, or ``bootstrap`` when given, which then also serves every other interval). Same columns as
    :func:`binary_metrics`, ``class`` = the class name or ``"macro"`` / ``"all"``.
    """
    level = _level(level)
    prob = np.asarray(y_prob, dtype=float)
    y = np.asarray(y_true).astype(int).ravel()
    if prob.ndim != 2 or prob.shape[0] != y.size:
        raise InputError(f"y_prob must be (n, k) with n = {y.size} rows, got {prob.shape}")
    k_cls = prob.shape[1]
    classes = [str(c) for c in (classes if classes is not None else range(k_cls))]
    if len(classes) != k_cls:
        raise InputError(f"{len(classes)} class names for {k_cls} probability columns")
    if y.min() < 0 or y.max() >= k_cls:
        raise InputError(f"y_true codes must be 0..{k_cls - 1}")
    pred = prob.argmax(axis=1)
    grouped_eff = STATISTICS.bootstrap_grouped if grouped is None else grouped
    n_boot = bootstrap if bootstrap else CLASSIFICATION.n_bootstrap
    blabel = _boot_label(n_boot, grouped_eff, ids)
    per = ("auroc", "sensitivity", "specificity", "ppv", "f1")
    reps = {(c, m): [] for c in range(k_cls) for m in per}
    reps_acc = []
    for w in bootstrap_weights(y, ids, n_boot, seed, grouped_eff):
        wf = w.astype(float)
        reps_acc.append(wf @ (pred == y).astype(float) / wf.sum(axis=1))
        for c in range(k_cls):
            yc, pc = (y == c).astype(int), (pred == c).astype(int)
            props = _proportions(*_counts_from_weights(wf, yc, pc))
            for m in ("sensitivity", "specificity", "ppv", "f1"):
                reps[(c, m)].append(props[m])
            reps[(c, "auroc")].append(weighted_auroc(w, yc, prob[:, c]))
    reps = {key: np.concatenate(v) for key, v in reps.items()}
    rows = []

    def row(metric, cls, value, lo, hi, method, k=np.nan, n=np.nan):
        rows.append({"metric": metric, "class": cls, "value": value, "ci_low": lo,
                     "ci_high": hi, "method": method, "k": k, "n": n})

    acc_k, acc_n = float((pred == y).sum()), float(y.size)
    if bootstrap:
        row("accuracy", "all", acc_k / acc_n, *bootstrap_ci(np.concatenate(reps_acc), level),
            blabel, acc_k, acc_n)
    else:
        row("accuracy", "all", acc_k / acc_n, *wilson_ci(acc_k, acc_n, level), "Wilson",
            acc_k, acc_n)
    values = {}
    for c in range(k_cls):
        yc, pc = (y == c).astype(int), (pred == c).astype(int)
        tp, fn, tn, fp = (float(v[0]) for v in _counts_from_weights(np.ones((1, y.size)), yc, pc))
        props = {m: float(v) for m, v in _proportions(tp, fn, tn, fp).items()}
        nd = {"sensitivity": (tp, tp + fn), "specificity": (tn, tn + fp), "ppv": (tp, tp + fp)}
        if 0 < yc.sum() < yc.size:
            auc, lo, hi = auroc_ci(yc, prob[:, c], level)
        else:
            auc, lo, hi = np.nan, np.nan, np.nan
        values[(c, "auroc")] = auc
        if bootstrap:
            row("auroc", classes[c], auc, *bootstrap_ci(reps[(c, "auroc")], level), blabel)
        else:
            row("auroc", classes[c], auc, lo, hi, "DeLong (one-vs-rest)")
        for m in ("sensitivity", "specificity", "ppv", "f1"):
            values[(c, m)] = props[m]
            kk, nn = nd.get(m, (np.nan, np.nan))
            if bootstrap or m == "f1":
                row(m, classes[c], props[m], *bootstrap_ci(reps[(c, m)], level), blabel, kk, nn)
            else:
                row(m, classes[c], props[m], *wilson_ci(kk, nn, level), "Wilson", kk, nn)
    for m in per:
        macro = float(np.nanmean([values[(c, m)] for c in range(k_cls)]))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            rep = np.nanmean(np.vstack([reps[(c, m)] for c in range(k_cls)]), axis=0)
        row(m, "macro", macro, *bootstrap_ci(rep, level), blabel)
    out = pd.DataFrame(rows)
    out.attrs.update(level=level, n_rows=int(y.size), classes=classes,
                     confusion=confusion_matrix(y, pred, k_cls))
    return out


def metrics_table(result, bootstrap: int = 0, seed: int = 0, level: float | None = None,
                  grouped: bool | None = None) -> pd.DataFrame:
    """The metrics of one ``ModelResult`` on its test rows (long format, see binary_metrics).

    Binary: at the model's own (training-data Youden) threshold, or
    ``STATISTICS.default_threshold`` when it has none; three classes: arg-max. Bootstrap
    resamples the result's patients (``ids``), so image-level rows of a patient stay together.
    """
    if result.binary:
        t = result.threshold if result.threshold is not None else STATISTICS.default_threshold
        return binary_metrics(result.y_true, _positive_score(result), t, ids=result.ids,
                              level=level, bootstrap=bootstrap, seed=seed, grouped=grouped,
                              positive_name=result.classes[-1])
    return multiclass_metrics(result.y_true, result.y_prob, ids=result.ids,
                              classes=result.classes, level=level, bootstrap=bootstrap,
                              seed=seed, grouped=grouped)


# --------------------------------------------------------------------------------------------
# calibration


@dataclass
class HosmerLemeshow:
    statistic: float
    df: int
    p_value: float
    table: pd.DataFrame  # group, n, observed, expected, mean_predicted, p_low, p_high


def hosmer_lemeshow(y_true, p_positive, groups: int | None = None) -> HosmerLemeshow:
    """Hosmer-Lemeshow goodness-of-fit test over deciles (``groups``) of predicted risk.

    Groups: cut at the ``j / groups`` quantiles of ``p`` (a probability equal to a cut goes to the
    lower group, so tied probabilities stay together; duplicate cuts merge groups). Statistic
    ``C = sum_g (O_g - E_g)^2 / (E_g (1 - E_g / n_g))`` (events and non-events), compared with
    chi-square on ``(number of groups - 2)`` degrees of freedom (Hosmer & Lemeshow 1980).
    """
    y, s = _binary_inputs(y_true, p_positive, "p_positive")
    p = s[:, 0]
    if (p < 0).any() or (p > 1).any():
        raise InputError("Hosmer-Lemeshow needs probabilities in [0, 1]")
    g = CLASSIFICATION.hosmer_lemeshow_groups if groups is None else int(groups)
    if g < 3:
        raise InputError(f"Hosmer-Lemeshow needs at least 3 groups, got {g}")
    cuts = np.unique(np.quantile(p, np.arange(1, g) / g))
    grp = np.searchsorted(cuts, p, side="left")
    df = pd.DataFrame({"g": grp, "y": y, "p": p})
    t = df.groupby("g").agg(n=("y", "size"), observed=("y", "sum"), expected=("p", "sum"),
                            p_low=("p", "min"), p_high=("p", "max")).reset_index(drop=True)
    t.insert(0, "group", np.arange(1, len(t) + 1))
    t["mean_predicted"] = t["expected"] / t["n"]
    var = t["expected"] * (1.0 - t["mean_predicted"])
    diff2 = (t["observed"] - t["expected"]) ** 2
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(var > 0, diff2 / var, np.where(diff2 > 0, np.inf, 0.0))
    stat = float(terms.sum())
    dof = len(t) - 2
    if dof < 1:
        raise InputError(f"Hosmer-Lemeshow: only {len(t)} distinct risk groups "
                         "(too few distinct probabilities)")
    return HosmerLemeshow(stat, dof, float(_sps.chi2.sf(stat, dof)), t)


def calibration_curve(y_true, p_positive, bins: int | None = None,
                      strategy: str = "quantile", level: float | None = None) -> pd.DataFrame:
    """Observed event fraction per bin of predicted probability, with Wilson intervals.

    ``strategy``: ``"quantile"`` (equal counts; edges at the quantiles of ``p``) or ``"uniform"``
    (equal widths on [0, 1]); a probability equal to an inner edge goes to the upper bin (as
    scikit-learn's ``calibration_curve``); empty bins are dropped. Columns: ``bin, n,
    mean_predicted, observed, ci_low, ci_high``.
    """
    y, s = _binary_inputs(y_true, p_positive, "p_positive")
    p = s[:, 0]
    nb = STATISTICS.calibration_bins if bins is None else int(bins)
    if strategy == "quantile":
        edges = np.percentile(p, np.linspace(0, 100, nb + 1))
    elif strategy == "uniform":
        edges = np.linspace(0.0, 1.0, nb + 1)
    else:
        raise InputError(f"calibration strategy must be 'quantile' or 'uniform', got {strategy!r}")
    ids = np.searchsorted(edges[1:-1], p, side="right")
    n = np.bincount(ids, minlength=nb)
    obs = np.bincount(ids, weights=y, minlength=nb)
    pred = np.bincount(ids, weights=p, minlength=nb)
    keep = n > 0
    lo, hi = wilson_ci(obs[keep], n[keep], level)
    return pd.DataFrame({"bin": np.flatnonzero(keep) + 1, "n": n[keep],
                         "mean_predicted": pred[keep] / n[keep], "observed": obs[keep] / n[keep],
                         "ci_low": lo, "ci_high": hi})


def brier_score(y_true, p_positive) -> float:
    """Mean squared difference between the positive-class probability and the 0/1 outcome."""
    y, s = _binary_inputs(y_true, p_positive, "p_positive")
    return float(np.mean((s[:, 0] - y) ** 2))


# --------------------------------------------------------------------------------------------
# decision curves


def _thresholds(thresholds) -> np.ndarray:
    if thresholds is None:
        a, b, step = STATISTICS.decision_thresholds
        thresholds = np.round(np.arange(a, b + step / 2, step), 10)
    t = np.asarray(thresholds, dtype=float).ravel()
    if ((t < 0) | (t >= 1)).any():
        raise InputError("decision-curve thresholds must be in [0, 1)")
    return t


def net_benefit(y_true, p_positive, thresholds=None) -> pd.DataFrame:
    """Decision curve (Vickers & Elkin 2006, Med Decis Making 26:565).

    At threshold probability ``pt`` (treat when ``p >= pt``): net benefit
    ``TP/n - FP/n * pt / (1 - pt)``; treat-all ``prevalence - (1 - prevalence) pt / (1 - pt)``;
    treat-none 0. Columns ``threshold, model, treat_all, treat_none, tp, fp``.
    """
    y, s = _binary_inputs(y_true, p_positive, "p_positive")
    p = s[:, 0]
    t = _thresholds(thresholds)
    n = y.size
    order = np.argsort(p)
    ps, ys = p[order], y[order]
    idx = np.searchsorted(ps, t, side="left")  # rows below idx are not treated
    pos_below = np.concatenate([[0], np.cumsum(ys)])[idx]
    tp = ys.sum() - pos_below
    fp = (n - idx) - tp
    odds = t / (1.0 - t)
    prev = ys.mean()
    return pd.DataFrame({"threshold": t, "model": tp / n - fp / n * odds,
                         "treat_all": prev - (1.0 - prev) * odds, "treat_none": 0.0,
                         "tp": tp, "fp": fp})


def decision_curve(y_true, scores: dict, thresholds=None) -> pd.DataFrame:
    """Decision curves of several models on the same rows: long table
    ``threshold, model, net_benefit`` incl. ``"treat all"`` and ``"treat none"``."""
    parts = []
    base = None
    for name, p in scores.items():
        nb = net_benefit(y_true, p, thresholds)
        base = nb if base is None else base
        parts.append(pd.DataFrame({"threshold": nb["threshold"], "model": name,
                                   "net_benefit": nb["model"]}))
    if base is None:
        raise InputError("decision_curve needs at least one model")
    parts.append(pd.DataFrame({"threshold": base["threshold"], "model": "treat all",
                               "net_benefit": base["treat_all"]}))
    parts.append(pd.DataFrame({"threshold": base["threshold"], "model": "treat none",
                               "net_benefit": 0.0}))
    return pd.concat(parts, ignore_index=True)


# --------------------------------------------------------------------------------------------
# ROC curve points and a confidence band


def roc_curve_points(y_true, score) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Empirical ROC: ``(fpr, tpr, thresholds)``, from (0, 0) to (1, 1); positive when
    ``score >= threshold``."""
    y, s = _binary_inputs(y_true, score)
    s = s[:, 0]
    t = np.unique(s)[::-1]
    order = np.argsort(-s, kind="mergesort")
    ss, ys = s[order], y[order]
    idx = np.searchsorted(-ss, -t, side="right")  # rows with score >= t
    tp = np.concatenate([[0], np.cumsum(ys)])[idx]
    fp = idx - tp
    P, N = ys.sum(), ys.size - ys.sum()
    fpr = np.concatenate([[0.0], fp / N])
    tpr = np.concatenate([[0.0], tp / P])
    return fpr, tpr, np.concatenate([[np.inf], t])


def roc_band(y_true, score, ids=None, n_boot: int | None = None, seed: int = 0,
             level: float | None = None, grid: int = 101) -> pd.DataFrame:
    """Pointwise bootstrap band of sensitivity at fixed false-positive rates (patients
    resampled when ``ids`` are given). Columns ``fpr, tpr, tpr_low, tpr_high``."""
    level = _level(level)
    y, s = _binary_inputs(y_true, score)
    s = s[:, 0]
    fgrid = np.linspace(0.0, 1.0, grid)

    def tpr_at(w):
        order = np.argsort(-s, kind="mergesort")
        ys, wsort = y[order], w[:, order].astype(float)
        tp = np.cumsum(wsort * ys, axis=1)
        fp = np.cumsum(wsort * (1 - ys), axis=1)
        P, N = tp[:, -1:], fp[:, -1:]
        with np.errstate(invalid="ignore", divide="ignore"):
            tpr, fpr = tp / P, fp / N
        # step function: max tpr reached at fpr <= f (ties inside a score are walked row-wise,
        # a fine approximation for the band)
        out = np.empty((w.shape[0], grid))
        for i in range(w.shape[0]):
            j = np.searchsorted(fpr[i], fgrid, side="right") - 1
            out[i] = np.where(j >= 0, tpr[i][np.clip(j, 0, None)], 0.0)
        return out

    fpr0, tpr0, _ = roc_curve_points(y, s)
    j0 = np.searchsorted(fpr0, fgrid, side="right") - 1
    base = tpr0[np.clip(j0, 0, None)]
    reps = [tpr_at(w) for w in bootstrap_weights(y, ids, n_boot, seed, chunk=100)]
    reps = np.vstack(reps)
    a = 100 * (1 - level) / 2
    lo, hi = np.nanpercentile(reps, [a, 100 - a], axis=0)
    return pd.DataFrame({"fpr": fgrid, "tpr": base, "tpr_low": np.minimum(lo, base),
                         "tpr_high": np.maximum(hi, base)})


# --------------------------------------------------------------------------------------------
# logistic regression table (the paper's Table IV)


def vif(X) -> pd.Series:
    """Variance inflation factor of each column of ``X`` in a model with an intercept:
    ``1 / (1 - R^2_j)`` of column j regressed on the others (the diagonal of the inverse
    correlation matrix). A constant column raises an InputError."""
    df = pd.DataFrame(X)
    x = df.to_numpy(dtype=float)
    sd = x.std(axis=0)
    if (sd == 0).any():
        bad = [str(c) for c, v in zip(df.columns, sd) if v == 0]
        raise InputError(f"VIF: constant column(s) {bad}")
    if x.shape[1] == 1:
        return pd.Series([1.0], index=df.columns, name="vif")
    corr = np.corrcoef(x, rowvar=False)
    try:
        inv = np.linalg.inv(corr)
    except np.linalg.LinAlgError:
        return pd.Series(np.inf, index=df.columns, name="vif")
    return pd.Series(np.diag(inv), index=df.columns, name="vif")


def logistic_table(X: pd.DataFrame, y, standardize: bool | None = None,
                   level: float | None = None, on_separation: str = "raise") -> pd.DataFrame:
    """Multivariable logistic regression of ``y`` (0/1) on the columns of ``X`` (Table IV).

    Maximum likelihood (statsmodels ``Logit``, intercept added). ``standardize`` (default
    ``STATISTICS.logistic_standardize``): z-score each column first (mean / SD of the rows
    given), so beta and the odds ratio are per standard deviation. Wald confidence interval and
    p-value. Columns: ``feature, beta, se, odds_ratio, or_ci_low, or_ci_high, z, p_value, vif``;
    the first row is ``(intercept)`` (VIF NaN). ``attrs``: ``n, n_events, converged,
    separation, standardized, log_likelihood, pseudo_r2``.

    Perfect separation (the features predict every outcome, so the maximum-likelihood odds
    ratios are infinite): ``on_separation="raise"`` raises an InputError saying so; ``"flag"``
    returns the diverged fit with ``attrs["separation"] = True``.
    """
    import statsmodels.api as sm

    level = _level(level)
    if not isinstance(X, pd.DataFrame):
        X = pd.DataFrame(X)
    X = X.copy()
    X.columns = [str(c) for c in X.columns]
    yv = np.asarray(y).ravel()
    if yv.size != len(X):
        raise InputError(f"logistic_table: X has {len(X)} rows, y {yv.size}")
    if not np.isin(yv, (0, 1)).all():
        raise InputError("logistic_table: y must hold 0/1")
    bad = [c for c in X.columns if not np.isfinite(X[c].to_numpy(dtype=float)).all()]
    if bad:
        raise InputError(f"logistic_table: column(s) {bad} have NaN or infinite values")
    if len(X) <= X.shape[1] + 1:
        raise InputError(f"logistic_table: {len(X)} rows for {X.shape[1]} features + intercept")
    standardize = STATISTICS.logistic_standardize if standardize is None else standardize
    xs = X.astype(float)
    if standardize:
        sd = xs.std(ddof=1)
        if (sd == 0).any():
            raise InputError(f"logistic_table: constant column(s) {list(sd.index[sd == 0])}")
        xs = (xs - xs.mean()) / sd
    exog = sm.add_constant(xs, has_constant="add")
    separation = False
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            fit = sm.Logit(yv.astype(float), exog).fit(disp=0, maxiter=200)
        except Exception as exc:  # PerfectSeparationError in older statsmodels
            if "separation" in str(exc).lower():
                raise InputError("logistic_table: the outcome is perfectly separated by the "
                                 "features; odds ratios do not exist (maximum likelihood "
                                 "diverges)") from exc
            raise
    for w in caught:
        if "separation" in str(w.message).lower():
            separation = True
    converged = bool(fit.mle_retvals.get("converged", True))
    if (separation or not converged) and on_separation == "raise":
        what = "perfectly separated by" if separation else "not fitted (no convergence) from"
        raise InputError(f"logistic_table: the outcome is {what} the features "
                         f"{list(X.columns)}; maximum-likelihood odds ratios do not exist. "
                         "Use fewer features or a penalised model")
    z = _z(level)
    beta, se = fit.params.to_numpy(), fit.bse.to_numpy()
    v = vif(xs)
    with np.errstate(over="ignore"):
        out = pd.DataFrame({
            "feature": ["(intercept)"] + list(X.columns),
            "beta": beta, "se": se, "odds_ratio": np.exp(beta),
            "or_ci_low": np.exp(beta - z * se), "or_ci_high": np.exp(beta + z * se),
            "z": fit.tvalues.to_numpy(), "p_value": fit.pvalues.to_numpy(),
            "vif": np.r_[np.nan, v.to_numpy()],
        })
    out.attrs.update(n=int(yv.size), n_events=int(yv.sum()), converged=converged,
                     separation=separation, standardized=bool(standardize),
                     log_likelihood=float(fit.llf), pseudo_r2=float(fit.prsquared), level=level)
    return out
