"""A classification study: image-level and patient-level models, tested once, as a StudyResult.

:func:`run_study` (or :func:`fit_study`, which also returns the fitted pipelines) on a
:class:`~hrpqct.classify.data.CohortData`:

1. split the patients into training and test sets (stratified, seeded, ``test_fraction``; or a
   ``split_column`` of the subject table);
2. **image level** (the paper's Table II): for every region and classifier, a pipeline of the
   selection steps (``Selection.image_steps``) and the classifier, tuned by grid search with
   patient-grouped 5-fold CV on the training slices, refitted on all training slices and applied
   once to the test slices. :meth:`ModelResult.patient_view` gives the per-patient mean;
3. **patient level** (Tables IV-V): for every feature group (default: non-radiomics, radiomics
   tibia TC+TT, radiomics soft tissue MT+AT; any group of regions or named columns), selection
   with the top-5 LASSO rule (``Selection.patient_steps``) and the patient classifiers
   (default: logistic regression), same search and single test;
4. **radscore** (vertebral paper): the LASSO-weighted sum of a group's selected features, a
   logistic regression on it, and on it plus one clinical variable;
5. the **oracle** of synthetic cohorts: the latent ``health`` score of the subject table on the
   test patients (probability ``sigmoid(-health)``), the best any model can do there.

The decision threshold of every binary model is the Youden-optimal one on out-of-fold training
probabilities. :func:`save_study` / :func:`load_study` write and read a StudyResult without pickle
(``study.json`` + ``arrays.npz`` + Parquet tables).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from ..errors import InputError
from ..method import CLASSIFICATION, SELECTION, Classification, Selection
from ..progress import ProgressCallback, report
from .classifiers import FoldSelection, auroc, grid_search
from .data import CohortData
from .results import ModelResult, SelectionTrace, StudyResult
from .selection import make_selection, selection_trace, transform_selection
from .splits import grouped_folds, split_from_column, split_patients

__all__ = ["StudyConfig", "FittedModel", "fit_study", "run_study", "save_study", "load_study",
           "DEFAULT_GROUPS", "oracle_result"]

DEFAULT_GROUPS = {
    "non-radiomics": "non-radiomics",
    "radiomics tibia (TC+TT)": "TC+TT",
    "radiomics soft tissue (MT+AT)": "MT+AT",
}
_CLINICAL_FOR_RADSCORE = ("bmd_fn_g_cm2", "age")  # not used: see StudyConfig.radscore_clinical


@dataclass
class StudyConfig:
    """What a study fits (module docstring). ``None`` = default or not fitted."""

    title: str = "HR-pQCT osteoporosis classification"
    regions: Sequence[str] | None = None  # image-level regions (default: all in the slice table)
    classifiers: Sequence[str] = CLASSIFICATION.classifiers  # image level
    image_level: bool = True
    patient_groups: dict | None = None  # name -> group (see CohortData.group_columns)
    patient_classifiers: Sequence[str] = CLASSIFICATION.patient_classifiers
    radscore_group: str | None = "MT+AT"  # feature group of the radscore models (None: none)
    radscore_clinical: str | None = "age"  # the clinical variable added to the radscore
    split_column: str | None = None
    quick: bool = False  # reduced grids (tests)
    keep_train_matrix: bool = True
    selection: Selection = SELECTION
    params: Classification = CLASSIFICATION

    def groups(self) -> dict:
        return dict(DEFAULT_GROUPS if self.patient_groups is None else self.patient_groups)


@dataclass
class FittedModel:
    """A fitted pipeline of a study and what applying it needs."""

    name: str
    level: str  # "image" or "patient"
    feature_group: str
    classifier: str
    pipeline: object  # sklearn Pipeline: selection steps + classifier, input columns = features
    features: list[str]  # input columns in order
    threshold: float | None
    classes: list[str]
    cv_auroc: float
    test_auroc: float


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def oracle_result(cohort: CohortData, test_ids) -> ModelResult | None:
    """The latent health score of a synthetic cohort as a model on the test patients (binary)."""
    if "health" not in cohort.subjects.columns or len(cohort.classes) != 2:
        return None
    ids = np.asarray(test_ids)
    h = cohort.subjects.loc[ids, "health"].to_numpy(float)
    p = _sigmoid(-h)
    y = cohort.y.reindex(ids).to_numpy()
    return ModelResult(name="oracle / latent health score", level="patient",
                       feature_group="latent health", classifier="oracle",
                       classes=list(cohort.classes), y_true=y, y_prob=np.c_[1 - p, p], ids=ids,
                       threshold=None)


def _pipeline(sel_steps, model):
    from sklearn.pipeline import Pipeline

    return Pipeline([*sel_steps, ("clf", model)]).set_output(transform="pandas")


def _fit_one(name, level, group, clf, sel: FoldSelection, X_test, y_test, ids_test, classes,
             cfg: StudyConfig, seed, n_jobs, grid=None, X_train=None, kind=None):
    k = len(classes)
    res = grid_search(clf, sel, k, level=level if level == "image" else "patient",
                      quick=cfg.quick, seed=seed, n_jobs=n_jobs, grid=grid)
    Zt = transform_selection(sel.fitted, X_test)
    prob = res.model.predict_proba(Zt)
    pipe = _pipeline(sel.fitted, res.model)
    trace = selection_trace(pipe, X_train if cfg.keep_train_matrix else None,
                            keep_matrix=cfg.keep_train_matrix)
    mr = ModelResult(
        name=name, level=level, feature_group=group, classifier=kind or clf, classes=list(classes),
        y_true=np.asarray(y_test).astype(int), y_prob=prob, ids=np.asarray(ids_test).astype(str),
        threshold=res.threshold, best_params=_plain(res.best_params),
        cv_auroc_mean=res.cv_auroc_mean, cv_auroc_sd=res.cv_auroc_sd,
        train_y_true=sel.y.copy(), train_y_prob=res.train_prob, selection=trace,
        fit_seconds=res.seconds + (sel.seconds if not getattr(sel, "_counted", False) else 0.0))
    sel._counted = True
    fm = FittedModel(name=name, level=level, feature_group=group, classifier=kind or clf, pipeline=pipe,
                     features=[str(c) for c in X_test.columns], threshold=res.threshold,
                     classes=list(classes), cv_auroc=res.cv_auroc_mean,
                     test_auroc=auroc(mr.y_true, prob, k))
    return mr, fm


def _logistic_table(mr: ModelResult, X_train: pd.DataFrame, y_train):
    try:
        from .stats import logistic_table
    except ImportError:  # the statistics helper's part is not merged yet
        return None
    cols = mr.selection.selected
    if not cols or not all(c in X_train.columns for c in cols) or len(mr.classes) != 2:
        return None
    try:
        return logistic_table(X_train[cols], y_train, on_separation="flag")
    except Exception:  # a table that cannot be fitted must not stop the study  # noqa: BLE001
        return None


def _plain(d: dict) -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, np.generic):
            v = v.item()
        out[str(k)] = v
    return out


def fit_study(cohort: CohortData, config: StudyConfig | None = None,
              progress: ProgressCallback | None = None,
              on_model: Callable[[ModelResult], None] | None = None
              ) -> tuple[StudyResult, dict[str, FittedModel]]:
    """Run the study (module docstring); returns the StudyResult and the fitted pipelines."""
    from threadpoolctl import threadpool_limits

    cfg = config or StudyConfig()
    params = cfg.params
    seed, n_jobs = params.seed, params.n_jobs
    classes = list(cohort.classes)
    notes = list(cohort.notes)
    if cfg.split_column:
        tr_ids, te_ids = split_from_column(cohort.subjects, cfg.split_column)
        keep = set(cohort.y.index)
        tr_ids = np.array([i for i in tr_ids if i in keep])
        te_ids = np.array([i for i in te_ids if i in keep])
        split_note = f"split from column {cfg.split_column!r}"
    else:
        tr_ids, te_ids = split_patients(cohort.y, params.test_fraction, seed)
        split_note = (f"stratified random split by patient, {params.test_fraction:.0%} test, "
                      f"seed {seed}")
    notes.append(f"{len(tr_ids)} training / {len(te_ids)} test patients ({split_note}); "
                 f"{params.cv_folds}-fold patient-grouped CV on the training set")
    impute = cohort.nan_rule == "impute"
    regions = list(cfg.regions) if cfg.regions is not None else (
        [r for r in cohort.regions if r != "SK"] if cohort.slices is not None else [])
    if not cfg.image_level:
        regions = []
    groups = cfg.groups() if cohort.patients is not None or cfg.patient_groups else {}
    n_total = (len(regions) * len(cfg.classifiers)
               + len(groups) * len(cfg.patient_classifiers)
               + (2 if cfg.radscore_group and len(classes) == 2 else 0))
    done = 0
    models: list[ModelResult] = []
    fitted: dict[str, FittedModel] = {}

    def add(mr, fm):
        nonlocal done
        models.append(mr)
        fitted[mr.name] = fm
        done += 1
        if on_model is not None:
            on_model(mr)
        report(progress, done, n_total)

    report(progress, 0, n_total)
    with threadpool_limits(limits=max(1, n_jobs)):
        # --- image level --------------------------------------------------------------------
        for region in regions:
            X, y, g, dropped = cohort.image_matrix(region, tr_ids)
            Xt, yt, gt, dropped_t = cohort.image_matrix(region, te_ids)
            if dropped or dropped_t:
                notes.append(f"image / {region}: {dropped + dropped_t} slice row(s) without "
                             "features (region absent or too small, or NaN) left out")
            folds = grouped_folds(y, g, params.cv_folds, seed)
            sel = FoldSelection(cfg.selection.image_steps, X, y, g, folds, level="image",
                                impute=impute, seed=seed, params=cfg.selection, n_jobs=n_jobs)
            for clf in cfg.classifiers:
                mr, fm = _fit_one(f"image / {region} / {clf}", "image", region, clf, sel, Xt, yt,
                                  gt, classes, cfg, seed, n_jobs, X_train=X)
                add(mr, fm)
        # --- patient level ------------------------------------------------------------------
        for gname, group in groups.items():
            cols = cohort.group_columns(group)
            if not cols:
                notes.append(f"patient / {gname}: no columns, not fitted")
                continue
            X, y, ids, dropped = cohort.patient_matrix(cols, tr_ids)
            Xt, yt, idt, dropped_t = cohort.patient_matrix(cols, te_ids)
            if dropped or dropped_t:
                notes.append(f"patient / {gname}: {dropped} training and {dropped_t} test "
                             "patient(s) with missing values left out")
            folds = grouped_folds(y, ids, params.cv_folds, seed)
            sel = FoldSelection(cfg.selection.patient_steps, X, y, ids, folds, level="patient",
                                impute=impute, seed=seed, params=cfg.selection, n_jobs=n_jobs)
            for clf in cfg.patient_classifiers:
                mr, fm = _fit_one(f"patient / {gname} / {clf}", "patient", gname, clf, sel, Xt,
                                  yt, idt, classes, cfg, seed, n_jobs, X_train=X)
                if clf == "logreg":
                    mr.logistic_table = _logistic_table(mr, X, y)
                add(mr, fm)
        # --- radscore -----------------------------------------------------------------------
        if cfg.radscore_group and len(classes) == 2 and cohort.patients is not None:
            for mr, fm in _radscore_models(cohort, cfg, tr_ids, te_ids, classes, seed, n_jobs,
                                           impute, notes):
                add(mr, fm)

    names = [m.name for m in models]
    comparisons = []
    pl = [n for n in names if n.startswith("patient / ") and n.endswith("/ logreg")
          and "radscore" not in n]
    for i, a in enumerate(pl):
        for b in pl[i + 1:]:
            comparisons.append((a, b))
    rs = [n for n in names if "radscore" in n]
    if len(rs) == 2:
        comparisons.append((rs[0], rs[1]))
    kwargs = {}
    if "synthetic" in StudyResult.__dataclass_fields__:
        kwargs["synthetic"] = bool("health" in cohort.subjects.columns)
    study = StudyResult(title=cfg.title, models=models, n_patients_train=len(tr_ids),
                        n_patients_test=len(te_ids), label_rule=cohort.labels.rule, seed=seed,
                        preset=cohort.preset, notes=notes, comparisons=comparisons,
                        oracle=oracle_result(cohort, te_ids), **kwargs)
    return study, fitted


def _radscore_models(cohort, cfg, tr_ids, te_ids, classes, seed, n_jobs, impute, notes):
    """Radscore of a feature group, and radscore + one clinical variable (logistic regressions)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import MinMaxScaler

    group = cfg.radscore_group
    cols = cohort.group_columns(group)
    steps = tuple(s if s != "lasso" else "radscore" for s in cfg.selection.patient_steps)
    if "radscore" not in steps:
        steps = (*steps, "radscore")
    grid = {"C": [1e4]}  # (nearly) unpenalised logistic regression on the score, as glm
    X, y, ids, _ = cohort.patient_matrix(cols, tr_ids)
    Xt, yt, idt, _ = cohort.patient_matrix(cols, te_ids)
    folds = grouped_folds(y, ids, cfg.params.cv_folds, seed)

    def rad_steps():
        return make_selection(steps, cfg.selection, level="patient", impute=impute, seed=seed)

    sel = FoldSelection(rad_steps, X, y, ids, folds, level="patient", seed=seed)
    label = f"radscore {group}"
    yield _fit_one(f"patient / {label} / logreg", "patient", label, "logreg", sel, Xt, yt, idt,
                   classes, cfg, seed, n_jobs, grid=grid, X_train=X, kind="radscore")
    var = cfg.radscore_clinical
    if not var:
        return
    if var not in cohort.clinical.columns:
        notes.append(f"radscore + clinical: {var!r} is not a clinical column; not fitted")
        return
    cols2 = [*cols, var]
    X2, y2, ids2, _ = cohort.patient_matrix(cols2, tr_ids)
    Xt2, yt2, idt2, _ = cohort.patient_matrix(cols2, te_ids)
    folds2 = grouped_folds(y2, ids2, cfg.params.cv_folds, seed)

    def combo():
        ct = ColumnTransformer([("rad", Pipeline(rad_steps()), cols), ("clin", MinMaxScaler(), [var])],
                               verbose_feature_names_out=False)
        return [("radscore+clinical", ct)]

    sel2 = FoldSelection(combo, X2, y2, ids2, folds2, level="patient", seed=seed)
    label2 = f"radscore {group} + {var}"
    mr, fm = _fit_one(f"patient / {label2} / logreg", "patient", label2, "logreg", sel2, Xt2,
                      yt2, idt2, classes, cfg, seed, n_jobs, grid=grid, X_train=X2, kind="radscore")
    rad = sel2.fitted[0][1].named_transformers_["rad"]
    trace = selection_trace(rad, X2[cols] if cfg.keep_train_matrix else None,
                            keep_matrix=cfg.keep_train_matrix)
    trace.steps.append(("+ clinical", [*trace.selected, var]))
    coef = fm.pipeline[-1].coef_[0]
    trace.coefficients = {"radscore": float(coef[0]), var: float(coef[1])}
    if cfg.keep_train_matrix:
        trace.train_matrix = X2[[*trace.steps[-2][1], var]].reset_index(drop=True)
    mr.selection = trace
    yield mr, fm


