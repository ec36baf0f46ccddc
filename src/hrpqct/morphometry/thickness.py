"""Local thickness of a binary 3D structure by the distance-transformation method of Hildebrand &
Rüegsegger (1997): the thickness at a point is the diameter of the largest sphere that contains
the point and fits completely inside the structure.

Written for this project (no code from other packages), compiled with numba:

1. :func:`edt_squared`: the exact Euclidean distance transform (squared, mm^2) of every
   structure voxel centre to the nearest background voxel centre, separable in three passes
   (Felzenszwalb & Huttenlocher's lower envelope of parabolas), anisotropic spacing. Voxels
   beyond the array are *not* background: a structure that runs out of the array (the first and
   last slice of a scan) is measured as if it went on, so the stack ends do not cut spheres.
2. Ridge (centres of maximal spheres): voxel ``c`` is dropped when its sphere (the voxel centres
   nearer than ``D(c)``) lies inside the sphere of a 26-neighbour ``n``, tested exactly on the
   voxel lattice with a table of the largest ``|v - e|^2`` over the lattice points of each
   sphere (:func:`_containment_table`; beyond the table's radius the sufficient continuous test
   ``D(n) >= D(c) + |n - c|``).
3. Sphere radius with the boundary at the voxel faces: a voxel centre at distance ``D`` from
   the nearest background centre lies ``D - h/2`` from the boundary between them. The true
   centre of a maximal sphere can fall between voxel centres (structures an even number of
   voxels thick): the radius is taken from a tent fit along the 13 neighbour directions,
   ``R = min_dir((b(-dir) + b(+dir)) / 2 + |dir|)`` with ``b = D - h/2``, bounded to
   ``[b(c), b(c) + h/2]``. A plate of ``n`` voxels then has thickness exactly ``n`` voxels.
4. Every ridge sphere (the voxels whose centres lie within ``D(c)`` of ``c``) is painted with
   ``2 R(c)``, keeping the maximum per voxel; z-slabs are painted in parallel.

``h`` in step 3 is the geometric mean of the spacing (exact for isotropic voxels, as on the
XtremeCT II). Memory: one float32 array of the structure's shape plus the ridge list.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from numba import njit, prange

__all__ = ["edt_squared", "local_thickness", "thickness_stats", "ridge_mask"]

_INF = np.float32(3.0e38)


# --- 1. Euclidean distance transform ------------------------------------------------------------
@njit(cache=True, nogil=True)
def _envelope_1d(f, n, h, out, v, zb):
    """Squared distance along one line: ``out[q] = min_r (f[r] + ((q - r) h)^2)`` over finite f."""
    k = -1
    for q in range(n):
        fq = f[q]
        if fq >= 1.0e38:
            continue
        pq = q * h
        if k < 0:
            k = 0
            v[0] = q
            zb[0] = -1.0e300
            zb[1] = 1.0e300
            continue
        while True:
            r = v[k]
            pr = r * h
            s = ((fq + pq * pq) - (f[r] + pr * pr)) / (2.0 * (pq - pr))
            if s <= zb[k]:
                k -= 1
                if k < 0:
                    break
            else:
                break
        if k < 0:
            k = 0
            v[0] = q
            zb[0] = -1.0e300
            zb[1] = 1.0e300
            continue
        k += 1
        v[k] = q
        zb[k] = s
        zb[k + 1] = 1.0e300
    if k < 0:
        for q in range(n):
            out[q] = 1.0e38
        return
    j = 0
    for q in range(n):
        x = q * h
        while zb[j + 1] < x:
            j += 1
        d = x - v[j] * h
        out[q] = d * d + f[v[j]]


@njit(cache=True, parallel=True)
def _edt_pass_x(mask, hx, out):
    nz, ny, nx = mask.shape
    for zy in prange(nz * ny):
        z = zy // ny
        y = zy - z * ny
        # two scans: distance (in voxels) to the nearest background voxel of the row
        last = -1
        for x in range(nx):
            if not mask[z, y, x]:
                last = x
                out[z, y, x] = 0.0
            elif last >= 0:
                out[z, y, x] = np.float32(((x - last) * hx) ** 2)
            else:
                out[z, y, x] = _INF
        last = -1
        for x in range(nx - 1, -1, -1):
            if not mask[z, y, x]:
                last = x
            elif last >= 0:
                d = np.float32(((last - x) * hx) ** 2)
                if d < out[z, y, x]:
                    out[z, y, x] = d


@njit(cache=True, parallel=True)
def _edt_pass_y(out, hy):
    nz, ny, nx = out.shape
    nchunk = nz * ((nx + 63) // 64)
    for c in prange(nchunk):
        z = c // ((nx + 63) // 64)
        x0 = (c - z * ((nx + 63) // 64)) * 64
        x1 = min(x0 + 64, nx)
        f = np.empty(ny, np.float64)
        g = np.empty(ny, np.float64)
        v = np.empty(ny, np.int64)
        zb = np.empty(ny + 1, np.float64)
        for x in range(x0, x1):
            for y in range(ny):
                f[y] = out[z, y, x]
            _envelope_1d(f, ny, hy, g, v, zb)
            for y in range(ny):
                out[z, y, x] = np.float32(min(g[y], 3.0e38))


@njit(cache=True, parallel=True)
def _edt_pass_z(out, hz):
    nz, ny, nx = out.shape
    nchunk = ny * ((nx + 63) // 64)
    for c in prange(nchunk):
        y = c // ((nx + 63) // 64)
        x0 = (c - y * ((nx + 63) // 64)) * 64
        x1 = min(x0 + 64, nx)
        f = np.empty(nz, np.float64)
        g = np.empty(nz, np.float64)
        v = np.empty(nz, np.int64)
        zb = np.empty(nz + 1, np.float64)
        for x in range(x0, x1):
            for z in range(nz):
                f[z] = out[z, y, x]
            _envelope_1d(f, nz, hz, g, v, zb)
            for z in range(nz):
                out[z, y, x] = np.float32(min(g[z], 3.0e38))


def edt_squared(mask: np.ndarray, spacing_zyx, out: np.ndarray | None = None) -> np.ndarray:
    """Squared Euclidean distance (mm^2, float32) of each ``mask`` voxel centre to the nearest
    background voxel centre inside the array (0 on background). Voxels beyond the array are not
    background; a line with no background at all keeps ``3e38`` until another axis finds one."""
    mask = np.ascontiguousarray(mask, dtype=np.bool_)
    hz, hy, hx = (float(s) for s in spacing_zyx)
    if out is None:
        out = np.empty(mask.shape, np.float32)
    _edt_pass_x(mask, hx, out)
    if mask.shape[1] > 1:
        _edt_pass_y(out, hy)
    if mask.shape[0] > 1:
        _edt_pass_z(out, hz)
    return out


# --- 2./3. ridge and sphere radii ---------------------------------------------------------------
# the 13 directions of the 26-neighbourhood, one of each opposite pair
_DIRS = np.array([(dz, dy, dx) for dz in (-1, 0, 1) for dy in (-1, 0, 1) for dx in (-1, 0, 1)
                  if (dz, dy, dx) > (0, 0, 0)], dtype=np.int64)


@njit(cache=True, nogil=True, inline="always")
def _reflect(i, n):
    if i < 0:
        i = -i
    if i >= n:
        i = 2 * (n - 1) - i
    return min(max(i, 0), n - 1)


@njit(cache=True, nogil=True)
def _ridge_slice(d2, z, spacing, half, clip, dirs, eps, uvals, lut, dindex, tol, zs, ys, xs, dd,
                 rr, count_only):
    """Ridge voxels of slice ``z`` (see the module docstring); returns how many were found and,
    unless ``count_only``, writes them from index 0 of the output arrays."""
    nz, ny, nx = d2.shape
    hz, hy, hx = spacing[0], spacing[1], spacing[2]
    umax = uvals[uvals.shape[0] - 1]
    k = 0
    for y in range(ny):
        for x in range(nx):
            q = d2[z, y, x]
            if q <= 0.0:
                continue
            dc = math.sqrt(q)
            ridge = True
            kq = -1
            if q <= umax:  # index of the largest lattice |v|^2 below q
                lo = 0
                hi = uvals.shape[0]
                while lo < hi:
                    mid = (lo + hi) // 2
                    if uvals[mid] < q - tol:
                        lo = mid + 1
                    else:
                        hi = mid
                kq = lo - 1
            for iz in range(-1, 2):
                zz = z + iz
                if zz < 0 or zz >= nz:
                    continue
                for iy in range(-1, 2):
                    yy = y + iy
                    if yy < 0 or yy >= ny:
                        continue
                    for ix in range(-1, 2):
                        xx = x + ix
                        if xx < 0 or xx >= nx or (iz == 0 and iy == 0 and ix == 0):
                            continue
                        qn = d2[zz, yy, xx]
                        if qn <= q:
                            continue
                        if kq >= 0:
                            # discrete containment of the sphere at c in the sphere at n
                            if qn > lut[dindex[iz + 1, iy + 1, ix + 1], kq] + tol:
                                ridge = False
                                break
                        else:
                            step = math.sqrt((iz * hz) ** 2 + (iy * hy) ** 2 + (ix * hx) ** 2)
                            if math.sqrt(qn) >= dc + step - eps:
                                ridge = False
                                break
                    if not ridge:
                        break
                if not ridge:
                    break
            if not ridge:
                continue
            if not count_only:
                b0 = dc - half
                best = 1.0e300
                for j in range(dirs.shape[0]):
                    iz, iy, ix = dirs[j, 0], dirs[j, 1], dirs[j, 2]
                    step = math.sqrt((iz * hz) ** 2 + (iy * hy) ** 2 + (ix * hx) ** 2)
                    # neighbours beyond the array: mirrored about the edge voxel's centre
                    za = _reflect(z - iz, nz)
                    ya = _reflect(y - iy, ny)
                    xa = _reflect(x - ix, nx)
                    zb_ = _reflect(z + iz, nz)
                    yb = _reflect(y + iy, ny)
                    xb = _reflect(x + ix, nx)
                    ba = math.sqrt(d2[za, ya, xa]) - half
                    bb = math.sqrt(d2[zb_, yb, xb]) - half
                    r = 0.5 * (ba + bb) + step
                    if r < best:
                        best = r
                r = min(max(best, b0), b0 + clip)
                zs[k] = z
                ys[k] = y
                xs[k] = x
                dd[k] = q
                rr[k] = r
            k += 1
    return k


@njit(cache=True, parallel=True)
def _ridge(d2, spacing, half, clip, dirs, eps, uvals, lut, dindex, tol):
    nz = d2.shape[0]
    counts = np.zeros(nz, np.int64)
    dz = np.empty(1, np.int32)
    df = np.empty(1, np.float32)
    for z in prange(nz):
        counts[z] = _ridge_slice(d2, z, spacing, half, clip, dirs, eps, uvals, lut, dindex, tol, dz, dz, dz,
                                 df, df, True)
    starts = np.zeros(nz + 1, np.int64)
    for z in range(nz):
        starts[z + 1] = starts[z] + counts[z]
    n = starts[nz]
    zs = np.empty(n, np.int32)
    ys = np.empty(n, np.int32)
    xs = np.empty(n, np.int32)
    dd = np.empty(n, np.float32)
    rr = np.empty(n, np.float32)
    for z in prange(nz):
        s, e = starts[z], starts[z + 1]
        _ridge_slice(d2, z, spacing, half, clip, dirs, eps, uvals, lut, dindex, tol, zs[s:e], ys[s:e],
                     xs[s:e], dd[s:e], rr[s:e], False)
    return zs, ys, xs, dd, rr, starts


# --- 4. painting ----------------------------------------------------------------------------------
@njit(cache=True)
def _templates(uq, spacing):
    """Rows ``(dz, dy, kx)`` of the sphere of each squared radius ``uq[u]`` (voxel centres with
    ``|v|^2 < uq[u]``; row ``(dz, dy)`` spans ``dx`` in ``[-kx, kx]``), concatenated."""
    hz, hy, hx = spacing[0], spacing[1], spacing[2]
    n = 0
    for u in range(uq.shape[0]):
        q = uq[u] * (1.0 - 1e-6)  # float32 distances: strict |v|^2 < q up to rounding
        rz = int(math.sqrt(q) / hz)
        for dz in range(-rz, rz + 1):
            remz = q - (dz * hz) ** 2
            if remz <= 0.0:
                continue
            ry = int(math.sqrt(remz) / hy)
            n += 2 * ry + 1
    rows = np.empty((n, 3), np.int32)
    start = np.zeros(uq.shape[0] + 1, np.int64)
    k = 0
    for u in range(uq.shape[0]):
        q = uq[u] * (1.0 - 1e-6)  # float32 distances: strict |v|^2 < q up to rounding
        rz = int(math.sqrt(q) / hz)
        for dz in range(-rz, rz + 1):
            remz = q - (dz * hz) ** 2
            if remz <= 0.0:
                continue
            ry = int(math.sqrt(remz) / hy)
            for dy in range(-ry, ry + 1):
                remy = remz - (dy * hy) ** 2
                kx = int(math.sqrt(max(remy, 0.0)) / hx) + 1
                while kx >= 0 and (kx * hx) ** 2 >= remy:
                    kx -= 1
                rows[k, 0] = dz
                rows[k, 1] = dy
                rows[k, 2] = kx
                k += 1
        start[u + 1] = k
    return rows[:k], start


@njit(cache=True, parallel=True)
def _paint(out, zs, ys, xs, uid, rr, starts, rows, tstart, reach_z, n_slabs):
    """``out = max over ridge spheres of 2 R`` (spheres: voxel centres with |v - c|^2 < D^2)."""
    nz, ny, nx = out.shape
    slab = (nz + n_slabs - 1) // n_slabs
    for s in prange(n_slabs):
        z0 = s * slab
        z1 = min(z0 + slab, nz)
        if z0 >= z1:
            continue
        c0 = max(0, z0 - reach_z)
        c1 = min(nz, z1 + reach_z)
        for i in range(starts[c0], starts[c1]):
            cz, cy, cx = zs[i], ys[i], xs[i]
            val = np.float32(2.0 * rr[i])
            u = uid[i]
            for j in range(tstart[u], tstart[u + 1]):
                z = cz + rows[j, 0]
                if z < z0 or z >= z1:
                    continue
                y = cy + rows[j, 1]
                kx = rows[j, 2]
                if y < 0 or y >= ny or kx < 0:
                    continue
                xa = max(0, cx - kx)
                xb = min(nx - 1, cx + kx)
                for x in range(xa, xb + 1):
                    out[z, y, x] = max(out[z, y, x], val)


#: anisotropic voxels: spheres up to this radius (voxels) use the exact discrete containment
#: test, larger ones the continuous test D(n) >= D(c) + |n - c| (keeps more centres: same result,
#: slower painting). Isotropic voxels: up to ISO_LUT_RADIUS_VOXELS.
LUT_RADIUS_VOXELS = 48
ISO_LUT_RADIUS_VOXELS = 160


@njit(cache=True)
def _iso_table(r2max, dirs):
    """Isotropic lattice (voxel units): ``lut[j, u]`` = largest ``|v - e_j|^2`` over the lattice
    points with ``|v|^2 <= u`` (``-1`` where no lattice point has ``|v|^2 == u`` yet is below)."""
    r = int(math.sqrt(r2max)) + 1
    best = np.full((dirs.shape[0], r2max + 1), -1.0)
    present = np.zeros(r2max + 1, np.bool_)
    for i in range(-r, r + 1):
        for j in range(-r, r + 1):
            ij = i * i + j * j
            if ij > r2max:
                continue
            for k in range(-r, r + 1):
                v2 = ij + k * k
                if v2 > r2max:
                    continue
                present[v2] = True
                for d in range(dirs.shape[0]):
                    w = (i - dirs[d, 0]) ** 2 + (j - dirs[d, 1]) ** 2 + (k - dirs[d, 2]) ** 2
                    if w > best[d, v2]:
                        best[d, v2] = w
    n = 0
    for u in range(r2max + 1):
        if present[u]:
            n += 1
    uvals = np.empty(n, np.float64)
    lut = np.empty((dirs.shape[0], n), np.float64)
    m = 0
    run = np.full(dirs.shape[0], -1.0)
    for u in range(r2max + 1):
        if present[u]:
            for d in range(dirs.shape[0]):
                run[d] = max(run[d], best[d, u])
                lut[d, m] = run[d]
            uvals[m] = u
            m += 1
    return uvals, lut


@functools.lru_cache(maxsize=8)
def _iso_table_cached(r2: int):
    return _iso_table(int(r2), _DIRS)


def _containment_table(spacing_zyx, d2max: float):
    """Lattice |v|^2 values below the largest sphere (sorted, mm^2) and, per neighbour direction
    e, the largest |v - e|^2 over the lattice points v with |v|^2 <= each value: the sphere at c
    (voxel centres with |v - c|^2 < q) lies inside the sphere at c + e iff D^2(c + e) exceeds the
    entry of the largest value below q."""
    sp = np.asarray(spacing_zyx, dtype=np.float64)
    dindex = np.zeros((3, 3, 3), np.int64)
    for j, (ez, ey, ex) in enumerate(_DIRS):
        dindex[ez + 1, ey + 1, ex + 1] = j
        dindex[-ez + 1, -ey + 1, -ex + 1] = j
    h = float(sp.min())
    tol = 1e-6 * h * h
    if float(sp.max() - sp.min()) <= 1e-6 * h:  # isotropic: integer lattice, large spheres
        r2 = int(min(d2max / (h * h), ISO_LUT_RADIUS_VOXELS ** 2)) + 1
        uvals, lut = _iso_table_cached(max(r2, 64))
        return uvals * h * h, lut * h * h, dindex, 100 * tol
    r = min(math.sqrt(max(d2max, 0.0)), LUT_RADIUS_VOXELS * h)
    n = [int(math.ceil(r / hh)) + 1 for hh in sp]
    g = np.meshgrid(*[np.arange(-k, k + 1) * hh for k, hh in zip(n, sp)], indexing="ij")
    v2 = g[0] ** 2 + g[1] ** 2 + g[2] ** 2
    keep = v2 <= r * r * (1 + 1e-9) + 1e-12
    pts = [a[keep] for a in g]
    v2 = v2[keep]
    order = np.argsort(v2, kind="stable")
    v2 = v2[order]
    pts = [p[order] for p in pts]
    brk = np.flatnonzero(np.diff(v2) > tol) + 1  # groups of equal |v|^2
    starts = np.concatenate([[0], brk])
    uvals = v2[starts]
    lut = np.empty((len(_DIRS), len(uvals)), np.float64)
    for j, (ez, ey, ex) in enumerate(_DIRS):
        w = (pts[0] - ez * sp[0]) ** 2 + (pts[1] - ey * sp[1]) ** 2 + (pts[2] - ex * sp[2]) ** 2
        lut[j] = np.maximum.accumulate(np.maximum.reduceat(w, starts))
    return uvals, lut, dindex, 100 * tol


def _ridge_points(d2: np.ndarray, spacing_zyx, boundary: str = "face") -> tuple:
    sp = np.asarray(spacing_zyx, dtype=np.float64)
    clip = 0.5 * float(np.prod(sp)) ** (1.0 / 3.0)
    half = clip if boundary == "face" else 0.0
    uvals, lut, dindex, tol = _containment_table(sp, float(d2.max()))
    return _ridge(d2, sp, half, clip, _DIRS, 1e-5 * float(sp.min()), uvals, lut, dindex, tol)


def ridge_mask(mask: np.ndarray, spacing_zyx, thin: bool = True,
               work: np.ndarray | None = None) -> np.ndarray:
    """The ridge voxels (centres of maximal spheres: the mid-axes) of ``mask``, as a bool array.

    ``thin``: only centres on a crest of the distance are kept (not below either neighbour along
    some direction), and of two face-adjacent ridge voxels with the same distance along an axis (the middle
    of a structure an even number of voxels thick) only the first is kept, so the mid-axis of a
    plate is one voxel thick whatever its thickness.
    """
    mask = np.ascontiguousarray(mask, dtype=np.bool_)
    out = np.zeros(mask.shape, np.bool_)
    if not mask.any() or mask.all():
        return out
    d2 = edt_squared(mask, spacing_zyx, out=work)
    zs, ys, xs, dd, *_ = _ridge_points(d2, spacing_zyx)
    out[zs, ys, xs] = True
    if thin and zs.size:
        _crest(out, d2, _DIRS)
        _thin(out, d2)
    return out


@njit(cache=True, parallel=True)
def _crest(ridge, d2, dirs):
    """Keep only sphere centres on a crest of the distance: not below either neighbour along at
    least one of the 13 directions (the mid-axis of a rod or plate; drops the extra maximal-sphere
    centres that a digital disc or ball has on its flanks)."""
    nz, ny, nx = ridge.shape
    for z in prange(nz):
        for y in range(ny):
            for x in range(nx):
                if not ridge[z, y, x]:
                    continue
                q = d2[z, y, x]
                crest = False
                for j in range(dirs.shape[0]):
                    iz, iy, ix = dirs[j, 0], dirs[j, 1], dirs[j, 2]
                    qa = d2[_reflect(z - iz, nz), _reflect(y - iy, ny), _reflect(x - ix, nx)]
                    qb = d2[_reflect(z + iz, nz), _reflect(y + iy, ny), _reflect(x + ix, nx)]
                    if q >= qa and q >= qb:
                        crest = True
                        break
                if not crest:
                    ridge[z, y, x] = False


@njit(cache=True, inline="always")
def _same(ridge, d2, z, y, x, q):
    nz, ny, nx = ridge.shape
    if z < 0 or y < 0 or x < 0 or z >= nz or y >= ny or x >= nx or not ridge[z, y, x]:
        return False
    return abs(d2[z, y, x] - q) <= 1e-6 * q


@njit(cache=True)
def _thin(ridge, d2):
    """Drop the second voxel of every run of exactly two face-adjacent ridge voxels of equal
    distance along an axis (the two middle layers of a structure an even number of voxels
    thick); longer runs lie along a mid-surface and are kept."""
    nz, ny, nx = ridge.shape
    drop = np.zeros(ridge.shape, np.bool_)
    for z in range(nz):
        for y in range(ny):
            for x in range(nx):
                if not ridge[z, y, x]:
                    continue
                q = d2[z, y, x]
                for a in range(3):
                    dz = 1 if a == 0 else 0
                    dy = 1 if a == 1 else 0
                    dx = 1 if a == 2 else 0
                    if (_same(ridge, d2, z - dz, y - dy, x - dx, q)
                            and not _same(ridge, d2, z - 2 * dz, y - 2 * dy, x - 2 * dx, q)
                            and not _same(ridge, d2, z + dz, y + dy, x + dx, q)):
                        drop[z, y, x] = True
    for z in range(nz):
        for y in range(ny):
            for x in range(nx):
                if drop[z, y, x]:
                    ridge[z, y, x] = False


def local_thickness(mask: np.ndarray, spacing_zyx, work: np.ndarray | None = None,
                    boundary: str = "face") -> np.ndarray:
    """Hildebrand local thickness (mm, float32) of every ``mask`` voxel; 0 outside ``mask``.

    ``boundary``: ``"face"`` (the structure ends at the faces of its outermost voxels, for
    bone, marrow, cortex, pores) or ``"centre"`` (it ends at the centres of the background
    voxels: the space between the ridge voxels of a structure, for Tb.N).

    ``work``: optional float32 array of ``mask``'s shape that is used for the distance transform
    and returned holding the thickness (saves one array on large volumes).
    """
    mask = np.ascontiguousarray(mask, dtype=np.bool_)
    if not mask.any():
        return np.zeros(mask.shape, np.float32) if work is None else _zero(work)
    sp = np.asarray(spacing_zyx, dtype=np.float64)
    d2 = edt_squared(mask, sp, out=work)
    if mask.all():  # no background anywhere: no sphere is bounded, the thickness is undefined
        d2[...] = np.nan
        return d2
    zs, ys, xs, dd, rr, starts = _ridge_points(d2, sp, boundary)
    out = d2
    out[...] = 0.0
    if zs.size:
        reach_z = int(math.sqrt(float(dd.max())) / sp[0]) + 1
        import numba

        n_slabs = max(1, min(out.shape[0], 4 * numba.get_num_threads()))
        uq, uid = np.unique(dd, return_inverse=True)
        rows, tstart = _templates(uq.astype(np.float64), sp)
        _paint(out, zs, ys, xs, uid.astype(np.int32), rr, starts, rows, tstart, reach_z, n_slabs)
    return out


def _zero(a: np.ndarray) -> np.ndarray:
    a[...] = 0.0
    return a


def thickness_stats(tau: np.ndarray, mask: np.ndarray) -> tuple[float, float, np.ndarray,
                                                                  np.ndarray]:
    """``(mean, sd, per-slice sums, per-slice counts)`` of ``tau`` over ``mask`` voxels (mm)."""
    sums, sq, cnt = _slice_sums(tau, np.ascontiguousarray(mask, dtype=np.bool_))
    n = cnt.sum()
    if n == 0:
        return math.nan, math.nan, sums, cnt
    mean = float(sums.sum() / n)
    var = max(float(sq.sum() / n) - mean * mean, 0.0)
    return mean, math.sqrt(var), sums, cnt


@njit(cache=True, parallel=True)
def _slice_sums(tau, mask):
    nz, ny, nx = tau.shape
    sums = np.zeros(nz, np.float64)
    sq = np.zeros(nz, np.float64)
    cnt = np.zeros(nz, np.int64)
    for z in prange(nz):
        s = 0.0
        s2 = 0.0
        c = 0
        for y in range(ny):
            for x in range(nx):
                if mask[z, y, x]:
                    t = tau[z, y, x]
                    s += t
                    s2 += t * t
                    c += 1
        sums[z] = s
        sq[z] = s2
        cnt[z] = c
    return sums, sq, cnt
