"""What the HRpQCTClassify module does, below its widget: a saved osteoporosis model applied to a
scan's radiomics features, shown as a table node and a bar chart.

:func:`classify` is the one call the panel's Apply, the self-test and the Python console make::

    from hrpqct_slicer.classify_logic import classify
    result = classify(slicer.mrmlScene, getNode("scan radiomics"), None)  # None: bundled demo
    print(result)                    # one line: probability, threshold, class
    result.prediction.as_dict()      # hrpqct.classify.model.Prediction

``features`` is the table node HRpQCTRadiomics makes (:func:`.radiomics_logic.features_table_node`:
one row per feature, one column per region; the node records the slice-level table it was made
from, attribute :data:`SLICE_FILE_ATTRIBUTE`, and the radiomics preset,
:data:`PRESET_ATTRIBUTE`) or a pandas DataFrame: a slice-level table (``hrpqct radiomics``
output: ``region``, ``slice``, features) or a per-scan table (one row per region, or the node's
wide form). With slice-level features every model runs exactly as
:func:`hrpqct.classify.model.predict` (the patient-level model on the mean over slices, each
region model on every slice, averaged). A per-scan table has only the means: the patient-level
model runs (its inputs are those means), the region models cannot (they were trained on slices)
and are listed as not run, with a warning.

Results (:class:`ClassifyResults`): a ``vtkMRMLTableNode`` with one row for the patient-level
model and one per region model (probability of the positive class, decision threshold, class,
slices used, cross-validated and test AUROC from training) and a ``vtkMRMLPlotChartNode`` of
those probabilities as bars, each model's threshold as a marker and the patient-level decision
threshold as a horizontal line. The table and chart titles say what the model has seen: the
bundled demo model has only seen synthetic phantoms.

A model folder that is not a safe, unedited model (:func:`hrpqct.classify.model.load_model`)
raises :class:`hrpqct.errors.ModelError`; features of another preset, or lacking regions or
feature names the model uses, raise :class:`hrpqct.errors.InputError`. Both are one-line
messages that the panel shows in its status line.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping, Optional

import numpy as np
import pandas as pd

from hrpqct.errors import InputError, ModelError

__all__ = ["ClassifyResults", "classify", "resolve_model_folder", "features_dataframe",
           "prediction_frame", "SLICE_FILE_ATTRIBUTE", "PRESET_ATTRIBUTE", "DEMO_NOTE"]

#: table-node attribute (set by HRpQCTRadiomics) naming the slice-level features file
SLICE_FILE_ATTRIBUTE = "HRpQCT.sliceFeatures"
#: table-node attribute (set by HRpQCTRadiomics) naming the radiomics preset (name or file)
PRESET_ATTRIBUTE = "HRpQCT.preset"
DEMO_NOTE = "bundled DEMO model: it has only seen synthetic phantoms, not for clinical use"
NOT_CLINICAL_NOTE = "research model, not for clinical use"
PATIENT_ROW = "patient"


@dataclass
class ClassifyResults:
    """The nodes :func:`classify` made and the prediction they show."""

    table: Any  # vtkMRMLTableNode: one row per model (patient, then regions)
    chart: Any  # vtkMRMLPlotChartNode
    bars: Any  # vtkMRMLPlotSeriesNode: probability per model
    threshold_line: Any  # vtkMRMLPlotSeriesNode: the patient-level decision threshold
    threshold_markers: Any  # vtkMRMLPlotSeriesNode: each model's own threshold
    prediction: Any  # hrpqct.classify.model.Prediction
    frame: pd.DataFrame  # what the table node holds
    model_folder: Path
    title: str
    demo: bool
    warnings: list = field(default_factory=list)

    def __str__(self) -> str:
        p = self.prediction
        t = "0.5" if p.threshold is None else f"{p.threshold:.3f}"
        prob = p.probability if isinstance(p.probability, float) else max(p.probability)
        text = f"{p.label}: probability {prob:.3f} (threshold {t})"
        if self.demo:
            text += f"; {DEMO_NOTE}"
        for w in self.warnings:
            text += f"; {w}"
        return text


def resolve_model_folder(model_folder: Optional[str | os.PathLike]) -> tuple[Path, bool]:
    """The model folder to load and whether it is the bundled demo classifier. ``None`` or ``""``:
    the bundled default classifier (``Resources/models/catalog.json``)."""
    from hrpqct.classify.model import bundled_classifier

    entry = bundled_classifier()
    if model_folder in (None, ""):
        if entry is None:
            raise ModelError("no model folder chosen and no bundled demo classifier is installed "
                             "(Resources/models/demo-classifier); choose a model folder")
        return Path(entry["path"]), True
    folder = Path(model_folder)
    if not folder.is_dir():
        raise ModelError(f"{folder}: model folder not found")
    demo = entry is not None and folder.resolve() == Path(entry["path"]).resolve()
    return folder, demo


def _wide_to_long(df: pd.DataFrame) -> pd.DataFrame:
    """The node's form (``feature`` column, one column per region) as one row per region."""
    values = df.set_index("feature")
    long = values.T
    long.index.name = "region"
    long.columns = [str(c) for c in long.columns]
    return long.reset_index()


