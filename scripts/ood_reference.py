"""Write the out-of-distribution reference of a model folder (``reference.json``, issue 14):
the pixel sizes the model was trained and tested at, and the limb's HU distribution of phantoms
like its training data (``hrpqct.seg.ood.reference_from_volumes``).

The bundled demo model (Resources/models/demo-synthetic) was trained on phantom cohorts at 768
and 1152 px (0.182 and 0.122 mm, seeds 101 and 102) and tested on unseen seeds at 768, 1152 and
2304 px; its reference::

    nice .venv/bin/python scripts/ood_reference.py Resources/models/demo-synthetic \\
        --sizes 768 1152 --subjects 4 --slices 2 --spacing 0.0607 0.182 --scanner fbp

(version 2, trained on "fbp" images of the "published" cohort model; scripts/demo_weights.sh).

prints the distance of each phantom to the mean, and of a few altered copies (the figures of
docs/input-checks.md, "Out of distribution").
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import numpy as np


def main(argv=None) -> int:
    from hrpqct.io.atomic import atomic_write_text
    from hrpqct.phantom.cohort import cohort_phantoms
    from hrpqct.seg.ood import (REFERENCE_FILE, _percentiles, limb_facts, reference_from_volumes,
                                wasserstein_hu)

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", type=Path, help="model folder to write reference.json into")
    ap.add_argument("--sizes", type=int, nargs="+", default=[768, 1152])
    ap.add_argument("--subjects", type=int, default=6, help="phantoms per size")
    ap.add_argument("--slices", type=int, default=2)
    ap.add_argument("--seed", type=int, default=505, help="cohort seed (not a training seed)")
    ap.add_argument("--spacing", type=float, nargs=2, default=None,
                    help="pixel-size range (mm) trained and tested at (default: the phantoms')")
    ap.add_argument("--association", default="published", help="cohort model preset")
    ap.add_argument("--scanner", default="legacy", help="image formation: legacy or fbp")
    args = ap.parse_args(argv)

    vols = [p.image for p in cohort_phantoms(args.subjects * len(args.sizes), args.sizes,
                                             args.slices, args.seed, args.association,
                                             args.scanner)]
    note = (f"limb HU of {len(vols)} phantoms (cohort seed {args.seed}, sizes {args.sizes} px, "
            f"{args.slices} slices each, cohort model {args.association!r}, images "
            f"{args.scanner!r}) by scripts/ood_reference.py; spacing: the pixel sizes "
            "the model was trained and tested at")
    ref = reference_from_volumes(vols, spacing_mm=tuple(args.spacing) if args.spacing else None,
                                 note=note)
    q = np.asarray(ref["limb_hu_percentiles"])
    for i, v in enumerate(vols):
        print(f"phantom {i} ({v.shape[-1]} px): distance "
              f"{wasserstein_hu(_percentiles(limb_facts(v)['hu']), q):.1f} HU")
    v = vols[0]
    altered = {
        "inverted (-HU)": replace(v, array=-v.array.astype(np.float32)),
        "scaled x0.7": replace(v, array=v.array.astype(np.float32) * 0.7),
        "offset +200 HU": replace(v, array=v.array.astype(np.float32) + 200),
        "fat -110 HU": None,
    }
    arr = v.array.astype(np.float32).copy()
    fat = (arr > -450) & (arr < -200)
    arr[fat] += 220.0
    altered["fat -110 HU"] = replace(v, array=arr)
    for name, a in altered.items():
        print(f"{name}: distance {wasserstein_hu(_percentiles(limb_facts(a)['hu']), q):.1f} HU")
    print(f"max distance among the reference phantoms: {ref['max_distance_hu']} HU")
    path = args.model / REFERENCE_FILE
    atomic_write_text(path, json.dumps(ref, indent=1) + "\n")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
