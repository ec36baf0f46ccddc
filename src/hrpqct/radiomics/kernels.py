"""Compiled (numba) loops of the fast radiomics path: discretisation and texture matrices of
many regions of one image in one pass.

Every function works on a *layer*, flattened in C order: ``lab`` (int32, region index 0..R-1,
or -1 for no region; the regions of one layer do not overlap) and ``gl`` (int32, each pixel's
grey level 1..Ng of its own region). The layer is padded with -1 on every side by at least
the largest neighbour offset, so a neighbour index never leaves the array. Neighbours are given
per region as flat offsets ``offs[r, a]`` for ``a < na[r]``, made from PyRadiomics' own
``cMatrices.generate_angles`` for the region's bounding box.

A neighbour counts when it lies in the same region. That is what PyRadiomics' C code does on
the region's cropped image (a neighbour must be inside the crop and the mask, and the crop
holds the whole region), so each region's counts are PyRadiomics' (the tests compare them with
``radiomics.cMatrices``). Pixels are visited in C order, which restricted to one region is the
order of its crop: the NGTDM's sums of non-integers add up in PyRadiomics' order.

Matrices of all regions go into one flat float64 buffer, region ``r`` from ``base[r]`` on, in
PyRadiomics' memory layout (C order of its ``(Ng, ..., Na)`` arrays).
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = [
    "digitize", "gather", "digitize_bins", "glcm_counts", "glrlm_counts", "glszm_zones",
    "glszm_fill", "ngtdm_gldm_counts", "pairwise_sum", "pairwise_sums",
]


@njit(cache=True, nogil=True, inline="always")
def _bin_of(v, edges, e0, step, n):
    """The number of ``edges`` ``<= v`` (``numpy.digitize``, ``right=False``): a guess from the
    uniform step, corrected by comparing with the edges themselves (exact)."""
    k = 0
    if v >= e0:
        g = (v - e0) / step
        k = int(g) + 1 if g < n else n
    while k > 0 and edges[k - 1] > v:
        k -= 1
    while k < n and edges[k] <= v:
        k += 1
    return k


@njit(cache=True, nogil=True)
def digitize(values, edges, idx, out):
    """``out[idx[i]] = numpy.digitize(values[i], edges)`` for increasing ``edges``.

    Exact: the result is the number of edges ``<= v`` (``digitize`` with ``right=False``),
    found from a guess and corrected by comparing with the edges themselves.
    """
    n = edges.shape[0]
    e0 = edges[0]
    step = edges[1] - e0
    for i in range(values.shape[0]):
        k = _bin_of(values[i], edges, e0, step, n)
        out[idx[i]] = k


@njit(cache=True, nogil=True)
def gather(flat, idx, out):
    """``out[i] = float64(flat[idx[i]])`` (exact), and the minimum, the maximum and whether all
    values are finite (NaN and infinities make it False)."""
    lo = np.inf
    hi = -np.inf
    finite = True
    for i in range(idx.shape[0]):
        v = np.float64(flat[idx[i]])
        out[i] = v
        if v < lo:
            lo = v
        if v > hi:
            hi = v
        if v != v or v == np.inf or v == -np.inf:
            finite = False
    return lo, hi, finite


@njit(cache=True, nogil=True)
def digitize_bins(values, edges, idx, out, bins):
    """:func:`digitize`, also writing each value's bin to ``bins[i]``."""
    n = edges.shape[0]
    e0 = edges[0]
    step = edges[1] - e0
    for i in range(values.shape[0]):
        k = _bin_of(values[i], edges, e0, step, n)
        out[idx[i]] = k
        bins[i] = k


@njit(cache=True, nogil=True)
def glcm_counts(lab, gl, ng, offs, na, base, out):
    """Asymmetric co-occurrence counts, PyRadiomics' ``calculate_glcm`` layout ``(Ng, Ng, Na)``:
    ``P[i-1, j-1, a]`` counts pixels of level i whose neighbour at offset ``offs[r, a]`` (same
    region) has level j."""
    for p in range(lab.shape[0]):
        r = lab[p]
        if r < 0:
            continue
        n = ng[r]
        nar = na[r]
        row = base[r] + (gl[p] - 1) * n * nar
        for a in range(nar):
            q = p + offs[r, a]
            if lab[q] == r:
                out[row + (gl[q] - 1) * nar + a] += 1.0


