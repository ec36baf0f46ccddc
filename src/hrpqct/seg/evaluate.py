"""Segmentation accuracy as the paper's Table I: precision, recall, F1 and IoU per class,
mean +- SD over test slices, on the scan's native grid.

Per slice and class ``c`` (prediction ``P``, ground truth ``T``, pixel sets of label ``c``):
``TP = |P & T|``, ``FP = |P - T|``, ``FN = |T - P|`` and

* precision ``TP / (TP + FP)``, recall ``TP / (TP + FN)``,
* F1 ``2 TP / (2 TP + FP + FN)`` (= Dice), IoU ``TP / (TP + FP + FN)``.

**Empty classes.** A ratio whose denominator is 0 is undefined (NaN) and that slice does not count
in that class's mean and SD: a class absent from both maps has no precision, recall, F1 or IoU; a
class predicted but absent from the truth has precision 0, F1 0, IoU 0 and no recall; a class in
the truth but not predicted has recall 0, F1 0, IoU 0 and no precision. The tables give the
number of slices counted (``n``). SD is the sample standard deviation (ddof 1) over slices.
The "Mean" row averages the five class means; its SD is the SD over slices of each slice's mean
over its defined classes.

:func:`evaluate_cases` runs a model on whole scans with :func:`hrpqct.seg.inference.segment_volume`
(the same preprocessing, upsampling and paste-back as any user gets), optionally applies the
topology rules (:func:`hrpqct.seg.postprocess.postprocess`), and scores every slice against the
5-class ground truth on the scan's own grid.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import GeometryError, InputError
from ..progress import ProgressCallback, report
from ..regions import MODEL_CLASSES

__all__ = ["METRICS", "confusion", "slice_metrics", "metrics_frame", "summary_table", "table_markdown",
           "EvalResult", "evaluate_cases", "write_evaluation"]

METRICS = ("precision", "recall", "f1", "iou")


def confusion(pred: np.ndarray, truth: np.ndarray, labels: Sequence[int]) -> np.ndarray:
    """``[n_slices, n_labels, 3]`` int64 counts ``(TP, FP, FN)`` per slice and label.

    ``pred``/``truth``: label maps ``[z, y, x]`` (or one ``[y, x]`` slice) of the same shape.
    """
    pred = np.asarray(pred)
    truth = np.asarray(truth)
    if pred.shape != truth.shape:
        raise GeometryError(f"prediction {pred.shape} and ground truth {truth.shape} differ in shape")
    if pred.ndim == 2:
        pred, truth = pred[None], truth[None]
    if pred.ndim != 3:
        raise InputError(f"label maps must be [y, x] or [z, y, x], got shape {pred.shape}")
    n = pred.shape[0]
    out = np.zeros((n, len(labels), 3), dtype=np.int64)
    p2 = pred.reshape(n, -1)
    t2 = truth.reshape(n, -1)
    for j, c in enumerate(labels):
        p = p2 == c
        t = t2 == c
        tp = np.count_nonzero(p & t, axis=1)
        out[:, j, 0] = tp
        out[:, j, 1] = np.count_nonzero(p, axis=1) - tp
        out[:, j, 2] = np.count_nonzero(t, axis=1) - tp
    return out


def slice_metrics(counts: np.ndarray) -> dict[str, np.ndarray]:
    """Precision, recall, F1, IoU ``[n_slices, n_labels]`` from :func:`confusion` counts (NaN where
    undefined, see the module docstring)."""
    c = np.asarray(counts, dtype=np.float64)
    tp, fp, fn = c[..., 0], c[..., 1], c[..., 2]

    def ratio(num, den):
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)

    return {"precision": ratio(tp, tp + fp), "recall": ratio(tp, tp + fn),
            "f1": ratio(2 * tp, 2 * tp + fp + fn), "iou": ratio(tp, tp + fp + fn)}


def metrics_frame(pred: np.ndarray, truth: np.ndarray, *, case: str = "", patient: str = "",
                  stage: str = "", scan: str = "", classes=MODEL_CLASSES):
    """Long table: one row per slice and class with counts and the four metrics.

    ``case`` is a short name, ``scan`` the file (slices are identified by scan and index)."""
    import pandas as pd

    labels = [r.label for r in classes]
    counts = confusion(pred, truth, labels)
    m = slice_metrics(counts)
    n = counts.shape[0]
    rows = {
        "case": np.repeat(case, n * len(labels)), "patient": np.repeat(patient, n * len(labels)),
        "stage": np.repeat(stage, n * len(labels)), "scan": np.repeat(scan or case, n * len(labels)),
        "slice": np.repeat(np.arange(n), len(labels)),
        "label": np.tile(labels, n), "code": np.tile([r.code for r in classes], n),
        "tp": counts[..., 0].ravel(), "fp": counts[..., 1].ravel(), "fn": counts[..., 2].ravel(),
    }
    rows.update({k: m[k].ravel() for k in METRICS})
    return pd.DataFrame(rows)


def summary_table(frame, classes=MODEL_CLASSES):
    """Per class (and "Mean"): ``n``, ``<metric>_mean``, ``<metric>_sd`` for each metric (0-1)."""
    import pandas as pd

    out = []
    codes = [r.code for r in classes]
    for r in classes:
        sub = frame[frame.code == r.code]
        row: dict[str, Any] = {"label": r.label, "code": r.code, "name": r.name}
        for k in METRICS:
            v = sub[k].to_numpy(dtype=float)
            v = v[~np.isnan(v)]
            row[f"{k}_n"] = int(v.size)
            row[f"{k}_mean"] = float(v.mean()) if v.size else float("nan")
            row[f"{k}_sd"] = float(v.std(ddof=1)) if v.size > 1 else float("nan")
        out.append(row)
    table = pd.DataFrame(out)
    mean: dict[str, Any] = {"label": -1, "code": "Mean", "name": "Mean of the classes"}
    keyed = frame[frame.code.isin(codes)]
    for k in METRICS:
        per_slice = keyed.groupby(["scan", "stage", "slice"])[k].mean()  # mean skips NaN
        per_slice = per_slice.to_numpy(dtype=float)
        per_slice = per_slice[~np.isnan(per_slice)]
        mean[f"{k}_n"] = int(per_slice.size)
        mean[f"{k}_mean"] = float(np.nanmean(table[f"{k}_mean"]))
        mean[f"{k}_sd"] = float(per_slice.std(ddof=1)) if per_slice.size > 1 else float("nan")
    return pd.concat([table, pd.DataFrame([mean])], ignore_index=True)


def table_markdown(table, title: str = "") -> str:
    """The summary as a Markdown table in percent, ``mean +- SD`` (the paper's Table I layout)."""
    def cell(row, k):
        m, s = row[f"{k}_mean"], row[f"{k}_sd"]
        if np.isnan(m):
            return "n/a"
        return f"{100 * m:.2f} ± {100 * s:.2f}" if not np.isnan(s) else f"{100 * m:.2f}"

    lines = [f"**{title}**", ""] if title else []
    lines += ["| Class | Precision (%) | Recall (%) | F1 (%) | IoU (%) | slices |",
              "|---|---|---|---|---|---|"]
    for _, row in table.iterrows():
        name = row["name"] if row["code"] != "Mean" else "**Mean**"
        code = f" ({row['code']})" if row["code"] != "Mean" else ""
        lines.append(f"| {name}{code} | " + " | ".join(cell(row, k) for k in METRICS)
                     + f" | {int(row['f1_n'])} |")
    return "\n".join(lines) + "\n"


@dataclass
class EvalResult:
    """Per-slice metrics (long table), one summary per stage ("raw", "postprocessed"), and facts."""

    per_slice: Any
    tables: dict[str, Any]
    facts: dict[str, Any] = field(default_factory=dict)

    def headline(self, stage: str | None = None) -> dict[str, float]:
        """Mean F1 over the five classes and the IoU of each class (0-1) for ``stage``."""
        stage = stage or ("postprocessed" if "postprocessed" in self.tables else "raw")
        t = self.tables[stage].set_index("code")
        out = {"mean_f1": float(t.loc["Mean", "f1_mean"]), "mean_iou": float(t.loc["Mean", "iou_mean"])}
        for r in MODEL_CLASSES:
            out[f"f1_{r.code}"] = float(t.loc[r.code, "f1_mean"])
            out[f"iou_{r.code}"] = float(t.loc[r.code, "iou_mean"])
            out[f"iou_{r.code}_sd"] = float(t.loc[r.code, "iou_sd"])
        return out


def evaluate_cases(model, cases, *, postprocess: bool = True, device: str = "auto",
                   batch_size: int | None = None, fast_cpu: bool = True,
                   progress: ProgressCallback | None = None) -> EvalResult:
    """Segment every case (:class:`hrpqct.seg.dataset.Case`) with ``model`` (folder, catalogue id
    or loaded model) and score all slices on the native grid, before and (by default) after the
    topology rules. ``progress(done_scans, total_scans)``.
    """
    import pandas as pd

    from .dataset import load_case
    from .inference import segment_volume
    from .model import LoadedModel, load_model
    from .postprocess import postprocess as topology

    loaded = model if isinstance(model, LoadedModel) else load_model(model)
    cases = list(cases)
    frames, facts_cases = [], []
    seconds = 0.0
    report(progress, 0, len(cases))
    for i, case in enumerate(cases):
        image, truth = load_case(case)
        if truth.shape != image.shape:
            raise GeometryError(f"{case.mask}: mask shape {truth.shape} differs from the scan's {image.shape}")
        res = segment_volume(image, loaded, device=device, batch_size=batch_size, fast_cpu=fast_cpu)
        seconds += res.seconds
        raw = res.labels.array
        name = Path(case.scan).parent.name if Path(case.scan).name.startswith("image.") else Path(case.scan).name
        frames.append(metrics_frame(raw, truth, case=name, patient=case.patient, stage="raw", scan=case.scan))
        if postprocess:
            post = topology(raw, image.spacing)
            frames.append(metrics_frame(post, truth, case=name, patient=case.patient, stage="postprocessed",
                                        scan=case.scan))
        facts_cases.append({"case": name, "patient": case.patient, "scan": case.scan, "mask": case.mask,
                            "slices": int(image.shape[0]), "shape": list(image.shape),
                            "spacing_mm": [float(s) for s in image.spacing], "device": res.device,
                            "seconds": round(res.seconds, 2)})
        report(progress, i + 1, len(cases))
    frame = pd.concat(frames, ignore_index=True)
    tables = {stage: summary_table(frame[frame.stage == stage]) for stage in frame.stage.unique()}
    facts = {"model": str(loaded.folder) if loaded.folder else loaded.card.name, "model_name": loaded.card.name,
             "input_spec": loaded.input_spec.to_dict(), "postprocess": postprocess, "fast_cpu": fast_cpu,
             "n_scans": len(facts_cases), "n_slices": int(sum(c["slices"] for c in facts_cases)),
             "segmentation_seconds": round(seconds, 1), "cases": facts_cases}
    return EvalResult(frame, tables, facts)


def write_evaluation(result: EvalResult, out: str | os.PathLike, title: str = "") -> list[Path]:
    """Write ``per_slice.csv``, ``table_<stage>.csv``, ``table.md`` and ``summary.json`` (atomic)."""
    from ..io.atomic import atomic_write_text

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []

    def put_text(name: str, text: str) -> None:
        written.append(atomic_write_text(out / name, text))

    put_text("per_slice.csv", result.per_slice.to_csv(index=False))
    md = [f"# {title or 'Segmentation accuracy'}", "",
          f"Model: `{result.facts.get('model_name', '')}`; {result.facts.get('n_scans', '?')} scans, "
          f"{result.facts.get('n_slices', '?')} slices, metrics per slice on the native grid, "
          "mean ± SD over slices (percent).", ""]
    for stage, table in result.tables.items():
        put_text(f"table_{stage}.csv", table.to_csv(index=False))
        label = {"raw": "Model output", "postprocessed": "After post-processing (topology rules)"}.get(stage, stage)
        md.append(table_markdown(table, label))
    md.append("Empty classes: a slice counts for a metric only where it is defined (a class absent "
              "from both maps is skipped; predicted but absent: precision 0, recall skipped; present "
              "but not predicted: recall 0, precision skipped; F1 and IoU are 0 in both cases).\n")
    put_text("table.md", "\n".join(md))
    summary = {"facts": result.facts, "headline": {s: result.headline(s) for s in result.tables}}
    put_text("summary.json", json.dumps(summary, indent=2) + "\n")
    return written
