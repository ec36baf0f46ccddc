"""A trained osteoporosis model as one folder, and applying it to a new scan's features.

Folder layout::

    metadata.json        what the model is (below), with a SHA-256 checksum of its own content
    main.skops           the main (patient-level) pipeline: selection steps + classifier
    regions/<code>.skops the image-level (per-slice) model of each region, optional

``metadata.json``: format and version; title and notes (a demo model says it has seen phantoms
only); label rule and class meanings; the decision threshold (Youden, training data); for the
main model and each region model its input feature names **in order**, classifier, threshold, CV
and test AUROC, and the SHA-256 of its ``.skops`` file; the radiomics preset (name and digest);
training metrics; package versions; the trusted types; ``checksum``.

Safety: pipelines are stored with skops (no pickle). Loading first lists the types a file would
instantiate (``skops.io.get_untrusted_types``) and refuses the file unless every one of them is in
:data:`TRUSTED_TYPES` (scikit-learn's own types are trusted by skops itself), so a file that would
call an arbitrary function on load is refused before anything in it runs. A ``.skops`` file whose
SHA-256 differs from the metadata's, or a ``metadata.json`` whose checksum does not match its
content (an edited threshold, feature list or preset), is refused with a clear error. (The
checksum detects edits and corruption; it is not a signature.)

Applying (:func:`predict`): the scan's slice-level table (``hrpqct radiomics``) must hold exactly
the feature set of the model's preset and every feature the model uses; the patient-level features
are the mean over slices (as in training); clinical variables the main model needs are passed by
name. Returns per scan the probability, the class at the saved threshold, and each region model's
mean slice probability.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from ..errors import InputError, ModelError
from ..method import RADIOMICS

__all__ = ["TRUSTED_TYPES", "SavedModel", "save_model", "load_model", "predict", "Prediction",
           "check_features", "train_model", "bundled_classifier", "FORMAT"]

FORMAT = "hrpqct-classifier"
FORMAT_VERSION = 1

# Types a saved pipeline may contain beyond the ones skops trusts by default. Explicit on purpose:
# anything else in a file (a function such as os.system, another package's class) is refused.
TRUSTED_TYPES = (
    "hrpqct.classify.selection.VarianceFilter",
    "hrpqct.classify.selection.CorrelationFilter",
    "hrpqct.classify.selection.LassoSelector",
    "hrpqct.classify.selection.LassoRadscore",
    "hrpqct.classify.selection.MRMR",
    "hrpqct.classify.selection.RFESelector",
    "numpy.dtype",
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
    "sklearn.metrics._dist_metrics.EuclideanDistance64",
    "sklearn.neighbors._kd_tree.KDTree",
    "sklearn.neighbors._ball_tree.BallTree",
    "sklearn.tree._tree.Tree",
    "xgboost.core.Booster",
    "xgboost.sklearn.XGBClassifier",
)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _checksum(meta: dict) -> str:
    body = {k: v for k, v in meta.items() if k != "checksum"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":"),
                                     ensure_ascii=True).encode()).hexdigest()


def _versions() -> dict:
    import sklearn
    import skops

    out = {"python": platform.python_version(), "numpy": np.__version__,
           "pandas": pd.__version__, "scikit-learn": sklearn.__version__,
           "skops": skops.__version__}
    try:
        from importlib.metadata import version

        out["hrpqct"] = version("hrpqct")
    except Exception:  # noqa: BLE001
        out["hrpqct"] = "unknown"
    try:
        import xgboost

        out["xgboost"] = xgboost.__version__
    except ImportError:
        pass
    return out


def _dump(pipeline, path: Path) -> str:
    import skops.io as sio

    from ..io import atomic_path

    data = sio.dumps(pipeline)
    extra = sorted(set(sio.get_untrusted_types(data=data)) - set(TRUSTED_TYPES))
    if extra:
        raise ModelError(f"cannot save {path.name}: the pipeline holds types outside the trusted "
                         f"list {extra}; add them to hrpqct.classify.model.TRUSTED_TYPES only if "
                         "they are safe")
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return _sha256(path)


def _load_skops(path: Path, sha: str | None):
    import zipfile

    import skops.io as sio

    if not path.is_file():
        raise ModelError(f"{path}: model file missing")
    if sha is not None and _sha256(path) != sha:
        raise ModelError(f"{path}: file differs from the one the metadata describes (SHA-256 "
                         "mismatch); the model folder was modified")
    try:
        untrusted = sio.get_untrusted_types(file=path)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise ModelError(f"{path}: not a skops file ({exc}); pickle files are never loaded") from None
    bad = sorted(set(untrusted) - set(TRUSTED_TYPES))
    if bad:
        raise ModelError(f"{path}: refused, it would load untrusted type(s) {bad} (code could run "
                         "on load)")
    return sio.load(path, trusted=sorted(untrusted))


@dataclass
class SavedModel:
    """A loaded model folder."""

    folder: Path
    metadata: dict
    main: object
    regions: dict[str, object] = field(default_factory=dict)

    @property
    def classes(self) -> list[str]:
        return list(self.metadata["classes"])

    @property
    def threshold(self) -> float | None:
        return self.metadata["main"]["threshold"]


def save_model(folder: str | os.PathLike, main, regions: Mapping[str, object] | None = None, *,
               preset: str = RADIOMICS.preset, title: str = "HR-pQCT osteoporosis model",
               notes: Sequence[str] = (), label_rule: str = "", training: dict | None = None,
               clinical_use: bool = False) -> Path:
    """Write a model folder (module docstring). ``main`` and each ``regions[code]`` are
    :class:`hrpqct.classify.study.FittedModel` objects (pipeline, features, threshold, ...).
    ``preset``: the radiomics preset the training features came from (name or file)."""
    from ..io import atomic_path
    from ..radiomics.presets import load_preset

    out = Path(folder)
    if out.exists() and any(out.iterdir()):
        if not (out / "metadata.json").is_file():
            raise InputError(f"{out}: exists and is not a model folder; choose an empty folder")
        shutil.rmtree(out)
    (out / "regions").mkdir(parents=True, exist_ok=True)
    p = load_preset(preset)

    def entry(fm, file: str) -> dict:
        sha = _dump(fm.pipeline, out / file)
        return {"file": file, "sha256": sha, "name": fm.name, "level": fm.level,
                "feature_group": fm.feature_group, "classifier": fm.classifier,
                "features": list(fm.features), "threshold": fm.threshold,
                "cv_auroc": _f(fm.cv_auroc), "test_auroc": _f(fm.test_auroc)}

    meta = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "title": title,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "clinical_use": bool(clinical_use), "notes": list(notes),
        "classes": list(main.classes), "label_rule": label_rule,
        "preset": {"name": p.name, "digest": p.digest, "features": len(p.feature_names())},
        "main": entry(main, "main.skops"),
        "regions": {code: entry(fm, f"regions/{code}.skops") for code, fm in (regions or {}).items()},
        "training": training or {},
        "versions": _versions(),
        "trusted_types": list(TRUSTED_TYPES),
    }
    meta["checksum"] = _checksum(meta)
    with atomic_path(out / "metadata.json") as tmp:
        tmp.write_text(json.dumps(meta, indent=1), encoding="utf-8")
    return out


def _f(v):
    v = float(v)
    return v if np.isfinite(v) else None


def load_model(folder: str | os.PathLike) -> SavedModel:
    """Load a model folder, refusing unsafe files and edited metadata (module docstring)."""
    folder = Path(folder)
    mf = folder / "metadata.json"
    if not mf.is_file():
        raise ModelError(f"{folder}: not a model folder (no metadata.json)")
    try:
        meta = json.loads(mf.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ModelError(f"{mf}: not valid JSON ({exc})") from None
    if meta.get("format") != FORMAT:
        raise ModelError(f"{mf}: not an HRpQCT classifier (format {meta.get('format')!r})")
    if meta.get("format_version", 0) > FORMAT_VERSION:
        raise ModelError(f"{mf}: format version {meta['format_version']} is newer than this "
                         f"hrpqct reads ({FORMAT_VERSION}); update hrpqct")
    if meta.get("checksum") != _checksum(meta):
        raise ModelError(f"{mf}: refused, the metadata was edited after the model was saved "
                         "(checksum mismatch)")
    main = _load_skops(folder / meta["main"]["file"], meta["main"]["sha256"])
    regions = {code: _load_skops(folder / e["file"], e["sha256"])
               for code, e in meta.get("regions", {}).items()}
    return SavedModel(folder=folder, metadata=meta, main=main, regions=regions)


# --- applying -------------------------------------------------------------------------------
@dataclass
class Prediction:
    """One scan's prediction."""

    scan_id: str
    probability: float | list[float]  # positive-class probability (binary) or all classes
    label: str  # class at the saved threshold (binary) or the most probable class
    threshold: float | None
    regions: dict[str, dict] = field(default_factory=dict)  # code -> probability, label, n_slices
    classes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"scan_id": self.scan_id, "probability": self.probability, "class": self.label,
                "threshold": self.threshold, "classes": self.classes, "regions": self.regions}