@njit(cache=True, nogil=True)
def glrlm_counts(lab, gl, shape, offs, vecs, na, nr, base, out, multi):
    """Run-length counts, PyRadiomics' ``calculate_glrlm`` layout ``(Ng, Nr, Na)``.

    A run is a stretch of consecutive pixels (along ``offs[r, a]``) of one region with one grey
    level; it starts at a pixel whose predecessor is not of the same region and level.
    ``multi[r, a]`` tells whether some line along the angle holds two or more pixels of region
    r: PyRadiomics zeroes an angle's counts when none does (true as soon as a run is longer
    than 1; otherwise found by walking back along the line; ``shape`` is the padded layer's
    shape, ``vecs[r, a]`` the angle as ``(dz, dy, dx)``).
    """
    nreg = na.shape[0]
    syx = shape[1] * shape[2]
    for p in range(lab.shape[0]):
        r = lab[p]
        if r < 0:
            continue
        g = gl[p]
        for a in range(na[r]):
            o = offs[r, a]
            q = p - o
            if lab[q] == r and gl[q] == g:
                continue  # not the first pixel of its run
            rl = 0
            q = p + o
            while lab[q] == r and gl[q] == g:
                rl += 1
                q += o
            if rl > 0:
                multi[r, a] = True
            out[base[r] + ((g - 1) * nr[r] + rl) * na[r] + a] += 1.0
    # angles with only runs of 1: does any line hold two pixels of the region?
    for r in range(nreg):
        for a in range(na[r]):
            if multi[r, a]:
                continue
            dz, dy, dx = vecs[r, a, 0], vecs[r, a, 1], vecs[r, a, 2]
            for p in range(lab.shape[0]):
                if lab[p] != r:
                    continue
                z = p // syx
                y = (p - z * syx) // shape[2]
                x = p - z * syx - y * shape[2]
                z, y, x = z - dz, y - dy, x - dx
                q = p - offs[r, a]
                found = False
                while 0 <= z < shape[0] and 0 <= y < shape[1] and 0 <= x < shape[2]:
                    if lab[q] == r:
                        found = True
                        break
                    z -= dz
                    y -= dy
                    x -= dx
                    q -= offs[r, a]
                if found:
                    multi[r, a] = True
                    break


@njit(cache=True, nogil=True)
def glszm_zones(lab, gl, offs, na, nreg):
    """Connected zones (same region, same grey level, neighbours ``offs[r]``): arrays
    ``(region, grey level, size)`` of every zone, the number of zones and each region's largest
    zone."""
    npx = lab.shape[0]
    visited = np.zeros(npx, np.bool_)
    stack = np.empty(npx, np.int64)
    nmax = 0
    for p in range(npx):
        if lab[p] >= 0:
            nmax += 1
    zr = np.empty(nmax, np.int32)
    zg = np.empty(nmax, np.int32)
    zs = np.empty(nmax, np.int64)
    maxsize = np.zeros(nreg, np.int64)
    nzones = 0
    for p in range(npx):
        r = lab[p]
        if r < 0 or visited[p]:
            continue
        g = gl[p]
        if na[r] == 2 and offs[r, 1] == -offs[r, 0]:
            # one-dimensional connectivity (a 2D slice under PyRadiomics' force2D: left and
            # right only): zones are runs along the offset; p is the first pixel of its run
            o = abs(offs[r, 0])
            size = 1
            q = p + o
            while lab[q] == r and gl[q] == g:
                visited[q] = True
                size += 1
                q += o
            zr[nzones] = r
            zg[nzones] = g
            zs[nzones] = size
            nzones += 1
            if size > maxsize[r]:
                maxsize[r] = size
            continue
        top = 1
        stack[0] = p
        visited[p] = True
        size = 0
        while top > 0:
            top -= 1
            k = stack[top]
            size += 1
            for a in range(na[r]):
                j = k + offs[r, a]
                if not visited[j] and lab[j] == r and gl[j] == g:
                    visited[j] = True
                    stack[top] = j
                    top += 1
        zr[nzones] = r
        zg[nzones] = g
        zs[nzones] = size
        nzones += 1
        if size > maxsize[r]:
            maxsize[r] = size
    return zr, zg, zs, nzones, maxsize


