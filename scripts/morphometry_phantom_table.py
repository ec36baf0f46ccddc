"""The table of docs/morphometry.md: the standard morphometry of synthetic subjects from healthy
to osteoporotic next to the published XtremeCT II distal-tibia ranges.

Subjects come from the cohort model (``make_subjects(N, seed)``), picked at quantiles of the
latent health score; each is rendered (60.7 um, ``--slices`` slices, thin soft tissue and no cast
to keep the rendering small; the bone is the cohort model's) with its exact label map, and
measured with the method's reference XtremeCT II calibration (phantoms are in HU).

    nice .venv/bin/python scripts/morphometry_phantom_table.py > table.md

``--groups N``: instead, the table of docs/phantom.md: the mean of N healthy (T >= -1) and N
osteoporotic (T <= -2.5) women (those nearest their group's median bone health) per parameter,
next to the published range; ``--scanner fbp`` renders with the issue-12 image formation.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from hrpqct.method import MORPHOMETRY
from hrpqct.morphometry import UNITS, morphometry, reference_calibration
from hrpqct.morphometry.reference import DIRECTION, NORMATIVE
from hrpqct.phantom.cohort import anatomy_for, make_subjects
from hrpqct.phantom.render import Grid
from hrpqct.phantom.scan import generate

ROWS = ["Tt.Ar_mm2", "Ct.Ar_mm2", "Tb.Ar_mm2", "Ps.Pm_mm", "Ec.Pm_mm", "Tt.BMD_mgHA_ccm",
        "Ct.BMD_mgHA_ccm", "Tb.BMD_mgHA_ccm", "Ct.Th_mm", "Ct.Th.SD_mm", "Ct.Th.annular_mm",
        "Ct.Po_pct", "Ct.Po.Dm_mm", "Tb.BV_TV", "Tb.N_1_mm", "Tb.Th_mm", "Tb.Sp_mm"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--subjects", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quantiles", default="0.05,0.25,0.5,0.75,0.95")
    ap.add_argument("--slices", type=int, default=16)
    ap.add_argument("--groups", type=int, default=0)
    ap.add_argument("--scanner", default="legacy", choices=("legacy", "fbp"))
    ap.add_argument("--model", default="published")
    a = ap.parse_args()
    df = make_subjects(a.subjects, seed=a.seed, model=a.model)
    if a.groups:
        return groups_table(df, a)
    qs = [float(q) for q in a.quantiles.split(",")]
    picks = [int((df["health"] - df["health"].quantile(q)).abs().idxmin()) for q in qs]
    cal = reference_calibration()
    cols = []
    for i in picks:
        row = df.loc[i]
        anat = anatomy_for(row).with_(cast=False, soft_depth_scale=0.75, subcut_fat_mm=1.5,
                                      motion=0.0, scanner=a.scanner)
        t0 = time.perf_counter()
        ph = generate(anat, Grid(size=1280, n_slices=a.slices, spacing_mm=0.0607))
        res = morphometry(ph.image.array, ph.labels7.array, ph.image.spacing_zyx, unit="HU",
                          calibration=cal, bones=("tibia",))
        print(f"{row.subject_id}: health {row.health:+.2f}, T {row.t_score_fn:+.1f} "
              f"({time.perf_counter() - t0:.0f} s)", file=sys.stderr, flush=True)
        cols.append((row, res))
    head = " | ".join(f"h {r.health:+.2f} (T {r.t_score_fn:+.1f})" for r, _ in cols)
    print(f"| parameter | unit | {head} | published range | source | published direction |")
    print("|---|---|" + "---|" * len(cols) + "---|---|---|")
    for c in ROWS:
        vals = [res.value("tibia", c) for _, res in cols]
        fmt = "{:.0f}" if abs(np.nanmedian(vals)) >= 50 else ("{:.3f}" if abs(np.nanmedian(vals)) < 2 else "{:.2f}")
        lo, hi, src = NORMATIVE.get(c, (np.nan, np.nan, ""))
        pub = f"{fmt.format(lo)}-{fmt.format(hi)}" if src else "-"
        d = {1: "higher when healthy", -1: "lower when healthy"}.get(DIRECTION.get(c, 0), "-")
        label = "Tb.BV/TV" if c == "Tb.BV_TV" else c.split("_")[0]
        print(f"| {label} | {UNITS[c]} | " + " | ".join(fmt.format(v) for v in vals)
              + f" | {pub} | {src or '-'} | {d} |")
    print(f"\nthresholds {MORPHOMETRY.trabecular_threshold_mgha:g} / "
          f"{MORPHOMETRY.cortical_threshold_mgha:g} mgHA/ccm, Gaussian sigma "
          f"{MORPHOMETRY.gauss_sigma_voxels:g} support {MORPHOMETRY.gauss_support_voxels}; "
          f"{a.slices} slices per subject; cohort make_subjects({a.subjects}, seed={a.seed}), "
          f"health quantiles {a.quantiles}", file=sys.stderr)


GROUP_ROWS = ["Tt.Ar_mm2", "Ct.Ar_mm2", "Ct.Th_mm", "Ct.Po_pct", "Ct.BMD_mgHA_ccm",
              "Tb.BMD_mgHA_ccm", "Tb.BV_TV", "Tb.N_1_mm", "Tb.Th_mm", "Tb.Sp_mm", "Ct.Po.Dm_mm"]


def _measure(row, a):
    anat = anatomy_for(row).with_(cast=False, soft_depth_scale=0.75, subcut_fat_mm=1.5,
                                  motion=0.0, scanner=a.scanner)
    ph = generate(anat, Grid(size=1280, n_slices=a.slices, spacing_mm=0.0607))
    return morphometry(ph.image.array, ph.labels7.array, ph.image.spacing_zyx, unit="HU",
                       calibration=reference_calibration(), bones=("tibia",))


def groups_table(df, a) -> None:
    women = df[df["sex"] == "F"]
    groups = {"healthy (T >= -1)": women[women["t_score_fn"] >= -1.0],
              "osteoporotic (T <= -2.5)": women[women["t_score_fn"] <= -2.5]}
    vals, names = {}, {}
    for g, sub in groups.items():
        order = (sub["bone_health"] - sub["bone_health"].median()).abs().sort_values().index
        picks = [sub.loc[i] for i in order[: a.groups]]
        names[g] = ", ".join(f"{r.subject_id} (T {r.t_score_fn:+.1f})" for r in picks)
        res = []
        for r in picks:
            t0 = time.perf_counter()
            res.append(_measure(r, a))
            print(f"{g}: {r.subject_id} ({time.perf_counter() - t0:.0f} s)", file=sys.stderr, flush=True)
        vals[g] = {c: float(np.mean([x.value("tibia", c) for x in res])) for c in GROUP_ROWS}
    gs = list(groups)
    print(f"| parameter | unit | {gs[0]} | {gs[1]} | OP vs healthy | published range | source |")
    print("|---|---|---|---|---|---|---|")
    for c in GROUP_ROWS:
        v = [vals[g][c] for g in gs]
        fmt = "{:.0f}" if abs(np.nanmedian(v)) >= 50 else ("{:.3f}" if abs(np.nanmedian(v)) < 2 else "{:.2f}")
        lo, hi, src = NORMATIVE.get(c, (np.nan, np.nan, ""))
        pub = f"{fmt.format(lo)}-{fmt.format(hi)}" if src else "-"
        label = "Tb.BV/TV" if c == "Tb.BV_TV" else c.split("_")[0]
        diff = f"{100 * (v[1] / v[0] - 1):+.0f} %" if v[0] else "-"
        inside = ["" if not src else (" (in)" if lo <= x <= hi else " (out)") for x in v]
        print(f"| {label} | {UNITS[c]} | {fmt.format(v[0])}{inside[0]} | {fmt.format(v[1])}{inside[1]} "
              f"| {diff} | {pub} | {src or '-'} |")
    print(f"\nsubjects: {names[gs[0]]}; {names[gs[1]]}; make_subjects({a.subjects}, seed={a.seed}, "
          f"model={a.model!r}), scanner {a.scanner!r}, {a.slices} slices at 60.7 um", flush=True)


if __name__ == "__main__":
    main()
