"""Radiomics and classification results of the open scan, as the page shows them.

* :func:`resolve_classifier`: ``--classifier`` (a model folder or a catalogue id of
  ``Resources/models/catalog.json``) -> the model folder; ``None`` -> the bundled demo classifier.
* :class:`AnalysisResult`: the slice-level radiomics table of the open scan
  (:func:`hrpqct.radiomics.tables.extract_scan`, run by the radiomics worker as ``hrpqct
  radiomics`` does), its per-scan table (:func:`~hrpqct.radiomics.tables.aggregate`), and the
  prediction of a saved classifier (:func:`hrpqct.classify.model.predict`) or the message why
  there is none (a model made for other features, a missing clinical variable, ...).
* :func:`feature_summary` (a few key features per region), :func:`prediction_rows` (probability,
  class and threshold of the patient-level model and of every region model) and
  :func:`probability_png` (a bar plot of those probabilities with the threshold line).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np
import pandas as pd

from hrpqct.errors import InputError

__all__ = ["KEY_FEATURES", "DEMO_WARNING", "AnalysisResult", "resolve_classifier",
           "feature_summary", "prediction_rows", "probability_png", "parse_clinical"]

#: Columns of the per-scan table shown per region: (column, heading, decimals).
KEY_FEATURES: tuple[tuple[str, str, int], ...] = (
    ("n_slices", "slices", 0),
    ("volume_mm3", "volume mm³", 1),
    ("mean_HU", "mean HU", 0),
    ("sd_HU", "SD HU", 0),
    ("original_firstorder_Entropy", "entropy", 2),
    ("original_glcm_Contrast", "GLCM contrast", 1),
)

DEMO_WARNING = ("The bundled demo classifier has only seen synthetic phantoms: it is not a "
                "clinical model and says nothing about a real patient.")


def parse_clinical(text: str) -> dict[str, float]:
    """``"age=70, bmi=24.5"`` -> ``{"age": 70.0, "bmi": 24.5}`` (commas or spaces between)."""
    out: dict[str, float] = {}
    for item in str(text or "").replace(",", " ").split():
        k, sep, v = item.partition("=")
        try:
            if not sep or not k:
                raise ValueError
            out[k.strip()] = float(v)
        except ValueError:
            raise InputError(f"clinical values {item!r}: use NAME=NUMBER, e.g. age=70") from None
    return out


def resolve_classifier(spec: Optional[str | os.PathLike]) -> Path:
    """A classifier folder from ``spec``: an existing folder, or the id of a bundled classifier
    (``Resources/models/catalog.json``, key ``classifiers``); ``None``: the default one."""
    from hrpqct.classify.model import bundled_classifier

    if spec is not None and Path(spec).expanduser().is_dir():
        return Path(spec).expanduser().resolve()
    entry = bundled_classifier(None if spec is None else str(spec))
    if entry is None:
        what = "the bundled demo classifier is not installed" if spec is None else \
            f"--classifier {spec}: neither a model folder nor a bundled classifier id"
        raise InputError(f"{what} (see docs/classification.md)")
    return Path(entry["path"])


@dataclass
class AnalysisResult:
    """What "Radiomics + classify" found for the open scan."""

    slices: pd.DataFrame  # slice-level table (one row per slice and region)
    patient: pd.DataFrame  # per-scan table (one row per region)
    slice_file: Optional[Path] = None
    model_folder: Optional[Path] = None
    model_title: str = ""
    clinical_use: bool = False
    prediction: Any = None  # hrpqct.classify.model.Prediction, or None
    error: str = ""  # why there is no prediction
    notes: list[str] = field(default_factory=list)
    metadata: dict = field(default_factory=dict)  # the classifier's metadata.json

    @property
    def demo_model(self) -> bool:
        return not self.clinical_use


def feature_summary(patient: pd.DataFrame) -> list[dict]:
    """One dict per region of the per-scan table: ``region`` and the :data:`KEY_FEATURES`
    (numbers; NaN where the region had no features)."""
    rows = []
    for _, r in patient.iterrows():
        row = {"region": str(r["region"])}
        for col, _, _ in KEY_FEATURES:
            row[col] = float(r[col]) if col in patient.columns and pd.notna(r[col]) else float("nan")
        rows.append(row)
    return rows


def prediction_rows(prediction, metadata: Optional[dict] = None) -> list[dict]:
    """The prediction as table rows: the patient-level model first, then every region model
    (mean of its slice probabilities): ``model``, ``probability`` (of the last class; ``None``
    when the region had no usable slice), ``class``, ``threshold``, ``n_slices``."""
    meta = metadata or {}
    main = meta.get("main", {})

    def pos(p):
        if p is None:
            return None
        return float(p if np.isscalar(p) else p[-1])

    rows = [{"model": f"patient level: {main.get('feature_group') or 'main model'}",
             "key": "patient", "probability": pos(prediction.probability),
             "class": prediction.label, "threshold": prediction.threshold,
             "n_slices": None}]
    for code, r in prediction.regions.items():
        rows.append({"model": f"region {code} (mean over slices)", "key": code,
                     "probability": pos(r.get("probability")), "class": r.get("class"),
                     "threshold": meta.get("regions", {}).get(code, {}).get("threshold"),
                     "n_slices": r.get("n_slices")})
    return rows


def probability_png(rows: list[dict], positive: str = "osteoporosis", title: str = "",
                    dpi: int = 100) -> bytes:
    """PNG bytes of a horizontal bar plot: one bar per model row (:func:`prediction_rows`), the
    patient-level model highlighted, each model's threshold as a vertical line on its bar and
    the patient-level threshold as a dashed line across the plot."""
    from matplotlib.figure import Figure

    from hrpqct.classify.plots import to_png

    shown = [r for r in rows if r["probability"] is not None]
    fig = Figure(figsize=(4.2, 0.45 * max(len(shown), 1) + 1.0))
    ax = fig.subplots()
    labels = [r["model"].replace(" (mean over slices)", "") for r in shown]
    y = np.arange(len(shown))[::-1]
    colors = ["#d62728" if r["key"] == "patient" else "#1f77b4" for r in shown]
    ax.barh(y, [r["probability"] for r in shown], color=colors, height=0.6)
    for yi, r in zip(y, shown):
        if r["threshold"] is not None:
            ax.plot([r["threshold"]] * 2, [yi - 0.35, yi + 0.35], color="black", lw=1.5)
        ax.text(min(r["probability"] + 0.02, 0.86), yi, f"{r['probability']:.3f}", va="center",
                fontsize=8)
    main = next((r for r in shown if r["key"] == "patient"), None)
    if main is not None and main["threshold"] is not None:
        ax.axvline(main["threshold"], color="black", ls="--", lw=1,
                   label=f"threshold {main['threshold']:.3f}")
        ax.legend(loc="lower right", fontsize=7, frameon=False)
    ax.set_yticks(y, labels, fontsize=8)
    ax.set_xlim(0, 1)
    ax.set_xlabel(f"P({positive})", fontsize=9)
    ax.tick_params(axis="x", labelsize=8)
    if title:
        ax.set_title(title, fontsize=9)
    return to_png(fig, dpi=dpi)
