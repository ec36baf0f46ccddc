"""Classification inputs: the radiomics tables joined with a subject table, and the labels.

Inputs (each a ``.parquet`` or ``.csv`` file, or the output folder of ``hrpqct cohort``):

* **slice-level table** (``hrpqct radiomics`` / ``hrpqct cohort``'s ``scans/*.parquet``): one row
  per ``(scan, slice, region)`` with ``subject_id`` (``hrpqct cohort``; a table without it uses
  ``scan_id`` as the subject id), ``scan_id``, ``slice``, ``region``, ``reason`` (``None`` when the
  features were computed), measures and the PyRadiomics features (:mod:`hrpqct.radiomics.tables`);
* **patient-level table** (``patients.parquet`` of ``hrpqct cohort``, ``<name>.patient.parquet`` of
  ``hrpqct radiomics``): one row per ``(scan, region)``, features averaged over slices. It is
  spread to one row per subject with ``<region>_<feature>`` columns
  (:func:`hrpqct.radiomics.tables.to_wide`); a subject with several scans gets the mean over its
  scans (noted);
* **subject table** (``subjects.csv`` of ``hrpqct phantom-cohort``, or the user's): one row per
  ``subject_id`` with the T-score and/or a label column and any clinical variables. Without one,
  the variables ``hrpqct cohort`` copied from its manifest into the patient table are used.

Radiomics features are the columns named like PyRadiomics features
(``<image type>_<feature class>_<name>``, e.g. ``wavelet-H_glcm_Idmn``; :func:`is_radiomics_feature`);
the plain measures (area, volume, mean HU, ...) are not features unless asked for.

Labels (:func:`make_labels`): binary, osteoporosis = T-score <= -2.5, or three classes (normal
T >= -1, osteopenia, osteoporosis), from a T-score column or a given label column
(``hrpqct.method.CLASSIFICATION``).

NaN rule (``hrpqct.method.Classification.nan_rule``): a feature value that is NaN or infinite is
never replaced by zero. With ``"drop"`` (default) the row is left out of the model that needs it:
image level, a slice where a region is absent or too small (``reason`` set) leaves that region's
model only; patient level, a patient with a missing value in a model's columns leaves that model.
Every drop is counted in :attr:`CohortData.notes` (and in the study's notes). With ``"impute"`` the
rows stay and the pipeline's first step replaces a missing value by the training median
(:func:`hrpqct.classify.selection.make_selection`).

Errors name the table (its file) and the column.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from ..errors import InputError
from ..method import CLASSIFICATION, Classification
from ..radiomics.tables import MEASURE_COLUMNS

__all__ = [
    "CohortData",
    "Labels",
    "read_table",
    "load_slices",
    "load_patients",
    "load_subjects",
    "load_cohort",
    "make_labels",
    "is_radiomics_feature",
    "feature_columns",
    "patient_wide",
    "clinical_matrix",
    "NON_CLINICAL",
]

_FEATURE = re.compile(
    r"^[A-Za-z0-9.\-]+_(shape2D|shape|firstorder|glcm|glrlm|glszm|gldm|ngtdm)_[A-Za-z0-9]+"
    r"(__(median|sd))?$")
_ID_COLUMNS = ("subject_id", "scan_id", "slice", "region", "reason", "n_slices")

# Subject-table columns that are never clinical predictors: ids, the latent truth of synthetic
# cohorts, the labels and the diagnostic DXA values the labels are made from (the paper's
# non-radiomics set excludes "BMD and T-score variables used for osteoporosis diagnosis"), and the
# phantom's rendering parameters that are not measurements. Patterns are matched in full.
NON_CLINICAL = (
    r"subject_id", r"scan_id", r"seed", r"health", r"bone_health", r"cohort_model", r"osteoporosis",
    r"bmd_class", r"label.*",
    r"split", r"t_score.*", r"bmd_.*", r"scan", r"segmentation.*", r"side", r"motion",
)


def is_radiomics_feature(name: str) -> bool:
    """Whether a column name is a PyRadiomics feature (optionally with ``__median``/``__sd``)."""
    return bool(_FEATURE.match(str(name)))


def read_table(path: str | os.PathLike, what: str = "table") -> pd.DataFrame:
    """Read a ``.parquet`` or ``.csv`` table; errors name ``what`` and the file."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{what} {path}: file not found")
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            df = pd.read_parquet(path)
        elif suffix == ".csv":
            df = pd.read_csv(path, dtype={"subject_id": str, "scan_id": str})
        else:
            raise InputError(f"{what} {path}: choose a .parquet or .csv file")
    except InputError:
        raise
    except Exception as exc:
        raise InputError(f"{what} {path}: not readable: {exc}") from None
    df.attrs["source"] = str(path)
    return df


