"""A saved classifier applied to a new cohort: its predictions, and, where the cohort has labels,
an external validation (the model and its threshold fixed; nothing refitted).

``validation_result`` turns per-scan probabilities and labels into a :class:`ModelResult`
(rows = scans, ids = subjects), so the statistics of :mod:`hrpqct.classify.stats` and the
figures of :mod:`hrpqct.classify.plots` apply unchanged; ``write_validation_report`` writes one
self-contained HTML page: the model's notes, metrics with CIs per subject (a subject's scans
averaged), ROC, calibration, decision curve, confusion matrix, the distribution of the
probabilities and every subject's prediction. ``hrpqct study --classifier MODEL`` writes it.
"""

from __future__ import annotations

import datetime as _dt
import os
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from .. import __version__
from ..errors import InputError
from ..method import CLASSIFICATION
from . import plots as P
from . import stats as S
from .html import HtmlDocument, esc
from .report import _emit, _performance_table, model_metrics_row
from .results import ModelResult

__all__ = ["validation_result", "write_validation_report"]


def validation_result(model, subject_ids: Sequence[str], prob: np.ndarray,
                      y: Sequence[int] | None = None) -> ModelResult:
    """``prob``: (n_scans, n_classes) probabilities of ``model`` (a
    :class:`hrpqct.classify.model.SavedModel`); ``y``: the scans' label codes (None: unlabelled,
    all -1). Level ``"image"`` with subject ids, so :meth:`ModelResult.patient_view` averages a
    subject's scans."""
    prob = np.asarray(prob, dtype=float)
    ids = np.asarray([str(s) for s in subject_ids])
    if prob.ndim != 2 or prob.shape != (len(ids), len(model.classes)):
        raise InputError(f"{model.folder}: expected ({len(ids)}, {len(model.classes)}) "
                         f"probabilities, got {prob.shape}")
    codes = np.full(len(ids), -1) if y is None else np.asarray(y, dtype=int)
    main = model.metadata.get("main", {})
    return ModelResult(name=str(main.get("name") or model.metadata.get("title") or "model"),
                       level="image", feature_group=str(main.get("feature_group", "")),
                       classifier=str(main.get("classifier", "")), classes=model.classes,
                       y_true=codes, y_prob=prob, ids=ids, threshold=model.threshold)


def _histogram(view: ModelResult, labelled: bool):
    """Probability of the last class per subject, stacked by true class when labelled."""
    fig, (ax,) = P._fig(6.0, 3.6)
    p = view.y_prob[:, -1]
    bins = np.linspace(0.0, 1.0, 21)
    if labelled:
        ax.hist([p[view.y_true == k] for k in range(len(view.classes))], bins=bins, stacked=True,
                label=[f"true: {c}" for c in view.classes])
        ax.legend(fontsize=7, frameon=False)
    else:
        ax.hist(p, bins=bins, color="0.4")
    if view.binary and view.threshold is not None:
        ax.axvline(view.threshold, color="k", ls="--", lw=1.0)
        ax.text(view.threshold, ax.get_ylim()[1] * 0.95, " threshold", fontsize=7, va="top")
    ax.set(xlim=(0, 1), xlabel=f"P({view.classes[-1]})", ylabel="subjects",
           title="Predicted probabilities")
    return fig


