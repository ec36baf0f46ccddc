"""Radiomics speed: the multi-region engine vs plain PyRadiomics, and the cohort runner's scaling.

One run, the same synthetic slices (hrpqct.radiomics.synthetic: six radiomics regions TC, TT,
FC, FT, MT, AT on every slice), the ``paper`` preset (939 features per region):

1. plain PyRadiomics, one ``RadiomicsFeatureExtractor.execute`` per region, vs the project's
   ``MultiRegionExtractor`` in one process (target: 10x wall). Also the engine's per-region
   path (``fast=False``, the engine before its fast path) for comparison. All run with the same
   thread settings (BLAS limited to one thread, SimpleITK default), interleaved slice by slice;
   wall and CPU (process) times and the load average are printed, and the values are checked
   against plain PyRadiomics (max relative difference over all values).
2. the whole-scan time of a full-size scan (168 slices of 2304 px, cropped to the limb as
   ``hrpqct radiomics`` does), measured on a few slices and scaled (``--scan-measure``).
3. ``--part profile``: where the engine's time goes on one slice, CPU seconds by step (filters,
   discretisation + texture matrices, matrix post-processing, feature formulas, shape) and by
   filtered image and feature class, from timers around the engine's steps.
4. the cohort runner (``run_cohort``) on scans made of such slices, 2 worker processes vs 1
   (target: 1.8x or more; the machine's other load is printed, since it shares the cores).

    .venv/bin/python bench/bench_radiomics.py                   # 800 x 800 slices
    .venv/bin/python bench/bench_radiomics.py --size 1600 --spacing 0.0607 --slices 1
    .venv/bin/python bench/bench_radiomics.py --part engine     # or --part scan / profile / cohort
    taskset -c 1 nice .venv/bin/python bench/bench_radiomics.py --part engine --slices 3  # one core
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np


def load() -> str:
    return "load average %.2f %.2f %.2f" % os.getloadavg()


def max_rel_diff(a, b) -> float:
    worst = 0.0
    for name in a:
        assert (a[name].reason is None) == (b[name].reason is None), name
        assert list(a[name].features) == list(b[name].features), name
        for k, x in a[name].features.items():
            x, y = float(x), float(b[name].features[k])
            if math.isnan(x) and math.isnan(y):
                continue
            if x != y:
                worst = max(worst, abs(x - y) / max(abs(x), abs(y)))
    return worst


def cpu_note() -> str:
    return f"{load()}; this process may use {len(os.sched_getaffinity(0))} core(s)"


def bench_engine(args) -> None:
    from hrpqct.radiomics.engine import MultiRegionExtractor, pyradiomics_execute
    from hrpqct.radiomics.synthetic import synthetic_slice
    from hrpqct.regions import RADIOMICS_REGIONS, region

    sp = (args.spacing, args.spacing)
    engine = MultiRegionExtractor("paper")
    per_region = MultiRegionExtractor("paper", fast=False)  # the engine before the fast path
    warm_img, warm_lab = synthetic_slice(64, 1.0, seed=99)
    warm = {c: warm_lab == region(c).label for c in RADIOMICS_REGIONS}
    engine.execute(warm_img, warm, (1.0, 1.0))  # imports, compiled kernels (numba cache)
    per_region.execute(warm_img, warm, (1.0, 1.0))
    pyradiomics_execute(warm_img, warm, (1.0, 1.0), "paper")
    print(f"== engine vs plain PyRadiomics: {args.slices} slice(s) of {args.size} x {args.size} px "
          f"({args.spacing} mm), six regions, paper preset (939 features each); {cpu_note()}")
    paths = {"plain": lambda i, m: pyradiomics_execute(i, m, sp, "paper"),
             "per-region engine": lambda i, m: per_region.execute(i, m, sp),
             "engine": lambda i, m: engine.execute(i, m, sp)}
    tot = {k: [0.0, 0.0] for k in paths}
    worst = {k: 0.0 for k in paths if k != "plain"}
    for k in range(args.slices):
        img, lab = synthetic_slice(args.size, args.spacing, seed=k)
        masks = {c: lab == region(c).label for c in RADIOMICS_REGIONS}
        px = {c: int(m.sum()) for c, m in masks.items()}
        out, line = {}, []
        for name, run in paths.items():  # interleaved, same slice, one process, one core
            w0, c0 = time.perf_counter(), time.process_time()
            out[name] = run(img, masks)
            w, c = time.perf_counter() - w0, time.process_time() - c0
            tot[name][0] += w
            tot[name][1] += c
            line.append(f"{name} {w:.2f} s")
        for name in worst:
            worst[name] = max(worst[name], max_rel_diff(out[name], out["plain"]))
        print(f"  slice {k}: " + ", ".join(line) + f" wall; region pixels {px}")
    n = args.slices
    pw, pc = tot["plain"]
    for name, (w, c) in tot.items():
        ratio = "" if name == "plain" else f"   x{pw / w:5.2f} wall, x{pc / c:5.2f} CPU"
        print(f"  {name:18s}: {w / n:6.3f} s/slice wall, {c / n:6.3f} s/slice CPU{ratio}")
    ew = tot["engine"][0]
    print(f"  speed-up engine vs plain PyRadiomics: x{pw / ew:.2f} wall (target x10)")
    for name, v in worst.items():
        print(f"  max relative difference, {name} vs plain, over all {n * 6 * 939} values: {v:.3g}")
    print(f"  {load()}")


def bench_scan(args) -> None:
    """Whole-scan radiomics of a full-size scan (168 slices of 2304 x 2304 px at 60.7 um), as
    ``hrpqct radiomics`` runs it (extract_scan: crop to the limb + 5 mm, six regions), timed on
    ``--scan-measure`` slices and scaled to 168."""
    from hrpqct.radiomics.synthetic import synthetic_slice
    from hrpqct.radiomics.tables import extract_scan

    n, size, sp = args.scan_measure, args.scan_size, 0.0607
    pairs = [synthetic_slice(size, sp, seed=500 + k, z=k / max(n, 1)) for k in range(n)]
    img = np.stack([p[0] for p in pairs])
    lab = np.stack([p[1] for p in pairs])
    extract_scan(img[:1, ::16, ::16], lab[:1, ::16, ::16], (sp * 16, sp * 16, sp))  # warm-up
    print(f"== whole scan: {n} measured slice(s) of {size} x {size} px ({sp} mm), scaled to 168; "
          f"{cpu_note()}")
    w0, c0 = time.perf_counter(), time.process_time()
    table = extract_scan(img, lab, (sp, sp, sp))
    w, c = time.perf_counter() - w0, time.process_time() - c0
    assert len(table) == 6 * n and table["reason"].isna().all()
    print(f"  engine: {w / n:.2f} s/slice wall, {c / n:.2f} s/slice CPU "
          f"(the synthetic limb fills ~85 % of the field: more than a real distal tibia)")
    print(f"  168-slice scan, one core: ~{w / n * 168 / 60:.1f} min wall, "
          f"~{c / n * 168 / 60:.1f} min CPU (estimated from {n} slices; wall above CPU means the "
          f"process waited for a core); {load()}")


def bench_profile(args) -> None:
    """CPU time of the engine's steps on one slice (timers around them; the engine warmed up).

    The steps are timed by wrapping, for this process only, ``MultiRegionExtractor._filtered``
    (the filters), ``fast.FastImage`` (discretisation and texture matrices), ``_prepare_region``
    (shape, masks) and, per feature class, the object set-up, ``_initCalculation`` (matrix
    post-processing and coefficients) and the feature formulas."""
    import collections

    from hrpqct.radiomics import engine as eng_mod
    from hrpqct.radiomics import fast as fastpath
    from hrpqct.radiomics.engine import MultiRegionExtractor
    from hrpqct.radiomics.synthetic import synthetic_slice
    from hrpqct.regions import RADIOMICS_REGIONS, region

    clock = time.process_time
    acc: collections.Counter = collections.Counter()
    cls_ = MultiRegionExtractor

    def fast_region(self, reg, fi, k, type_name, kwargs, enabled, classes, standin):
        feats = reg.result.features
        for cls_name, feature_names in enabled:
            t0 = clock()
            cls = fastpath.fast_class(classes[cls_name], cls_name)
            obj = self._fast_object(cls, cls_name, feature_names, type_name, kwargs, standin,
                                    reg, fi.bins[k])
            obj._shared_raw, obj._shared_values = fi.raw[k], fi.values[k]
            obj._shared_extremes = fi.extremes[k]
            t1 = clock()
            obj._initCalculation()
            t2 = clock()
            obj._initCalculation = lambda *a: None  # done: time the formulas alone
            obj._calculateSegment()
            t3 = clock()
            for f, v in obj.featureValues.items():
                feats[f"{type_name}_{cls_name}_{f}"] = v
            acc["feature classes: object set-up"] += t1 - t0
            acc["matrix post-processing + coefficients"] += t2 - t1
            acc["feature formulas"] += t3 - t2
            acc[f"  formulas, class {cls_name}"] += t3 - t2
            acc[f"  image {type_name} (set-up + post-processing + formulas)"] += t3 - t0

    def timed(name, fn):
        def wrapper(*a, **kw):
            t = clock()
            try:
                return fn(*a, **kw)
            finally:
                acc[name] += clock() - t
        return wrapper

    def timed_gen(name, fn):
        def wrapper(*a, **kw):
            gen = fn(*a, **kw)
            while True:
                t = clock()
                try:
                    item = next(gen)
                except StopIteration:
                    return
                finally:
                    acc[name] += clock() - t
                yield item
        return wrapper

    saved = (cls_._fast_region, cls_._filtered, cls_._prepare_region, fastpath.FastImage.__init__)
    cls_._fast_region = fast_region
    cls_._filtered = timed_gen("filters (PyRadiomics' functions)", saved[1])
    cls_._prepare_region = timed("shape (PyRadiomics' C) + masks", saved[2])
    fastpath.FastImage.__init__ = timed("discretisation + texture matrices (compiled)", saved[3])
    try:
        sp = (args.spacing, args.spacing)
        engine = MultiRegionExtractor("paper")
        img, lab = synthetic_slice(args.size, args.spacing, seed=0)
        masks = {c: lab == region(c).label for c in RADIOMICS_REGIONS}
        engine.execute(img, masks, sp)  # warm-up
        acc.clear()
        n = max(args.slices, 1)
        t = clock()
        for _ in range(n):
            engine.execute(img, masks, sp)
        total = (clock() - t) / n
    finally:
        (cls_._fast_region, cls_._filtered, cls_._prepare_region,
         fastpath.FastImage.__init__) = saved
    print(f"== where the engine's time goes: one {args.size} x {args.size} px slice, six regions, "
          f"paper preset, CPU s/slice (mean of {n}; with the timers); {cpu_note()}")
    print(f"  total {total:.3f}")
    for name, v in sorted(acc.items(), key=lambda kv: (kv[0].startswith("  "), -kv[1])):
        print(f"  {name:58s} {v / n:.3f}  ({100 * v / n / total:4.1f} %)")
    rest = total - sum(v for k, v in acc.items() if not k.startswith("  ")) / n
    print(f"  {'rest (region checks, stand-ins, Python)':58s} {rest:.3f}")


def make_cohort(folder: Path, args) -> Path:
    import pandas as pd

    from hrpqct.io import write_image, write_labelmap
    from hrpqct.radiomics.synthetic import synthetic_slice
    from hrpqct.volume import Volume

    rows = []
    sp = (args.spacing, args.spacing, args.spacing)
    for i in range(args.scans):
        pairs = [synthetic_slice(args.size, args.spacing, seed=100 * i + k, z=k / 8)
                 for k in range(args.scan_slices)]
        img = np.stack([p[0] for p in pairs])
        lab = np.stack([p[1] for p in pairs])
        write_image(Volume(img, spacing=sp, unit="HU"), folder / f"s{i}.nrrd")
        write_labelmap(Volume(lab, spacing=sp, unit="label"), folder / f"s{i}-seg.nrrd")
        rows.append({"subject_id": f"S{i}", "scan": f"s{i}.nrrd", "segmentation": f"s{i}-seg.nrrd"})
    pd.DataFrame(rows).to_csv(folder / "manifest.csv", index=False)
    return folder / "manifest.csv"


def bench_cohort(args) -> None:
    import pandas as pd

    from hrpqct.radiomics.cohort import run_cohort

    tmp = Path(tempfile.mkdtemp(prefix="bench-radiomics-"))
    try:
        manifest = make_cohort(tmp, args)
        print(f"== cohort runner: {args.scans} scans x {args.scan_slices} slices of {args.size} "
              f"px, six regions; {load()}")
        times = {}
        for workers in (1, 2):
            out = tmp / f"out{workers}"
            per_scan: list[tuple[float, float]] = []
            t = time.perf_counter()
            res = run_cohort(manifest, out, workers=workers,
                             on_scan=lambda r: per_scan.append((r["seconds"], r["cpu_seconds"])))
            times[workers] = time.perf_counter() - t
            assert res.failed == 0 and res.computed == args.scans
            wall, cpu = np.mean(per_scan, axis=0)
            print(f"  {workers} worker(s): {times[workers]:6.1f} s wall; one scan inside a worker: "
                  f"{wall:.1f} s wall, {cpu:.1f} s CPU  ({load()})")
        a = pd.read_parquet(tmp / "out1" / "patients.parquet")
        b = pd.read_parquet(tmp / "out2" / "patients.parquet")
        pd.testing.assert_frame_equal(a, b, check_exact=True)
        print(f"  speed-up 2 workers vs 1: x{times[1] / times[2]:.2f}   (target x1.8); "
              "patient tables identical")
        print("  (2 workers include starting two Python processes, ~2-5 s. When a scan's wall time "
              "inside a worker exceeds its CPU time, the worker waited for a core: the machine's "
              "cores were busy with other work)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=800, help="slice side, pixels")
    ap.add_argument("--spacing", type=float, default=0.1214,
                    help="pixel size, mm (800 px: 2 x 60.7 um)")
    ap.add_argument("--slices", type=int, default=3, help="slices for engine vs plain")
    ap.add_argument("--scans", type=int, default=4, help="scans in the cohort part")
    ap.add_argument("--scan-slices", type=int, default=2, help="slices per cohort scan")
    ap.add_argument("--scan-size", type=int, default=2304, help="slice side of the whole-scan part")
    ap.add_argument("--scan-measure", type=int, default=3,
                    help="slices measured in the whole-scan part (scaled to 168)")
    ap.add_argument("--part", choices=("all", "engine", "scan", "profile", "cohort"), default="all")
    args = ap.parse_args()
    if args.part in ("all", "engine"):
        bench_engine(args)
    if args.part in ("all", "scan"):
        bench_scan(args)
    if args.part == "profile":
        bench_profile(args)
    if args.part in ("all", "cohort"):
        bench_cohort(args)


if __name__ == "__main__":
    main()
