"""What a classification study hands to the statistics and the report: plain data, no estimators.

The study runner (:mod:`hrpqct.classify.study`) fills these; :mod:`hrpqct.classify.report` turns
them into the HTML study report. Everything here is arrays, lists and DataFrames, so a result can
be written to disk (``to_dict``) and a report rebuilt without refitting.

Conventions
-----------
* ``classes``: the label meanings in column order of ``y_prob``; binary studies use
  ``["no osteoporosis", "osteoporosis"]`` (positive class last), three-class studies
  ``["normal", "osteopenia", "osteoporosis"]``.
* ``y_true``: integer class codes ``0..k-1`` of the **test** rows; ``y_prob``: ``(n, k)``
  probabilities of the test rows; ``ids``: the test rows' patient ids (image-level models repeat
  a patient once per slice; ``patient_view`` holds the per-patient mean probability).
* ``threshold``: binary decision threshold on the positive-class probability (Youden index,
  chosen on training data only); ``None`` for three classes (arg-max).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

__all__ = ["SelectionTrace", "ModelResult", "StudyResult"]


@dataclass
class SelectionTrace:
    """Which features survived each selection step, in pipeline order (the paper's Fig. 5).

    ``steps``: ``[(step name, features remaining after it), ...]``, first entry ``("input", all)``.
    ``train_matrix``: the training rows of the finally selected features (for the correlation
    heat-map, the paper's Fig. 6); may be ``None`` when not kept.
    ``coefficients``: feature -> weight of the final model where it has one (LASSO / logistic
    regression / radscore), else empty.
    """

    steps: list[tuple[str, list[str]]] = field(default_factory=list)
    train_matrix: pd.DataFrame | None = None
    coefficients: dict[str, float] = field(default_factory=dict)

    @property
    def selected(self) -> list[str]:
        return list(self.steps[-1][1]) if self.steps else []


@dataclass
class ModelResult:
    """One fitted and once-evaluated model of a study."""

    name: str  # e.g. "image / MT / xgboost", "patient / soft tissue (MT+AT) / logreg"
    level: str  # "image" or "patient"
    feature_group: str  # region code ("TC", "MT", ...) or group name ("soft tissue", "non-radiomics")
    classifier: str  # key of hrpqct.method.CLASSIFICATION.classifiers, or "radscore"
    classes: list[str]
    y_true: np.ndarray  # (n,) int codes of the test rows
    y_prob: np.ndarray  # (n, k) test probabilities
    ids: np.ndarray  # (n,) patient id of each test row
    threshold: float | None = None
    best_params: dict = field(default_factory=dict)
    cv_auroc_mean: float = float("nan")  # grouped-CV AUROC of the best grid point (training set)
    cv_auroc_sd: float = float("nan")
    train_y_true: np.ndarray | None = None  # training rows (for calibration-in-training, optional)
    train_y_prob: np.ndarray | None = None
    selection: SelectionTrace = field(default_factory=SelectionTrace)
    logistic_table: pd.DataFrame | None = None  # beta, OR, CI, p, VIF (patient-level logreg)
    fit_seconds: float = float("nan")

    @property
    def binary(self) -> bool:
        return len(self.classes) == 2

    def patient_view(self) -> "ModelResult":
        """Image-level predictions averaged per patient (mean probability); self if patient-level."""
        if self.level != "image":
            return self
        df = pd.DataFrame(self.y_prob, columns=range(self.y_prob.shape[1]))
        df["_id"] = self.ids
        df["_y"] = self.y_true
        g = df.groupby("_id", sort=True)
        if (g["_y"].nunique() > 1).any():
            raise ValueError(f"{self.name}: a patient has image rows with different labels")
        prob = g[list(range(self.y_prob.shape[1]))].mean().to_numpy()
        return ModelResult(
            name=f"{self.name} (patient mean)", level="patient-of-image",
            feature_group=self.feature_group, classifier=self.classifier, classes=list(self.classes),
            y_true=g["_y"].first().to_numpy().astype(int), y_prob=prob,
            ids=np.asarray(list(g.groups.keys())), threshold=self.threshold,
            best_params=dict(self.best_params), cv_auroc_mean=self.cv_auroc_mean,
            cv_auroc_sd=self.cv_auroc_sd, selection=self.selection, fit_seconds=self.fit_seconds)


@dataclass
class StudyResult:
    """All models of one study, plus what the report needs to describe the data."""

    title: str
    models: list[ModelResult]
    n_patients_train: int
    n_patients_test: int
    label_rule: str  # e.g. "osteoporosis = femoral-neck T-score <= -2.5"
    seed: int = 0
    preset: str = ""  # radiomics preset name and hash
    notes: list[str] = field(default_factory=list)  # e.g. dropped rows and why
    comparisons: list[tuple[str, str]] = field(default_factory=list)  # model pairs for DeLong tests
    oracle: ModelResult | None = None  # synthetic cohorts: the latent health score on the test set
    # the data are synthetic (phantom cohort): the report then says the models are not clinical
    synthetic: bool = False

    def model(self, name: str) -> ModelResult:
        for m in self.models:
            if m.name == name:
                return m
        raise KeyError(f"no model named {name!r} in study {self.title!r}; "
                       f"models: {[m.name for m in self.models]}")