def _name(df: pd.DataFrame, what: str) -> str:
    src = df.attrs.get("source")
    return f"{what} table ({src})" if src else f"{what} table"


def _require(df: pd.DataFrame, columns: Iterable[str], what: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise InputError(f"{_name(df, what)}: lacks column(s) {missing}")


def _ids_as_str(df: pd.DataFrame, cols=("subject_id", "scan_id")) -> pd.DataFrame:
    for c in cols:
        if c in df.columns:
            df[c] = df[c].astype(str).str.strip()
    return df


def load_slices(path: str | os.PathLike) -> pd.DataFrame:
    """The slice-level table: one file, or every ``scans/*.parquet`` of a cohort folder."""
    path = Path(path)
    if path.is_dir():
        files = sorted((path / "scans").glob("*.parquet")) if (path / "scans").is_dir() else []
        if not files:
            raise InputError(f"slice-level tables: {path} has no scans/*.parquet "
                             "(give the output folder of `hrpqct cohort` or one table)")
        parts = [read_table(f, "slice-level") for f in files]
        df = pd.concat(parts, ignore_index=True)
        df.attrs["source"] = str(path / "scans")
        _copy_run_record(path, df)
    else:
        df = read_table(path, "slice-level")
    return _check_long(df, "slice-level", ("slice",))


def load_patients(path: str | os.PathLike) -> pd.DataFrame:
    """The patient-level (per scan and region) table: a file, or a cohort folder's patients.parquet."""
    path = Path(path)
    if path.is_dir():
        f = path / "patients.parquet"
        if not f.is_file():
            raise InputError(f"patient-level table: {path} has no patients.parquet "
                             "(give the output folder of `hrpqct cohort` or one table)")
        df = read_table(f, "patient-level")
        _copy_run_record(path, df)
    else:
        df = read_table(path, "patient-level")
    return _check_long(df, "patient-level", ())


def _copy_run_record(folder: Path, df: pd.DataFrame) -> None:
    import json

    run = folder / "run.json"
    if run.is_file():
        try:
            rec = json.loads(run.read_text(encoding="utf-8"))
            df.attrs["preset"] = f"{rec.get('preset', '')}:{rec.get('preset_digest', '')}"
        except ValueError:
            pass


def _check_long(df: pd.DataFrame, what: str, extra: Sequence[str]) -> pd.DataFrame:
    _require(df, ["region", *extra], what)
    if "subject_id" not in df.columns:
        _require(df, ["scan_id"], what)
        df.insert(0, "subject_id", df["scan_id"])
        df.attrs["note"] = f"{_name(df, what)} has no subject_id column: scan_id used as subject id"
    if "scan_id" not in df.columns:
        df.insert(1, "scan_id", df["subject_id"])
    if "reason" not in df.columns:
        df["reason"] = None
    _ids_as_str(df)
    if not feature_columns(df):
        raise InputError(f"{_name(df, what)}: no radiomics feature columns "
                         "(named like 'original_firstorder_Mean')")
    return df


def load_subjects(path: str | os.PathLike) -> pd.DataFrame:
    """The subject table (``subject_id`` + T-score / label / clinical variables)."""
    df = read_table(path, "subjects")
    _require(df, ["subject_id"], "subjects")
    _ids_as_str(df, ("subject_id",))
    dup = df["subject_id"][df["subject_id"].duplicated()].tolist()
    if dup:
        raise InputError(f"{_name(df, 'subjects')}: column 'subject_id' repeats {dup[:10]}")
    return df


def feature_columns(table: pd.DataFrame, measures: bool = False) -> list[str]:
    """The radiomics feature columns of a long table, in table order (plus measures if asked)."""
    cols = [c for c in table.columns if is_radiomics_feature(c)]
    if measures:
        cols = [c for c in table.columns if c in MEASURE_COLUMNS and c != "n_pixels"] + cols
    return cols


# --- labels -----------------------------------------------------------------------------------
@dataclass
class Labels:
    """Class codes per subject (``y``: Series indexed by ``subject_id``) and their meanings."""

    y: pd.Series
    classes: list[str]
    rule: str
    scheme: str


def make_labels(
    subjects: pd.DataFrame,
    scheme: str = "binary",
    t_score: str | None = "t_score_fn",
    label: str | None = None,
    params: Classification = CLASSIFICATION,
) -> Labels:
    """Labels of every subject: from ``label`` (a column of codes or class names) when given,
    else from the ``t_score`` column (binary: 1 = osteoporosis, T <= -2.5; three classes:
    0 normal T >= -1, 1 osteopenia, 2 osteoporosis T <= -2.5)."""
    if scheme not in ("binary", "three"):
        raise InputError(f"label scheme {scheme!r}: choose 'binary' or 'three'")
    classes = list(params.binary_classes if scheme == "binary" else params.three_classes)
    name = _name(subjects, "subjects")
    ids = subjects["subject_id"].astype(str)
    if label is not None:
        if label not in subjects.columns:
            raise InputError(f"{name}: lacks the label column {label!r}")
        raw = subjects[label]
        missing = raw.isna()
        if missing.any():
            raise InputError(f"{name}: column {label!r} has no label for subject(s) "
                             f"{ids[missing].tolist()[:10]}")
        codes = _label_codes(raw, classes, scheme, name, label)
        rule = f"labels given in column {label!r}: " + ", ".join(
            f"{i} = {c}" for i, c in enumerate(classes))
    else:
        if t_score is None or t_score not in subjects.columns:
            raise InputError(f"{name}: lacks the T-score column {t_score!r} "
                             "(or name a label column)")
        t = pd.to_numeric(subjects[t_score], errors="coerce")
        bad = t.isna() & subjects[t_score].notna()
        if bad.any():
            raise InputError(f"{name}: column {t_score!r} has non-numeric value(s) "
                             f"{subjects[t_score][bad].tolist()[:5]}")
        if t.isna().any():
            raise InputError(f"{name}: column {t_score!r} has no T-score for subject(s) "
                             f"{ids[t.isna()].tolist()[:10]}")
        op, pen = params.osteoporosis_t_score, params.osteopenia_t_score
        if scheme == "binary":
            codes = (t <= op).astype(int).to_numpy()
            rule = f"osteoporosis = {t_score} <= {op:g}"
        else:
            codes = np.where(t <= op, 2, np.where(t < pen, 1, 0))
            rule = (f"{t_score}: normal >= {pen:g}, osteopenia between, "
                    f"osteoporosis <= {op:g}")
    y = pd.Series(np.asarray(codes, dtype=int), index=pd.Index(ids, name="subject_id"))
    return Labels(y=y, classes=classes, rule=rule, scheme=scheme)


def _label_codes(raw: pd.Series, classes, scheme, name, col) -> np.ndarray:
    if raw.dtype == bool:
        raw = raw.astype(int)
    if pd.api.types.is_numeric_dtype(raw):
        vals = raw.to_numpy()
        ok = np.isin(vals, np.arange(len(classes)))
        if not ok.all():
            raise InputError(f"{name}: column {col!r} has value(s) {sorted(set(vals[~ok]))[:5]}; "
                             f"{scheme} labels are {list(range(len(classes)))} ({classes})")
        return vals.astype(int)
    lower = {c.lower(): i for i, c in enumerate(classes)}
    if scheme == "binary":
        lower.update({"control": 0, "normal": 0, "no": 0, "false": 0, "0": 0,
                      "yes": 1, "true": 1, "1": 1, "op": 1})
    s = raw.astype(str).str.strip().str.lower()
    bad = ~s.isin(list(lower))
    if bad.any():
        raise InputError(f"{name}: column {col!r} has unknown label(s) {sorted(set(raw[bad]))[:5]}; "
                         f"expected {classes} or codes 0..{len(classes) - 1}")
    return s.map(lower).to_numpy().astype(int)


# --- wide tables --------------------------------------------------------------------------------
def patient_wide(patients: pd.DataFrame, regions: Sequence[str] | None = None,
                 measures: bool = False) -> tuple[pd.DataFrame, list[str]]:
    """One row per subject, ``<region>_<feature>`` columns; ``(wide indexed by subject_id, notes)``.

    A subject with several scans gets the mean over its scans (noted).
    """
    from ..radiomics.tables import to_wide

    feats = feature_columns(patients, measures=measures)
    df = patients
    if regions is not None:
        df = df[df["region"].isin(list(regions))]
    notes = []
    dup = df.duplicated(["scan_id", "region"])
    if dup.any():
        raise InputError(f"{_name(patients, 'patient-level')}: scan_id/region pairs repeat, e.g. "
                         f"{df.loc[dup, ['scan_id', 'region']].head(3).values.tolist()}")
    wide = to_wide(df[["subject_id", "scan_id", "region", *feats]], by=("scan_id",), columns=feats)
    sub = df.drop_duplicates("scan_id").set_index("scan_id")["subject_id"]
    wide.insert(0, "subject_id", wide["scan_id"].map(sub))
    n_scans = wide.groupby("subject_id")["scan_id"].nunique()
    multi = n_scans[n_scans > 1]
    if len(multi):
        notes.append(f"{len(multi)} subject(s) with several scans: patient-level features are the "
                     "mean over their scans")
    wide = wide.drop(columns="scan_id").groupby("subject_id", sort=True).mean()
    return wide, notes


def clinical_matrix(subjects: pd.DataFrame, columns: Sequence[str] | None = None,
                    exclude: Sequence[str] = NON_CLINICAL) -> pd.DataFrame:
    """Numeric clinical variables per subject (index ``subject_id``).

    ``columns``: the variables to use (default: every numeric column not matching ``exclude``,
    plus two-valued text columns such as ``sex``, coded 0/1 as ``<col>=<second value>``).
    """
    name = _name(subjects, "subjects")
    df = subjects.set_index(subjects["subject_id"].astype(str))
    if columns is None:
        pats = [re.compile(f"^{p}$") for p in exclude]
        columns = [c for c in df.columns if not any(p.match(str(c)) for p in pats)
                   and not is_radiomics_feature(c)]
    out = {}
    for c in columns:
        if c not in df.columns:
            raise InputError(f"{name}: lacks the clinical column {c!r}")
        col = df[c]
        if col.dtype == bool:
            out[c] = col.astype(float)
        elif pd.api.types.is_numeric_dtype(col):
            out[c] = col.astype(float)
        else:
            vals = sorted(col.dropna().astype(str).unique())
            if len(vals) == 2:
                out[f"{c}={vals[1]}"] = np.where(col.isna(), np.nan,
                                                 (col.astype(str) == vals[1]).astype(float))
            elif columns is not None and c in columns and len(vals) > 2:
                continue  # categorical with many levels: not used (state in docs)
    res = pd.DataFrame(out, index=df.index)
    res.index.name = "subject_id"
    return res


# --- the joined cohort ----------------------------------------------------------------------------
@dataclass
class CohortData:
    """Everything a study needs, joined by ``subject_id`` (see the module docstring)."""

    subjects: pd.DataFrame  # index subject_id, the subject table (all columns)
    labels: Labels
    slices: pd.DataFrame | None  # long slice-level table (rows of labelled subjects)
    patients: pd.DataFrame | None  # wide patient table, index subject_id, <region>_<feature>
    clinical: pd.DataFrame  # index subject_id, numeric clinical variables (non-radiomics)
    features: list[str]  # radiomics feature names (without region prefix)
    regions: list[str]
    preset: str = ""
    nan_rule: str = CLASSIFICATION.nan_rule
    notes: list[str] = field(default_factory=list)

    @property
    def y(self) -> pd.Series:
        return self.labels.y

    @property
    def classes(self) -> list[str]:
        return self.labels.classes

    @property
    def subject_ids(self) -> np.ndarray:
        return np.asarray(self.labels.y.index)

    def group_columns(self, group: str | Sequence[str]) -> list[str]:
        """Columns of a named feature group.

        ``"non-radiomics"`` / ``"clinical"``: the clinical variables; a region code (``"MT"``) or
        a ``+``-joined list (``"MT+AT"``): those regions' patient-level features; a list of
        names: those columns (patient-table or clinical).
        """
        if isinstance(group, str):
            if group in ("non-radiomics", "clinical"):
                return list(self.clinical.columns)
            codes = [g.strip() for g in group.split("+")]
            unknown = [c for c in codes if c not in self.regions]
            if unknown:
                raise InputError(f"feature group {group!r}: region(s) {unknown} not in the "
                                 f"radiomics tables (regions: {self.regions})")
            if self.patients is None:
                raise InputError(f"feature group {group!r} needs the patient-level table")
            return [f"{c}_{f}" for c in codes for f in self.features
                    if f"{c}_{f}" in self.patients.columns]
        cols = list(group)
        avail = set(self.clinical.columns) | set(
            self.patients.columns if self.patients is not None else [])
        missing = [c for c in cols if c not in avail]
        if missing:
            raise InputError(f"feature group: column(s) {missing[:10]} are in neither the "
                             "patient-level table nor the subject table")
        return cols

    def patient_matrix(self, columns: Sequence[str], ids: Sequence[str] | None = None,
                       nan_rule: str | None = None) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, int]:
        """``(X, y, ids, n_dropped)`` of the subjects ``ids`` (default all) on ``columns``."""
        ids = self.subject_ids if ids is None else np.asarray(ids)
        parts = []
        rad = [c for c in columns if self.patients is not None and c in self.patients.columns]
        clin = [c for c in columns if c not in rad]
        if rad:
            parts.append(self.patients.reindex(ids)[rad])
        if clin:
            parts.append(self.clinical.reindex(ids)[clin])
        X = pd.concat(parts, axis=1)[list(columns)] if parts else pd.DataFrame(index=ids)
        X = X.replace([np.inf, -np.inf], np.nan)
        X.index.name = "subject_id"
        keep = np.ones(len(X), bool)
        if (nan_rule or self.nan_rule) == "drop":
            keep = ~X.isna().any(axis=1).to_numpy()
        X = X[keep]
        ids = ids[keep]
        return X, self.labels.y.reindex(ids).to_numpy(), ids, int((~keep).sum())

    def image_matrix(self, region: str, ids: Sequence[str] | None = None,
                     nan_rule: str | None = None) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, int]:
        """``(X, y, groups, n_dropped)``: the slices of ``region`` of subjects ``ids``, sorted by
        subject and slice. ``X`` has the region's feature columns (plain feature names);
        ``groups`` is each row's subject id. Slices with a ``reason`` (region absent or too
        small) or NaN features are dropped under the ``"drop"`` rule."""
        if self.slices is None:
            raise InputError("image-level models need the slice-level table")
        if region not in self.regions:
            raise InputError(f"region {region!r} is not in the slice-level table "
                             f"(regions: {self.regions})")
        ids = self.subject_ids if ids is None else np.asarray(ids)
        t = self.slices[(self.slices["region"] == region)
                        & self.slices["subject_id"].isin(set(ids.tolist()))]
        t = t.sort_values(["subject_id", "scan_id", "slice"], kind="stable")
        X = t[self.features].astype(np.float64).replace([np.inf, -np.inf], np.nan)
        keep = np.ones(len(t), bool)
        if (nan_rule or self.nan_rule) == "drop":
            keep = t["reason"].isna().to_numpy() & ~X.isna().any(axis=1).to_numpy()
        X = X[keep]
        X.index = pd.MultiIndex.from_frame(t.loc[keep, ["subject_id", "scan_id", "slice"]])
        groups = t.loc[keep, "subject_id"].to_numpy()
        return X, self.labels.y.reindex(groups).to_numpy(), groups, int((~keep).sum())


