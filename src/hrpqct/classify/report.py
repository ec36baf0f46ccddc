"""The HTML study report: the paper's Tables II-V and figures, for the user's own study.

:func:`write_study_report` turns a :class:`~hrpqct.classify.results.StudyResult` into one
self-contained HTML file (inline CSS, base64 PNG or inline SVG figures; readable offline).
:func:`study_tables` gives the same tables as numeric DataFrames (for CSV export).

Layout (after the paper, IEEE J-BHI 2025, see docs/statistics.md):

* Table II  image-level models: region x classifier, test-set accuracy, sensitivity,
  specificity, PPV, NPV, F1, AUROC with 95 % CIs, grouped-CV AUROC; best per region in bold.
* Table III the patient view of the image-level models (mean probability per patient).
* Table IV  logistic regression of the patient-level models: beta, OR (95 % CI), p, VIF.
* Table V   patient-level models (+ oracle on synthetic cohorts) and paired DeLong tests.
* three-class models: per-class one-vs-rest metrics, macro averages, confusion matrix.
* figures: ROC with CI bands, calibration (HL p, Brier), decision curves, confusion
  matrices, correlation heat-maps of the selected features (Fig. 6), selected features by
  step, filter and feature class (Fig. 5).
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from .. import __version__
from ..errors import InputError
from ..method import CLASSIFICATION, STATISTICS
from ..progress import ProgressCallback, report as _progress
from ..regions import RADIOMICS_REGIONS, region as _region
from . import plots as P
from . import stats as S
from .html import HtmlDocument, esc
from .results import ModelResult, StudyResult

__all__ = ["write_study_report", "study_tables", "model_metrics_row", "CLASSIFIER_LABELS"]

#: The paper's abbreviations of the classifiers.
CLASSIFIER_LABELS = {"logreg": "LR", "svm": "SVM", "knn": "KNN", "naive_bayes": "NB",
                     "random_forest": "RF", "xgboost": "XGBoost", "radscore": "Radscore",
                     "oracle": "oracle"}
_METRICS = ("accuracy", "sensitivity", "specificity", "ppv", "npv", "f1", "auroc")
_HEAD = {"accuracy": "Acc.", "sensitivity": "Sen.", "specificity": "Spe.", "ppv": "PPV",
         "npv": "NPV", "f1": "F1", "auroc": "AUROC"}
_SYNTHETIC_NOTE = ("These models were trained on synthetic phantom data (a simulated cohort), "
                   "not on patients. They demonstrate the software and are NOT clinical models: "
                   "do not use their predictions for any diagnostic decision.")


# ------------------------------------------------------------------------------ numbers
def _group_name(code: str) -> str:
    try:
        return _region(code).name
    except (KeyError, ValueError, AttributeError):
        return str(code)


def _clf(key: str) -> str:
    return CLASSIFIER_LABELS.get(key, key)


def _pos(m: ModelResult) -> np.ndarray:
    p = np.asarray(m.y_prob, dtype=float)
    return p[:, -1] if p.ndim == 2 else p


def _hl_train(m: ModelResult) -> tuple[float, str]:
    """Hosmer-Lemeshow p on the training predictions (the paper), else on the test set."""
    for which, (y, p) in (("training", (m.train_y_true, m.train_y_prob)),
                          ("test", (m.y_true, m.y_prob))):
        if y is None or p is None:
            continue
        p = np.asarray(p, dtype=float)
        p = p[:, -1] if p.ndim == 2 else p
        try:
            return S.hosmer_lemeshow(y, p).p_value, which
        except InputError:
            continue
    return float("nan"), ""


def model_metrics_row(m: ModelResult, bootstrap: int = 0, seed: int = 0) -> dict:
    """One binary model as a flat dict: ``<metric>``, ``<metric>_low``, ``<metric>_high`` for the
    seven metrics, plus ``brier``, ``hl_p``, ``hl_on``, ``threshold``, ``n_rows``,
    ``n_patients``, ``cv_auroc_mean``/``sd``, ``auroc_method``."""
    t = S.metrics_table(m, bootstrap=bootstrap, seed=seed).set_index("metric")
    row = {"model": m.name, "level": m.level, "feature_group": m.feature_group,
           "classifier": m.classifier}
    for k in _METRICS:
        row[k] = t.loc[k, "value"]
        row[f"{k}_low"] = t.loc[k, "ci_low"]
        row[f"{k}_high"] = t.loc[k, "ci_high"]
    row["auroc_method"] = t.loc["auroc", "method"]
    row["brier"] = S.brier_score(m.y_true, _pos(m))
    row["hl_p"], row["hl_on"] = _hl_train(m)
    row["threshold"] = t.attrs["threshold"]
    row["n_rows"] = int(len(m.y_true))
    row["n_patients"] = int(np.unique(m.ids).size)
    row["cv_auroc_mean"], row["cv_auroc_sd"] = m.cv_auroc_mean, m.cv_auroc_sd
    return row


def _order_key(m: ModelResult):
    g = m.feature_group
    gi = RADIOMICS_REGIONS.index(g) if g in RADIOMICS_REGIONS else len(RADIOMICS_REGIONS)
    ci = (CLASSIFICATION.classifiers.index(m.classifier)
          if m.classifier in CLASSIFICATION.classifiers else 99)
    return (gi, str(g), ci, m.classifier)


def _image_models(study) -> list[ModelResult]:
    return sorted([m for m in study.models if m.level == "image" and m.binary], key=_order_key)


def _patient_models(study) -> list[ModelResult]:
    return [m for m in study.models if m.level == "patient" and m.binary]


def _multiclass_models(study) -> list[ModelResult]:
    return [m for m in study.models if not m.binary]


def _comparison_pairs(study) -> list[tuple[str, str]]:
    if study.comparisons:
        return list(study.comparisons)
    pm = _patient_models(study)
    base = next((m for m in pm if "non-radiomics" in m.feature_group.lower()),
                pm[0] if pm else None)
    return [(m.name, base.name) for m in pm if base is not None and m is not base]


def _check_comparisons(study) -> None:
    names = {m.name for m in study.models} | ({study.oracle.name} if study.oracle else set())
    for a, b in study.comparisons:
        for n in (a, b):
            if n not in names:
                raise InputError(f"study {study.title!r}: comparison ({a!r}, {b!r}) names "
                                 f"{n!r}, which is not a model of the study")


def study_tables(study: StudyResult, bootstrap: int = 0, seed: int | None = None,
                 progress: ProgressCallback | None = None) -> dict[str, pd.DataFrame]:
    """Numeric tables of the report: ``"II"`` (image-level), ``"III"`` (their patient view),
    ``"IV"`` (logistic regression), ``"V"`` (patient-level), ``"V_delong"`` (paired DeLong
    tests), ``"multiclass"`` (per-class metrics of three-class models)."""
    seed = study.seed if seed is None else seed
    _check_comparisons(study)
    img, pat, multi = _image_models(study), _patient_models(study), _multiclass_models(study)
    total = 2 * len(img) + len(pat) + len(multi) + 1
    done = 0

    def tick():
        nonlocal done
        done += 1
        _progress(progress, done, total)

    rows2, rows3 = [], []
    for m in img:
        rows2.append(model_metrics_row(m, bootstrap, seed))
        tick()
        rows3.append(model_metrics_row(m.patient_view(), bootstrap, seed))
        tick()
    rows5 = []
    for m in pat:
        rows5.append(model_metrics_row(m, bootstrap, seed))
        tick()
    if study.oracle is not None and study.oracle.binary:
        r = model_metrics_row(study.oracle, bootstrap, seed)
        r["model"] = study.oracle.name
        rows5.append(r)
    t4 = []
    for m in pat:
        lt = m.logistic_table
        if lt is None or len(lt) == 0:
            continue
        d = lt.copy()
        d.insert(0, "model", m.name)
        t4.append(d)
    comps = []
    by_name = {m.name: m for m in study.models}
    if study.oracle is not None:
        by_name.setdefault(study.oracle.name, study.oracle)
    for a, b in _comparison_pairs(study):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            comps.append(S.compare_models(by_name[a], by_name[b]))
    tick()
    mc = []
    for m in multi:
        d = S.metrics_table(m, bootstrap=bootstrap, seed=seed)
        d.insert(0, "model", m.name)
        mc.append(d)
        tick()
    return {"II": pd.DataFrame(rows2), "III": pd.DataFrame(rows3),
            "IV": pd.concat(t4, ignore_index=True) if t4 else pd.DataFrame(),
            "V": pd.DataFrame(rows5), "V_delong": pd.DataFrame(comps),
            "multiclass": pd.concat(mc, ignore_index=True) if mc else pd.DataFrame()}


# ----------------------------------------------------------------------------- formatting
def _num(v, nd=3) -> str:
    return "" if v is None or not np.isfinite(v) else f"{v:.{nd}f}"


def _ci(v, lo, hi, pct=False, nd=3, cell=False):
    """``"0.850 (0.812-0.888)"``; ``cell=True``: ``("0.850", "0.812-0.888")`` for a table."""
    if v is None or not np.isfinite(v):
        return ("n/a", "") if cell else "n/a"
    if pct:
        v, lo, hi, nd = 100 * v, 100 * lo, 100 * hi, 1
    main = f"{v:.{nd}f}"
    ci = f"{lo:.{nd}f}-{hi:.{nd}f}" if np.isfinite(lo) and np.isfinite(hi) else ""
    if cell:
        return main, ci
    return main + (f" ({ci})" if ci else "")


def _p(p) -> str:
    if p is None or not np.isfinite(p):
        return "n/a"
    return "<0.001*" if p < 0.001 else f"{p:.3f}" + ("*" if p < 0.05 else "")


def _performance_table(df: pd.DataFrame, group_label: str, pct: bool, group=True):
    """Formatted Table II / III / V and the bold mask (best per group and metric)."""
    out = pd.DataFrame()
    if group:
        out[group_label] = [_group_name(g) for g in df["feature_group"]]
        out["Model"] = [_clf(c) for c in df["classifier"]]
    else:
        out["Model"] = list(df["model"])
    for k in _METRICS:
        out[_HEAD[k] + (" %" if pct and k not in ("f1", "auroc") else "")] = [
            _ci(r[k], r[f"{k}_low"], r[f"{k}_high"], pct=pct and k not in ("f1", "auroc"),
                cell=True) for _, r in df.iterrows()]
    bold = pd.DataFrame(False, index=out.index, columns=out.columns)
    keys = df["feature_group"] if group else pd.Series(0, index=df.index)
    for k in _METRICS:
        col = [c for c in out.columns if c.startswith(_HEAD[k])][0]
        vals = df[k].astype(float)
        for _, idx in df.groupby(keys.to_numpy()).groups.items():
            sub = vals.loc[idx]
            if sub.notna().any() and len(sub) > 1:
                best = sub == sub.max()
                bold.loc[best[best].index, col] = True
    return out, bold


# --------------------------------------------------------------------------------- figures
def _emit(doc: HtmlDocument, fig, caption: str, fmt: str, items: list | None = None):
    if fmt == "svg":
        entry = (None, caption, P.to_svg(fig))
    else:
        entry = (P.to_png(fig), caption)
    if items is not None:
        items.append(entry)
    else:
        doc.grid([entry])


def _best_per_region(img: list[ModelResult], rows: pd.DataFrame) -> list[ModelResult]:
    """Per region the classifier with the best grouped-CV AUROC (training data); test AUROC
    only when CV is missing."""
    best = {}
    for m, (_, r) in zip(img, rows.iterrows()):
        score = m.cv_auroc_mean if np.isfinite(m.cv_auroc_mean) else r["auroc"]
        if m.feature_group not in best or score > best[m.feature_group][0]:
            best[m.feature_group] = (score, m)
    return [v[1] for v in best.values()]


def _common_patients(models: Sequence[ModelResult]):
    """y and positive-class scores of several patient-level models on their shared patients."""
    frames = []
    for m in models:
        v = m.patient_view()
        frames.append(pd.DataFrame({"y": v.y_true, m.name: _pos(v)}, index=pd.Index(v.ids)))
    common = frames[0].index
    for f in frames[1:]:
        common = common.intersection(f.index)
    y = frames[0].loc[common, "y"].to_numpy()
    return y, {m.name: f.loc[common, m.name].to_numpy() for m, f in zip(models, frames)}


# ---------------------------------------------------------------------------------- report
def write_study_report(study: StudyResult, path: str | os.PathLike, *, bootstrap: int = 0,
                       seed: int | None = None, figure_format: str = "png",
                       roc_band_resamples: int = 500,
                       progress: ProgressCallback | None = None) -> Path:
    """Write the study report to ``path`` (one self-contained ``.html`` file, atomic write).

    ``bootstrap``: 0 = Wilson / DeLong intervals (F1 by the patient bootstrap); B > 0 = every
    interval from a B-resample patient-grouped bootstrap. ``figure_format``: ``"png"`` (base64)
    or ``"svg"`` (inline). ``roc_band_resamples``: resamples of the ROC bands (0 = no bands).
    Returns the path written.
    """
    if figure_format not in ("png", "svg"):
        raise InputError(f"figure_format must be 'png' or 'svg', got {figure_format!r}")
    target = Path(path)
    if not target.parent.is_dir():
        raise InputError(f"{target}: folder {target.parent} does not exist")
    if not study.models:
        raise InputError(f"study {study.title!r} has no models to report")
    seed = study.seed if seed is None else seed
    _check_comparisons(study)
    tables = study_tables(study, bootstrap=bootstrap, seed=seed)
    _progress(progress, 1, 4)
    img, pat, multi = _image_models(study), _patient_models(study), _multiclass_models(study)
    fmt = figure_format
    nb = roc_band_resamples or None
    level = int(round(100 * CLASSIFICATION.ci_level))

    doc = HtmlDocument(f"{study.title}: classification study report",
                       subtitle=f"hrpqct {__version__} · written "
                                f"{_dt.datetime.now(_dt.timezone.utc):%Y-%m-%d %H:%M} UTC")
    synthetic = bool(getattr(study, "synthetic", False))
    if synthetic:
        doc.header(f'<div class="note danger">{esc(_SYNTHETIC_NOTE)}</div>')
    facts = [("label", study.label_rule),
             ("patients", f"{study.n_patients_train} training / {study.n_patients_test} test "
                          "(split by patient; the test set is used once)"),
             ("radiomics preset", study.preset or "n/a"), ("seed", str(study.seed)),
             ("models", f"{len(img)} image-level, {len(pat)} patient-level binary, "
                        f"{len(multi)} with three or more classes"),
             ("confidence intervals",
              f"{level} %: " + (f"patient-grouped bootstrap, {bootstrap} resamples"
                                if bootstrap else "Wilson (proportions), DeLong (AUROC), "
                                "patient-grouped bootstrap (F1)"))]
    doc.header('<dl class="facts">' + "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>"
                                             for k, v in facts) + "</dl>")
    for n in study.notes:
        doc.header(f'<div class="note warning">{esc(n)}</div>')

    # --- summary
    doc.section("Summary")
    t5 = tables["V"]
    if len(t5):
        real = t5[t5["model"] != (study.oracle.name if study.oracle is not None else None)]
        if len(real):
            b = real.loc[real["auroc"].idxmax()]
            doc.paragraph(f"Best patient-level model on the test set: {b['model']} with AUROC "
                          f"{_ci(b['auroc'], b['auroc_low'], b['auroc_high'])}, accuracy "
                          f"{_ci(b['accuracy'], b['accuracy_low'], b['accuracy_high'])}.")
        if study.oracle is not None:
            o = t5[t5["model"] == study.oracle.name]
            if len(o):
                doc.paragraph(f"Oracle (the synthetic cohort's own latent health score on the "
                              f"same test patients, the best any model can do there): AUROC "
                              f"{_num(o['auroc'].iloc[0])}.")
    t2 = tables["II"]
    if len(t2):
        b = t2.loc[t2["auroc"].idxmax()]
        doc.paragraph(f"Best image-level model: {_group_name(b['feature_group'])} / "
                      f"{_clf(b['classifier'])}, AUROC "
                      f"{_ci(b['auroc'], b['auroc_low'], b['auroc_high'])} over {b['n_rows']} "
                      f"test images of {b['n_patients']} patients.")

    ci_note = (f"Values with {level} % CIs. Proportions: Wilson score interval on the test rows "
               "(image rows of a patient are not independent, so these intervals are "
               "optimistic for image-level models; ask for the patient bootstrap with "
               "bootstrap > 0). AUROC: DeLong. F1: patient-grouped bootstrap. Decision "
               "threshold: Youden index chosen on training data only. Bold: best per group.")
    if bootstrap:
        ci_note = (f"Values with {level} % CIs from a {bootstrap}-resample bootstrap of patients "
                   "(stratified by class). Decision threshold: Youden index on training data. "
                   "Bold: best per group.")

    # --- Table II
    if len(t2):
        doc.section("Table II. Image-level models")
        f2, b2 = _performance_table(t2, "Region", pct=True)
        f2["CV AUROC"] = [f"{r.cv_auroc_mean:.3f} ± {r.cv_auroc_sd:.3f}"
                          if np.isfinite(r.cv_auroc_mean) else "n/a" for r in t2.itertuples()]
        f2["threshold"] = [_num(v) for v in t2["threshold"]]
        b2 = b2.reindex(columns=f2.columns, fill_value=False)
        doc.table(f2, caption="Classification performance per region and classifier on the "
                  "held-out test images", note=ci_note + " CV AUROC: grouped 5-fold "
                  "cross-validation on the training patients (mean ± SD).",
                  bold=b2, group_column="Region", text_columns=["Model"])
    # --- Table III
    t3 = tables["III"]
    if len(t3):
        doc.section("Table III. Patient view of the image-level models")
        f3, b3 = _performance_table(t3, "Region", pct=True)
        doc.table(f3, caption="Image-level predictions averaged per patient (mean probability), "
                  "at the image-level model's threshold", note=ci_note, bold=b3,
                  group_column="Region", text_columns=["Model"])
    # --- Table IV
    t4 = tables["IV"]
    if len(t4):
        doc.section("Table IV. Logistic regression of the patient-level models")
        rows = []
        for r in t4.itertuples():
            if r.feature == "(intercept)":
                continue
            rows.append({"Model": r.model, "Feature": r.feature, "β": _num(r.beta),
                         f"OR ({level} % CI)": f"{r.odds_ratio:.3f} ({r.or_ci_low:.3f}, "
                                               f"{r.or_ci_high:.3f})",
                         "p": _p(r.p_value), "VIF": _num(r.vif)})
        std = any(bool(getattr(m.logistic_table, "attrs", {}).get("standardized", False))
                  for m in pat if m.logistic_table is not None)
        hl = "; ".join(f"{m.name}: HL p = {_num(_hl_train(m)[0])} ({_hl_train(m)[1]})"
                       for m in pat if m.logistic_table is not None)
        doc.table(pd.DataFrame(rows), caption="Regression coefficients (β), odds ratios with "
                  "Wald CIs, p-values and variance inflation factors of the selected variables",
                  note=("Features z-scored on the training patients (β and OR per SD). "
                        if std else "") + "* p < 0.05. Hosmer-Lemeshow: " + hl + ".",
                  group_column="Model", text_columns=["Feature"])
    # --- Table V
    if len(t5):
        doc.section("Table V. Patient-level models")
        f5, b5 = _performance_table(t5, "", pct=False, group=False)
        f5["Brier"] = [_num(v) for v in t5["brier"]]
        f5["HL p"] = [f"{_num(p)} ({on})" if on else "n/a" for p, on in zip(t5["hl_p"],
                                                                            t5["hl_on"])]
        if study.oracle is not None:
            oa = t5.loc[t5["model"] == study.oracle.name, "auroc"]
            if len(oa):
                f5["AUROC − oracle"] = [_num(v - oa.iloc[0]) for v in t5["auroc"]]
        b5 = b5.reindex(columns=f5.columns, fill_value=False)
        if study.oracle is not None:
            b5.loc[t5["model"] == study.oracle.name, :] = False
        doc.table(f5, caption="Classification performance of the patient-level models on the "
                  "held-out test patients", note=ci_note.replace("Bold: best per group.",
                  "Bold: best model.") + " HL: Hosmer-Lemeshow p on the training set (test "
                  "when no training predictions were kept).", text_columns=["Model"],
                  bold=b5)
        dl = tables["V_delong"]
        if len(dl):
            rows = [{"Model A": r.model_a, "Model B": r.model_b, "patients": r.n_patients,
                     "AUROC A": _num(r.auc_a), "AUROC B": _num(r.auc_b),
                     "difference": _num(r.difference), "SE": _num(r.se), "z": _num(r.z, 2),
                     "p (DeLong)": _p(r.p_value)} for r in dl.itertuples()]
            doc.table(pd.DataFrame(rows), caption="Paired DeLong tests of AUROC on the same "
                      "test patients", note="Two-sided; image-level models enter through their "
                      "patient view. * p < 0.05.", text_columns=["Model A", "Model B"])
    # --- three classes
    mc = tables["multiclass"]
    if len(mc):
        doc.section("Three-class models")
        for m in multi:
            d = mc[mc["model"] == m.name]
            doc.section(m.name, level=3)
            rows = []
            for cls in [*m.classes, "macro"]:
                sub = d[d["class"] == cls].set_index("metric")
                row = {"Class": cls}
                for k in ("auroc", "sensitivity", "specificity", "ppv", "f1"):
                    if k in sub.index:
                        r = sub.loc[k]
                        row[_HEAD[k]] = _ci(r.value, r.ci_low, r.ci_high, cell=True)
                rows.append(row)
            acc = d[d["metric"] == "accuracy"].iloc[0]
            doc.table(pd.DataFrame(rows), caption="One-vs-rest metrics per class and macro "
                      "averages", note=f"Accuracy {_ci(acc.value, acc.ci_low, acc.ci_high)}. "
                      "Predicted class: highest probability. AUROC one-vs-rest with DeLong "
                      "CI; sensitivity / specificity / PPV with Wilson CI; F1 and macro "
                      "averages by the patient bootstrap.", text_columns=["Class"])
            cm = S.confusion_matrix(m.y_true, S.predict_labels(m.y_prob), len(m.classes))
            items = []
            _emit(doc, P.confusion_figure(cm, m.classes, "Confusion matrix"),
                  f"{m.name}: confusion matrix (rows true, columns predicted)", fmt, items)
            _emit(doc, P.roc_figure([m], band=False, title="One-vs-rest ROC"),
                  f"{m.name}: one-vs-rest ROC curves", fmt, items)
            doc.grid(items)
    _progress(progress, 2, 4)

    # --- figures
    doc.section("ROC curves")
    items = []
    if pat:
        _emit(doc, P.roc_figure(pat, n_boot=nb, seed=seed, oracle=study.oracle,
                                title="Patient-level models"),
              "Patient-level models on the test patients; shaded: pointwise bootstrap band "
              "(patients resampled); legend: AUROC with DeLong CI", fmt, items)
    if img:
        best = _best_per_region(img, t2)
        _emit(doc, P.roc_figure(best, n_boot=nb, seed=seed,
                                title="Image-level, best classifier per region"),
              "Image-level models, per region the classifier with the best cross-validated "
              "AUROC; band from a patient-grouped bootstrap", fmt, items)
        views = [m.patient_view() for m in best]
        _emit(doc, P.roc_figure(views, n_boot=nb, seed=seed,
                                title="Patient view of the image-level models"),
              "The same models, mean probability per patient", fmt, items)
    doc.grid(items)

    if pat:
        doc.section("Calibration")
        items = []
        if any(m.train_y_true is not None for m in pat):
            _emit(doc, P.calibration_figure(pat, train=True), "Training patients "
                  "(where the paper reports Hosmer-Lemeshow); bars: Wilson CI", fmt, items)
        _emit(doc, P.calibration_figure(pat), "Test patients; bars: Wilson CI", fmt, items)
        doc.grid(items)
        doc.section("Decision curves")
        y, scores = _common_patients(pat)
        if len(y) and 0 < y.sum() < len(y):
            _emit(doc, P.decision_curve_figure(y, scores), "Net benefit of treating the "
                  f"patients a model calls positive at each threshold probability ({len(y)} "
                  "test patients), against treat-all and treat-none", fmt)

    doc.section("Confusion matrices")
    items = []
    for m in pat + (_best_per_region(img, t2) if img else []):
        cm = S.confusion_matrix(m.y_true, S.predict_labels(m.y_prob, m.threshold), 2)
        what = "patients" if m.level != "image" else "test images"
        _emit(doc, P.confusion_figure(cm, m.classes, m.name), f"{m.name} ({what}, threshold "
              f"{_num(m.threshold if m.threshold is not None else STATISTICS.default_threshold)})",
              fmt, items)
    doc.grid(items)
    _progress(progress, 3, 4)

    doc.section("Selected features")
    region_traces = {}
    for m in img:
        region_traces.setdefault(m.feature_group, m.selection)
    if any(t.steps for t in region_traces.values()):
        _emit(doc, P.selection_figure(region_traces, "Image-level models: selected features "
                                      "per region"),
              "(a) features left after each selection step (fitted on training data only), "
              "(b) the selected features by filter (image type) and (c) by feature class, "
              "stacked by region (the paper's Fig. 5)", fmt)
    pat_traces = {m.feature_group: m.selection for m in pat if m.selection.steps}
    if pat_traces:
        _emit(doc, P.selection_figure(pat_traces, "Patient-level models: selected features"),
              "Selection steps and selected features of the patient-level models", fmt)
    heat_items, seen = [], set()
    for name, tr in [*((_group_name(g), t) for g, t in region_traces.items()),
                     *((m.name, m.selection) for m in pat)]:
        tm = tr.train_matrix
        if tm is None or tm.shape[1] < 2 or id(tr) in seen:
            continue
        seen.add(id(tr))
        _emit(doc, P.correlation_heatmap(tm, name), f"{name}: Pearson correlation of the "
              "selected features on the training rows (the paper's Fig. 6)", fmt, heat_items)
    if heat_items:
        doc.section("Correlation of the selected features", level=3)
        doc.grid(heat_items)
    feats = []
    for name, tr in [*((_group_name(g), t) for g, t in region_traces.items()),
                     *((m.name, m.selection) for m in pat)]:
        for f in tr.selected:
            flt, cls = P.feature_kind(f)
            coef = tr.coefficients.get(f)
            feats.append({"Model / region": name, "Feature": f, "Filter": flt, "Class": cls,
                          "Coefficient": _num(coef) if coef is not None else ""})
    if feats:
        doc.section("Selected feature list", level=3)
        doc.table(pd.DataFrame(feats), caption="Finally selected features",
                  group_column="Model / region", text_columns=["Feature", "Filter", "Class"])

    doc.section("Methods")
    doc.paragraph(
        "Proportions (accuracy, sensitivity, specificity, PPV, NPV) carry Wilson score "
        "intervals; AUROC the DeLong interval (DeLong et al. 1988, mid-rank algorithm of Sun & "
        "Xu 2014); F1 and, on request, every metric a percentile bootstrap that resamples "
        "patients within each class. Two models are compared with the paired DeLong test on "
        "the test patients they share. Calibration: Hosmer-Lemeshow test over deciles of "
        "predicted risk (chi-square, groups - 2 degrees of freedom), calibration curve with "
        "Wilson intervals, Brier score. Decision curves: net benefit TP/n - FP/n · pt/(1 - pt) "
        "(Vickers & Elkin 2006) against treat-all and treat-none. Logistic regression: maximum "
        "likelihood (statsmodels), Wald intervals, VIF from the inverse correlation matrix. "
        "See docs/statistics.md of the hrpqct package.")
    import importlib.metadata as _md

    vers = []
    for pkg in ("numpy", "scipy", "pandas", "scikit-learn", "statsmodels", "xgboost-cpu",
                "matplotlib"):
        try:
            vers.append(f"{pkg} {_md.version(pkg)}")
        except _md.PackageNotFoundError:
            pass
    doc.paragraph(f"Software: hrpqct {__version__}, Python {platform.python_version()}, "
                  + ", ".join(vers) + ".")
    doc.footer = esc(f"{study.title} · hrpqct {__version__}") + (
        " · <b>synthetic data: not a clinical model</b>" if synthetic else "")
    out = doc.write(target)
    _progress(progress, 4, 4)
    return out