def features_dataframe(features: Any) -> tuple[pd.DataFrame, Optional[str], bool, str]:
    """``(table, preset, slice_level, name)`` from a table node or a DataFrame (module docstring).
    A node that records its slice-level file is read from that file."""
    from hrpqct.classify.data import read_table

    preset = None
    if isinstance(features, pd.DataFrame):
        df, name = features, "features"
    else:
        if features is None or not hasattr(features, "GetTable"):
            raise InputError("choose the scan's radiomics feature table (from HRpQCT Radiomics)")
        from .tables import table_node_to_dataframe

        name = features.GetName() or "features"
        preset = features.GetAttribute(PRESET_ATTRIBUTE) or None
        path = features.GetAttribute(SLICE_FILE_ATTRIBUTE) or ""
        if path and Path(path).is_file():
            return read_table(path, f"slice-level features of {name!r}"), preset, True, name
        df = table_node_to_dataframe(features)
    if "feature" in df.columns and "region" not in df.columns:
        df = _wide_to_long(df)
    if "region" not in df.columns:
        raise InputError(f"table {name!r}: not a radiomics feature table (no 'region' column and "
                         "no 'feature' column); compute it with HRpQCT Radiomics")
    df = df.copy()
    df["region"] = df["region"].astype(str)
    if "scan_id" in df.columns and df["scan_id"].astype(str).nunique() > 1:
        raise InputError(f"table {name!r} holds {df['scan_id'].nunique()} scans; classify one "
                         "scan at a time")
    slice_level = "slice" in df.columns
    if not slice_level:  # per-scan means: one pseudo-slice per region
        if df["region"].duplicated().any():
            raise InputError(f"table {name!r}: region(s) listed twice and no 'slice' column")
        df.insert(0, "slice", 0)
    if "reason" not in df.columns:
        df["reason"] = np.nan
    return df, preset, slice_level, name


def prediction_frame(pred: Any, model: Any) -> pd.DataFrame:
    """One row per model: ``model`` (``patient`` or the region code), ``level``, ``probability``,
    ``threshold``, ``class``, ``n_slices``, ``cv_auroc``, ``test_auroc``, ``x`` (bar position).
    Probabilities are of the positive class (the second of the model's classes); NaN when a
    region model could not run."""
    from hrpqct.regions import region

    meta = model.metadata
    main = meta["main"]
    prob = pred.probability if isinstance(pred.probability, float) else float("nan")
    rows = [{"model": PATIENT_ROW, "level": "patient (mean over slices)", "probability": prob,
             "threshold": _num(pred.threshold, 0.5), "class": pred.label,
             "n_slices": int(-1), "cv_auroc": _num(meta.get("training", {}).get("main_cv_auroc")),
             "test_auroc": _num(main.get("test_auroc"))}]
    for code, e in meta.get("regions", {}).items():
        r = pred.regions.get(code) or {}
        p = r.get("probability")
        try:
            label = region(code).name
        except Exception:  # noqa: BLE001 - a model may use a band or another region name
            label = code
        rows.append({"model": code, "level": f"region: {label} (slices, averaged)",
                     "probability": float(p) if isinstance(p, (int, float)) else float("nan"),
                     "threshold": _num(e.get("threshold"), 0.5),
                     "class": r.get("class") or "not run",
                     "n_slices": int(r.get("n_slices", 0)), "cv_auroc": _num(e.get("cv_auroc")),
                     "test_auroc": _num(e.get("test_auroc"))})
    df = pd.DataFrame(rows)
    df["n_slices"] = df["n_slices"].astype("int32")
    df.insert(0, "x", np.arange(len(df), dtype=np.float64))
    return df


def _num(v, default=float("nan")) -> float:
    return float(default) if v is None else float(v)


def _title(model: Any, demo: bool) -> str:
    title = str(model.metadata.get("title") or model.folder.name)
    if demo:
        return f"{title} - {DEMO_NOTE}"
    if not model.metadata.get("clinical_use", False):
        return f"{title} - {NOT_CLINICAL_NOTE}"
    return title