def load_cohort(
    slices: str | os.PathLike | pd.DataFrame | None = None,
    patients: str | os.PathLike | pd.DataFrame | None = None,
    subjects: str | os.PathLike | pd.DataFrame | None = None,
    *,
    scheme: str = "binary",
    t_score: str | None = "t_score_fn",
    label: str | None = None,
    clinical: Sequence[str] | None = None,
    measures: bool = False,
    nan_rule: str = CLASSIFICATION.nan_rule,
    params: Classification = CLASSIFICATION,
) -> CohortData:
    """Load and join the tables (module docstring). Either table may be missing, not both.

    ``patients`` defaults to the aggregate of ``slices`` (mean over slices) when only the
    slice-level table is given. ``clinical``: the non-radiomics columns (default: every numeric
    subject-table column except ids, labels, T-scores/BMD and synthetic truth, see
    :data:`NON_CLINICAL`).
    """
    from ..radiomics.tables import aggregate

    if nan_rule not in ("drop", "impute"):
        raise InputError(f"NaN rule {nan_rule!r}: choose 'drop' or 'impute'")
    if slices is None and patients is None:
        raise InputError("give the slice-level table, the patient-level table, or both")
    notes: list[str] = []
    sl = None
    if slices is not None:
        sl = slices if isinstance(slices, pd.DataFrame) else load_slices(slices)
        if isinstance(slices, pd.DataFrame):
            sl = _check_long(slices.copy(), "slice-level", ("slice",))
    pa = None
    if patients is not None:
        pa = patients if not isinstance(patients, (str, os.PathLike)) else load_patients(patients)
        if isinstance(patients, pd.DataFrame):
            pa = _check_long(patients.copy(), "patient-level", ())
    elif sl is not None:
        keep = [c for c in sl.columns if c in ("subject_id", "scan_id", "slice", "region", "reason",
                                               *MEASURE_COLUMNS) or is_radiomics_feature(c)]
        pa = aggregate(sl[keep], by=["subject_id", "scan_id"])
        notes.append("patient-level features: mean over each scan's slices of the slice-level table")
    for t in (sl, pa):
        if t is not None and t.attrs.get("note"):
            notes.append(t.attrs["note"])

    if subjects is None:
        src = pa if pa is not None else sl
        cols = [c for c in src.columns if c not in _ID_COLUMNS and c not in MEASURE_COLUMNS
                and not is_radiomics_feature(c)]
        subj = src[["subject_id", *cols]].drop_duplicates("subject_id").reset_index(drop=True)
        subj.attrs["source"] = (src.attrs.get("source", "radiomics") + " (manifest variables)")
        notes.append("subject variables taken from the radiomics table (no subject table given)")
    else:
        subj = subjects if isinstance(subjects, pd.DataFrame) else load_subjects(subjects)
        if isinstance(subjects, pd.DataFrame):
            subj = subjects.copy()
            _require(subj, ["subject_id"], "subjects")
            _ids_as_str(subj, ("subject_id",))
    labels = make_labels(subj, scheme=scheme, t_score=t_score, label=label, params=params)

    known = set(labels.y.index)
    rad_ids: set[str] = set()
    for t, what in ((sl, "slice-level"), (pa, "patient-level")):
        if t is None:
            continue
        ids = set(t["subject_id"].unique())
        unknown = sorted(ids - known)
        if unknown:
            raise InputError(f"{_name(t, what)}: column 'subject_id' has id(s) {unknown[:10]} "
                             f"that are not in the {_name(subj, 'subjects')}")
        rad_ids |= ids
    lost = sorted(known - rad_ids)
    if lost:
        notes.append(f"{len(lost)} subject(s) without radiomics rows left out: {lost[:10]}"
                     + (" ..." if len(lost) > 10 else ""))
        labels = Labels(labels.y.drop(lost), labels.classes, labels.rule, labels.scheme)

    feats = feature_columns(sl if sl is not None else pa, measures=measures)
    if sl is not None and pa is not None:
        pf = set(feature_columns(pa, measures=measures))
        missing = [f for f in feats if f not in pf]
        if missing:
            raise InputError(f"{_name(pa, 'patient-level')}: lacks feature column(s) {missing[:5]} "
                             "of the slice-level table")
    regions = list(dict.fromkeys((sl if sl is not None else pa)["region"].astype(str)))
    wide = None
    if pa is not None:
        wide, n2 = patient_wide(pa, measures=measures)
        notes += n2
        wide = wide.reindex(labels.y.index)
    clin = clinical_matrix(subj, clinical).reindex(labels.y.index)
    preset = ""
    for t in (sl, pa):
        if t is not None and t.attrs.get("preset"):
            preset = t.attrs["preset"]
    subj_idx = subj.set_index(subj["subject_id"].astype(str)).reindex(labels.y.index)
    return CohortData(subjects=subj_idx, labels=labels, slices=sl, patients=wide, clinical=clin,
                      features=feats, regions=regions, preset=preset, nan_rule=nan_rule,
                      notes=notes)