@njit(cache=True, nogil=True)
def glszm_fill(zr, zg, zs, nzones, maxsize, base, out):
    """Size-zone counts, PyRadiomics' ``calculate_glszm`` layout ``(Ng, max zone size)``."""
    for k in range(nzones):
        r = zr[k]
        out[base[r] + (zg[k] - 1) * maxsize[r] + zs[k] - 1] += 1.0


@njit(cache=True, nogil=True)
def ngtdm_gldm_counts(lab, gl, offs, na, alpha, nbase, dbase, ngtdm, gldm):
    """NGTDM ``(Ng, 3)`` and GLDM ``(Ng, 2 Na + 1)`` of every region in one pass (both use the
    bidirectional neighbours at the preset's distances).

    NGTDM: per grey level, the count and the sum of ``|level - mean of the neighbours' levels|``
    (0 without neighbours); the third column (the level) is filled by the caller. GLDM: per
    grey level, the number of pixels with d neighbours within ``alpha`` levels.
    """
    for p in range(lab.shape[0]):
        r = lab[p]
        if r < 0:
            continue
        gi = gl[p]
        count = 0
        total = 0  # PyRadiomics adds the levels as doubles: small integers, exact either way
        dep = 0
        for a in range(na[r]):
            q = p + offs[r, a]
            if lab[q] == r:
                gj = gl[q]
                count += 1
                total += gj
                if -alpha <= gi - gj <= alpha:
                    dep += 1
        if count == 0:
            diff = 0.0
        elif count == 1:
            diff = np.float64(gi) - np.float64(total)
        elif count == 2:  # x / 2 == x * 0.5 exactly
            diff = np.float64(gi) - np.float64(total) * 0.5
        else:
            diff = np.float64(gi) - np.float64(total) / np.float64(count)
        if diff < 0:
            diff = -diff
        o = nbase[r] + (gi - 1) * 3
        ngtdm[o] += 1.0
        ngtdm[o + 1] += diff
        gldm[dbase[r] + (gi - 1) * (2 * na[r] + 1) + dep] += 1.0


@njit(cache=True, nogil=True)
def order_statistics(x, lo, hi, ranks, nbuckets):
    """The ``ranks``-th smallest values of ``x`` (0-based; ``lo``/``hi`` its minimum and
    maximum), exactly, in two passes instead of a partition of the whole array.

    Pass 1 counts the values in ``nbuckets`` equal-width buckets over ``[lo, hi]``; the bucket
    index ``int((v - lo) * scale)`` never decreases as v grows (each floating-point step is
    monotone), so the k-th value lies in the bucket where the running count passes k. Pass 2
    gathers the values of those buckets only, and a partition of each gives the answers.
    """
    nr = ranks.shape[0]
    out = np.empty(nr, np.float64)
    if hi == lo:
        out[:] = lo
        return out
    scale = nbuckets / (hi - lo)
    counts = np.zeros(nbuckets, np.int64)
    for v in x:
        b = int((v - lo) * scale)
        if b >= nbuckets:
            b = nbuckets - 1
        counts[b] += 1
    start = np.empty(nbuckets, np.int64)  # values in buckets before b
    c = 0
    for b in range(nbuckets):
        start[b] = c
        c += counts[b]
    bucket_of = np.empty(nr, np.int64)
    for i in range(nr):  # bucket where the running count passes rank k
        k = ranks[i]
        lo_b, hi_b = 0, nbuckets - 1
        while lo_b < hi_b:
            mid = (lo_b + hi_b) // 2
            if start[mid] + counts[mid] > k:
                hi_b = mid
            else:
                lo_b = mid + 1
        bucket_of[i] = lo_b
    slot = np.full(nbuckets, -1, np.int64)
    size = 0
    for i in range(nr):
        b = bucket_of[i]
        if slot[b] < 0:
            slot[b] = size
            size += counts[b]
    buf = np.empty(size, np.float64)
    fill = slot.copy()
    for v in x:
        b = int((v - lo) * scale)
        if b >= nbuckets:
            b = nbuckets - 1
        if slot[b] >= 0:
            buf[fill[b]] = v
            fill[b] += 1
    done = np.zeros(nbuckets, np.bool_)
    for i in range(nr):
        b = bucket_of[i]
        if not done[b]:  # sort each needed bucket once (they are small)
            seg = buf[slot[b]: slot[b] + counts[b]]
            seg.sort()
            done[b] = True
        out[i] = buf[slot[bucket_of[i]] + ranks[i] - start[bucket_of[i]]]
    return out


