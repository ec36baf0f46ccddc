"""Statistics of a classification study (see docs/statistics.md)."""

from __future__ import annotations

import numpy as np

__all__ = ["youden_threshold"]


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
