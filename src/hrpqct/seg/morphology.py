"""2D binary morphology for the topology rules and the soft-tissue split (public helpers).

Arrays are 2D ``[y, x]`` boolean masks; sampling is ``(sy, sx)`` in mm (:func:`inplane_sampling`).

* Connectivity: :func:`structure`, :func:`offsets`, :func:`fill_holes`.
* Windows: :func:`bbox`, :func:`window`, :func:`unpad` (work on the bounding box of the anatomy).
* Bit-packed dilation: :func:`pack` / :func:`unpack` (rows as 64-bit words), :func:`shift_x`,
  :func:`dilate_rows` (a symmetric element made of one interval per row), :func:`closing_mm`.
* Disks: :func:`disk_mm` (radius in mm), :func:`disk_px` (radius in pixels).
* Convex hulls rasterised row by row: :func:`hull_spans`, :func:`hull_area_px`, :func:`hull_mask`.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage as ndi
from scipy.spatial import ConvexHull, QhullError

from ..errors import InputError

__all__ = [
    "inplane_sampling", "structure", "offsets", "fill_holes", "bbox", "window", "unpad",
    "pack", "unpack", "shift_x", "dilate_rows", "closing_mm", "disk_mm", "disk_px",
    "hull_spans", "hull_area_px", "hull_mask",
]

EPS_MM = 1e-9  # tolerance on "distance <= radius" so float rounding cannot flip a pixel


def inplane_sampling(spacing) -> tuple[float, float]:
    """In-plane pixel size ``(sy, sx)`` in mm from an ITK-order spacing ``(x, y[, z])``."""
    sp = tuple(float(s) for s in np.ravel(spacing))
    if len(sp) not in (2, 3) or any(not math.isfinite(s) or s <= 0 for s in sp):
        raise InputError(f"spacing must be 2 or 3 positive numbers (x, y[, z]) in mm, got {spacing}")
    return (sp[1], sp[0])


def structure(connectivity: int) -> np.ndarray:
    if connectivity == 8:
        return np.ones((3, 3), dtype=bool)
    if connectivity == 4:
        return ndi.generate_binary_structure(2, 1)
    raise InputError(f"connectivity must be 4 or 8, got {connectivity}")


def offsets(connectivity: int) -> list[tuple[int, int]]:
    s = structure(connectivity)
    return [(dy - 1, dx - 1) for dy in range(3) for dx in range(3) if s[dy, dx] and (dy, dx) != (1, 1)]


def fill_holes(mask: np.ndarray, connectivity: int = 8) -> np.ndarray:
    """Fill holes of a foreground with ``connectivity``; the background uses the complementary one.

    Same result as ``ndi.binary_fill_holes(mask, structure=<complementary>)`` (background
    components not touching the array border are holes), by labelling instead of propagation.
    """
    comp, n = ndi.label(~mask, structure=structure(12 - connectivity))
    if n == 0:
        return mask.copy()
    hole = np.ones(n + 1, dtype=bool)
    hole[0] = False
    hole[comp[0]] = hole[comp[-1]] = hole[comp[:, 0]] = hole[comp[:, -1]] = False
    return mask | hole[comp]


def bbox(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    return rows[0], rows[-1] + 1, cols[0], cols[-1] + 1


def window(shape, box, pad: int):
    """Slices of ``box`` grown by ``pad`` clipped to ``shape`` and the zero padding still needed."""
    y0, y1, x0, x1 = box
    Y0, Y1, X0, X1 = y0 - pad, y1 + pad, x0 - pad, x1 + pad
    sl = (slice(max(Y0, 0), min(Y1, shape[0])), slice(max(X0, 0), min(X1, shape[1])))
    padw = ((max(0, -Y0), max(0, Y1 - shape[0])), (max(0, -X0), max(0, X1 - shape[1])))
    return sl, padw


def unpad(a: np.ndarray, padw) -> np.ndarray:
    (t, b), (l, r) = padw
    return a[t : a.shape[0] - b, l : a.shape[1] - r]


def dilate_rows(mask: np.ndarray, element: np.ndarray) -> np.ndarray:
    """Binary dilation of a 2D mask by a symmetric element made of one interval per row.

    Bit-parallel: each distinct half-width is one horizontal dilation of the packed mask (log2
    steps), each element row one vertical shift and OR. Pixels beyond the array are background.
    """
    k, m = element.shape[0] // 2, element.shape[1] // 2
    h, wd = mask.shape
    words = pack(mask, extra=m + 1)
    rows = element.any(axis=1)
    last = element.shape[1] - 1 - np.argmax(element[:, ::-1], axis=1)  # rightmost True per row
    half = {dy: int(last[i]) - m for i, dy in enumerate(range(-k, k + 1)) if rows[i]}
    out = np.zeros_like(words)
    # runs[p](c) = OR of the mask over [c - 2**p + 1, c], shared by every half-width
    runs = [words]
    while 2 ** len(runs) <= 2 * max(half.values(), default=0) + 1:
        p = 2 ** (len(runs) - 1)
        runs.append(runs[-1] | shift_x(runs[-1], p))
    cache: dict[int, np.ndarray] = {}
    for dy, w in half.items():
        if abs(dy) >= h:
            continue
        if w not in cache:
            n = 2 * w + 1  # run of n = two overlapping runs of the largest power of two <= n
            p = n.bit_length() - 1
            run = runs[p] if n == 2 ** p else runs[p] | shift_x(runs[p], n - 2 ** p)
            cache[w] = shift_x(run, -w)  # centred: OR over [c - w, c + w]
        hw = cache[w]
        if dy >= 0:
            out[dy:] |= hw[: h - dy]
        else:
            out[: h + dy] |= hw[-dy:]
    return unpack(out, wd)


def shift_x(words: np.ndarray, k: int) -> np.ndarray:
    """Packed rows shifted by ``k`` columns (k > 0: column c -> c + k), zero fill."""
    if k == 0:
        return words.copy()
    q, b = divmod(abs(k), 64)
    nw = words.shape[1]
    out = np.zeros_like(words)
    if q >= nw:
        return out
    b64, rb64 = np.uint64(b), np.uint64(64 - b)
    if k > 0:
        src = words[:, : nw - q]
        if b == 0:
            out[:, q:] = src
        else:
            out[:, q:] = src << b64
            out[:, q + 1:] |= src[:, :-1] >> rb64
    else:
        src = words[:, q:]
        if b == 0:
            out[:, : nw - q] = src
        else:
            out[:, : nw - q] = src >> b64
            out[:, : nw - q - 1] |= src[:, 1:] << rb64
    return out


def pack(mask: np.ndarray, extra: int = 0) -> np.ndarray:
    """Boolean (H, W) -> uint64 (H, ceil((W + extra) / 64)), little-endian bits along x.

    Bit i of word j is column 64 j + i; ``extra`` zero columns at least are added on the right.
    """
    h, wd = mask.shape
    packed = np.packbits(mask, axis=1, bitorder="little")
    buf = np.zeros((h, -(-(wd + extra) // 64) * 8), dtype=np.uint8)
    buf[:, : packed.shape[1]] = packed
    return buf.view("<u8")


def unpack(words: np.ndarray, width: int) -> np.ndarray:
    return np.unpackbits(words.view(np.uint8), axis=1, count=width, bitorder="little").astype(bool)


def hull_spans(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Rows of the convex hull of the mask's pixel centres and, per row, the first and last column
    whose centre lies in (or on) the hull; None when the hull is empty or degenerate."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    m = mask[rows]
    left = np.argmax(m, axis=1)
    right = m.shape[1] - 1 - np.argmax(m[:, ::-1], axis=1)
    pts = np.unique(np.concatenate([np.c_[rows, left], np.c_[rows, right]]), axis=0).astype(float)
    try:
        hull = ConvexHull(pts)
    except (QhullError, ValueError):
        return None
    v = pts[hull.vertices]
    y0, x0 = v[:, 0], v[:, 1]
    y1, x1 = np.roll(y0, -1), np.roll(x0, -1)
    ys = np.arange(int(v[:, 0].min()), int(v[:, 0].max()) + 1, dtype=float)[:, None]
    lo, hi = np.minimum(y0, y1), np.maximum(y0, y1)
    cross = (ys >= lo) & (ys <= hi)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(hi > lo, (ys - y0) / (y1 - y0), 0.0)
    xa = np.where(cross, x0 + t * (x1 - x0), np.nan)
    xb = np.where(cross & (hi == lo), x1, np.nan)  # horizontal edge: both ends
    xs = np.concatenate([xa, xb], axis=1)
    first = np.ceil(np.nanmin(xs, axis=1) - 1e-9).astype(int)
    last = np.floor(np.nanmax(xs, axis=1) + 1e-9).astype(int)
    return ys[:, 0].astype(int), first, last


def hull_area_px(mask: np.ndarray) -> int:
    """Number of pixels whose centres lie in (or on) the convex hull of the mask's pixel centres.

    The same count as ``skimage.morphology.convex_hull_image(mask, offset_coordinates=False)``
    (0 when the hull is degenerate, e.g. collinear pixels), computed from the hull polygon row by
    row instead of testing every pixel.
    """
    spans = hull_spans(mask)
    if spans is None:
        return 0
    _, first, last = spans
    return int(np.clip(last - first + 1, 0, None).sum())


def hull_mask(mask: np.ndarray) -> np.ndarray:
    """The pixels counted by :func:`hull_area_px`, as a mask."""
    out = np.zeros(mask.shape, dtype=bool)
    spans = hull_spans(mask)
    if spans is not None:
        ys, first, last = spans
        cols = np.arange(mask.shape[1])
        out[ys] = (cols >= first[:, None]) & (cols <= last[:, None])
    return out


def disk_mm(radius_mm: float, sampling: tuple[float, float]) -> np.ndarray:
    """The disk ``{(dy, dx): hypot(dy * sy, dx * sx) <= radius_mm}`` as a centred boolean array."""
    sy, sx = sampling
    ry, rx = int(radius_mm / sy) + 1, int(radius_mm / sx) + 1
    dy, dx = np.mgrid[-ry:ry + 1, -rx:rx + 1]
    return np.hypot(dy * sy, dx * sx) <= radius_mm + EPS_MM


def closing_mm(mask: np.ndarray, radius_mm: float, sampling: tuple[float, float],
               dilated: np.ndarray | None = None) -> np.ndarray:
    """Binary closing of a 2D mask by :func:`disk_mm` (``radius_mm`` in mm, pixel size ``sampling``).

    Pixels outside the array count as background, as in ``scipy.ndimage.binary_closing`` on a
    grid padded with zeros by more than the radius; the mask must already be padded that much
    (the caller's job). ``dilated`` (the mask dilated by the same disk) may be passed if known.
    Erosion is computed as the complement of the dilation of the complement (the disk is
    symmetric); both dilations are bit-parallel (:func:`dilate_rows`).
    """
    disk = disk_mm(radius_mm, sampling)
    if dilated is None:
        dilated = dilate_rows(mask, disk)
    return ~dilate_rows(~dilated, disk)


def disk_px(radius_px: float) -> np.ndarray:
    r = int(radius_px)
    dy, dx = np.mgrid[-r:r + 1, -r:r + 1]
    return np.hypot(dy, dx) <= radius_px + 1e-9
