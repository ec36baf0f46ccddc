"""Headless SegFormer training (docs/method.md "Training"), resumable and deterministic on the CPU.

:func:`train_segmentation` takes cases (scans with 5-class masks, see
:func:`hrpqct.seg.dataset.read_cases`) and an output folder:

* split by patient 60 / 20 / 20, seeded (``TRAINING.split``, ``TRAINING.seed``) ->
  ``split.json``;
* every slice preprocessed once exactly as at inference into a memory-mapped cache per split
  (:func:`hrpqct.seg.dataset.build_cache`);
* loss: cross-entropy + soft Dice, equally weighted (:func:`hrpqct.seg.losses.ce_dice_loss`,
  logits upsampled bilinearly to the input grid first); Adam (lr ``TRAINING.lr``), batch
  ``TRAINING.batch_size``; gradient norm clipped at ``TRAINING.grad_clip_norm``;
  ``ReduceLROnPlateau`` (x ``plateau_factor`` after ``plateau_patience`` epochs without a gain in
  validation Dice); augmentation as :class:`hrpqct.seg.dataset.Augment`;
* validation Dice = mean over the five classes of the per-image hard Dice (argmax of the
  bilinearly upsampled logits on the input grid) averaged over validation slices; the epoch with
  the best validation Dice is saved to ``model/`` with :func:`hrpqct.seg.model.save_model`
  (safetensors + model card recording the preprocessing, so inference feeds it as trained);
* ``log.csv``: one row per epoch (losses, validation Dice per class, learning rate, seconds);
* ``checkpoint/``: model, Adam state, scheduler, epoch and step, RNG state and the history,
  written atomically after every epoch (and every ``checkpoint_every`` steps, and when a
  progress callback cancels). Tensors go to safetensors files, everything else to JSON; nothing
  is pickled. A re-run with the same output folder resumes from it and, on the CPU with the same
  thread count, ends with bit-identical weights to an uninterrupted run.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import logging
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ..errors import Cancelled, InputError
from ..io.atomic import atomic_write_json, atomic_write_text
from ..method import MODEL, PREPROCESSING, TRAINING, Training, as_dict
from ..progress import ProgressCallback, report
from ..regions import MODEL_CLASSES
from .checkpoint import (CHECKPOINT, checkpoint_folder, load_checkpoint, load_checkpoint_state,
                         save_checkpoint)
from .dataset import Augment, Case, SliceCache, SliceDataset, build_cache, split_by_patient
from .losses import ce_dice_loss, hard_dice, match_size
from .preprocess import InputSpec

log = logging.getLogger(__name__)

__all__ = ["TrainConfig", "TrainResult", "train_segmentation", "prepare_data", "evaluate_cache",
           "load_checkpoint_state",
           "LOG_FILE", "CHECKPOINT", "MODEL_DIR", "SPLIT_FILE"]

LOG_FILE = "log.csv"
MODEL_DIR = "model"
SPLIT_FILE = "split.json"
RESULT_FILE = "result.json"
_CLASS_CODES = [r.code for r in MODEL_CLASSES]
_ARCH_KEYS = ("depths", "hidden_sizes", "decoder_hidden_size", "num_attention_heads", "sr_ratios",
              "mlp_ratios", "patch_sizes", "strides")
_FG = [r.label for r in MODEL_CLASSES]


@dataclass(frozen=True)
class TrainConfig(Training):
    """Everything that defines a training run: the fields of :class:`hrpqct.method.Training`
    (losses, optimiser, schedule, split, seed, ``augment``, ``device``; defaults ``TRAINING``)
    and those below.

    ``variant``: ``"b0"``..``"b5"``/``"tiny"``; ``arch``: overrides of the SegFormer
    configuration (e.g. ``{"decoder_hidden_size": 128}``); ``init``: a local pretrained SegFormer
    folder converted with :func:`hrpqct.seg.model.init_from_pretrained` (then ``variant`` and
    ``arch`` are taken from it); a folder written by this project (``model_card.json``, 6 classes,
    1 channel) is fine-tuned as it is, classifier included. ``input_px``: network input side (pixels) for the
    ``crop_mm`` (mm) crop. ``patch_px``: train on random ``patch_px`` squares of the input
    (faster; validation and inference use whole inputs); ``None`` = whole inputs.
    ``slices_per_scan``/``val_slices_per_scan``: evenly spaced slices used per scan (``None``:
    all). ``checkpoint_every``: also checkpoint every this many steps (0: per epoch only).
    ``device``: ``"cpu"``, ``"cuda"``, ``"mps"`` or ``"auto"``; training is float32 everywhere
    (bit-identical resume is guaranteed on the CPU only). Frozen: derive variants with
    :func:`dataclasses.replace`.
    """

    augment: Augment = field(default_factory=Augment)
    name: str = "hrpqct-segformer"
    variant: str = MODEL.variant
    arch: dict[str, Any] = field(default_factory=dict, hash=False)
    init: str | None = None
    input_px: int = PREPROCESSING.input_px
    crop_mm: float = PREPROCESSING.crop_mm
    patch_px: int | None = None
    slices_per_scan: int | None = None
    val_slices_per_scan: int | None = None
    threads: int | None = None
    checkpoint_every: int = 0
    eval_batch_size: int = 4

    def __post_init__(self) -> None:
        object.__setattr__(self, "split", tuple(self.split))

    def input_spec(self) -> InputSpec:
        return InputSpec(crop_mm=self.crop_mm, input_px=self.input_px)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["split"] = list(self.split)
        d["augment"] = self.augment.to_dict()  # tuples as lists, as they come back from JSON
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        kw = {k: v for k, v in d.items() if k in names}
        if "augment" in kw and isinstance(kw["augment"], dict):
            kw["augment"] = Augment(**kw["augment"])
        return cls(**kw)  # __post_init__ makes the JSON list of ``split`` a tuple

    def fingerprint(self) -> dict[str, Any]:
        """What must not change when resuming (everything but the number of epochs, the thread
        count and the checkpoint interval)."""
        d = self.to_dict()
        for k in ("epochs", "threads", "checkpoint_every", "eval_batch_size", "name", "device"):
            d.pop(k)
        return d


@dataclass
class TrainResult:
    """Where a run wrote its outputs and how it went."""

    out: Path
    model_dir: Path
    best_epoch: int
    best_val_dice: float
    epochs_done: int
    history: list[dict[str, Any]]
    test: dict[str, Any] = field(default_factory=dict)


# --- small helpers -------------------------------------------------------------------------------
def _json_atomic(obj: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, obj)


def _write_log(history: list[dict[str, Any]], path: Path) -> None:
    if not history:
        return
    cols: list[str] = []
    for rec in history:
        cols += [k for k in rec if k not in cols]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols, lineterminator="\n")
    w.writeheader()
    for rec in history:
        w.writerow({k: rec.get(k, "") for k in cols})
    atomic_write_text(path, buf.getvalue())


def _seed_int(*parts: int) -> int:
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1)[0])


def _epoch_batches(n: int, batch_size: int, seed: int, epoch: int) -> list[list[int]]:
    import torch

    g = torch.Generator()
    g.manual_seed(_seed_int(seed, epoch, 1))
    order = torch.randperm(n, generator=g).tolist()
    return [order[i:i + batch_size] for i in range(0, n, batch_size)]


def _collate(ds: SliceDataset, idx: Sequence[int]):
    import torch

    items = [ds[i] for i in idx]
    return torch.stack([a for a, _ in items]), torch.stack([b for _, b in items])


# --- model ----------------------------------------------------------------------------------------
def _new_model(cfg: TrainConfig):
    import torch

    from .model import build_model, init_from_pretrained

    torch.manual_seed(cfg.seed)
    if cfg.init:
        from .model import CARD_FILE, load_model

        if (Path(cfg.init) / CARD_FILE).is_file():  # one of our own model folders: fine-tune it as is
            loaded = load_model(cfg.init)
            if loaded.input_spec.to_dict() != cfg.input_spec().to_dict():
                log.warning("%s was trained with preprocessing %s; fine-tuning with %s", cfg.init,
                            loaded.input_spec, cfg.input_spec())
            return loaded.model
        return init_from_pretrained(cfg.init, seed=cfg.seed)
    return build_model(cfg.variant, seed=cfg.seed, **cfg.arch)


def _model_from_config(config_path: Path):
    from transformers import SegformerConfig, SegformerForSemanticSegmentation

    return SegformerForSemanticSegmentation(SegformerConfig.from_json_file(str(config_path)))


# --- evaluation on a cache (input grid) -------------------------------------------------------
def evaluate_cache(model, cache: SliceCache, *, batch_size: int = 4, cfg: TrainConfig | None = None,
                   rows: np.ndarray | None = None) -> dict[str, Any]:
    """Loss and hard Dice of ``model`` on (some ``rows`` of) a cache, on the input grid.

    Returns ``{"loss", "dice" (mean over classes of per-class means over slices),
    "dice_<code>"...}``. Slices where a class is in neither prediction nor truth do not count
    for that class.
    """
    import torch

    cfg = cfg or TrainConfig()
    rows = np.arange(len(cache)) if rows is None else np.asarray(rows)
    was_training = model.training
    model.eval()
    dev = next(model.parameters()).device
    losses, dices = [], []
    with torch.inference_mode():
        for a in range(0, len(rows), batch_size):
            idx = rows[a:a + batch_size]
            x = torch.from_numpy(np.asarray(cache.images[idx], dtype=np.float32))[:, None].to(dev)
            y = torch.from_numpy(np.asarray(cache.labels[idx], dtype=np.int64)).to(dev)
            logits = match_size(model(pixel_values=x).logits, y.shape[-2:])
            loss, _, _ = ce_dice_loss(logits, y, ce_weight=cfg.ce_weight, dice_weight=cfg.dice_weight,
                                      eps=cfg.dice_eps)
            losses.append(float(loss) * len(idx))
            dices.append(hard_dice(logits.argmax(1).cpu().numpy(), y.cpu().numpy(), _FG))
    model.train(was_training)
    d = np.concatenate(dices) if dices else np.full((0, len(_FG)), np.nan)
    with np.errstate(all="ignore"):
        per_class = np.nanmean(d, axis=0) if len(d) else np.full(len(_FG), np.nan)
    out = {"loss": float(sum(losses) / max(len(rows), 1)), "dice": float(np.nanmean(per_class))}
    out.update({f"dice_{c}": float(v) for c, v in zip(_CLASS_CODES, per_class)})
    return out


def _val_rows(cache: SliceCache, per_scan: int | None) -> np.ndarray:
    """Rows of ``per_scan`` evenly spaced slices of each scan in the cache (all when None)."""
    if per_scan is None:
        return np.arange(len(cache))
    rows = []
    for _, grp in cache.index.groupby("scan", sort=False):
        r = grp.index.to_numpy()
        rows += r[np.unique(np.linspace(0, len(r) - 1, min(per_scan, len(r))).round().astype(int))].tolist()
    return np.asarray(sorted(rows))


# --- the run -------------------------------------------------------------------------------------
def prepare_data(cases: Sequence[Case], cfg: TrainConfig, cache_dir: str | os.PathLike,
                 progress: ProgressCallback | None = None) -> tuple[dict[str, Any], dict[str, SliceCache]]:
    """Split ``cases`` by patient and build (or reuse) the slice cache of each split.

    Returns the split document (patients, cases and slice counts per split) and the caches.
    ``progress(done_scans, total_scans)`` per split being built.
    """
    cache_dir = Path(cache_dir)
    if not cases:
        raise InputError("no training cases")
    split = split_by_patient([c.patient for c in cases], cfg.split, cfg.seed)
    for name in ("train", "val"):
        if not split[name]:
            raise InputError(f"too few patients ({len(set(c.patient for c in cases))}) for a "
                             f"{name} split; need at least 3")
    by_split = {k: [c for c in cases if c.patient in set(v)] for k, v in split.items()}
    spec = cfg.input_spec()
    caches = {}
    offset = 0
    for name in ("train", "val", "test"):
        if not by_split[name]:
            continue
        cb = None if progress is None else (lambda d, t, o=offset: progress(o + d, len(cases)))
        caches[name] = build_cache(by_split[name], cache_dir, spec, slices_per_scan=cfg.slices_per_scan,
                                   progress=cb)
        offset += len(by_split[name])
    split_doc = {"seed": cfg.seed, "fractions": list(cfg.split), "patients": split,
                 "cases": {k: [dataclasses.asdict(c) for c in v] for k, v in by_split.items()},
                 "cache": {k: str(v.folder) for k, v in caches.items()},
                 "slices": {k: len(v) for k, v in caches.items()}}
    return split_doc, caches


def _card(cfg: TrainConfig, state: dict[str, Any], split_doc: dict[str, Any], training_data: str,
          description: str, extra_metrics: dict[str, Any] | None = None):
    from .model import ModelCard, variant_of  # noqa: F401

    best = state["best"]
    metrics = {"validation_dice_input_grid": best["val"], "best_epoch": best["epoch"]}
    if extra_metrics:
        metrics.update(extra_metrics)
    return ModelCard(
        name=cfg.name,
        variant=state.get("variant", cfg.variant),
        description=description,
        preprocessing=cfg.input_spec().to_dict(),
        training_data=training_data,
        training={"config": cfg.to_dict(), "method_defaults": as_dict(TRAINING),
                  "patients": {k: len(v) for k, v in split_doc["patients"].items()},
                  "slices": split_doc["slices"], "epochs_trained": state["epoch"],
                  "parameters": state.get("parameters"), "architecture": state.get("architecture")},
        metrics=metrics,
        initialised_from=cfg.init or "random initialisation",
    )


def train_segmentation(
    cases: Sequence[Case],
    out: str | os.PathLike,
    config: TrainConfig | None = None,
    *,
    cache_dir: str | os.PathLike | None = None,
    resume: bool = True,
    training_data: str = "unspecified",
    description: str = "",
    progress: ProgressCallback | None = None,
    progress_cache: ProgressCallback | None = None,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
) -> TrainResult:
    """Train a SegFormer on ``cases`` into ``out`` (see the module docstring); resumes by default.

    ``progress(done_steps, total_steps)`` may return ``False`` to stop: a checkpoint is written at
    that step and :class:`hrpqct.errors.Cancelled` is raised; the next call resumes there.
    ``on_epoch(record)`` is called with each epoch's log row. ``config.threads`` sets torch's CPU
    threads for the run (restored afterwards); on a machine shared with other work, 1 thread is
    often several times faster than 2. Returns a :class:`TrainResult`.
    """
    import torch

    cfg = config or TrainConfig()
    threads = torch.get_num_threads()
    if cfg.threads:
        torch.set_num_threads(int(cfg.threads))
    try:
        return _train(cases, Path(out), cfg, cache_dir=cache_dir, resume=resume, training_data=training_data,
                      description=description, progress=progress, progress_cache=progress_cache,
                      on_epoch=on_epoch)
    finally:
        torch.set_num_threads(threads)


def _train(cases, out: Path, cfg: TrainConfig, *, cache_dir, resume, training_data, description, progress,
           progress_cache, on_epoch) -> TrainResult:
    import torch

    from .model import save_model, variant_of

    out.mkdir(parents=True, exist_ok=True)
    cache_dir = Path(cache_dir) if cache_dir else out / "cache"
    if cfg.batch_size < 1 or cfg.epochs < 0:
        raise InputError(f"batch size must be >= 1 and epochs >= 0 (got {cfg.batch_size}, {cfg.epochs})")

    split_doc, caches = prepare_data(cases, cfg, cache_dir, progress_cache)
    prev = load_checkpoint_state(out) if resume else None
    if prev is not None:
        if prev.get("fingerprint") != cfg.fingerprint():
            raise InputError(f"{out}: holds a checkpoint of a run with another configuration; use "
                             "another --out, the same options, or --no-resume to start over")
        if prev.get("split") != split_doc["patients"]:
            raise InputError(f"{out}: the checkpoint's patient split differs from this data's; "
                             "use another --out or the same data")
    elif not resume:
        shutil.rmtree(out / CHECKPOINT, ignore_errors=True)
    _json_atomic(split_doc, out / SPLIT_FILE)

    from .device import select_device

    device = select_device(cfg.device)
    ck_dir = checkpoint_folder(out) if prev is not None else None
    model = _model_from_config(ck_dir / "config.json") if ck_dir else _new_model(cfg)
    model.to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, foreach=True)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode="max", factor=cfg.plateau_factor, patience=cfg.plateau_patience)
    n_params = int(sum(p.numel() for p in model.parameters()))
    state: dict[str, Any] = {
        "epoch": 0, "step_in_epoch": 0, "global_step": 0, "history": [],
        "best": {"val": -1.0, "epoch": -1}, "partial": {"loss": 0.0, "ce": 0.0, "dice_loss": 0.0,
                                                        "n": 0, "seconds": 0.0},
        "fingerprint": cfg.fingerprint(), "split": split_doc["patients"], "config": cfg.to_dict(),
        "variant": variant_of(model.config), "parameters": n_params,
        "architecture": {k: getattr(model.config, k) for k in _ARCH_KEYS},
    }
    if ck_dir is not None:
        loaded = load_checkpoint(ck_dir, model, optimizer, scheduler)
        for k in ("epoch", "step_in_epoch", "global_step", "history", "best", "partial"):
            state[k] = loaded[k]
        log.info("resuming %s at epoch %d step %d", out, state["epoch"], state["step_in_epoch"])

    train_ds = SliceDataset(caches["train"], cfg.augment, seed=cfg.seed, patch_px=cfg.patch_px)
    val_rows = _val_rows(caches["val"], cfg.val_slices_per_scan)
    steps_per_epoch = -(-len(train_ds) // cfg.batch_size)
    total = cfg.epochs * steps_per_epoch

    def checkpoint() -> None:
        save_checkpoint(out / CHECKPOINT, model, optimizer, scheduler, state)

    report(progress, min(state["global_step"], total), total)
    for epoch in range(state["epoch"], cfg.epochs):
        train_ds.set_epoch(epoch)
        batches = _epoch_batches(len(train_ds), cfg.batch_size, cfg.seed, epoch)
        part = state["partial"]
        t_epoch = time.perf_counter() - part["seconds"]
        model.train()
        stop = False
        for b in range(state["step_in_epoch"], len(batches)):
            x, y = _collate(train_ds, batches[b])
            x, y = x.to(device), y.to(device)
            logits = model(pixel_values=x).logits
            loss, ce, dl = ce_dice_loss(logits, y, ce_weight=cfg.ce_weight, dice_weight=cfg.dice_weight,
                                        eps=cfg.dice_eps)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip_norm)
            optimizer.step()
            k = len(batches[b])
            part["loss"] += loss.item() * k
            part["ce"] += ce.item() * k
            part["dice_loss"] += dl.item() * k
            part["n"] += k
            state["step_in_epoch"] = b + 1
            state["global_step"] += 1
            part["seconds"] = time.perf_counter() - t_epoch
            stop = progress is not None and progress(state["global_step"], total) is False
            last = b + 1 == len(batches)
            if stop and not last:
                checkpoint()
                raise Cancelled(f"cancelled at epoch {epoch + 1}, step {b + 1}; re-run to resume")
            if stop:
                break  # the epoch's last step: finish the epoch (validation, checkpoint) first
            if cfg.checkpoint_every and state["global_step"] % cfg.checkpoint_every == 0 and not last:
                checkpoint()
        val = evaluate_cache(model, caches["val"], batch_size=cfg.eval_batch_size, cfg=cfg, rows=val_rows)
        lr_used = float(optimizer.param_groups[0]["lr"])
        scheduler.step(val["dice"])
        rec = {"epoch": epoch + 1, "lr": lr_used,
               "train_loss": part["loss"] / max(part["n"], 1), "train_ce": part["ce"] / max(part["n"], 1),
               "train_dice_loss": part["dice_loss"] / max(part["n"], 1),
               "val_loss": val["loss"], "val_dice": val["dice"],
               **{f"val_dice_{c}": val[f"dice_{c}"] for c in _CLASS_CODES},
               "seconds": time.perf_counter() - t_epoch, "best": False}
        if val["dice"] > state["best"]["val"]:
            state["best"] = {"val": val["dice"], "epoch": epoch + 1}
            rec["best"] = True
            state["epoch"] = epoch + 1
            save_model(model, out / MODEL_DIR, _card(cfg, state, split_doc, training_data, description))
        state["history"].append(rec)
        state["epoch"] = epoch + 1
        state["step_in_epoch"] = 0
        state["partial"] = {"loss": 0.0, "ce": 0.0, "dice_loss": 0.0, "n": 0, "seconds": 0.0}
        checkpoint()
        _write_log(state["history"], out / LOG_FILE)
        if on_epoch is not None:
            on_epoch(rec)
        if stop and epoch + 1 < cfg.epochs:
            raise Cancelled(f"cancelled after epoch {epoch + 1}; re-run to resume")

    result = TrainResult(out, out / MODEL_DIR, state["best"]["epoch"], state["best"]["val"], state["epoch"],
                         state["history"])
    if "test" in caches and (out / MODEL_DIR).is_dir():
        from .model import load_model

        best = load_model(out / MODEL_DIR, device=str(device)).model
        test = evaluate_cache(best, caches["test"], batch_size=cfg.eval_batch_size, cfg=cfg)
        result.test = {"test_" + k: v for k, v in test.items()}
        _json_atomic({"best_epoch": result.best_epoch, "best_val_dice": result.best_val_dice,
                      "epochs_done": result.epochs_done, "test_input_grid": test}, out / RESULT_FILE)
    return result