def write_validation_report(model, result: ModelResult, path: str | os.PathLike, *,
                            label_rule: str = "", title: str = "HR-pQCT study",
                            figure_format: str = "png", roc_band_resamples: int = 500,
                            seed: int = 0) -> Path:
    """Write the HTML page of ``model`` applied to the scans of ``result`` (from
    :func:`validation_result`); metrics only where there are labels. Returns the path."""
    target = Path(path)
    if not target.parent.is_dir():
        raise InputError(f"{target}: folder {target.parent} does not exist")
    view = result.patient_view()
    labelled = bool(len(view.y_true)) and bool((view.y_true >= 0).all())
    both = labelled and np.unique(view.y_true).size == len(view.classes)
    meta = model.metadata
    level = int(round(100 * CLASSIFICATION.ci_level))
    doc = HtmlDocument(f"{title}: {result.name} applied to {len(view.ids)} subjects",
                       subtitle=f"hrpqct {__version__} · written "
                                f"{_dt.datetime.now(_dt.timezone.utc):%Y-%m-%d %H:%M} UTC")
    if not meta.get("clinical_use", False):
        doc.header('<div class="note danger">This classifier is not marked for clinical use '
                   "(see its notes below): do not base any diagnostic decision on these "
                   "predictions.</div>")
    for n in meta.get("notes", []):
        doc.header(f'<div class="note warning">{esc(n)}</div>')
    thr = "arg-max" if not view.binary else (
        f"{view.threshold:.3f} (fixed when the model was trained)" if view.threshold is not None
        else "0.5")
    facts = [("model", f"{model.folder} ({meta.get('title', '')})"),
             ("trained with", str(meta.get("label_rule", "n/a"))),
             ("classes", ", ".join(view.classes)), ("threshold", thr),
             ("scans / subjects", f"{len(result.ids)} / {len(view.ids)} (a subject's scans "
                                  "averaged)"),
             ("labels here", label_rule or "none: predictions only")]
    doc.header('<dl class="facts">' + "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>"
                                             for k, v in facts) + "</dl>")
    fmt = figure_format
    doc.section("Performance on this cohort")
    if not labelled:
        doc.paragraph("The cohort has no labels (no T-score or label column), so there is "
                      "nothing to validate against: only the predictions are shown.")
    elif view.binary and not both:
        doc.note("All labelled subjects are of one class: AUROC, sensitivity and specificity "
                 "are undefined; only the confusion matrix is shown.", "warning")
    elif view.binary:
        row = model_metrics_row(view, seed=seed)
        df = pd.DataFrame([row])
        f, b = _performance_table(df, "", pct=False, group=False)
        f["Brier"] = [f"{row['brier']:.3f}"]
        f["n subjects"] = [str(row["n_patients"])]
        doc.table(f, caption="The saved model on this cohort, per subject",
                  note=f"{level} % CIs: Wilson (proportions), DeLong (AUROC), subject "
                  "bootstrap (F1). The threshold was chosen on the training data and is not "
                  "re-tuned here: this is an external validation.", text_columns=["Model"])
        items: list = []
        _emit(doc, P.roc_figure([view], n_boot=roc_band_resamples or None, seed=seed,
                                title="ROC"), "ROC curve with the DeLong interval", fmt, items)
        _emit(doc, P.calibration_figure([view], title="Calibration"),
              "Observed fraction against predicted probability", fmt, items)
        _emit(doc, P.decision_curve_figure(view.y_true, {view.name: view.y_prob[:, -1]},
                                           title="Decision curve"),
              "Net benefit against threshold probability", fmt, items)
        doc.grid(items)
    else:
        t = S.metrics_table(view, seed=seed)
        f = pd.DataFrame({"metric": t["metric"], "class": t["class"],
                          f"value ({level} % CI)": [
                              f"{v:.3f} ({lo:.3f}, {hi:.3f})" if np.isfinite(v) else "n/a"
                              for v, lo, hi in zip(t["value"], t["ci_low"], t["ci_high"])],
                          "interval": t["method"].astype(str)})
        doc.table(f, caption="The saved model on this cohort, per subject (one-vs-rest per "
                  "class, macro averages, arg-max accuracy)",
                  text_columns=["metric", "class", "interval"])
    pred = S.predict_labels(view.y_prob, view.threshold if view.binary else None)
    if labelled:
        cm = S.confusion_matrix(view.y_true, pred, len(view.classes))
        _emit(doc, P.confusion_figure(cm, view.classes, title="Confusion matrix (subjects)"),
              "Rows: true class; columns: predicted", fmt)
    _emit(doc, _histogram(view, labelled), "Distribution of the predicted probabilities", fmt)

    doc.section("Predictions")
    rows = {"subject": view.ids,
            f"P({view.classes[-1]})": [f"{p:.3f}" for p in view.y_prob[:, -1]],
            "predicted": [view.classes[int(k)] for k in pred]}
    if labelled:
        rows["true"] = [view.classes[int(k)] for k in view.y_true]
    doc.table(pd.DataFrame(rows), caption="Every subject (mean over its scans)",
              text_columns=["subject", "predicted"] + (["true"] if labelled else []))
    return doc.write(target)