def _label(p: np.ndarray, classes, threshold):
    if len(classes) == 2:
        t = 0.5 if threshold is None else threshold
        return classes[1] if p[1] >= t else classes[0]
    return classes[int(np.argmax(p))]


def check_features(model: SavedModel, slices: pd.DataFrame, preset: str | None = None) -> None:
    """Refuse a table made with another preset or lacking features the model uses."""
    from .data import feature_columns, is_radiomics_feature

    meta = model.metadata
    want = meta["preset"]
    if preset is not None:
        from ..radiomics.presets import load_preset

        p = load_preset(preset)
        if p.digest != want["digest"]:
            raise InputError(f"features were computed with preset {p.name!r} ({p.digest[:12]}), "
                             f"the model with {want['name']!r} ({want['digest'][:12]}); recompute "
                             f"them with --preset {want['name']}")
    feats = feature_columns(slices)
    if len(feats) != want["features"]:
        raise InputError(f"the table has {len(feats)} radiomics features, the model's preset "
                         f"{want['name']!r} has {want['features']}: it was not made with that "
                         f"preset (hrpqct radiomics --preset {want['name']})")
    regions = set(slices["region"].astype(str))
    need = set()
    for code, e in meta["regions"].items():
        need |= {(code, f) for f in e["features"]}
    for f in meta["main"]["features"]:
        code, _, name = f.partition("_")
        if is_radiomics_feature(name):
            need.add((code, name))
    missing_regions = sorted({c for c, _ in need} - regions)
    if missing_regions:
        raise InputError(f"the table has no rows of region(s) {missing_regions} that the model uses")
    missing = sorted({f for _, f in need} - set(feats))
    if missing:
        raise InputError(f"the table lacks feature column(s) {missing[:5]} that the model uses")


