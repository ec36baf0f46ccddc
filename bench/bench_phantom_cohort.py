"""Speed of synthetic-cohort generation: the subject table and the rendering of a few subjects.

Prints the wall time of (a) ``make_subjects(N)`` and (b) rendering ``--subjects`` cohort subjects
on a ``--size`` x ``--size`` x ``--slices`` grid, once with the realism options of issue 12 on
(the cohort model's anatomy with ``scanner="fbp"``) and once with them off (the same subjects
with ``Anatomy.legacy()``: the legacy image formation and bone texture), and their ratio. Motion
subjects (15 % of a cohort) also render the next slice for through-plane motion under "fbp":
``--motion`` sets every benchmarked subject's motion to measure that case. The
baseline is measured in the same run, in the same process, interleaved.

    nice .venv/bin/python bench/bench_phantom_cohort.py
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--table", type=int, default=2000)
    ap.add_argument("--subjects", type=int, default=3)
    ap.add_argument("--size", type=int, default=768)
    ap.add_argument("--slices", type=int, default=6)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--motion", type=float, default=None)
    a = ap.parse_args()
    from hrpqct.phantom.cohort import anatomy_for, make_subjects
    from hrpqct.phantom.render import Grid
    from hrpqct.phantom.scan import generate

    t0 = time.perf_counter()
    df = make_subjects(a.table, seed=0)
    t_table = time.perf_counter() - t0
    grid = Grid(size=a.size, n_slices=a.slices)
    rows = [df.loc[i] for i in range(a.subjects)]
    if a.motion is not None:
        for r in rows:
            r["motion"] = a.motion
    has_legacy = hasattr(anatomy_for(rows[0]), "scanner")

    def run(legacy: bool) -> float:
        t = time.perf_counter()
        for r in rows:
            an = anatomy_for(r)
            if has_legacy:
                an = an.legacy() if legacy else an.with_(scanner="fbp")
            generate(an, grid)
        return time.perf_counter() - t

    new, old = [], []
    run(False)  # warm-up (imports, FFT plans)
    for _ in range(a.repeats):
        old.append(run(True))
        new.append(run(False))
    t_new, t_old = float(np.median(new)), float(np.median(old))
    print(f"make_subjects({a.table}): {t_table:.2f} s")
    print(f"render {a.subjects} subjects on {a.size}^2 x {a.slices}: realism on {t_new:.2f} s, "
          f"legacy {t_old:.2f} s (median of {a.repeats}); ratio {t_new / t_old:.2f}"
          + ("" if has_legacy else " [this tree has no realism options: both runs are the same]"))


if __name__ == "__main__":
    main()
