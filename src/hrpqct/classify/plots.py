"""Figures of a classification study (matplotlib ``Figure`` objects rendered by the Agg/SVG
canvases; pyplot is not used, so no display and no global backend change).

Each function returns a :class:`matplotlib.figure.Figure`; :func:`to_png` / :func:`to_svg`
turn one into bytes / text for the HTML report (and close it). Inputs are
:class:`~hrpqct.classify.results.ModelResult` / ``SelectionTrace`` or plain arrays.
"""

from __future__ import annotations

import io
import re
from collections import Counter
from typing import Mapping, Sequence

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from ..errors import InputError
from . import stats as S

__all__ = [
    "to_png", "to_svg", "roc_figure", "calibration_figure", "decision_curve_figure",
    "confusion_figure", "correlation_heatmap", "selection_figure", "feature_kind",
]

_DPI = 110


def to_png(fig: Figure, dpi: int = _DPI) -> bytes:
    """PNG bytes of ``fig``."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    return buf.getvalue()


def to_svg(fig: Figure) -> str:
    """Inline SVG text of ``fig`` (text as paths, no external references)."""
    buf = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "path"}):
        fig.savefig(buf, format="svg", bbox_inches="tight")
    text = buf.getvalue()
    return text[text.index("<svg"):]


def _fig(w=5.2, h=4.4, ncols=1) -> tuple[Figure, np.ndarray]:
    fig = Figure(figsize=(w * ncols, h))
    axes = np.atleast_1d(fig.subplots(1, ncols))
    return fig, axes


def _pos(result) -> np.ndarray:
    prob = np.asarray(result.y_prob, dtype=float)
    return prob[:, -1] if prob.ndim == 2 else prob


# --------------------------------------------------------------------------------------- ROC
def roc_figure(models: Sequence, band: bool = True, n_boot: int | None = 500, seed: int = 0,
               title: str = "", oracle=None) -> Figure:
    """ROC curves of binary models (positive = last class) with a pointwise bootstrap band
    (patients resampled) and the DeLong AUROC interval in the legend. A three-class model
    draws one one-vs-rest curve per class. ``oracle``: a ModelResult drawn dashed in grey."""
    fig, (ax,) = _fig()
    colors = matplotlib.colormaps["tab10"].colors
    ci = 0
    for m in models:
        if m.binary:
            curves = [(m.name, m.y_true, _pos(m))]
        else:
            curves = [(f"{m.name}: {c} vs rest", (m.y_true == k).astype(int), m.y_prob[:, k])
                      for k, c in enumerate(m.classes)]
        for label, y, s in curves:
            col = colors[ci % len(colors)]
            ci += 1
            fpr, tpr, _ = S.roc_curve_points(y, s)
            auc, lo, hi = S.auroc_ci(y, s)
            if band and n_boot:
                b = S.roc_band(y, s, ids=m.ids, n_boot=n_boot, seed=seed)
                ax.fill_between(b.fpr, b.tpr_low, b.tpr_high, color=col, alpha=0.12, lw=0)
            ax.step(fpr, tpr, where="post", color=col, lw=1.8,
                    label=f"{label}  AUROC {auc:.3f} ({lo:.3f}-{hi:.3f})")
    if oracle is not None:
        y, s = oracle.y_true, _pos(oracle)
        fpr, tpr, _ = S.roc_curve_points(y, s)
        ax.step(fpr, tpr, where="post", color="0.4", ls="--", lw=1.4,
                label=f"oracle (latent score)  AUROC {S.delong_auc(y, s)[0]:.3f}")
    ax.plot([0, 1], [0, 1], color="0.75", lw=1, ls=":")
    ax.set(xlim=(0, 1), ylim=(0, 1.01), xlabel="1 - specificity (false-positive rate)",
           ylabel="sensitivity (true-positive rate)", title=title or "ROC curves")
    ax.set_aspect("equal")
    ax.legend(loc="upper left", bbox_to_anchor=(0.0, -0.14), fontsize=7, frameon=False)
    if band and n_boot:
        ax.text(0.99, 0.01, "shaded: 95 % pointwise bootstrap band\n(patients resampled)",
                ha="right", va="bottom", fontsize=6, color="0.35", transform=ax.transAxes)
    return fig


# ------------------------------------------------------------------------------ calibration
def calibration_figure(models: Sequence, bins: int | None = None, title: str = "",
                       train: bool = False) -> Figure:
    """Calibration curves (observed fraction vs mean predicted probability per quantile bin,
    Wilson intervals) of binary models; the legend gives the Hosmer-Lemeshow p and Brier score.
    ``train``: use the models' training predictions (where the paper reports HL)."""
    fig, (ax,) = _fig()
    colors = matplotlib.colormaps["tab10"].colors
    drawn = 0
    for i, m in enumerate(models):
        if not m.binary:
            continue
        y, p = (m.train_y_true, m.train_y_prob) if train else (m.y_true, m.y_prob)
        if y is None or p is None:
            continue
        p = np.asarray(p, dtype=float)
        p = p[:, -1] if p.ndim == 2 else p
        cc = S.calibration_curve(y, p, bins=bins)
        try:
            hl = S.hosmer_lemeshow(y, p)
            hl_txt = f"HL p = {hl.p_value:.3f}"
        except InputError:
            hl_txt = "HL n/a"
        col = colors[i % len(colors)]
        yerr = np.clip(np.vstack([cc.observed - cc.ci_low, cc.ci_high - cc.observed]), 0, None)
        ax.errorbar(cc.mean_predicted, cc.observed, yerr=yerr, color=col,
                    marker="o", ms=4, lw=1.4, capsize=2,
                    label=f"{m.name}  {hl_txt}, Brier {S.brier_score(y, p):.3f}")
        drawn += 1
    ax.plot([0, 1], [0, 1], color="0.6", ls="--", lw=1, label="perfect calibration")
    ax.set(xlim=(0, 1), ylim=(-0.02, 1.02), xlabel="predicted probability",
           ylabel="observed fraction with osteoporosis",
           title=title or ("Calibration (training set)" if train else "Calibration (test set)"))
    ax.set_aspect("equal")
    ax.legend(loc="upper left", bbox_to_anchor=(0.0, -0.14), fontsize=7, frameon=False)
    if not drawn:
        ax.text(0.5, 0.5, "no binary model", ha="center", va="center", transform=ax.transAxes)
    return fig