def predict(model: SavedModel, slices: pd.DataFrame, clinical: Mapping[str, float] | None = None,
            preset: str | None = None) -> list[Prediction]:
    """Apply a model to a slice-level table (one or more scans, ``scan_id`` column): one
    :class:`Prediction` per scan (module docstring). ``preset``: the preset the table was made
    with, when known (checked against the model's)."""
    from ..radiomics.tables import aggregate, to_wide
    from .data import feature_columns, is_radiomics_feature

    check_features(model, slices, preset)
    meta = model.metadata
    classes = meta["classes"]
    t = slices.copy()
    if "scan_id" not in t.columns:
        t.insert(0, "scan_id", "scan")
    t["scan_id"] = t["scan_id"].astype(str)
    feats = feature_columns(t)
    main_feats = meta["main"]["features"]
    rad_cols = [f for f in main_feats if is_radiomics_feature(f.partition("_")[2])]
    clin_cols = [f for f in main_feats if f not in rad_cols]
    clinical = dict(clinical or {})
    missing = [c for c in clin_cols if c not in clinical]
    if missing:
        raise InputError(f"the model needs the clinical variable(s) {missing}; pass them "
                         "(e.g. --clinical age=70)")
    keep = [c for c in t.columns if c in ("scan_id", "slice", "region", "reason", "n_pixels",
                                          "area_mm2", "volume_mm3", "mean_HU", "sd_HU",
                                          "mean_mgHA_ccm") or c in set(feats)]
    agg = aggregate(t[keep], by=["scan_id"])
    wide = to_wide(agg, by=("scan_id",), columns=feats).set_index("scan_id")
    out = []
    for scan_id in dict.fromkeys(t["scan_id"]):
        row = {}
        for c in rad_cols:
            row[c] = wide.loc[scan_id, c] if c in wide.columns else np.nan
        for c in clin_cols:
            row[c] = float(clinical[c])
        X = pd.DataFrame([row], columns=main_feats, dtype=float)
        if X.isna().any().any():
            bad = X.columns[X.isna().iloc[0]].tolist()
            raise InputError(f"scan {scan_id}: no value for {bad[:5]} (region absent on every "
                             "slice?)")
        p = model.main.predict_proba(X)[0]
        regs = {}
        for code, pipe in model.regions.items():
            e = meta["regions"][code]
            rows = t[(t["scan_id"] == scan_id) & (t["region"] == code) & t["reason"].isna()]
            Xr = rows[e["features"]].astype(float)
            Xr = Xr[~Xr.isna().any(axis=1)]
            if len(Xr) == 0:
                regs[code] = {"probability": None, "class": None, "n_slices": 0}
                continue
            pr = pipe.predict_proba(Xr).mean(axis=0)
            regs[code] = {"probability": float(pr[-1]) if len(classes) == 2 else pr.tolist(),
                          "class": _label(pr, classes, e["threshold"]), "n_slices": int(len(Xr)),
                          "cv_auroc": e.get("cv_auroc"), "test_auroc": e.get("test_auroc")}
        out.append(Prediction(scan_id=scan_id,
                              probability=float(p[-1]) if len(classes) == 2 else p.tolist(),
                              label=_label(p, classes, meta["main"]["threshold"]),
                              threshold=meta["main"]["threshold"], regions=regs,
                              classes=list(classes)))
    return out


