"""``hrpqct demo``: the whole pipeline on the bundled synthetic scan.

The bundled scan is a phantom with a fixed seed and a small grid (defined once, here), so the demo
needs no data files and gives the same result on every machine. Steps:

1. render the scan and its exact ground truth (``scan/``);
2. segment it with the bundled demo model, apply the topology rules and the soft-tissue split
   (``segmentation/``: ``.seg.nrrd`` for Slicer, label map, per-slice confidence, region summary,
   PNG overlays);
3. score the seven regions against the ground truth (``accuracy.md``/``.csv``);
4. extract the paper's radiomics features per region and slice, and per scan (``radiomics/``);
5. apply the bundled demo classifier (``Resources/models/demo-classifier``; trained on synthetic
   phantoms only, **not a clinical model**) to those features: probability of osteoporosis and
   class at its saved threshold, plus each region model's output (``classification/``), and write
   the HTML report of the demo study the classifier was built with (when the report module is
   installed).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from ._cli import app
from .method import RADIOMICS, SYNTHETIC_TRAINING
from .progress import cli_progress

__all__ = ["DemoScan", "DEMO_SCAN", "demo_phantom", "run_demo"]


@dataclass(frozen=True)
class DemoScan:
    """The bundled synthetic scan: seed and grid (never used to train the demo model)."""

    seed: int = 20261121
    size: int = SYNTHETIC_TRAINING.size_px  # 0.182 mm pixels over the 140 mm field of view
    n_slices: int = 12
    side: str = "left"


DEMO_SCAN = DemoScan()


def demo_phantom(progress=None):
    """Render the bundled synthetic scan (a :class:`hrpqct.phantom.scan.Phantom`)."""
    from .phantom.anatomy import Anatomy
    from .phantom.render import Grid
    from .phantom.scan import generate

    d = DEMO_SCAN
    return generate(Anatomy(seed=d.seed, side=d.side), Grid(size=d.size, n_slices=d.n_slices),
                    progress=progress)


def _accuracy(pred7, truth7):
    """Per-region precision/recall/F1/IoU of the 7-region map, mean +- SD over slices."""
    from .regions import REGIONS
    from .seg.evaluate import metrics_frame, summary_table

    frame = metrics_frame(pred7, truth7, case="demo", stage="final", classes=REGIONS)
    return summary_table(frame, REGIONS)


def run_demo(out: Path, console: Console | None = None, radiomics: bool = True,
             model: str | None = None) -> dict[str, Path]:
    """Run every step into ``out``; returns the main files written. ``model``: a model folder or
    catalogue id (default: the bundled demo model)."""
    from .phantom.files import write_phantom
    from .radiomics.tables import write_scan_features
    from .seg.pipeline import segment_scan
    from .seg.evaluate import table_markdown
    from .viz import save_comparison

    from .io.outputs import prepare_folder

    console = console or Console()
    prepare_folder(out)  # a read-only or full disk fails now, not after two minutes
    files: dict[str, Path] = {}
    d = DEMO_SCAN
    with cli_progress(f"1/4 synthetic scan (seed {d.seed})", d.n_slices) as cb:
        ph = demo_phantom(cb)
    scan_files = write_phantom(ph, out / "scan")
    files["scan"] = scan_files["image"]

    console.print("[bold]2/4 segmentation[/] (bundled demo model; trained on synthetic scans only)")
    seg = segment_scan(scan_files["image"], out / "segmentation", model=model, name="demo")
    res, labels7 = seg["result"], seg["labels7"]
    k = int(res.confidence["mean_max_prob"].idxmin()) if len(res.confidence) else d.n_slices // 2
    mid = d.n_slices // 2
    for name, s in (("vs_truth", mid), ("vs_truth_least_confident", k)):
        files[name] = save_comparison(
            out / "segmentation" / f"demo_{name}.png", ph.image.array[s], labels7.array[s],
            ph.labels7.array[s], pixel_mm=ph.grid.pixel_mm,
            title=f"slice {s}: predicted seven regions vs ground truth")
    files["confidence_plot"] = seg["outputs"].confidence_plot  # written by segment_scan
    files["segmentation"] = seg["outputs"].segmentation

    table = _accuracy(labels7.array, ph.labels7.array)
    from .io.atomic import atomic_path

    acc_csv = out / "accuracy.csv"
    with atomic_path(acc_csv) as tmp:
        table.to_csv(tmp, index=False)
    with atomic_path(out / "accuracy.md") as tmp:
        tmp.write_text(table_markdown(
            table, f"Demo: seven regions vs the phantom's ground truth ({d.n_slices} slices)"),
            encoding="utf-8")
    files["accuracy"] = out / "accuracy.md"
    t = Table(title="3/4 accuracy against the ground truth (mean over slices)")
    for col in ("region", "F1 (%)", "IoU (%)"):
        t.add_column(col, justify="right" if col != "region" else "left")
    for _, row in table.iterrows():
        t.add_row(f"{row['code']} {row['name']}", f"{100 * row['f1_mean']:.1f}", f"{100 * row['iou_mean']:.1f}")
    console.print(t)
    console.print(f"segmented on {res.device} in {res.seconds:.1f} s "
                  f"({res.slices_per_second:.2f} slices/s); least confident slice: {k}")

    if radiomics:
        from .io import read_scan

        image = read_scan(scan_files["image"], unit="HU")
        with cli_progress("4/4 radiomics (paper preset, six regions)", d.n_slices) as cb:
            slices_path, patient_path = write_scan_features(
                image, labels7, out / "radiomics" / "demo_features.csv", scan_id="demo", progress=cb)
        files["features"] = slices_path
        files["features_patient"] = patient_path
        files.update(_classify(slices_path, out / "classification", console))
    return files


def _classify(features: Path, out: Path, console: Console) -> dict[str, Path]:
    """Step 5: the bundled demo classifier on the demo scan's features, and the demo study report."""
    from .classify.data import read_table
    from .classify.model import bundled_classifier, load_model, predict

    files: dict[str, Path] = {}
    entry = bundled_classifier()
    if entry is None:
        console.print("[yellow]5/5 classification skipped:[/] no bundled demo classifier "
                      "(build it with scripts/build_demo_classifier.py)")
        return files
    model = load_model(entry["path"])
    pred = predict(model, read_table(features, "slice-level"), preset=RADIOMICS.preset)[0]
    out.mkdir(parents=True, exist_ok=True)
    from .io.atomic import atomic_write_json

    atomic_write_json(out / "prediction.json", pred.as_dict(), indent=1, newline=False)
    files["prediction"] = out / "prediction.json"
    study_dir = entry.get("study_path")
    if study_dir is not None and study_dir.is_dir():
        from .classify.report import write_study_report
        from .classify.study import load_study

        files["study_report"] = write_study_report(load_study(study_dir),
                                                   out / "demo_study_report.html")
    else:
        console.print("[yellow]no demo study bundled with the classifier: no HTML report[/]")
    t = Table(title="5/5 osteoporosis classification (bundled DEMO classifier)")
    t.add_column("model")
    t.add_column("P(osteoporosis)", justify="right")
    t.add_column("class")
    t.add_row("[bold]main: soft tissue (MT+AT) radiomics[/]", f"[bold]{pred.probability:.3f}[/]",
              f"[bold]{pred.label}[/] (threshold {pred.threshold:.3f})")
    for code, r in pred.regions.items():
        if r["probability"] is not None:
            t.add_row(f"region {code}, mean over {r['n_slices']} slices", f"{r['probability']:.3f}",
                      r["class"])
    console.print(t)
    console.print("[yellow]The demo classifier has only seen synthetic phantoms: it is not a "
                  "clinical model and says nothing about a real patient.[/]")
    console.print(f"demo scan: P(osteoporosis) = {pred.probability:.3f} -> {pred.label}",
                  highlight=False)
    return files


