"""Speed of the topology rules + soft-tissue split on full-size slices (1600 x 1600, 60.7 um).

Generates a synthetic 5-class label map and HU image (limb, tibia and fibula with cortices, a
broken tibial cortex on every third slice, misclassified islands, muscle/fat/tendon HU with
noise), runs the project's implementation (hrpqct.seg.postprocess + hrpqct.seg.softtissue) and a
straightforward reference written below (whole-slice operations, a Python loop per fragment,
``binary_closing`` with an explicit disk, the skin band row by row with 1D maximum
filters, 20 separate dilations), checks that both give
identical 7-region maps on the reference slices, and prints the time per slice, the time per
168-slice scan and the speed-up.

    .venv/bin/python bench/bench_postprocess.py            # 168 slices, reference on 3 of them
    .venv/bin/python bench/bench_postprocess.py --slices 24 --ref-slices 3
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time

import numpy as np
from scipy import ndimage as ndi
from skimage.morphology import convex_hull_image

from hrpqct.method import POSTPROCESSING, SCAN, SOFT_TISSUE
from hrpqct.regions import region
from hrpqct.seg.postprocess import BONES, postprocess
from hrpqct.seg.softtissue import split_soft_tissue

ST, SK, MT, AT = 5, region("SK").label, region("MT").label, region("AT").label
EPS = 1e-9


# --- synthetic data -------------------------------------------------------------------------------
def synthetic_slice(z: int, n: int = 1600, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """One 5-class slice and its HU image (float32); varies smoothly with z."""
    rng = np.random.default_rng(seed * 1000 + z)
    yy, xx = np.mgrid[:n, :n].astype(np.float32)
    c = n / 2
    shift = 10 * math.sin(z / 20)
    lab = np.zeros((n, n), np.uint8)
    limb = ((yy - c) / (0.42 * n)) ** 2 + ((xx - c - shift) / (0.37 * n)) ** 2 <= 1
    lab[limb] = ST
    ty, tx = c - 0.05 * n, c - 0.06 * n + shift
    rt = np.hypot((yy - ty) / 1.1, xx - tx)
    lab[rt <= 0.15 * n] = 1
    lab[rt <= 0.15 * n - 22] = 2
    fy, fx = c + 0.03 * n, c + 0.2 * n + shift
    rf = np.hypot(yy - fy, (xx - fx) / 0.8)
    lab[rf <= 0.06 * n] = 3
    lab[rf <= 0.06 * n - 14] = 4
    if z % 3 == 0:  # a broken tibial cortex, gap 4-12 px
        w = 2 + z % 5
        lab[(np.abs(xx - tx) <= w) & (yy < ty) & (rt > 0.15 * n - 30) & (rt <= 0.15 * n + 1)] = ST
    for _ in range(12):  # misclassified islands
        y0, x0 = rng.integers(0.15 * n, 0.85 * n, 2)
        s = rng.integers(2, 12)
        lab[y0:y0 + s, x0:x0 + s] = rng.integers(1, 6) if limb[y0, x0] else 0
    hu = np.full((n, n), -1000.0, np.float32)
    muscle = (np.sin(xx / 37 + z / 30) + np.cos(yy / 53)) > -0.3
    hu[limb] = np.where(muscle[limb], 60.0, -110.0)
    tendon = (np.hypot(yy - c - 0.25 * n, xx - c + shift) < 40)
    hu[tendon] = 350.0
    hu[(rt > 0.15 * n + 60) & (rt < 0.15 * n + 75) & limb] = -350.0  # a fat seam
    hu += rng.normal(0, 80, (n, n)).astype(np.float32)
    hu[lab == 1] = 1200.0
    hu[lab == 2] = 250.0
    hu[lab == 3] = 1100.0
    hu[lab == 4] = 200.0
    return lab, hu


# --- straightforward reference -------------------------------------------------------------------
def _struct(conn):
    return np.ones((3, 3), bool) if conn == 8 else ndi.generate_binary_structure(2, 1)


def _disk(r_mm, sampling):
    sy, sx = sampling
    ry, rx = int(r_mm / sy) + 1, int(r_mm / sx) + 1
    dy, dx = np.mgrid[-ry:ry + 1, -rx:rx + 1]
    return np.hypot(dy * sy, dx * sx) <= r_mm + EPS


def ref_reassign(lab, conn, protected=None, force=None, classes=None):
    lab = lab.copy()
    st = _struct(conn)
    frags = []
    force = np.zeros(lab.shape, bool) if force is None else force
    for c in np.unique(lab):
        if classes is not None and c not in classes:
            continue
        cm = lab == c
        normal, forced = [], []
        for part, into in ((cm & ~force, normal), (cm & force, forced)):
            cl, n = ndi.label(part, structure=st)
            into += [cl == i for i in range(1, n + 1)]
        frags += forced
        if not normal:
            continue
        keep = [m for m in normal if protected is not None and (m & protected).any()]
        if not keep and c == 0:
            keep = [m for m in normal if m[0].any() or m[-1].any() or m[:, 0].any() or m[:, -1].any()]
        if not keep:
            sizes = [m.sum() for m in normal]
            keep = [normal[int(np.argmax(sizes))]]
        kid = {id(m) for m in keep}
        frags += [m for m in normal if id(m) not in kid]
    pending = np.zeros(lab.shape, bool)
    for m in frags:
        pending |= m
    todo = list(frags)
    while todo:
        new_lab = []
        for m in todo:
            ring = ndi.binary_dilation(m, structure=st) & ~m & ~pending
            if ring.any():
                votes = np.bincount(lab[ring], minlength=8)
                new_lab.append((m, int(np.argmax(votes))))
        if not new_lab:
            break
        for m, v in new_lab:
            lab[m] = v
            pending &= ~m
        done = {id(m) for m, _ in new_lab}
        todo = [m for m in todo if id(m) not in done]
    return lab


def ref_bridges(c, added, trabm, slack, disk, fill, enclosed):
    full = c | added
    inside = fill(full) & ~full
    target = inside.sum() - slack
    cand = added & ~trabm
    cl, n = ndi.label(cand, structure=_struct(POSTPROCESSING.connectivity))
    touch = np.unique(cl[ndi.binary_dilation(inside, structure=np.ones((3, 3), bool)) & cand])
    bridge = np.isin(cl, touch[touch > 0])
    if enclosed(c | bridge) >= target:
        chosen = bridge
    else:
        near = added & ndi.binary_dilation(bridge, structure=disk)
        chosen = near if enclosed(c | near) >= target else added
    outside = ~fill(c | chosen)
    n_outer = (c & ndi.binary_dilation(outside, structure=ndi.generate_binary_structure(2, 1))).sum()
    if n_outer and chosen.any():
        t = max(1.0, c.sum() / n_outer)
        r = int(t)
        dy, dx = np.mgrid[-r:r + 1, -r:r + 1]
        layer = chosen & ndi.binary_dilation(outside, structure=np.hypot(dy, dx) <= t + 1e-9)
        if enclosed(c | layer) >= target:
            return layer
    return chosen


def ref_postprocess_slice(lab, sampling, p=POSTPROCESSING):
    conn = p.connectivity
    fill_st = _struct(12 - conn)
    R = int(math.ceil(p.max_closing_radius_mm / min(sampling))) + 2
    keep = np.zeros(lab.shape, bool)
    for cortex, trab in BONES:
        c = lab == cortex
        cl, n = ndi.label(c, structure=_struct(conn))
        if n <= 1:
            continue
        main = 1 + int(np.argmax(np.bincount(cl.ravel())[1:]))
        near_trab = ndi.binary_dilation(lab == trab, structure=np.ones((3, 3), bool))
        pieces = [i for i in range(1, n + 1) if i == main or (near_trab & (cl == i)).any()]
        c = np.isin(cl, pieces)
        cp = np.pad(c, R)
        grown = ndi.distance_transform_edt(~cp, sampling=sampling)[R:-R, R:-R] <= p.max_closing_radius_mm + EPS
        gl, _ = ndi.label(grown, structure=_struct(conn))
        keep |= (gl == gl[cl == main][0]) & c
    lab = ref_reassign(lab, conn, protected=keep, classes=[c for c, _ in BONES])
    interiors = np.zeros(lab.shape, bool)
    outside_all = np.zeros(lab.shape, bool)
    radii = []
    r = p.closing_radius_mm
    while r <= p.max_closing_radius_mm + 1e-9:
        radii.append(r)
        r += p.closing_step_mm
    protected = np.zeros(lab.shape, bool)
    fill = lambda m: ndi.binary_fill_holes(m, structure=fill_st)  # noqa: E731
    enclosed = lambda m: int((fill(m) & ~m).sum())  # noqa: E731
    for i, (cortex, trab) in enumerate(BONES):
        other_vals = [v for j, b in enumerate(BONES) if j != i for v in b]
        lp = np.pad(lab, R)
        c = lp == cortex
        if not c.any():
            continue
        hull = convex_hull_image(c, offset_coordinates=False)
        ha = int(hull.sum())
        closed, radius = c, 0.0
        other = np.isin(lp, other_vals)
        trabm = lp == trab
        if (ha - fill(c).sum()) / ha > p.hull_gap_tolerance:
            slack = p.hull_gap_tolerance * ha
            forbidden = ndi.binary_dilation(other, structure=np.ones((3, 3), bool))
            solid = fill(c | (trabm & hull))

            def added_at(r):
                d = _disk(r, sampling)
                g = ndi.binary_closing(c, structure=d)
                g |= ndi.binary_closing(solid, structure=d) & ~solid
                return g & ~c & ~forbidden

            def holds(ring):
                return (fill(ring) & trabm).sum() >= trabm.sum() / 2

            add_max = added_at(radii[-1])
            i0, i_max = enclosed(c), enclosed(c | add_max)
            if i_max - i0 > slack and holds(c | add_max):
                for r in radii:
                    add = added_at(r)
                    ok = ha - fill(c | add).sum() <= slack or enclosed(c | add) >= i_max - slack
                    if ok and holds(c | add):
                        add = ref_bridges(c, add, trabm, slack, _disk(r, sampling), fill, enclosed)
                        closed, radius = c | add, r
                        break
            elif not holds(c):
                radius = math.nan
        if closed is not c:
            lp[closed & ~c] = cortex
        filled = fill(closed)
        interior = filled & ~closed & ~other
        trabm = lp == trab
        outside = trabm & ~filled
        if not interior.any() or (trabm & filled).sum() < outside.sum():
            interior[:] = False
            outside[:] = False
        lp[interior] = trab
        lab = lp[R:-R, R:-R].copy()
        interiors |= interior[R:-R, R:-R]
        outside_all |= outside[R:-R, R:-R]
        if math.isnan(radius):
            protected |= keep & (lab == cortex)
    return ref_reassign(lab, conn, protected=interiors | protected,
                        force=outside_all & ~interiors)


def ref_split_slice(lab, hu, sampling, p=SOFT_TISSUE):
    out = np.where(np.isin(lab, (1, 2, 3, 4)), lab, 0).astype(np.uint8)
    st = lab == ST
    outside = (~ndi.binary_fill_holes(lab > 0)).astype(np.uint8)
    # dilation of the outside by the disk {(dy, dx): pixel square within 2 mm of the centre},
    # row by row: a 1D maximum filter of each row's half-width, shifted by dy
    sy, sx = sampling
    near = np.zeros(lab.shape, np.uint8)
    K = int(p.skin_band_mm / sy) + 2
    for dy in range(-K, K + 1):
        ey = max(abs(dy) - 0.5, 0) * sy
        dxs = np.arange(0, int(p.skin_band_mm / sx) + 3)
        ok = np.hypot(ey, np.maximum(dxs - 0.5, 0) * sx) <= p.skin_band_mm
        if not ok.any():
            continue
        w = int(dxs[ok].max())
        row = ndi.maximum_filter1d(outside, size=2 * w + 1, axis=1, mode="constant", cval=0)
        if dy >= 0:
            near[dy:] |= row[: lab.shape[0] - dy]
        else:
            near[:dy] |= row[-dy:]
    skin = st & (near > 0)
    inner = st & ~skin
    sts = _struct(p.connectivity)

    def seed(lo, hi):
        s = inner & (hu >= lo) & (hu <= hi)
        cl, n = ndi.label(s, structure=sts)
        sizes = np.bincount(cl.ravel())
        return s & (sizes[cl] >= p.min_seed_px)

    def grow(s):
        for _ in range(p.dilation_steps):
            s = ndi.binary_dilation(s, structure=sts) & inner
        return s

    mt = grow(seed(*p.myotendinous_hu))
    at = grow(seed(*p.adipose_hu))
    only_mt, only_at = mt & ~at, at & ~mt
    rest = inner & ~only_mt & ~only_at
    out[only_mt] = MT
    out[only_at] = AT
    out[rest & (hu >= p.tie_threshold_hu)] = MT
    out[rest & (hu < p.tie_threshold_hu)] = AT
    out[skin] = SK
    return out


# --- run ----------------------------------------------------------------------------------------
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--slices", type=int, default=SCAN.n_slices)
    ap.add_argument("--ref-slices", type=int, default=3)
    ap.add_argument("--size", type=int, default=1600)
    a = ap.parse_args(argv)
    s = SCAN.voxel_mm
    spacing = (s, s, s)
    sampling = (s, s)
    n = a.size

    t = time.perf_counter()
    lab = np.empty((a.slices, n, n), np.uint8)
    hu = np.empty((a.slices, n, n), np.float32)
    for z in range(a.slices):
        lab[z], hu[z] = synthetic_slice(z, n)
    print(f"synthetic {a.slices} x {n} x {n}: {time.perf_counter() - t:.1f} s to generate")

    t, c = time.perf_counter(), time.process_time()
    pp = postprocess(lab, spacing)
    t_post = time.perf_counter() - t
    t = time.perf_counter()
    out = split_soft_tissue(pp, hu, spacing)
    t_split = time.perf_counter() - t
    cpu_fast = (time.process_time() - c) / a.slices
    fast = (t_post + t_split) / a.slices

    zs = np.linspace(0, a.slices - 1, min(a.ref_slices, a.slices)).round().astype(int)
    t_ref = cpu_ref = 0.0
    same = True
    for z in zs:
        t, c = time.perf_counter(), time.process_time()
        ref = ref_split_slice(ref_postprocess_slice(lab[z], sampling), hu[z], sampling)
        t_ref += time.perf_counter() - t
        cpu_ref += time.process_time() - c
        diff = int(np.count_nonzero(ref != out[z]))
        if diff:
            same = False
            print(f"  slice {z}: {diff} pixels differ from the reference")
    slow = t_ref / len(zs)

    cpu_slow = cpu_ref / len(zs)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"load average at the end: {load:.1f} on {os.cpu_count()} cores (wall times grow with it; "
          "CPU times much less)")
    print(f"optimised: {t_post / a.slices * 1e3:.0f} ms/slice topology + "
          f"{t_split / a.slices * 1e3:.0f} ms/slice split = {fast * 1e3:.0f} ms/slice wall, "
          f"{cpu_fast * 1e3:.0f} ms/slice CPU; {fast * SCAN.n_slices:.1f} s wall "
          f"({cpu_fast * SCAN.n_slices:.1f} s CPU) per {SCAN.n_slices}-slice scan "
          f"(measured on {a.slices} slices)")
    print(f"reference: {slow * 1e3:.0f} ms/slice wall, {cpu_slow * 1e3:.0f} ms/slice CPU; "
          f"{slow * SCAN.n_slices:.0f} s wall per {SCAN.n_slices}-slice scan "
          f"(measured on {len(zs)} slices)")
    print(f"speed-up: {slow / fast:.1f}x wall, {cpu_slow / cpu_fast:.1f}x CPU; "
          f"identical output on the {len(zs)} reference slices: {same}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
