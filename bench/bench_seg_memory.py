"""Peak memory (RSS) of ``segment_volume`` on a full-size 168-slice scan, vs input + output size.

Writes a generated int16 HU scan of 168 x 2304 x 2304 (1.78 GB; a leg with tibia and fibula
whose position drifts along z) to a temporary file, then, in a fresh child process per case,
opens it (memory-mapped, or read fully into RAM with ``--in-memory``, as ``hrpqct segment`` does
after ``read_scan``), records the resident set size before the call, resets the kernel's peak-RSS mark, runs
``hrpqct.seg.inference.segment_volume`` over every slice on the CPU, and reports the peak RSS
during the call (VmHWM, which includes everything resident: interpreter, torch, model) against
the input + output volume sizes (int16 input, uint8 labels).

The network is small by default (B0, random weights: memory does not depend on weight values) so
that all 168 slices run in a few minutes on 2 cores; ``--variant b3 --slices 16`` measures the
paper's B3 working set on part of the scan (it does not grow with the number of slices: see
``--slices`` vs the full run). Target: peak RSS of the whole call under 4 GB.

    nice .venv/bin/python bench/bench_seg_memory.py                   # B0, all 168 slices, memmap
    nice .venv/bin/python bench/bench_seg_memory.py --in-memory
    nice .venv/bin/python bench/bench_seg_memory.py --variant b3 --slices 16

``--command`` measures instead what a user runs: the whole ``hrpqct segment`` job
(:func:`hrpqct.seg.pipeline.segment_scan`) in a fresh process on the scan written as an
NRRD file: read the scan (into RAM), segment, topology rules, soft-tissue split, region summary,
write the ``.seg.nrrd``, the label map and the pictures. Its peak RSS is the process's whole
lifetime peak. With ``--variant b3`` the model is a SegFormer-B3 at the paper's 800 x 800 input
(random weights, saved once to a temporary model folder; memory does not depend on the weights,
but a random network labels almost everything as one class, which the post-processing handles
quickly, so ``--model DIR`` runs a trained model instead, e.g. the bench weights of
``bench_seg_cpu.py`` in ``~/.cache/hrpqct/bench-b3-phantom``):

    nice .venv/bin/python bench/bench_seg_memory.py --command --model ~/.cache/hrpqct/bench-b3-phantom
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SHAPE = (168, 2304, 2304)
SPACING = (0.0607, 0.0607, 0.0607)


def rss_mb() -> float:
    with open("/proc/self/status", encoding="utf-8") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def peak_mb() -> float:
    """Peak RSS of this process's address space (VmHWM). Not ``ru_maxrss``: Linux carries that
    over from the parent across fork + exec, so a child would report the parent's peak."""
    with open("/proc/self/status", encoding="utf-8") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def reset_peak() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0), so the peak is that of what follows."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="utf-8") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def write_scan(path: Path, shape=SHAPE, margin: int = 64) -> None:
    """A synthetic leg in HU (int16) whose position drifts along z, written slice by slice."""
    nz, ny, nx = shape
    yy, xx = np.mgrid[: ny + 2 * margin, : nx + 2 * margin].astype(np.float32)
    cy, cx = ny / 2 + margin, nx / 2 + margin
    base = np.full(yy.shape, -1000, np.int16)
    base[((yy - cy) / 780) ** 2 + ((xx - cx) / 700) ** 2 <= 1] = 40
    r_t = np.hypot((yy - cy + 100) / 1.1, xx - cx + 120)
    base[r_t <= 260] = 1800
    base[r_t <= 240] = 300
    r_f = np.hypot(yy - cy + 60, xx - cx - 380)
    base[r_f <= 110] = 1700
    base[r_f <= 92] = 250
    del yy, xx, r_t, r_f
    mm = np.memmap(path, dtype=np.int16, mode="w+", shape=shape)
    for k in range(nz):
        dy = int(round(margin * 0.6 * np.sin(k / 30)))
        dx = int(round(margin * 0.6 * np.cos(k / 40)))
        mm[k] = base[margin + dy: margin + dy + ny, margin + dx: margin + dx + nx]
    mm.flush()
    del mm


