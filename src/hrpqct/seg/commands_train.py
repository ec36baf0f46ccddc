"""CLI: ``hrpqct train-seg`` (train a SegFormer) and ``hrpqct eval-seg`` (the paper's Table I)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from .._cli import app
from ..errors import InputError
from ..method import DEVICES, INFERENCE, MODEL, PREPROCESSING, SYNTHETIC_TRAINING, TRAINING
from ..progress import cli_progress

_console = Console()


def _quiet_transformers() -> None:
    try:
        from transformers.utils import logging as tlog

        tlog.disable_progress_bar()
        tlog.set_verbosity_error()
    except Exception:  # noqa: BLE001 - cosmetic only
        pass


def _cases(data: list[Path] | None, synthetic: int, size: int, slices: int, seed: int, cache: Path,
           workers: int):
    from .dataset import read_cases, synthetic_cohort

    cases = []
    for d in data or []:
        cases += read_cases(d)
    if synthetic:
        with cli_progress(f"Rendering {synthetic} synthetic subjects", synthetic) as cb:
            manifest = synthetic_cohort(cache, synthetic, size=size, slices=slices, seed=seed,
                                        workers=workers, progress=cb)
        cases += read_cases(manifest)
    if not cases:
        raise InputError("no training data: give --data PATH (manifest or folder) and/or --synthetic N")
    return cases


@app.command("train-seg")
def train_seg_cmd(
    out: Path = typer.Option(..., "--out", "-o", help="Run folder (created; re-run to resume)."),
    data: Optional[list[Path]] = typer.Option(
        None, "--data", "-d", help="Manifest CSV, a folder with manifest.csv (e.g. a phantom-cohort "
                                   "folder) or a folder of case folders (image.* + labels5.*). Repeatable."),
    synthetic: int = typer.Option(0, help="Also render N synthetic subjects into the cache and train on them."),
    synthetic_size: int = typer.Option(SYNTHETIC_TRAINING.size_px,
                                       help="Pixels per side of the synthetic scans."),
    synthetic_slices: int = typer.Option(SYNTHETIC_TRAINING.slices, help="Slices per synthetic scan."),
    synthetic_seed: int = typer.Option(0, help="Cohort seed of the synthetic subjects."),
    workers: int = typer.Option(1, help="Processes for rendering synthetic scans."),
    variant: str = typer.Option(MODEL.variant, help="SegFormer b0..b5 (or tiny)."),
    arch: Optional[str] = typer.Option(
        None, help='JSON overrides of the SegFormer configuration, e.g. \'{"decoder_hidden_size": 128}\'.'),
    init: Optional[Path] = typer.Option(None, help="Local pretrained SegFormer folder (safetensors) to "
                                                   "start from; first patch embedding averaged over RGB. "
                                                   "A model folder of this project is fine-tuned as is."),
    input_size: int = typer.Option(PREPROCESSING.input_px, help="Network input side, pixels (crop of "
                                                                f"{PREPROCESSING.crop_mm:.2f} mm)."),
    patch_size: Optional[int] = typer.Option(None, help="Train on random square patches of this side "
                                                        "(pixels of the input); default whole inputs."),
    epochs: int = typer.Option(TRAINING.epochs, help="Epochs (resume with a larger value to extend)."),
    batch_size: int = typer.Option(TRAINING.batch_size, help="Slices per step."),
    lr: float = typer.Option(TRAINING.lr, help="Adam learning rate."),
    seed: int = typer.Option(TRAINING.seed, help="Seed of the split, initialisation, order, augmentation."),
    augment: bool = typer.Option(TRAINING.augment.enabled, help="Flips, small rotations, intensity jitter."),
    robust_augment: bool = typer.Option(
        False, "--robust-augment/--no-robust-augment",
        help="Also augment for other scanners (issue 14): resolution (60.7 um, 82 um, 0.2-0.8 mm), "
             "noise, calibration, blur, motion, limb position, radius-like negatives "
             "(hrpqct.method.Augmentation)."),
    slices_per_scan: Optional[int] = typer.Option(None, help="Use N evenly spaced slices per scan (default all)."),
    val_slices_per_scan: Optional[int] = typer.Option(None, help="Validate on N slices per scan (default all)."),
    cache: Optional[Path] = typer.Option(None, help="Cache folder for preprocessed slices and synthetic "
                                                    "scans (default OUT/cache)."),
    resume: bool = typer.Option(True, help="Resume from OUT/checkpoint if present (--no-resume restarts)."),
    threads: Optional[int] = typer.Option(None, help="CPU threads for torch (on a busy shared machine 1 "
                                                     "is often fastest)."),
    device: str = typer.Option(TRAINING.device, help=f"{', '.join(DEVICES)} (float32 on every "
                                                     "device)."),
    checkpoint_every: int = typer.Option(0, help="Also checkpoint every N steps (0: every epoch)."),
    name: str = typer.Option("hrpqct-segformer", help="Model name written to the model card."),
    description: str = typer.Option("", help="Model card description."),
    training_data: str = typer.Option("", help="Model card: what the training data were (default: the inputs)."),
    progress: bool = typer.Option(True, help="Show a progress bar."),
) -> None:
    """Train a SegFormer on scans with 5-class masks (or synthetic phantoms): patient split 60/20/20,
    cross-entropy + Dice, Adam, ReduceLROnPlateau on validation Dice, best-Dice checkpoint.

    Writes OUT/model (safetensors + model card, usable with `hrpqct segment --model`), OUT/log.csv
    (one row per epoch), OUT/split.json, OUT/checkpoint (resume state) and OUT/result.json.
    """
    from .dataset import Augment
    from .train import TrainConfig, prepare_data, train_segmentation

    _quiet_transformers()
    cache_dir = cache or out / "cache"
    try:
        overrides = json.loads(arch) if arch else {}
    except ValueError as exc:
        raise InputError(f"--arch is not valid JSON: {exc}") from exc
    if not isinstance(overrides, dict):
        raise InputError("--arch must be a JSON object")
    cases = _cases(data, synthetic, synthetic_size, synthetic_slices, synthetic_seed, cache_dir, workers)
    cfg = TrainConfig(name=name, variant=variant, arch=overrides, init=str(init) if init else None,
                      input_px=input_size, patch_px=patch_size, epochs=epochs, batch_size=batch_size, lr=lr,
                      seed=seed, augment=Augment(enabled=augment, robust=robust_augment),
                      slices_per_scan=slices_per_scan,
                      val_slices_per_scan=val_slices_per_scan, threads=threads,
                      checkpoint_every=checkpoint_every, device=device)
    sources = [str(d) for d in data or []] + ([f"{synthetic} synthetic subjects (seed {synthetic_seed}, "
                                                f"{synthetic_size} px)"] if synthetic else [])
    what = training_data or f"{len(cases)} scans of {len({c.patient for c in cases})} patients from " \
                            f"{'; '.join(sources)}"

    def on_epoch(rec):
        per = " ".join(f"{k[9:]}={rec[k]:.3f}" for k in rec if k.startswith("val_dice_"))
        _console.print(f"epoch {rec['epoch']:3d}  lr {rec['lr']:.1e}  train loss {rec['train_loss']:.4f}  "
                       f"val loss {rec['val_loss']:.4f}  val Dice {rec['val_dice']:.4f} ({per})  "
                       f"{rec['seconds']:.0f} s{'  [best]' if rec['best'] else ''}", highlight=False)

    with cli_progress("Preprocessing scans (cached)", len(cases), enabled=progress) as cache_cb:
        split_doc, _ = prepare_data(cases, cfg, cache_dir / "slices", progress=cache_cb)
    n = {k: len(v) for k, v in split_doc["patients"].items()}
    _console.print(f"patients train/val/test: {n['train']}/{n['val']}/{n['test']}; slices "
                   f"{split_doc['slices']}", highlight=False)
    with cli_progress("Training (steps)", None, enabled=progress) as cb:
        result = train_segmentation(cases, out, cfg, cache_dir=cache_dir / "slices", resume=resume,
                                    training_data=what, description=description, progress=cb,
                                    on_epoch=on_epoch)
    _console.print(f"[green]done[/]: best validation Dice {result.best_val_dice:.4f} at epoch "
                   f"{result.best_epoch}; model {result.model_dir}; log {out / 'log.csv'}")
    if result.test:
        _console.print(f"test split (input grid): Dice {result.test['test_dice']:.4f}; for the native-grid "
                       f"Table I run `hrpqct eval-seg --model {result.model_dir} --run {out}`")


@app.command("eval-seg")
def eval_seg_cmd(
    out: Path = typer.Option(..., "--out", "-o", help="Output folder for the tables."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Model folder or catalogue id "
                                                                    "(default: the catalogue's default)."),
    data: Optional[list[Path]] = typer.Option(None, "--data", "-d", help="Manifest CSV or folder of test "
                                                                         "scans with 5-class masks. Repeatable."),
    run: Optional[Path] = typer.Option(None, "--run", help="A train-seg folder: evaluate its test patients."),
    postprocess: bool = typer.Option(True, help="Also score after the topology rules (the headline)."),
    device: str = typer.Option(INFERENCE.device, help=f"{', '.join(DEVICES)}."),
    batch_size: Optional[int] = typer.Option(None, help="Slices per forward pass."),
    fast_cpu: bool = typer.Option(True, help="CPU fast path of the inference (--no-fast-cpu: plain fp32)."),
    title: str = typer.Option("", help="Title of table.md."),
    record_in_card: bool = typer.Option(False, help="Store the headline figures in the model's card "
                                                    "(metrics['eval:<title or out name>'])."),
    progress: bool = typer.Option(True, help="Show a progress bar."),
) -> None:
    """The paper's Table I for a model: precision, recall, F1, IoU per class, mean +- SD over test
    slices, on each scan's native grid, before and after post-processing.

    Writes OUT/table.md, OUT/table_raw.csv, OUT/table_postprocessed.csv, OUT/per_slice.csv and
    OUT/summary.json.
    """
    from .dataset import Case, read_cases
    from .evaluate import evaluate_cases, table_markdown, write_evaluation
    from .model import load_model

    from ..io.outputs import prepare_folder

    _quiet_transformers()
    prepare_folder(out)  # before segmenting every test scan
    cases = []
    for d in data or []:
        cases += read_cases(d)
    if run is not None:
        split = run / "split.json"
        if not split.is_file():
            raise InputError(f"{run}: no split.json (not a train-seg folder)")
        doc = json.loads(split.read_text(encoding="utf-8"))
        test = doc.get("cases", {}).get("test", [])
        if not test:
            raise InputError(f"{split}: the run has no test patients")
        cases += [Case(**c) for c in test]
        if model is None and (run / "model").is_dir():
            model = str(run / "model")
    if not cases:
        raise InputError("nothing to evaluate: give --data PATH and/or --run DIR")
    loaded = load_model(model) if model is not None else load_model(_default())
    with cli_progress("Segmenting and scoring scans", len(cases), enabled=progress) as cb:
        result = evaluate_cases(loaded, cases, postprocess=postprocess, device=device, batch_size=batch_size,
                                fast_cpu=fast_cpu, progress=cb)
    write_evaluation(result, out, title=title)
    for stage, table in result.tables.items():
        _console.print(table_markdown(table, stage), highlight=False)
    head = result.headline()
    _console.print(f"mean F1 {head['mean_f1']:.4f}; fibula trabecular IoU {head['iou_FT']:.4f}; tables in {out}")
    if record_in_card:
        _record(loaded, result, title or out.name)


def _default():
    from .model import resolve_model

    return resolve_model(None)


def _record(loaded, result, key: str) -> None:
    """Add the headline figures of ``result`` to the model folder's card and README (atomically)."""
    from .model import CARD_FILE, write_card

    if loaded.folder is None:
        return
    card = loaded.card
    card.metrics[f"eval:{key}"] = {
        "headline": {s: {k: round(v, 4) for k, v in result.headline(s).items()} for s in result.tables},
        "n_scans": result.facts["n_scans"], "n_slices": result.facts["n_slices"],
        "scans": sorted({c["case"] for c in result.facts["cases"]}),
        "grid_px": sorted({c["shape"][-1] for c in result.facts["cases"]}),
    }
    write_card(loaded.folder, card)
    _console.print(f"recorded in {Path(loaded.folder) / CARD_FILE}")
