"""Peak memory and scans per minute of ``hrpqct study`` for a 10- and a 40-scan synthetic study:
memory must not grow with the number of scans (a bounded number of scans in flight).

Generates 40 synthetic phantoms (``--size`` x ``--size`` x ``--slices``, default 256 x 256 x 2,
``hrpqct.phantom.files.write_cohort``, seed 7), then runs, each in a fresh output folder,
``hrpqct study`` on the first 10 rows and on all 40 (segmentation with the bundled demo model,
radiomics with a small first-order preset (``--paper``: the paper preset and the bundled demo
classifier), morphometry), with ``-j 2`` (two worker processes: 2 cores). A sampler adds up the
resident set size of the study process and all its children every 0.2 s; the figure is the peak
of that sum, and the ratio is the 40-scan peak against the 10-scan baseline of the same run
(target: <= 1.1, i.e. flat).

    nice .venv/bin/python bench/bench_study.py
    nice .venv/bin/python bench/bench_study.py --paper
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from hrpqct.radiomics.presets import first_order_preset

SMALL_PRESET = first_order_preset(("Mean", "Median", "Energy", "Entropy"))


def tree_rss(proc) -> int:
    import psutil

    total = 0
    try:
        procs = [proc] + proc.children(recursive=True)
    except psutil.Error:
        return 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def run_study(manifest: Path, out: Path, extra: list[str]) -> dict:
    import psutil

    cmd = [sys.executable, "-m", "hrpqct", "study", str(manifest), "--out", str(out), "-j", "2",
           "-q", *extra]
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         encoding="utf-8")
    proc = psutil.Process(p.pid)
    peak = {"tree": 0, "main": 0}
    stop = threading.Event()

    def sample():
        while not stop.wait(0.2):
            peak["tree"] = max(peak["tree"], tree_rss(proc))
            try:
                peak["main"] = max(peak["main"], proc.memory_info().rss)
            except psutil.Error:
                pass

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    stdout, stderr = p.communicate()
    stop.set()
    th.join()
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        raise SystemExit(f"study failed ({p.returncode}):\n{stdout}\n{stderr[-3000:]}")
    return {"seconds": wall, "peak_tree_mb": peak["tree"] / 2**20,
            "peak_main_mb": peak["main"] / 2**20}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--slices", type=int, default=2)
    ap.add_argument("--small", type=int, default=10)
    ap.add_argument("--large", type=int, default=40)
    ap.add_argument("--paper", action="store_true", help="paper preset + demo classifier")
    ap.add_argument("--keep", type=Path, default=None, help="work folder to keep (default: temp)")
    args = ap.parse_args()

    import pandas as pd

    from hrpqct.phantom.files import write_cohort
    from hrpqct.phantom.render import Grid

    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        write_cohort(root / "cohort", args.large, Grid(size=args.size, n_slices=args.slices),
                     seed=7, workers=2)
        print(f"{args.large} phantoms {args.size}x{args.size}x{args.slices} generated in "
              f"{time.perf_counter() - t0:.0f} s")
        man = pd.read_csv(root / "cohort" / "manifest.csv").drop(columns=["segmentation",
                                                                           "segmentation5"])
        extra = ["--threads", "1"]
        if args.paper:
            extra += ["--classifier", "demo"]
        else:
            (root / "small.yaml").write_text(SMALL_PRESET, encoding="utf-8")
            extra += ["--preset", str(root / "small.yaml")]
        results = {}
        for n in (args.small, args.large):
            m = root / "cohort" / f"study{n}.csv"
            man.iloc[:n].to_csv(m, index=False)
            r = run_study(m, root / f"study{n}", extra)
            results[n] = r
            print(f"{n:3d} scans: {r['seconds']:7.1f} s, {60 * n / r['seconds']:5.2f} scans/min, "
                  f"peak RSS {r['peak_tree_mb']:7.1f} MB (all processes), "
                  f"{r['peak_main_mb']:7.1f} MB (study process)")
        a, b = results[args.small], results[args.large]
        print(f"peak memory {args.large} vs {args.small} scans: "
              f"{b['peak_tree_mb'] / a['peak_tree_mb']:.3f}x (all processes), "
              f"{b['peak_main_mb'] / a['peak_main_mb']:.3f}x (study process); target <= 1.1")
        print(f"throughput {args.large} vs {args.small} scans: "
              f"{(args.large / b['seconds']) / (args.small / a['seconds']):.2f}x")


if __name__ == "__main__":
    main()