def classify(scene: Any, features: Any, model_folder: Optional[str | os.PathLike] = None, *,
             clinical: Optional[Mapping[str, float]] = None, name: Optional[str] = None,
             show: bool = False) -> ClassifyResults:
    """Apply a model folder (``None``: the bundled demo classifier) to a scan's features and add
    the table and chart nodes to ``scene`` (module docstring). ``clinical``: values of clinical
    variables the model uses, by name. ``show``: also show the chart in Slicer's layout (needs
    the Slicer application). Raises :class:`ModelError`/:class:`InputError` (one line)."""
    import slicer

    from hrpqct.classify.model import load_model, predict

    from .tables import dataframe_to_table_node

    folder, demo = resolve_model_folder(model_folder)
    model = load_model(folder)  # refuses unsafe files and edited metadata (ModelError)
    table, preset, slice_level, table_name = features_dataframe(features)
    warnings: list[str] = []
    use = model
    if not slice_level and model.regions:
        use = replace(model, regions={}, metadata={**model.metadata, "regions": {}})
        warnings.append("per-scan features only: the region models (trained on slices) were "
                        "not run; use the table HRpQCT Radiomics makes")
    try:
        preds = predict(use, table, clinical=clinical, preset=preset)
    except InputError as exc:
        raise InputError(f"model {folder.name!r} cannot classify {table_name!r}: {exc}") from None
    pred = preds[0]
    if use is not model:  # list the region models as not run
        pred.regions = {code: {"probability": None, "class": None, "n_slices": 0}
                        for code in model.metadata.get("regions", {})}
    frame = prediction_frame(pred, model)
    title = _title(model, demo)
    base = name or f"{table_name} classification" + (" (DEMO model, synthetic phantoms only)"
                                                       if demo else "")
    node = dataframe_to_table_node(scene, frame, name=base)
    node.SetAttribute("HRpQCT.model", str(folder))
    node.SetAttribute("HRpQCT.title", title)
    node.SetDescription(title)
    for col in frame.columns:
        node.SetColumnDescription(col, _DESCRIPTIONS.get(col, col))
    chart, bars, line, markers = _chart(scene, node, frame, base, title)
    if show:
        slicer.modules.plots.logic().ShowChartInLayout(chart)
    return ClassifyResults(table=node, chart=chart, bars=bars, threshold_line=line,
                           threshold_markers=markers, prediction=pred, frame=frame,
                           model_folder=folder, title=title, demo=demo, warnings=warnings)


_DESCRIPTIONS = {
    "x": "bar position in the chart",
    "model": "patient-level model or the region model's region code",
    "level": "what the model was trained on",
    "probability": "probability of the positive class (osteoporosis)",
    "threshold": "decision threshold saved with the model (Youden, training data)",
    "class": "class at the threshold",
    "n_slices": "slices the region model averaged over (-1: patient-level model)",
    "cv_auroc": "cross-validated AUROC in training",
    "test_auroc": "AUROC on the held-out test patients in training",
}


def _chart(scene: Any, node: Any, frame: pd.DataFrame, base: str, title: str):
    """Bars of ``probability`` per model, each model's threshold as a marker, the patient-level
    threshold as a line across the chart."""
    import slicer

    from .tables import dataframe_to_table_node

    S = slicer.vtkMRMLPlotSeriesNode
    bars = scene.AddNewNodeByClass("vtkMRMLPlotSeriesNode", f"{base} probability")
    bars.SetAndObserveTableNodeID(node.GetID())
    bars.SetXColumnName("x")
    bars.SetYColumnName("probability")
    bars.SetLabelColumnName("model")
    bars.SetPlotType(S.PlotTypeBar)
    bars.SetColor(0.27, 0.51, 0.71)
    markers = scene.AddNewNodeByClass("vtkMRMLPlotSeriesNode", f"{base} model thresholds")
    markers.SetAndObserveTableNodeID(node.GetID())
    markers.SetXColumnName("x")
    markers.SetYColumnName("threshold")
    markers.SetLabelColumnName("model")
    markers.SetPlotType(S.PlotTypeScatter)
    markers.SetLineStyle(S.LineStyleNone)
    markers.SetMarkerStyle(S.MarkerStyleDiamond)
    markers.SetColor(0.1, 0.1, 0.1)
    t = float(frame["threshold"].iloc[0])
    line_df = pd.DataFrame({"x": [-0.5, len(frame) - 0.5], "threshold": [t, t]})
    line_table = dataframe_to_table_node(scene, line_df, name=f"{base} decision threshold table")
    line = scene.AddNewNodeByClass("vtkMRMLPlotSeriesNode", f"{base} decision threshold")
    line.SetAndObserveTableNodeID(line_table.GetID())
    line.SetXColumnName("x")
    line.SetYColumnName("threshold")
    line.SetPlotType(S.PlotTypeLine)
    line.SetLineStyle(S.LineStyleDash)
    line.SetMarkerStyle(S.MarkerStyleNone)
    line.SetColor(0.84, 0.15, 0.16)
    chart = scene.AddNewNodeByClass("vtkMRMLPlotChartNode", f"{base} chart")
    for s in (bars, markers, line):
        chart.AddAndObservePlotSeriesNodeID(s.GetID())
    chart.SetTitle(f"Osteoporosis probability - {title}")
    chart.SetXAxisTitle("Model (patient level, then region models)")
    chart.SetYAxisTitle("Probability of osteoporosis")
    chart.SetYAxisRangeAuto(False)
    chart.SetYAxisRange(0.0, 1.0)
    chart.SetLegendVisibility(True)
    return chart, bars, line, markers
