"""Time and peak memory of the standard morphometry (:func:`hrpqct.morphometry.morphometry`) on a
full-size XtremeCT II scan, 168 x 2304 x 2304, and on a quarter of it (42 slices) as the baseline
measured in the same run.

The scan is a synthetic phantom leg (int16 HU, 60.7 um, tibia and fibula with trabecular network,
cortical pores) with its exact seven-region label map: ``--render`` distinct slices are rendered
(default 12, about a minute) and repeated back and forth along z to 168 slices (the structure
then mirrors every 12 slices, which costs the morphometry the same as a real stack). It is
cached in ``--cache`` (default ``~/.cache/hrpqct/bench-morphometry``).

Each case runs in a fresh child process: the int16 scan and uint8 labels are loaded into RAM
(2.7 GB, as ``hrpqct morphometry`` holds them after reading), the peak-RSS mark is reset, the
morphometry of both bones runs with the scan's calibration (the method's reference XtremeCT II
calibration), and the child reports the wall time and the peak RSS of the call (VmHWM:
everything resident, inputs included). The numba kernels are compiled (or loaded from their
cache) by a warm-up call on a small volume before timing. Targets: under 2 minutes and under
4 GB on 2 cores.

    nice .venv/bin/python bench/bench_morphometry.py
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

SHAPE = (168, 2304, 2304)
SPACING = 0.0607


def _status(key: str) -> float:
    with open("/proc/self/status", encoding="utf-8") as fh:
        for line in fh:
            if line.startswith(key):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w", encoding="utf-8") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def make_scan(cache: Path, n_render: int) -> tuple[Path, Path]:
    img_p, lab_p = cache / "image_int16.npy", cache / "labels7.npy"
    if img_p.exists() and lab_p.exists():
        return img_p, lab_p
    from hrpqct.phantom.anatomy import Anatomy
    from hrpqct.phantom.render import Grid
    from hrpqct.phantom.scan import iter_slices

    cache.mkdir(parents=True, exist_ok=True)
    grid = Grid(size=SHAPE[1], n_slices=n_render, spacing_mm=SPACING)
    img = np.lib.format.open_memmap(cache / ".image.npy", "w+", np.int16, SHAPE)
    lab = np.lib.format.open_memmap(cache / ".labels.npy", "w+", np.uint8, SHAPE)
    t0 = time.perf_counter()
    rendered = []
    for k, hu, _l5, l7 in iter_slices(Anatomy(seed=3), grid):
        rendered.append((hu, l7))
        print(f"  rendered slice {k + 1}/{n_render} ({time.perf_counter() - t0:.0f} s)", flush=True)
    order = [i for _ in range(SHAPE[0]) for i in (*range(n_render), *range(n_render - 1, -1, -1))]
    for z in range(SHAPE[0]):
        img[z], lab[z] = rendered[order[z]]
    img.flush()
    lab.flush()
    del img, lab
    os.replace(cache / ".image.npy", img_p)
    os.replace(cache / ".labels.npy", lab_p)
    return img_p, lab_p


def child(img_p: str, lab_p: str, n_slices: int) -> None:
    from hrpqct.morphometry import morphometry, reference_calibration

    cal = reference_calibration()
    # warm-up: compile / load the numba kernels on a small crop
    img = np.load(img_p, mmap_mode="r")
    lab = np.load(lab_p, mmap_mode="r")
    morphometry(np.array(img[:4, 900:1400, 900:1400]), np.array(lab[:4, 900:1400, 900:1400]),
                (SPACING,) * 3, unit="HU", calibration=cal)
    img = np.array(img[:n_slices])
    lab = np.array(lab[:n_slices])
    rss0 = _status("VmRSS:")
    ok = _reset_peak()
    t0 = time.perf_counter()
    c0 = time.process_time()
    res = morphometry(img, lab, (SPACING,) * 3, unit="HU", calibration=cal)
    wall = time.perf_counter() - t0
    cpu = time.process_time() - c0
    print(json.dumps({"slices": n_slices, "seconds": wall, "cpu_seconds": cpu,
                      "peak_mb": _status("VmHWM:") if ok else float("nan"), "rss_before_mb": rss0,
                      "inputs_mb": (img.nbytes + lab.nbytes) / 2**20,
                      "tibia": res.scan.iloc[0].drop("bone").round(4).to_dict()}, default=float))


def run_case(img_p: Path, lab_p: Path, n: int) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", str(img_p), str(lab_p), str(n)],
                         capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"child failed ({n} slices):\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cache", type=Path, default=Path.home() / ".cache/hrpqct/bench-morphometry")
    ap.add_argument("--render", type=int, default=12, help="distinct slices rendered")
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        child(a.child[0], a.child[1], int(a.child[2]))
        return
    import numba

    print(f"load before: {os.getloadavg()}; cpus {os.cpu_count()}; numba threads "
          f"{numba.config.NUMBA_NUM_THREADS}")
    img_p, lab_p = make_scan(a.cache, a.render)
    base = run_case(img_p, lab_p, SHAPE[0] // 4)
    full = run_case(img_p, lab_p, SHAPE[0])
    for name, r in (("baseline (42 slices)", base), ("full scan (168 slices)", full)):
        print(f"{name:24s} {r['seconds']:7.1f} s wall, {r['cpu_seconds']:7.1f} s CPU, peak RSS "
              f"{r['peak_mb'] / 1024:.2f} GiB (inputs {r['inputs_mb'] / 1024:.2f} GiB)")
    print(f"ratio full / baseline: time x{full['seconds'] / base['seconds']:.2f} (slices x4), "
          f"peak memory x{full['peak_mb'] / base['peak_mb']:.2f}")
    print(f"targets: < 120 s -> {'met' if full['seconds'] < 120 else 'NOT met'}; < 4 GB (4096 MiB) -> "
          f"{'met' if full['peak_mb'] < 4096 else 'NOT met'}")
    print(f"load after: {os.getloadavg()}")
    print("tibia (full scan):", json.dumps(full["tibia"]))


if __name__ == "__main__":
    main()