# --- numpy's pairwise summation, on terms computed on the fly ------------------------------------
# numpy adds a float64 array by pairwise summation: blocks of <= 128 values summed with 8
# accumulators, larger arrays split in two halves (rounded down to a multiple of 8). Summing
# the same terms in the same tree gives numpy's result bit for bit (the tests compare with
# ``numpy.sum`` on many lengths), without writing the terms to a temporary array first.
@njit(cache=True, nogil=True, inline="always")
def _term(v, mode, c, a, b):
    if mode == 0:
        return v
    if mode == 1:
        t = v + c
        return t * t
    d = v - c
    if mode == 2:
        return d * d
    if mode == 3:
        return (d * d) * d
    if mode == 4:
        return abs((d * d) * d)
    if mode == 5:
        t = d * d
        return t * t
    if mode == 6:
        return abs(d)
    # modes 7 and 8 without a branch (pixels in and out of [a, b] alternate unpredictably):
    # t * 1.0 + 0.0 is t (t finite and not -0.0; -0.0 gives 0.0, which sums the same),
    # t * 0.0 + 0.0 is 0.0, as numpy's zeros for the pixels outside
    inside = np.float64((v >= a) & (v <= b))
    if mode == 7:
        return v * inside + 0.0
    return abs(d) * inside + 0.0  # mode 8


@njit(cache=True, nogil=True)
def _leaf(x, lo, n, mode, c, a, b):
    if n < 8:
        res = -0.0
        for i in range(lo, lo + n):
            res += _term(x[i], mode, c, a, b)
        return res
    r0 = _term(x[lo], mode, c, a, b)
    r1 = _term(x[lo + 1], mode, c, a, b)
    r2 = _term(x[lo + 2], mode, c, a, b)
    r3 = _term(x[lo + 3], mode, c, a, b)
    r4 = _term(x[lo + 4], mode, c, a, b)
    r5 = _term(x[lo + 5], mode, c, a, b)
    r6 = _term(x[lo + 6], mode, c, a, b)
    r7 = _term(x[lo + 7], mode, c, a, b)
    i = 8
    m = n - (n % 8)
    while i < m:
        j = lo + i
        r0 += _term(x[j], mode, c, a, b)
        r1 += _term(x[j + 1], mode, c, a, b)
        r2 += _term(x[j + 2], mode, c, a, b)
        r3 += _term(x[j + 3], mode, c, a, b)
        r4 += _term(x[j + 4], mode, c, a, b)
        r5 += _term(x[j + 5], mode, c, a, b)
        r6 += _term(x[j + 6], mode, c, a, b)
        r7 += _term(x[j + 7], mode, c, a, b)
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        res += _term(x[lo + i], mode, c, a, b)
        i += 1
    return res


@njit(cache=True, nogil=True)
def _pairwise(x, n0, mode, c, a, b):
    """numpy's recursion (halves rounded down to a multiple of 8, leaves of <= 128 values,
    ``left + right``), run with an explicit stack (numba cannot cache recursive functions)."""
    if n0 <= 128:
        return _leaf(x, 0, n0, mode, c, a, b)
    lo_s = np.empty(64, np.int64)
    n_s = np.empty(64, np.int64)
    left = np.empty(64, np.float64)
    stage = np.zeros(64, np.int64)  # 0: computing the left half, 1: the right half
    top = 0
    lo_s[0] = 0
    n_s[0] = n0
    while True:
        n = n_s[top]
        if n > 128:  # descend into the left half
            n2 = n // 2
            n2 -= n2 % 8
            lo_s[top + 1] = lo_s[top]
            n_s[top + 1] = n2
            stage[top + 1] = 0
            top += 1
            continue
        v = _leaf(x, lo_s[top], n, mode, c, a, b)
        top -= 1
        while True:
            if stage[top] == 1:  # v is the right half: combine, go up
                v = left[top] + v
                top -= 1
                if top < 0:
                    return v
            else:  # v is the left half: keep it, then do the right half
                left[top] = v
                stage[top] = 1
                n2 = n_s[top] // 2
                n2 -= n2 % 8
                lo_s[top + 1] = lo_s[top] + n2
                n_s[top + 1] = n_s[top] - n2
                stage[top + 1] = 0
                top += 1
                break