def run_study(cohort: CohortData, config: StudyConfig | None = None,
              progress: ProgressCallback | None = None) -> StudyResult:
    """:func:`fit_study` without the fitted pipelines."""
    return fit_study(cohort, config, progress)[0]


# --- saving and loading -----------------------------------------------------------------------
_FORMAT = "hrpqct-study"
_VERSION = 1
_ARRAYS = ("y_true", "y_prob", "ids", "train_y_true", "train_y_prob")


def _jsonable(v):
    if isinstance(v, float) and not np.isfinite(v):
        return {"__float__": str(v)}
    if isinstance(v, np.generic):
        return _jsonable(v.item())
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    return v


def _unjson(v):
    if isinstance(v, dict):
        if set(v) == {"__float__"}:
            return float(v["__float__"])
        return {k: _unjson(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_unjson(x) for x in v]
    return v


def _model_record(m: ModelResult, key: str, arrays: dict, tables: dict) -> dict:
    rec = {}
    for f in fields(ModelResult):
        v = getattr(m, f.name)
        if f.name in _ARRAYS:
            if v is not None:
                a = np.asarray(v)
                arrays[f"{key}.{f.name}"] = a.astype(str) if f.name == "ids" else a
            rec[f.name] = None if v is None else f"{key}.{f.name}"
        elif f.name == "selection":
            tm = None
            if v.train_matrix is not None:
                tm = f"{key}.train_matrix.parquet"
                tables[tm] = v.train_matrix
            rec["selection"] = {"steps": [[s, list(n)] for s, n in v.steps],
                                "coefficients": v.coefficients, "train_matrix": tm}
        elif f.name == "logistic_table":
            if v is not None:
                t = f"{key}.logistic_table.parquet"
                tables[t] = v
                rec[f.name] = t
            else:
                rec[f.name] = None
        else:
            rec[f.name] = v
    return rec


def save_study(study: StudyResult, folder: str | os.PathLike) -> Path:
    """Write a StudyResult to ``folder``: ``study.json`` (scalars, lists, the selection traces),
    ``arrays.npz`` (predictions, no pickled objects) and ``tables/*.parquet`` (training matrices
    of the selected features, logistic tables). Returns the folder."""
    from ..io import atomic_path

    out = Path(folder)
    (out / "tables").mkdir(parents=True, exist_ok=True)
    arrays: dict = {}
    tables: dict = {}
    rec = {"format": _FORMAT, "version": _VERSION}
    for f in fields(StudyResult):
        v = getattr(study, f.name)
        if f.name == "models":
            rec["models"] = [_model_record(m, f"m{i}", arrays, tables) for i, m in enumerate(v)]
        elif f.name == "oracle":
            rec["oracle"] = None if v is None else _model_record(v, "oracle", arrays, tables)
        elif f.name == "comparisons":
            rec[f.name] = [list(p) for p in v]
        else:
            rec[f.name] = v
    for name, t in tables.items():
        tt = t.copy()
        tt.columns = [str(c) for c in tt.columns]
        with atomic_path(out / "tables" / name) as tmp:
            tt.attrs = {}
            tt.to_parquet(tmp, index=False)
    with atomic_path(out / "arrays.npz") as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **arrays)
    with atomic_path(out / "study.json") as tmp:
        tmp.write_text(json.dumps(_jsonable(rec), indent=1), encoding="utf-8")
    return out


