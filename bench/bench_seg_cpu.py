"""SegFormer-B3 at 800 x 800 on this CPU: a careful plain PyTorch loop vs the fast CPU backends.

Measures, in one run, interleaved, on the same full-size synthetic slices (2304 x 2304 px,
60.8 um), whole slices (preprocessing + network + labels on the native grid):

* the baseline, a CAREFUL plain loop: the unmodified ``SegformerForSemanticSegmentation`` under
  ``torch.inference_mode`` via ``segment_volume(fast_cpu=False, batch_size=b)`` for each
  ``--batches`` size; the fastest batch size is the baseline ("careful, best batch");
* second line only: the autograd-on loop (plain ``model(x)``, batch 1, no inference mode), the
  bench's old baseline, timed in ``--naive-rounds`` rounds;
* the fast CPU path on each installed backend (``segment_volume(cpu_backend=...)``): ``torch``
  (folded head, channels-last, sdpa), ``onnxruntime`` (fp32, all graph optimisations),
  ``openvino`` (fp32), and the int8 forms ``openvino-int8`` (NNCF static int8, calibrated on
  phantom slices) and ``onnxruntime-int8`` (dynamic int8); the first use of each (export,
  quantisation, compilation; cached) happens in an untimed warm-up and its one-off cost is
  printed;
* what ``cpu_backend="auto"`` chooses here (its first-use measurement, printed), exact and with
  ``quantize=True``.

It prints s/slice (wall and CPU), the speed-up over the careful loop (wall: the target; CPU time,
less disturbed when other jobs share the cores), and the fraction of labels each path leaves
unchanged relative to the careful loop: 5 classes on the native grid and, after the topology
rules and the soft-tissue split, the 7 final regions.

Weights: ``--weights DIR`` (a model folder, e.g. ``Resources/models/demo-synthetic``, a trained
model: label agreement is meaningful) or, by default, a randomly initialised B3 (seed 0), fine for
timing, but its argmax margins are tiny, so its int8 agreement says little (printed as such).

    nice .venv/bin/python bench/bench_seg_cpu.py                       # random B3, timing
    nice .venv/bin/python bench/bench_seg_cpu.py --weights Resources/models/demo-synthetic

The machine has 2 cores shared with other work: each path is timed ``--rounds`` times in
alternation (round-robin over the paths) and the fastest round is kept; the load average is
printed with each round.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

from hrpqct.phantom.anatomy import Anatomy
from hrpqct.phantom.render import Grid
from hrpqct.phantom.scan import iter_slices
from hrpqct.regions import MODEL_CLASSES
from hrpqct.seg.inference import segment_volume
from hrpqct.seg.model import LoadedModel, ModelCard, build_model, load_model, save_model
from hrpqct.seg.preprocess import InputSpec, labels_to_input, logits_to_labels, plan_crop, preprocess_slices
from hrpqct.volume import Volume

TRAIN_SEEDS = (9101, 9102, 9103)  # phantom subjects used for the bench weights
EVAL_SEED = 9001  # a subject never used in training


def log(msg: str) -> None:
    print(msg, flush=True)


# --- data -----------------------------------------------------------------------------------------
def phantom_stack(seed: int, start: int, n: int) -> tuple[Volume, np.ndarray]:
    """``n`` consecutive full-size phantom slices (HU volume) and their 5-class truth."""
    grid = Grid()
    hu, l5 = [], []
    for _, h, a, _ in iter_slices(Anatomy(seed=seed), grid, start, start + n):
        hu.append(h)
        l5.append(a)
    px = grid.pixel_mm
    vol = Volume(np.stack(hu), spacing=(px, px, grid.z_mm), unit="HU")
    return vol, np.stack(l5)


# --- bench weights --------------------------------------------------------------------------------
def train_bench_b3(folder: Path, steps: int, patch: int, batch: int, lr: float, per_subject: int,
                   seed: int = 0) -> LoadedModel:
    """Train the paper's B3 briefly on phantom patches (cross-entropy, Adam) and save it."""
    spec = InputSpec()
    xs, ys = [], []
    for s in TRAIN_SEEDS:
        t0 = time.perf_counter()
        vol, truth = phantom_stack(s, start=20 + 37 * (s % 3), n=per_subject)
        box, _ = plan_crop(vol.array, vol.spacing, spec)
        xs.append(preprocess_slices(vol.array, box, spec)[:, 0].numpy())
        ys.append(labels_to_input(truth, box, spec))
        log(f"  training data: subject {s}, {per_subject} slices ({time.perf_counter() - t0:.0f} s)")
    x_all = np.concatenate(xs)
    y_all = np.concatenate(ys)
    n, size = x_all.shape[0], x_all.shape[-1]
    bone = [np.argwhere((y >= 1) & (y <= 4)) for y in y_all]

    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    model = build_model("b3")
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=lr, fused=True)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps,
                                                pct_start=max(0.1, 3.0 / steps))
    half = patch // 2
    t0 = time.perf_counter()
    running = None
    for step in range(1, steps + 1):
        xb = np.empty((batch, 1, patch, patch), np.float32)
        yb = np.empty((batch, patch, patch), np.int64)
        for b in range(batch):
            i = int(rng.integers(n))
            if rng.random() < 0.5 and len(bone[i]):  # half the patches centred on bone
                cy, cx = bone[i][rng.integers(len(bone[i]))]
            else:
                cy, cx = rng.integers(half, size - half, 2)
            y0 = int(np.clip(cy - half, 0, size - patch))
            x0 = int(np.clip(cx - half, 0, size - patch))
            xp = x_all[i, y0:y0 + patch, x0:x0 + patch]
            yp = y_all[i, y0:y0 + patch, x0:x0 + patch]
            if rng.random() < 0.5:
                xp, yp = xp[:, ::-1], yp[:, ::-1]
            xb[b, 0], yb[b] = xp, yp
        out = model(pixel_values=torch.from_numpy(xb), labels=torch.from_numpy(yb))
        opt.zero_grad(set_to_none=True)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        running = out.loss.item() if running is None else 0.9 * running + 0.1 * out.loss.item()
        if step % 10 == 0 or step == steps:
            el = time.perf_counter() - t0
            log(f"  step {step}/{steps}: loss {running:.3f} ({el / step:.1f} s/step)")
    model.eval()
    card = ModelCard(
        name="bench-b3-phantom", variant="b3",
        description="SegFormer-B3 (paper configuration) trained briefly for the CPU benchmark only.",
        training_data=(f"synthetic phantoms, seeds {list(TRAIN_SEEDS)}, {per_subject} slices each; "
                       f"random {patch} x {patch} patches of the 800 x 800 input"),
        training={"steps": steps, "batch": batch, "lr_max": lr, "loss": "cross-entropy",
                  "optimizer": "Adam + one-cycle", "seed": seed},
        intended_use="Benchmark weights only; not a segmentation model for any use.",
    )
    save_model(model, folder, card)
    return load_model(folder)