@app.command("demo")
def demo_cmd(
    out: Path = typer.Option(Path("demo-output"), "--out", "-o", help="Output folder."),
    radiomics: bool = typer.Option(True, help="Also extract the radiomics features (about a minute) "
                                   "and classify them with the bundled demo classifier."),
    model: str = typer.Option(None, help="Model folder or catalogue id (default: the bundled demo model)."),
) -> None:
    """Run the pipeline on the bundled synthetic scan and write every result to OUT: the scan and its
    ground truth, the seven-region segmentation (.seg.nrrd, label map, PNG overlays, per-slice
    confidence, region summary), its accuracy against the ground truth, the radiomics features, and
    the bundled demo classifier's probability and class (a demo model trained on synthetic phantoms
    only, not a clinical model) with the HTML report of its demo study."""
    console = Console()
    console.rule("[bold]HRpQCT demo")
    files = run_demo(out, console, radiomics=radiomics, model=model)
    console.rule("written")
    for k, p in files.items():
        console.print(f"  {k:24s} {p}")
    if "prediction" in files:  # the demo ends with the bundled scan's prediction
        import json

        pred = json.loads(Path(files["prediction"]).read_text(encoding="utf-8"))
        console.rule("[bold]prediction (bundled DEMO classifier, synthetic phantoms only)")
        console.print(f"demo scan: P(osteoporosis) = {pred['probability']:.3f} -> "
                      f"{pred['class']} (threshold {pred['threshold']:.3f}); "
                      f"report: {files.get('study_report', 'none')}", highlight=False)
