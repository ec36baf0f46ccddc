"""Splits by patient: a stratified, seeded train/test split and patient-grouped CV folds.

Every split here is over **patients**: the image rows (slices) of one patient are always on one
side. The test set is used once, after model selection; cross-validation for the grid search runs
on the training patients only (:func:`grouped_folds`).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from ..errors import InputError
from ..method import CLASSIFICATION

__all__ = ["split_patients", "split_from_column", "grouped_folds", "check_folds"]


def split_patients(y: pd.Series, test_fraction: float = CLASSIFICATION.test_fraction,
                   seed: int = CLASSIFICATION.seed) -> tuple[np.ndarray, np.ndarray]:
    """``(train_ids, test_ids)``: a stratified random split of the patients of ``y`` (Series of
    class codes indexed by patient id). The test set holds ``round(test_fraction * n)`` patients
    (122 -> 24, as the paper), each class in proportion; ids come back sorted."""
    from sklearn.model_selection import StratifiedShuffleSplit

    if not 0 < test_fraction < 1:
        raise InputError(f"test fraction must be between 0 and 1, got {test_fraction}")
    ids = np.asarray(y.index).astype(str)
    codes = np.asarray(y).astype(int)
    n = len(ids)
    n_test = int(round(test_fraction * n))
    counts = np.bincount(codes)
    if n_test < len(counts[counts > 0]) or n - n_test < len(counts[counts > 0]):
        raise InputError(f"{n} patients are too few for a {test_fraction:.0%} stratified test set")
    if (counts[counts > 0] < 2).any():
        raise InputError(f"a class has fewer than 2 patients ({counts.tolist()}); cannot stratify")
    sss = StratifiedShuffleSplit(n_splits=1, test_size=n_test, random_state=seed)
    tr, te = next(sss.split(ids, codes))
    return np.sort(ids[tr]), np.sort(ids[te])


def split_from_column(subjects: pd.DataFrame, column: str) -> tuple[np.ndarray, np.ndarray]:
    """``(train_ids, test_ids)`` from a column holding ``train`` (or ``training``) / ``test`` per
    patient; case and spaces are ignored, anything else is refused."""
    name = subjects.attrs.get("source", "subjects")
    if column not in subjects.columns:
        raise InputError(f"subjects table ({name}): lacks the split column {column!r}")
    ids = (subjects.index if subjects.index.name == "subject_id"
           else subjects["subject_id"]).astype(str).to_numpy()
    v = subjects[column].astype(str).str.strip().str.lower().to_numpy()
    v = np.where(v == "training", "train", v)
    bad = ~np.isin(v, ["train", "test"])
    if bad.any():
        raise InputError(f"subjects table ({name}): column {column!r} must hold 'train' or 'test'; "
                         f"found {sorted(set(subjects[column].astype(str)[bad]))[:5]}")
    tr, te = np.sort(ids[v == "train"]), np.sort(ids[v == "test"])
    if len(tr) == 0 or len(te) == 0:
        raise InputError(f"subjects table ({name}): column {column!r} leaves an empty "
                         f"{'training' if len(tr) == 0 else 'test'} set")
    return tr, te


def grouped_folds(y: Sequence[int], groups: Sequence, n_splits: int = CLASSIFICATION.cv_folds,
                  seed: int = CLASSIFICATION.seed) -> list[tuple[np.ndarray, np.ndarray]]:
    """Patient-grouped, stratified CV folds over rows: ``[(train_idx, val_idx), ...]``.

    Uses scikit-learn's ``StratifiedGroupKFold`` (shuffled, seeded): each patient's rows are in
    exactly one validation fold, and the classes are balanced across folds as far as the
    grouping allows. Works for patient-level tables too (one row per patient)."""
    from sklearn.model_selection import StratifiedGroupKFold

    y = np.asarray(y).astype(int)
    g = np.asarray(groups)
    per_patient = pd.Series(y).groupby(g).first()
    counts = per_patient.value_counts()
    if counts.min() < n_splits:
        raise InputError(f"{n_splits}-fold CV needs at least {n_splits} patients per class in the "
                         f"training set; have {counts.sort_index().to_dict()}")
    cv = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    folds = [(np.sort(tr), np.sort(va)) for tr, va in cv.split(np.zeros(len(y)), y, g)]
    check_folds(folds, g)
    return folds


def check_folds(folds, groups) -> None:
    """Raise if a patient has rows on both sides of a fold (a leak)."""
    g = np.asarray(groups)
    for k, (tr, va) in enumerate(folds):
        both = set(g[tr]) & set(g[va])
        if both:
            raise AssertionError(f"fold {k}: patient(s) {sorted(both)[:5]} on both sides")