def _model_from(rec: dict, arrays, folder: Path) -> ModelResult:
    kw = {}
    names = {f.name for f in fields(ModelResult)}
    for k, v in rec.items():
        if k not in names:
            continue
        if k in _ARRAYS:
            kw[k] = None if v is None else arrays[v]
        elif k == "selection":
            tm = pd.read_parquet(folder / "tables" / v["train_matrix"]) if v.get("train_matrix") else None
            kw[k] = SelectionTrace(steps=[(s, list(n)) for s, n in v["steps"]], train_matrix=tm,
                                   coefficients=dict(v.get("coefficients", {})))
        elif k == "logistic_table":
            kw[k] = None if v is None else pd.read_parquet(folder / "tables" / v)
        else:
            kw[k] = v
    return ModelResult(**kw)


def load_study(folder: str | os.PathLike) -> StudyResult:
    """Read a StudyResult written by :func:`save_study` (never unpickles)."""
    folder = Path(folder)
    f = folder / "study.json"
    if not f.is_file():
        raise InputError(f"{folder}: not a saved study (no study.json)")
    try:
        rec = _unjson(json.loads(f.read_text(encoding="utf-8")))
    except ValueError as exc:
        raise InputError(f"{f}: not valid JSON: {exc}") from None
    if rec.get("format") != _FORMAT:
        raise InputError(f"{f}: not a saved study (format {rec.get('format')!r})")
    with np.load(folder / "arrays.npz", allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    kw = {}
    names = {fl.name for fl in fields(StudyResult)}
    for k, v in rec.items():
        if k not in names:
            continue
        if k == "models":
            kw[k] = [_model_from(m, arrays, folder) for m in v]
        elif k == "oracle":
            kw[k] = None if v is None else _model_from(v, arrays, folder)
        elif k == "comparisons":
            kw[k] = [tuple(p) for p in v]
        else:
            kw[k] = v
    return StudyResult(**kw)