# ---------------------------------------------------------------------------- decision curve
def decision_curve_figure(y_true, scores: Mapping[str, np.ndarray], thresholds=None,
                          title: str = "") -> Figure:
    """Net benefit against threshold probability for each model, treat-all and treat-none
    (Vickers & Elkin 2006), all on the same rows."""
    dc = S.decision_curve(y_true, dict(scores), thresholds)
    fig, (ax,) = _fig(6.0, 4.2)
    colors = matplotlib.colormaps["tab10"].colors
    for i, name in enumerate(scores):
        d = dc[dc.model == name]
        ax.plot(d.threshold, d.net_benefit, color=colors[i % len(colors)], lw=1.8, label=name)
    d = dc[dc.model == "treat all"]
    ax.plot(d.threshold, d.net_benefit, color="0.35", lw=1.2, ls="--", label="treat all")
    ax.axhline(0.0, color="0.1", lw=1.0, label="treat none")
    prev = float(np.mean(np.asarray(y_true) == 1))
    ax.set(xlim=(0, 1), ylim=(-0.05, max(0.05, prev * 1.1)), xlabel="threshold probability",
           ylabel="net benefit", title=title or "Decision curves")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7, frameon=False)
    return fig


# --------------------------------------------------------------------------- confusion matrix
def confusion_figure(cm, classes: Sequence[str], title: str = "") -> Figure:
    """Confusion matrix (rows: true, columns: predicted) with counts and row percentages."""
    cm = np.asarray(cm)
    k = cm.shape[0]
    fig, (ax,) = _fig(1.3 + 1.1 * k, 1.0 + 1.0 * k)
    row = cm.sum(axis=1, keepdims=True)
    frac = np.divide(cm, row, out=np.zeros_like(cm, dtype=float), where=row > 0)
    ax.imshow(frac, cmap="Blues", vmin=0, vmax=1)
    for i in range(k):
        for j in range(k):
            ax.text(j, i, f"{cm[i, j]}\n{100 * frac[i, j]:.0f} %", ha="center", va="center",
                    fontsize=8, color="white" if frac[i, j] > 0.6 else "black")
    short = [c.replace("no osteoporosis", "no OP").replace("osteoporosis", "OP") for c in classes]
    ax.set_xticks(range(k), short, fontsize=8)
    ax.set_yticks(range(k), short, fontsize=8)
    ax.set(xlabel="predicted", ylabel="true")
    ax.set_title(title or "Confusion matrix", fontsize=9)
    return fig


# ----------------------------------------------------------------- correlation heat-map (Fig 6)
def correlation_heatmap(matrix: pd.DataFrame, title: str = "") -> Figure:
    """Pearson correlation of the selected features (training rows), the paper's Fig. 6; the
    title gives the mean absolute off-diagonal correlation."""
    if matrix is None or matrix.shape[1] < 1:
        raise InputError("correlation heat-map needs a training matrix with selected features")
    corr = matrix.astype(float).corr().to_numpy()
    k = corr.shape[0]
    off = corr[~np.eye(k, dtype=bool)]
    mean_abs = float(np.nanmean(np.abs(off))) if off.size else float("nan")
    size = min(11.0, 3.0 + 0.45 * k)
    fig, (ax,) = _fig(size, size * 0.85)
    im = ax.imshow(corr, cmap="RdBu_r", vmin=-1, vmax=1)
    labels = [str(c) for c in matrix.columns]
    ax.set_xticks(range(k), labels, rotation=90, fontsize=6 if k > 12 else 7)
    ax.set_yticks(range(k), labels, fontsize=6 if k > 12 else 7)
    if k <= 15:
        for i in range(k):
            for j in range(k):
                ax.text(j, i, f"{corr[i, j]:.2f}", ha="center", va="center", fontsize=6,
                        color="white" if abs(corr[i, j]) > 0.6 else "black")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="Pearson r")
    ax.set_title(f"{title or 'Selected features'}: mean |r| = {mean_abs:.3f}", fontsize=9)
    return fig