def train_model(cohort, folder: str | os.PathLike, *, main_group: tuple[str, str] = (
                    "radiomics soft tissue (MT+AT)", "MT+AT"),
                main_classifier: str = "logreg", region_classifier: str | None = "logreg",
                regions: Sequence[str] | None = None, config=None, title: str | None = None,
                notes: Sequence[str] = (), preset: str | None = None, progress=None):
    """Fit a study on ``cohort`` (:func:`hrpqct.classify.study.fit_study`) whose main model is
    ``main_classifier`` on the patient-level group ``main_group`` (name, group) and whose region
    models are ``region_classifier`` per region, and save them as a model folder. Returns
    ``(study, folder)``; the study holds every model's test results."""
    from dataclasses import replace

    from .study import StudyConfig, fit_study

    cfg = config or StudyConfig()
    name, group = main_group
    groups = dict(cfg.groups())
    groups[name] = group
    cfg = replace(cfg, patient_groups=groups,
                  patient_classifiers=tuple(dict.fromkeys([*cfg.patient_classifiers, main_classifier])),
                  classifiers=(region_classifier,) if region_classifier else (),
                  image_level=bool(region_classifier) and cfg.image_level,
                  regions=regions if regions is not None else cfg.regions)
    study, fitted = fit_study(cohort, cfg, progress=progress)
    main = fitted[f"patient / {name} / {main_classifier}"]
    regs = {fm.feature_group: fm for fm in fitted.values()
            if fm.level == "image" and fm.classifier == region_classifier}
    m = study.model(main.name)
    training = {"n_patients_train": study.n_patients_train, "n_patients_test": study.n_patients_test,
                "seed": study.seed, "main_cv_auroc": _f(m.cv_auroc_mean),
                "main_test_auroc": _f(main.test_auroc), "notes": list(study.notes)}
    preset = preset or (cohort.preset.split(":")[0] if cohort.preset else RADIOMICS.preset)
    save_model(folder, main, regs, preset=preset, title=title or cfg.title, notes=notes,
               label_rule=cohort.labels.rule, training=training)
    return study, Path(folder)


def bundled_classifier(id: str | None = None) -> dict | None:
    """The catalogue entry (``Resources/models/catalog.json``, key ``classifiers``) of a bundled
    classifier, with ``path`` (and ``study_path``) resolved; the default one when ``id`` is None;
    ``None`` when it is not installed."""
    from ..seg.model import _models_dir

    d = _models_dir()
    try:
        cat = json.loads((d / "catalog.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    want = id or cat.get("default_classifier")
    for e in cat.get("classifiers", []):
        if e.get("id") == want and (d / e.get("folder", "")).is_dir():
            out = dict(e)
            out["path"] = d / e["folder"]
            out["study_path"] = d / e["study"] if e.get("study") else None
            return out
    return None