#: Terms of :func:`pairwise_sum` (d = v - c; "in" = a <= v <= b).
TERMS = {"v": 0, "(v+c)^2": 1, "d*d": 2, "(d*d)*d": 3, "|(d*d)*d|": 4, "(d*d)*(d*d)": 5,
         "|d|": 6, "v if in else 0": 7, "|d| if in else 0": 8}


@njit(cache=True, nogil=True)
def pairwise_sum(x, mode, c=0.0, a=0.0, b=0.0):
    """``numpy.sum(term(x))`` of a 1D float64 array, bit for bit, terms as in :data:`TERMS`."""
    return 0.0 + _pairwise(x, x.shape[0], mode, c, a, b)


@njit(cache=True, nogil=True)
def pairwise_sums(x, modes, c=0.0):
    """``[pairwise_sum(x, m, c) for m in modes]`` in one walk of numpy's summation tree: each
    leaf (<= 128 values, in L1 cache) is summed once per term, so every result is the single
    term's sum bit for bit (the tests compare with :func:`pairwise_sum`)."""
    k = modes.shape[0]
    out = np.empty(k, np.float64)
    n0 = x.shape[0]
    if n0 <= 128:
        for t in range(k):
            out[t] = 0.0 + _leaf(x, 0, n0, modes[t], c, 0.0, 0.0)
        return out
    lo_s = np.empty(64, np.int64)
    n_s = np.empty(64, np.int64)
    left = np.empty((64, k), np.float64)
    stage = np.zeros(64, np.int64)
    v = np.empty(k, np.float64)
    top = 0
    lo_s[0] = 0
    n_s[0] = n0
    while True:
        n = n_s[top]
        if n > 128:
            n2 = n // 2
            n2 -= n2 % 8
            lo_s[top + 1] = lo_s[top]
            n_s[top + 1] = n2
            stage[top + 1] = 0
            top += 1
            continue
        for t in range(k):
            v[t] = _leaf(x, lo_s[top], n, modes[t], c, 0.0, 0.0)
        top -= 1
        while True:
            if stage[top] == 1:
                for t in range(k):
                    v[t] = left[top, t] + v[t]
                top -= 1
                if top < 0:
                    for t in range(k):
                        out[t] = 0.0 + v[t]
                    return out
            else:
                for t in range(k):
                    left[top, t] = v[t]
                stage[top] = 1
                n2 = n_s[top] // 2
                n2 -= n2 % 8
                lo_s[top + 1] = lo_s[top] + n2
                n_s[top + 1] = n_s[top] - n2
                stage[top + 1] = 0
                top += 1
                break


@njit(cache=True, nogil=True)
def glcm_mcc_q(P, px, py, eps):
    """PyRadiomics' MCC matrix ``Q[v, i, j, a] = sum_k P[i,k] P[j,k] / (px[i] py[k] + eps)``,
    added over k in PyRadiomics' order (``Q = term(0); Q += term(k)``), so it is bit-identical
    and its eigenvalues are PyRadiomics'. ``P``: ``(Nv, Ng, Ng, Na)``; ``px``: ``(Nv, Ng, 1, Na)``;
    ``py``: ``(Nv, 1, Ng, Na)``."""
    nv, ng, _, na = P.shape
    Q = np.empty((nv, ng, ng, na), np.float64)
    for v in range(nv):
        for i in range(ng):
            for j in range(ng):
                for a in range(na):
                    acc = (P[v, i, 0, a] * P[v, j, 0, a]) / (px[v, i, 0, a] * py[v, 0, 0, a] + eps)
                    for k in range(1, ng):
                        acc += (P[v, i, k, a] * P[v, j, k, a]) / (
                            px[v, i, 0, a] * py[v, 0, k, a] + eps)
                    Q[v, i, j, a] = acc
    return Q
