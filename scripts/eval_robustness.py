"""Dice of a model on unseen phantoms under each robustness augmentation (issue 14): the slices
are preprocessed exactly as at inference, one augmentation (``Augment.only``, always on, drawn
with a fixed seed) is applied to the network input, and the labels are compared on the input
grid (mean Dice over the five classes, as train-seg's validation Dice).

    nice .venv/bin/python scripts/eval_robustness.py Resources/models/demo-synthetic \\
        --subjects 2 --size 768 --slices 2
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def _dice(pred: np.ndarray, truth: np.ndarray, classes=(1, 2, 3, 4, 5)) -> float:
    scores = []
    for c in classes:
        p, t = pred == c, truth == c
        n = int(p.sum()) + int(t.sum())
        if n:
            scores.append(2.0 * int(np.count_nonzero(p & t)) / n)
    return float(np.mean(scores)) if scores else float("nan")


def main(argv=None) -> int:
    import torch
    import torch.nn.functional as F

    from hrpqct.phantom.cohort import cohort_phantoms
    from hrpqct.seg.dataset import Augment, augment_pair, preprocess_case
    from hrpqct.seg.model import load_model

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", type=Path)
    ap.add_argument("--subjects", type=int, default=2)
    ap.add_argument("--size", type=int, default=768)
    ap.add_argument("--slices", type=int, default=2)
    ap.add_argument("--seed", type=int, default=808, help="cohort seed (not a training seed)")
    ap.add_argument("--association", default="published", help="cohort model preset")
    ap.add_argument("--scanner", default="legacy", help="image formation: legacy or fbp")
    ap.add_argument("--json", type=Path, help="also write the figures here (JSON)")
    args = ap.parse_args(argv)

    loaded = load_model(args.model)
    spec = loaded.input_spec
    torch.set_num_threads(1)
    settings = ["none", "resolution", "noise", "calib", "blur", "motion", "position", "radius"]
    pairs = []
    for ph in cohort_phantoms(args.subjects, (args.size,), args.slices, args.seed,
                              args.association, args.scanner):
        imgs, labs = preprocess_case(ph.image.array, ph.labels5.array, ph.image.spacing, spec)
        pairs += list(zip(imgs, labs))
    print(f"{len(pairs)} slices of {args.subjects} unseen phantoms ({args.size} px, seed "
          f"{args.seed}); model {loaded.card.name}, input {spec.input_px} px "
          f"({spec.input_mm * 1000:.0f} um); cohort model {args.association!r}, images "
          f"{args.scanner!r}")
    record = {"mean": {}, "min": {}, "subjects": args.subjects, "size_px": args.size,
              "slices": args.slices, "seed": args.seed, "association": args.association,
              "scanner": args.scanner}
    for name in settings:
        aug = Augment(enabled=False) if name == "none" else Augment().only(name)
        scores = []
        for i, (img, lab) in enumerate(pairs):
            x = torch.from_numpy(np.asarray(img, np.float32))[None]
            y = torch.from_numpy(np.asarray(lab, np.int64))
            x, y = augment_pair(x, y, aug, torch.Generator().manual_seed(1000 + i), spec.input_mm)
            with torch.inference_mode():
                logits = loaded.model(pixel_values=x[None].clamp(0, 1)).logits
                logits = F.interpolate(logits, size=y.shape, mode="bilinear", align_corners=False)
            pred = logits[0].argmax(0).numpy()
            if name == "radius":  # a negative: the right answer is "no bone", score the bones
                scores.append(float(np.mean(np.isin(pred, (1, 2, 3, 4)))))
            else:
                scores.append(_dice(pred, y.numpy()))
        what = "fraction of pixels called bone (want 0)" if name == "radius" else "mean Dice"
        print(f"{name:12s} {what}: {np.nanmean(scores):.3f} (min {np.nanmin(scores):.3f})")
        record["mean"][name] = round(float(np.nanmean(scores)), 4)
        record["min"][name] = round(float(np.nanmin(scores)), 4)
    if args.json:
        import json

        from hrpqct.io.atomic import atomic_write_json

        atomic_write_json(args.json, record)
        print(f"-> {args.json}", json.dumps(record["mean"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