# ------------------------------------------------------------- selected features (Fig. 5)
_CLASSES = {"firstorder": "First order", "glcm": "GLCM", "glrlm": "GLRLM", "glszm": "GLSZM",
            "ngtdm": "NGTDM", "gldm": "GLDM", "shape2D": "Shape", "shape": "Shape"}


def _filter_name(token: str) -> str:
    t = token.lower()
    if t.startswith("log-sigma") or t == "log":
        return "LoG"
    if t.startswith("wavelet"):
        return "Wavelet" + token[len("wavelet"):]
    if t.startswith("lbp"):
        return "LBP"
    return {"original": "Original", "square": "Square", "squareroot": "Square root",
            "logarithm": "Logarithm", "exponential": "Exponential",
            "gradient": "Gradient"}.get(t, token)


def feature_kind(name: str) -> tuple[str, str]:
    """``(filter, feature class)`` of a radiomics column such as ``MT_wavelet-H_glcm_Idmn`` or
    ``original_firstorder_Mean``; ``("non-radiomics", "non-radiomics")`` for other columns."""
    parts = str(name).split("_")
    for i, tok in enumerate(parts):
        if tok in _CLASSES and i >= 1:
            return _filter_name(parts[i - 1]), _CLASSES[tok]
    m = re.search(r"(firstorder|glcm|glrlm|glszm|ngtdm|gldm|shape2D)", str(name))
    if m:
        return "other", _CLASSES[m.group(1)]
    return "non-radiomics", "non-radiomics"


def selection_figure(traces: Mapping[str, object], title: str = "") -> Figure:
    """The paper's Fig. 5 for any number of models (e.g. one per region): (a) features left
    after each selection step, (b) selected features by filter (image type), (c) by feature
    class; bars stacked by model. ``traces``: name -> SelectionTrace."""
    traces = {k: v for k, v in traces.items() if getattr(v, "steps", None)}
    if not traces:
        raise InputError("selection figure needs at least one SelectionTrace with steps")
    fig, axes = _fig(4.4, 3.8, ncols=3)
    colors = matplotlib.colormaps["tab10"].colors
    # (a) features remaining per step (log scale: 939 -> a handful)
    for i, (name, tr) in enumerate(traces.items()):
        steps = [s for s, _ in tr.steps]
        counts = [len(f) for _, f in tr.steps]
        axes[0].plot(range(len(steps)), counts, marker="o", color=colors[i % 10], lw=1.4,
                     label=name)
        for x, c in enumerate(counts):
            if x == len(counts) - 1:
                axes[0].annotate(str(c), (x, c), fontsize=6, xytext=(3, 0),
                                 textcoords="offset points")
    longest = max(traces.values(), key=lambda t: len(t.steps))
    axes[0].set_xticks(range(len(longest.steps)), [s for s, _ in longest.steps], rotation=35,
                       ha="right", fontsize=7)
    axes[0].set_yscale("log")
    axes[0].set(ylabel="features remaining", title="(a) after each selection step")
    axes[0].legend(fontsize=6, frameon=False, ncol=2 if len(traces) > 6 else 1)
    # (b), (c) final selected features by filter / by class, stacked by model
    for ax, which, sub in ((axes[1], 0, "(b) by filter"), (axes[2], 1, "(c) by feature class")):
        per = {name: Counter(feature_kind(f)[which] for f in tr.selected)
               for name, tr in traces.items()}
        cats = sorted({c for cnt in per.values() for c in cnt},
                      key=lambda c: -sum(cnt.get(c, 0) for cnt in per.values()))
        bottom = np.zeros(len(cats))
        for i, (name, cnt) in enumerate(per.items()):
            vals = np.array([cnt.get(c, 0) for c in cats], dtype=float)
            ax.bar(range(len(cats)), vals, bottom=bottom, color=colors[i % 10], label=name)
            bottom += vals
        ax.set_xticks(range(len(cats)), cats, rotation=35, ha="right", fontsize=7)
        total = int(bottom.sum())
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set(ylabel="selected features", title=f"{sub} (total {total})")
    fig.suptitle(title or "Selected features", fontsize=10)
    fig.tight_layout()
    return fig