# --- the paths ------------------------------------------------------------------------------------
def naive_pass(model, vol: Volume, spec: InputSpec) -> tuple[np.ndarray, float, float]:
    """Batch 1, autograd on, default threads; same preprocessing/upsampling code as the project."""
    w0, c0 = time.perf_counter(), time.process_time()
    box, _ = plan_crop(vol.array, vol.spacing, spec)
    out = np.zeros(vol.shape, np.uint8)
    for k in range(vol.shape[0]):
        x = preprocess_slices(np.asarray(vol.array[k:k + 1], np.float32), box, spec)
        logits = model(x).logits  # no inference_mode, no no_grad: the naive loop
        logits_to_labels(logits.detach(), box, vol.shape[1:], spec.upsample, out=out[k:k + 1])
    return out, time.perf_counter() - w0, time.process_time() - c0


def project_pass(loaded: LoadedModel, vol: Volume, **kw) -> tuple[np.ndarray, float, float]:
    w0, c0 = time.perf_counter(), time.process_time()
    r = segment_volume(vol, loaded, device="cpu", **kw)
    return r.labels.array, time.perf_counter() - w0, time.process_time() - c0


def f1_per_class(pred: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    out = {}
    for r in MODEL_CLASSES:
        p, t = pred == r.label, truth == r.label
        tp = np.count_nonzero(p & t)
        den = np.count_nonzero(p) + np.count_nonzero(t)
        out[r.code] = 2 * tp / den if den else float("nan")
    return out


def seven_regions(labels5: np.ndarray, vol: Volume) -> np.ndarray:
    from hrpqct.seg.postprocess import postprocess
    from hrpqct.seg.softtissue import split_soft_tissue

    post = postprocess(labels5, vol.spacing)
    return split_soft_tissue(post, vol.array, vol.spacing)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--slices", type=int, default=2, help="full-size slices timed per path")
    ap.add_argument("--rounds", type=int, default=2, help="timing rounds per path (fastest kept)")
    ap.add_argument("--naive-rounds", type=int, default=1, help="rounds of the autograd-on loop")
    ap.add_argument("--batches", default="1,2", help="batch sizes of the careful loop")
    ap.add_argument("--weights", type=Path, default=None,
                    help="model folder (default: random-init B3, seed 0)")
    ap.add_argument("--train-b3", type=Path, default=None,
                    help="train a B3 briefly on phantoms into this folder, then use it")
    ap.add_argument("--train-steps", type=int, default=120)
    ap.add_argument("--train-patch", type=int, default=192)
    ap.add_argument("--train-batch", type=int, default=2)
    ap.add_argument("--train-lr", type=float, default=4e-4)
    ap.add_argument("--train-slices", type=int, default=3, help="slices per training subject")
    ap.add_argument("--backends", default=None,
                    help="comma list (default: all installed of torch, onnxruntime, openvino, "
                         "openvino-int8, onnxruntime-int8)")
    ap.add_argument("--no-naive", action="store_true", help="skip the autograd-on loop")
    ap.add_argument("--no-auto", action="store_true", help="skip the automatic choice")
    ap.add_argument("--no-post", action="store_true", help="skip the 7-region comparison")
    args = ap.parse_args(argv)

    from hrpqct.seg.cpu_select import AutoSegformer, candidates

    log(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} cores; "
        f"load average {os.getloadavg()[0]:.1f}")
    trained = True
    if args.train_b3 is not None:
        if not (args.train_b3 / "model_card.json").is_file():
            log(f"training bench weights -> {args.train_b3}")
            train_bench_b3(args.train_b3, args.train_steps, args.train_patch, args.train_batch,
                           args.train_lr, args.train_slices)
        args.weights = args.train_b3
    if args.weights is not None:
        loaded = load_model(args.weights)
        card = loaded.card
        log(f"weights: {args.weights} ({card.name}: {card.training_data})")
    else:
        trained = False
        card = ModelCard(name="bench-b3-random", variant="b3", description="random init, seed 0")
        loaded = LoadedModel(build_model("b3", seed=0), card)
        log("weights: SegFormer-B3 random init (seed 0): timing only, label agreement of int8 "
            "on random weights is NOT meaningful")
    model = loaded.model.eval()
    spec = loaded.input_spec
    n_params = sum(p.numel() for p in model.parameters())

    log(f"evaluation scan: phantom seed {EVAL_SEED} (not used in training), {args.slices} slices")
    vol, truth = phantom_stack(EVAL_SEED, start=60, n=args.slices)
    log(f"  {vol.shape[1]} x {vol.shape[2]} px at {vol.spacing[0] * 1000:.1f} um -> crop "
        f"{spec.crop_shape(vol.spacing[:2])[0]} px -> {spec.input_px} x {spec.input_px} input; "
        f"model {n_params / 1e6:.1f} M parameters")
    warm = Volume(vol.array[:1], spacing=vol.spacing, unit="HU")

    backends = args.backends.split(",") if args.backends else [
        b for b in ("torch", "onnxruntime", "openvino", "openvino-int8", "onnxruntime-int8")
        if b in candidates(quantize=True)]
    batches = [int(b) for b in args.batches.split(",")]
    paths = {f"careful, batch {b}": (lambda v, b=b: project_pass(loaded, v, fast_cpu=False,
                                                                 batch_size=b)) for b in batches}
    for b in backends:
        base, _, q = b.partition("-")
        paths[f"fast, {b}"] = (lambda v, base=base, q=q: project_pass(
            loaded, v, cpu_backend=base, quantize=q == "int8"))
    log("warming up each path on one slice (first use exports / quantises / compiles once; cached)")
    for name, f in paths.items():
        w0 = time.perf_counter()
        f(warm)
        log(f"  {name}: first use {time.perf_counter() - w0:.1f} s")

    best = {k: (np.inf, np.inf) for k in paths}
    labels = {}
    timed = dict(paths)
    if not args.no_naive:
        timed["autograd on (old baseline)"] = lambda v: naive_pass(model, v, spec)
        best["autograd on (old baseline)"] = (np.inf, np.inf)
    for rnd in range(args.rounds):
        for name, f in timed.items():
            if name.startswith("autograd") and rnd >= args.naive_rounds:
                continue
            lab, wall, cpu = f(vol)
            labels[name] = lab
            best[name] = (min(best[name][0], wall), min(best[name][1], cpu))
            log(f"  round {rnd + 1} {name:28s} {wall / args.slices:7.2f} s/slice "
                f"(cpu {cpu / args.slices:7.2f} s/slice; load {os.getloadavg()[0]:.1f})")

    careful = min((k for k in paths if k.startswith("careful")), key=lambda k: best[k][0])
    ref = labels[careful]
    limb = (ref > 0) | (truth > 0)
    seven = {} if args.no_post else {k: seven_regions(v, vol) for k, v in labels.items()}
    f1 = f1_per_class(ref, truth)
    log("")
    log(f"weights vs phantom truth (careful loop): F1 "
        + ", ".join(f"{k} {v:.3f}" for k, v in f1.items())
        + f"; mean {np.nanmean(list(f1.values())):.3f}")
    log(f"baseline: {careful} (the fastest careful batch size)")
    log("")
    hdr = (f"{'path':28s} {'s/slice':>8s} {'cpu s/sl':>9s} {'vs careful':>10s} {'cpu x':>6s} "
           f"{'labels same':>12s} {'in limb':>9s} {'7-region':>9s}")
    log(hdr)
    log("-" * len(hdr))
    t_ref, c_ref = best[careful]

    def agreement(name: str) -> tuple[float, float]:
        same = float((labels[name] == ref).mean())
        return same, (float((seven[name] == seven[careful]).mean()) if seven else same)

    for name in best:
        wall, cpu = best[name]
        same = float((labels[name] == ref).mean())
        same_limb = float((labels[name][limb] == ref[limb]).mean())
        s7 = "" if not seven else f"{agreement(name)[1] * 100:8.3f}%"
        log(f"{name:28s} {wall / args.slices:8.2f} {cpu / args.slices:9.2f} {t_ref / wall:9.2f}x "
            f"{c_ref / cpu:5.2f}x {same * 100:11.3f}% {same_limb * 100:8.3f}% {s7:>9s}")
    log("")
    ok = [k for k in paths if k.startswith("fast") and min(agreement(k)) >= 0.99]
    exact = [k for k in ok if "int8" not in k]
    for title, pool in (("fastest exact backend", exact), ("fastest backend with >= 99 % unchanged", ok)):
        if not pool:
            continue
        k = min(pool, key=lambda k: best[k][0])
        same, same7 = agreement(k)
        x = t_ref / best[k][0]
        log(f"{title} ({k}): {best[k][0] / args.slices:.2f} s/slice, {x:.2f}x the careful loop in "
            f"wall time ({c_ref / best[k][1]:.2f}x CPU time; target >= 3x: "
            f"{'met' if x >= 3 else 'NOT met'}), {same * 100:.3f}% labels unchanged, "
            f"{same7 * 100:.3f}% of the 7 final regions"
            + ("" if trained else " (random weights: agreement not meaningful)"))
        log(f"  whole scan of 168 slices at that rate: {168 * best[k][0] / args.slices / 60:.1f} min "
            f"(careful loop {168 * t_ref / args.slices / 60:.1f} min; segmentation only, "
            f"extrapolated from {args.slices} slices)")
    if not args.no_naive:
        n = "autograd on (old baseline)"
        log(f"second line: the autograd-on loop takes {best[n][0] / args.slices:.2f} s/slice, "
            f"{best[n][0] / t_ref:.2f}x the careful loop")
    if not args.no_auto:
        x = torch.from_numpy(preprocess_slices(
            np.asarray(vol.array[:1], np.float32), plan_crop(vol.array, vol.spacing, spec)[0],
            spec).numpy())
        for q in (False, True):
            a = AutoSegformer(model, quantize=q)
            with torch.inference_mode():
                a(x)
            figs = (a.report or {}).get("figures", {})
            log(f"auto ({'int8 allowed' if q else 'exact'}): chooses {a.choice}"
                + (" (cached choice)" if not figs else ": " + ", ".join(
                    f"{n} {f['seconds']:.2f} s" + (f" {f['agreement'] * 100:.2f}%" if 'int8' in n else "")
                    if 'seconds' in f else f"{n} failed" for n, f in figs.items())))
    log(f"load average at the end {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