def child(args) -> dict:
    import torch

    from hrpqct.seg.inference import segment_volume
    from hrpqct.seg.model import build_model
    from hrpqct.volume import Volume

    torch.manual_seed(0)
    model = build_model(args.variant)
    arr = np.memmap(args.scan, dtype=np.int16, mode="r", shape=SHAPE)[: args.slices]
    if args.in_memory:
        arr = np.array(arr)  # what read_scan returns: the whole scan in RAM
    vol = Volume(arr, spacing=SPACING, unit="HU")
    peak_before = peak_mb()
    reset = reset_peak()
    before = rss_mb()
    t0 = time.perf_counter()
    r = segment_volume(vol, model, device="cpu", batch_size=args.batch_size)
    secs = time.perf_counter() - t0
    return {"rss_before_mb": before, "peak_before_mb": peak_before, "peak_mb": peak_mb(),
            "rss_after_mb": rss_mb(), "seconds": secs, "slices": int(vol.shape[0]),
            "labels_nonzero": int(np.count_nonzero(r.labels.array[:: max(1, args.slices // 8)])),
            "batch_size": r.batch_size, "peak_reset": reset}


def write_nrrd_header(raw: Path, shape=SHAPE) -> Path:
    """A detached NRRD header for the raw int16 scan (HU), so that ``read_scan`` reads it."""
    nz, ny, nx = shape
    hdr = raw.with_suffix(".nhdr")
    hdr.write_text("NRRD0004\ntype: int16\ndimension: 3\nspace: left-posterior-superior\n"
                   f"sizes: {nx} {ny} {nz}\n"
                   f"space directions: ({SPACING[0]},0,0) (0,{SPACING[1]},0) (0,0,{SPACING[2]})\n"
                   "space origin: (0,0,0)\nencoding: raw\nendian: little\n"
                   f"data file: {raw.name}\n", encoding="utf-8")
    return hdr


def command_child(args) -> dict:
    """Run the whole ``hrpqct segment`` job in this (fresh) process; report its lifetime peak."""
    from hrpqct.seg.pipeline import segment_scan

    t0 = time.perf_counter()
    res = segment_scan(args.scan, args.out, model=str(args.model), device="cpu", quiet=True,
                       name="bench")
    secs = time.perf_counter() - t0
    labels = res["labels7"].array
    return {"peak_mb": peak_mb(), "rss_after_mb": rss_mb(), "seconds": secs,
            "slices": int(labels.shape[0]), "batch_size": res["result"].batch_size,
            "regions": sorted(int(v) for v in np.unique(labels[labels.shape[0] // 2])),
            "files": len(res["written"]), "device": res["result"].device}


def random_model_folder(variant: str, folder: Path) -> Path:
    """A ``variant`` SegFormer with random weights, saved as a model folder (paper preprocessing)."""
    import torch

    from hrpqct.seg.model import ModelCard, build_model, save_model

    torch.manual_seed(0)
    return save_model(build_model(variant), folder,
                      ModelCard(name=f"bench-random-{variant}", variant=variant,
                                description="random weights, memory benchmark only"))


def run_child(cmd: list[str]) -> dict:
    """Run a measuring child process; its last stdout line is a JSON result. Fails with its
    stderr's tail if it fails."""
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:3])} failed ({out.returncode}):\n{out.stderr[-4000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_command(args) -> int:
    with tempfile.TemporaryDirectory(prefix="hrpqct-membench-") as tmp:
        raw = Path(tmp) / "scan_int16.raw"
        t0 = time.perf_counter()
        write_scan(raw)
        hdr = write_nrrd_header(raw)
        print(f"generated a {SHAPE[0]} x {SHAPE[1]} x {SHAPE[2]} int16 scan "
              f"({raw.stat().st_size / 2**30:.2f} GiB, NRRD) in {time.perf_counter() - t0:.0f} s",
              flush=True)
        model = args.model or random_model_folder(args.variant, Path(tmp) / "model")
        cmd = [sys.executable, __file__, "--child-command", "--scan", str(hdr), "--model", str(model),
               "--out", str(Path(tmp) / "out")]
        res = run_child(cmd)
    n = res["slices"]
    in_mb = n * SHAPE[1] * SHAPE[2] * 2 / 2**20
    lab_mb = n * SHAPE[1] * SHAPE[2] / 2**20
    peak = res["peak_mb"]
    print(f"hrpqct segment, model {model}, {n} slices of {SHAPE[1]} x {SHAPE[2]}, batch "
          f"{res['batch_size']}, {res['device']}: {res['seconds']:.0f} s "
          f"({n / res['seconds']:.2f} slices/s); regions on the middle slice {res['regions']}; "
          f"{res['files']} files written")
    print(f"  scan in RAM (int16)           {in_mb:9.0f} MB")
    print(f"  one label volume (uint8)      {lab_mb:9.0f} MB")
    print(f"  peak RSS of the whole job     {peak:9.0f} MB  = {peak / (in_mb + lab_mb):.2f} x "
          f"(scan + labels)")
    print(f"peak RSS {peak / 1024:.2f} GB (target < 4 GB: {'met' if peak < 4096 else 'NOT met'})")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--variant", default="b0", help="SegFormer variant (b0 default; b3 = paper)")
    ap.add_argument("--slices", type=int, default=SHAPE[0])
    ap.add_argument("--batch-size", type=int, default=None)
    ap.add_argument("--in-memory", action="store_true", help="read the scan into RAM first")
    ap.add_argument("--scan", type=Path, default=None, help="(internal) raw int16 scan file")
    ap.add_argument("--command", action="store_true",
                    help="measure the whole `hrpqct segment` job on the scan as an NRRD file")
    ap.add_argument("--model", type=Path, default=None,
                    help="with --command: a model folder (default: random weights of --variant)")
    ap.add_argument("--out", type=Path, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--child-command", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.child:
        print(json.dumps(child(args)), flush=True)
        return 0
    if args.child_command:
        print(json.dumps(command_child(args)), flush=True)
        return 0
    if args.command:
        return run_command(args)

    with tempfile.TemporaryDirectory(prefix="hrpqct-membench-") as tmp:
        scan = Path(tmp) / "scan_int16.raw"
        t0 = time.perf_counter()
        write_scan(scan)
        print(f"generated a {SHAPE[0]} x {SHAPE[1]} x {SHAPE[2]} int16 scan "
              f"({scan.stat().st_size / 2**30:.2f} GiB) in {time.perf_counter() - t0:.0f} s", flush=True)
        cmd = [sys.executable, __file__, "--child", "--scan", str(scan), "--variant", args.variant,
               "--slices", str(args.slices)]
        if args.batch_size:
            cmd += ["--batch-size", str(args.batch_size)]
        if args.in_memory:
            cmd.append("--in-memory")
        res = run_child(cmd)

    n = res["slices"]
    in_mb = n * SHAPE[1] * SHAPE[2] * 2 / 2**20
    out_mb = n * SHAPE[1] * SHAPE[2] / 2**20
    peak = res["peak_mb"]
    print(f"SegFormer-{args.variant.upper()}, {n} slices of {SHAPE[1]} x {SHAPE[2]}, "
          f"{'in RAM' if args.in_memory else 'memory-mapped'} input, batch {res['batch_size']}, "
          f"{res['seconds']:.0f} s ({n / res['seconds']:.2f} slices/s)")
    print(f"  input volume (int16)          {in_mb:9.0f} MB")
    print(f"  output labels (uint8)         {out_mb:9.0f} MB")
    print(f"  input + output                {in_mb + out_mb:9.0f} MB")
    print(f"  RSS before the call           {res['rss_before_mb']:9.0f} MB  (python, torch, model"
          f"{', scan' if args.in_memory else ''})")
    print(f"  peak RSS during the call      {peak:9.0f} MB  = {peak / (in_mb + out_mb):.2f} x "
          f"(input + output){'' if res['peak_reset'] else ' (process peak: reset not supported)'}")
    print(f"  working memory of the call    {peak - res['rss_before_mb'] - out_mb:9.0f} MB  (peak - "
          f"pre-call RSS - output: batch buffers, network activations"
          f"{'' if args.in_memory else ', input pages not yet released'})")
    print(f"peak RSS {peak / 1024:.2f} GB (target < 4 GB: {'met' if peak < 4096 else 'NOT met'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
