"""Topology rules for the model's 5-class map (docs/method.md "Post-processing").

Per 2D slice ``[y, x]`` (volumes ``[z, y, x]`` slice by slice), in this order:

1. **One component per cortical class** (``PostProcessing.connectivity``, 8 by default): the
   cortex keeps its largest component plus the pieces that touch its bone's trabecular class
   and that the largest allowed closing could join to it (gap <= 2 x ``max_closing_radius_mm``,
   chained), since a cortex broken in two is still the cortex; other cortical fragments take the
   majority label of their neighbours as in step 4.
2. **Cortical continuity**, per bone (tibia 1/2, fibula 3/4). The cortex is broken when
   ``(|hull| - |fill_holes(cortex)|) / |hull|`` exceeds ``hull_gap_tolerance`` (hull = convex
   hull of the cortex). A broken cortex is closed with disks of radius ``closing_radius_mm``,
   ``+ closing_step_mm``, ... up to ``max_closing_radius_mm`` (mm from the pixel spacing). At
   each radius the closing of the cortex and the closing of the bone as a solid (cortex plus
   its trabecular pixels inside the cortex's hull, holes filled; this bridges gaps in a cortex
   too thin for the first) are joined. The smallest radius is used whose result encloses at
   least half the bone's trabecular pixels and either fills the hull within the tolerance or
   encloses as much (within ``tolerance x |hull|``) as the largest radius. If the largest
   radius encloses no more than the unclosed cortex, or not half the marrow, nothing changes
   (reported as nan when the cortex is broken). Of the pixels the closing adds, only the bridge
   becomes cortex (see :func:`_bridges`): not the inner pits or outer notches the closing also
   fills, and of the gap only a layer as thick as the cortex on average. Closing pixels never
   touch the other bone (its pixels dilated by one pixel are excluded), so the tibial and
   fibular cortices cannot merge. Each closing is identical to ``binary_closing`` with the disk
   ``{(dy, dx): |(dy*sy, dx*sx)| <= r}`` on a zero-padded grid, computed bit-parallel (rows
   packed into 64-bit words, the disk as one interval per row).
3. Everything the (closed) cortex encloses becomes that bone's trabecular class (marrow the
   model called soft tissue included); trabecular pixels of that bone outside it become
   fragments (unless the cortex encloses nothing or less trabecular bone than lies outside it).
4. **One component per class**, all classes: every class keeps its largest connected component
   (a cortex that could not be closed keeps the pieces kept in step 1);
   every other component (a *fragment*) takes the majority label of the pixels touching it from
   outside (its 8-neighbours that are not in it). Fragments are resolved against *settled*
   pixels only (pixels of a kept component), so two neighbouring fragments cannot swap labels;
   a fragment surrounded only by other fragments waits for the next pass, and passes repeat
   until none is left (each assigned fragment joins a kept component of its new label, so this
   is the fixed point). Ties go to the lowest label value. Background (0) is a class too, except
   that every background component touching the image border is kept (air in several corners
   is still air); enclosed background holes take their neighbours' label. Everything a closed
   cortex encloses stays trabecular even if a cortical strut splits it in two.

The paper orders the one-component rule before the cortical steps; here only the cortical part
of it comes first. Otherwise a large piece of marrow the model called soft tissue, bordered
mostly by cortex, would be handed to the cortex by the majority rule before the enclosure rule
could make it trabecular.

Work is done on the bounding box of the limb (plus one pixel) and of each bone, so the cost
scales with the anatomy, not the field of view.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage as ndi
from skimage.measure import label as _cc_label

from ..errors import InputError
from ..method import POSTPROCESSING, PostProcessing
from ..progress import ProgressCallback, report
from ..regions import BACKGROUND, MODEL_CLASSES, model_class
from .morphology import (bbox, closing_mm, dilate_rows, disk_mm, disk_px, fill_holes, hull_area_px,
                         hull_mask, inplane_sampling, offsets, structure, unpad, window)

__all__ = [
    "SliceInfo",
    "postprocess",
    "postprocess_slice",
    "reassign_fragments",
    "close_cortex",
    "closing_mm",
    "disk_mm",
    "hull_area_px",
    "inplane_sampling",
    "BONES",
]

#: (cortical label, trabecular label) per bone, tibia first, from hrpqct.regions.
BONES: tuple[tuple[int, int], ...] = (
    (model_class("TC").label, model_class("TT").label),
    (model_class("FC").label, model_class("FT").label),
)
_MAX_MODEL_LABEL = max(r.label for r in MODEL_CLASSES)
_FORCE_OFFSET = 64  # label offset that separates forced pixels into their own components


@dataclass
class SliceInfo:
    """What the topology rules did to one slice."""

    fragments: int = 0  # fragments reassigned (both passes)
    pixels_changed: int = 0
    #: per bone code ("TC", "FC"): 0.0 intact, radius used (mm), or nan when broken but not
    #: closable within max_closing_radius_mm
    closing_mm: dict[str, float] = field(default_factory=dict)
    hull_gap: dict[str, float] = field(default_factory=dict)  # (|hull| - A0) / |hull| before


def _radii(params: PostProcessing) -> list[float]:
    r, out = params.closing_radius_mm, []
    step = params.closing_step_mm if params.closing_step_mm > 0 else math.inf
    while r <= params.max_closing_radius_mm + 1e-9:
        out.append(r)
        r += step
    if not out or out[-1] < params.max_closing_radius_mm - 1e-9:
        out.append(params.max_closing_radius_mm)
    return out


# --- step 1: one component per class -----------------------------------------------------------
def reassign_fragments(labels: np.ndarray, *, connectivity: int = 8,
                       protected: np.ndarray | None = None,
                       force: np.ndarray | None = None,
                       classes: tuple[int, ...] | None = None) -> tuple[np.ndarray, int]:
    """Keep one connected component per class of a 2D label map; give fragments their neighbours' label.

    ``labels``: 2D integer map. Kept per class: components touching ``protected`` if any, else
    the largest; for background (0) every component touching the image border if any. Pixels in
    ``force`` are always fragments (their components are computed separately). ``classes``
    limits the rule to those labels (all by default; the others keep every component). Returns
    the new map (same dtype) and the number of fragments reassigned. Fragments with no settled
    neighbour at all (possible only if they fill the image) keep their label.
    """
    lab = np.asarray(labels)
    if lab.ndim != 2:
        raise InputError(f"reassign_fragments needs a 2D label map, got shape {lab.shape}")
    out = lab.copy()
    if lab.size == 0:
        return out, 0
    work = lab.astype(np.int32)
    if force is not None and force.any():
        work[force] += _FORCE_OFFSET
    comp = _cc_label(work, background=-1, connectivity=1 if connectivity == 4 else 2)
    n = int(comp.max())
    if n <= 1:
        return out, 0
    sizes = np.bincount(comp.ravel(), minlength=n + 1)
    cls = np.empty(n + 1, dtype=np.int32)
    cls[comp.ravel()] = work.ravel()
    forced = cls >= _FORCE_OFFSET
    cls[forced] -= _FORCE_OFFSET

    keep = np.zeros(n + 1, dtype=bool)
    prot_ids = np.unique(comp[protected]) if protected is not None and protected.any() else None
    border = np.unique(np.concatenate([comp[0], comp[-1], comp[:, 0], comp[:, -1]]))
    for c in np.unique(cls[1:]):
        ids = np.flatnonzero((cls == c) & ~forced)
        ids = ids[ids > 0]
        if ids.size == 0:
            continue
        if classes is not None and c not in classes:
            keep[ids] = True
            continue
        chosen = None
        if prot_ids is not None:
            chosen = np.intersect1d(ids, prot_ids, assume_unique=False)
        if (chosen is None or chosen.size == 0) and c == BACKGROUND:
            chosen = np.intersect1d(ids, border)
        if chosen is None or chosen.size == 0:
            chosen = ids[[np.argmax(sizes[ids])]]
        keep[chosen] = True
    keep[0] = True  # comp 0 does not occur (background=-1); guard anyway
    frag = ~keep
    if not frag[1:].any():
        return out, 0

    H, W = comp.shape
    frag_pix = frag[comp]
    offs = offsets(connectivity)
    nlab = int(max(_MAX_MODEL_LABEL, lab.max())) + 1
    n_frag = int(frag[1:].sum())
    flat_out = out.reshape(-1)
    ys, xs = np.nonzero(frag_pix)
    fid = comp[ys, xs]
    while ys.size:
        keys = []
        for dy, dx in offs:
            ny, nx = ys + dy, xs + dx
            ok = (ny >= 0) & (ny < H) & (nx >= 0) & (nx < W)
            ny, nx, f = ny[ok], nx[ok], fid[ok]
            settled = ~frag_pix[ny, nx]
            keys.append(f[settled].astype(np.int64) * (H * W) + (ny[settled] * W + nx[settled]))
        keys = np.unique(np.concatenate(keys))  # each outside pixel counted once per fragment
        if keys.size == 0:
            break
        f_of = keys // (H * W)
        nb_lab = flat_out[keys % (H * W)].astype(np.int64)
        uf, inv = np.unique(f_of, return_inverse=True)
        votes = np.bincount(inv * nlab + nb_lab, minlength=uf.size * nlab).reshape(uf.size, nlab)
        winner = np.argmax(votes, axis=1)  # first maximum: ties go to the lowest label
        new_lab = np.full(n + 1, -1, dtype=np.int64)
        new_lab[uf] = winner
        new = new_lab[fid]
        done = new >= 0
        out[ys[done], xs[done]] = new[done].astype(out.dtype)
        frag_pix[ys[done], xs[done]] = False
        ys, xs, fid = ys[~done], xs[~done], fid[~done]
    return out, n_frag


def _cortex_pieces_to_keep(lab: np.ndarray, cortex: int, trabecular: int, sampling,
                           params: PostProcessing) -> np.ndarray | None:
    """Cortical pieces to keep for the closing (None if the cortex is in one piece).

    The largest piece, and every piece that touches this bone's trabecular class and that the
    largest closing could join to it (gap <= 2 x max radius, chained through such pieces). A
    cortical speck in the soft tissue touches no marrow and is left to the one-component rule.
    """
    c_full = lab == cortex
    box = bbox(c_full)
    if box is None:
        return None
    conn = 1 if params.connectivity == 4 else 2
    r = params.max_closing_radius_mm
    pad = int(math.ceil(r / min(sampling))) + 2
    sl, padw = window(c_full.shape, box, pad)
    c = c_full[sl]
    comp = _cc_label(c, connectivity=conn)
    if comp.max() <= 1:
        return None
    sizes = np.bincount(comp.ravel())
    sizes[0] = 0
    main = int(np.argmax(sizes))
    eligible = np.zeros(sizes.size, dtype=bool)
    trab = lab[sl] == trabecular
    ys, xs = np.nonzero(c & (comp != main))
    for dy, dx in offsets(8):  # pieces with a trabecular pixel among their 8-neighbours
        ny, nx = ys + dy, xs + dx
        ok = (ny >= 0) & (ny < c.shape[0]) & (nx >= 0) & (nx < c.shape[1])
        hit = trab[ny[ok], nx[ok]]
        eligible[comp[ys[ok][hit], xs[ok][hit]]] = True
    eligible[main] = True
    eligible[0] = False
    c = eligible[comp]
    grown = unpad(dilate_rows(np.pad(c, padw), disk_mm(r, sampling)), padw)
    g = _cc_label(grown, connectivity=conn)
    target = g[comp == main][0]
    keep = np.zeros_like(c_full)
    keep[sl] = (g == target) & c
    return keep


# --- step 2: cortical continuity ---------------------------------------------------------------
def close_cortex(labels: np.ndarray, sampling: tuple[float, float], cortex: int, trabecular: int,
                 other_bone: tuple[int, ...] = (), params: PostProcessing = POSTPROCESSING,
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, float]:
    """Close one bone's cortex if broken and make what it encloses trabecular (2D).

    ``sampling`` is the pixel size ``(sy, sx)`` in mm. Returns ``(labels, interior, outside,
    radius_mm, hull_gap)``: the new map; the enclosed pixels (now ``trabecular``); this bone's
    trabecular pixels outside the enclosure (to be reassigned); the closing radius used (0 when
    nothing had to be closed, nan when broken but not closable) and the hull gap before closing.
    """
    lab = labels.copy()
    c_full = lab == cortex
    box = bbox(c_full)
    empty = np.zeros(lab.shape, dtype=bool)
    if box is None:
        return lab, empty, empty, 0.0, 0.0
    conn = params.connectivity
    pad = int(math.ceil(params.max_closing_radius_mm / min(sampling))) + 2
    sl, padw = window(lab.shape, box, pad)
    lw = np.pad(lab[sl], padw)  # zero padding = background
    c = lw == cortex
    hull = hull_mask(c)
    hull_area = int(hull.sum())
    filled = fill_holes(c, conn)
    gap0 = (hull_area - int(filled.sum())) / hull_area if hull_area else 0.0
    radius = 0.0
    closed = c
    other = np.isin(lw, other_bone) if other_bone else np.zeros_like(c)
    if gap0 > params.hull_gap_tolerance:
        slack = params.hull_gap_tolerance * hull_area
        forbidden = ndi.binary_dilation(other, structure=np.ones((3, 3), bool)) if other.any() else other
        # the bone as a solid: cortex plus this bone's trabecular pixels inside the cortex's hull
        solid = fill_holes(c | ((lw == trabecular) & hull), conn)

        def added_at(r: float) -> np.ndarray:
            disk = disk_mm(r, sampling)
            grown = ~dilate_rows(~dilate_rows(c, disk), disk)  # closing of the cortex
            # closing of the solid: bridges gaps in a cortex too thin for the first closing
            grown |= ~dilate_rows(~dilate_rows(solid, disk), disk) & ~solid
            return grown & ~c & ~forbidden

        def enclosed(ring: np.ndarray) -> int:
            return int(np.count_nonzero(fill_holes(ring, conn) & ~ring))

        trab = lw == trabecular
        half_trab = np.count_nonzero(trab) / 2

        def holds_marrow(ring: np.ndarray) -> bool:  # encloses at least half the trabecular bone
            return np.count_nonzero(fill_holes(ring, conn) & trab) >= half_trab

        radii = _radii(params)
        i0 = enclosed(c)
        add_max = added_at(radii[-1])
        i_max = enclosed(c | add_max)
        if i_max - i0 > slack and holds_marrow(c | add_max):
            for r in radii:
                add = add_max if r == radii[-1] else added_at(r)
                ir = enclosed(c | add)
                hull_ok = hull_area - int(fill_holes(c | add, conn).sum()) <= slack
                if (hull_ok or ir >= i_max - slack) and holds_marrow(c | add):
                    add = _bridges(c, add, trab, conn, slack, disk_mm(r, sampling))
                    closed, radius = c | add, float(r)
                    break
        elif not holds_marrow(c):
            radius = math.nan  # broken, and the largest closing does not enclose the marrow
    if closed is not c:
        lw[closed & ~c] = cortex
        filled = fill_holes(closed, conn)
    interior = filled & ~closed & ~other
    trab = lw == trabecular
    outside = trab & ~filled
    if not interior.any() or np.count_nonzero(trab & filled) < np.count_nonzero(outside):
        # No enclosure (broken beyond repair, or a cortex that encloses nothing), or one that
        # holds less of the trabecular bone than lies outside it: leave the trabecular pixels to
        # the one-component rule rather than erase most of them.
        interior = np.zeros_like(interior)
        outside = np.zeros_like(outside)
    lw[interior] = trabecular
    lab[sl] = unpad(lw, padw)
    inter_full, out_full = empty.copy(), empty.copy()
    inter_full[sl] = unpad(interior, padw)
    out_full[sl] = unpad(outside, padw)
    return lab, inter_full, out_full, radius, float(gap0)


def _bridges(cortex: np.ndarray, added: np.ndarray, trabecular: np.ndarray, connectivity: int,
             slack: float, disk: np.ndarray) -> np.ndarray:
    """The part of a closing's added pixels that closes the gaps.

    A closing also fills every concavity narrower than its disk: pits of the inner (endosteal)
    surface, which hold trabecular bone, and notches of the outer surface, which lie outside the
    bone. The gap itself is soft tissue or air in the model's map: *seeds* are the added pixels
    the model did not call this bone's trabecular bone, in components touching what the closing
    encloses (a bridge touches the marrow; an outer notch does not). Tried in turn, the first
    whose enclosed area is that of all the added pixels (within ``slack`` pixels) is used: the
    seeds; the added pixels within the closing disk of a seed; all added pixels. Of that, only
    the layer facing the outside, as thick as the cortex is on average (area / outer boundary),
    is kept when it still encloses: what lies behind it is enclosed, hence trabecular.
    """
    def enclosed(ring: np.ndarray) -> int:
        return int(np.count_nonzero(fill_holes(ring, connectivity) & ~ring))

    full = cortex | added
    inside = fill_holes(full, connectivity) & ~full
    target = int(inside.sum()) - slack
    cand = added & ~trabecular
    comp, n = ndi.label(cand, structure=structure(connectivity))
    touching = np.zeros(n + 1, dtype=bool)
    if n:
        near_inside = ndi.binary_dilation(inside, structure=np.ones((3, 3), bool))
        touching[comp[near_inside & cand]] = True
        touching[0] = False
    bridge = touching[comp]
    if enclosed(cortex | bridge) >= target:
        chosen = bridge
    else:
        near = added & dilate_rows(bridge, disk)
        chosen = near if enclosed(cortex | near) >= target else added
    # A bridge fills the whole notch the closing filled; only the layer facing the outside, as
    # thick as the cortex is on average, needs to be cortex: the rest is enclosed, so trabecular.
    ring = cortex | chosen
    outside = ~fill_holes(ring, connectivity)
    facing = ndi.binary_dilation(outside, structure=ndi.generate_binary_structure(2, 1))
    n_outer = np.count_nonzero(cortex & facing)
    if n_outer and chosen.any():
        thick_px = max(1.0, np.count_nonzero(cortex) / n_outer)
        layer = chosen & dilate_rows(outside, disk_px(thick_px))
        if enclosed(cortex | layer) >= target:
            return layer
    return chosen


# --- per slice and per volume ------------------------------------------------------------------
def postprocess_slice(labels: np.ndarray, spacing, params: PostProcessing = POSTPROCESSING,
                      ) -> tuple[np.ndarray, SliceInfo]:
    """Apply the topology rules to one 2D 5-class slice ``[y, x]``; spacing ``(x, y[, z])`` mm."""
    lab = np.asarray(labels)
    sampling = inplane_sampling(spacing)
    out = lab.copy()
    info = SliceInfo()
    box = bbox(lab != BACKGROUND)
    if box is None:
        return out, info
    sl, _ = window(lab.shape, box, 1)  # one pixel of margin keeps "touches the border" exact
    w = lab[sl]
    conn = params.connectivity
    keep = None
    for cortex, trab in BONES:
        k = _cortex_pieces_to_keep(w, cortex, trab, sampling, params)
        if k is not None:
            keep = k if keep is None else keep | k
    # cortical fragments only: work on the box of the cortices (+1 pixel), which holds every
    # cortical pixel and its neighbours, so the result is that of the whole slice
    cortices = tuple(cortex for cortex, _ in BONES)
    nf1 = 0
    cbox = bbox(np.isin(w, cortices))
    if cbox is not None:
        csl, _ = window(w.shape, cbox, 1)
        w = w.copy()
        w[csl], nf1 = reassign_fragments(w[csl], connectivity=conn,
                                         protected=None if keep is None else keep[csl],
                                         classes=cortices)
    interiors = np.zeros(w.shape, dtype=bool)
    outside = np.zeros(w.shape, dtype=bool)
    protected = np.zeros(w.shape, dtype=bool)
    for i, (cortex, trab) in enumerate(BONES):
        others = tuple(v for j, b in enumerate(BONES) if j != i for v in b)
        w, inter, outs, radius, gap = close_cortex(w, sampling, cortex, trab, others, params)
        code = model_class(cortex).code
        info.closing_mm[code] = radius
        info.hull_gap[code] = gap
        interiors |= inter
        outside |= outs
        if math.isnan(radius) and keep is not None:
            # a cortex that could not be closed keeps its pieces (a broken ring stays a broken
            # ring rather than losing all but its longest arc)
            protected |= keep & (w == cortex)
    outside &= ~interiors
    w, nf2 = reassign_fragments(w, connectivity=conn, protected=interiors | protected, force=outside)
    info.fragments = nf1 + nf2
    out[sl] = w
    info.pixels_changed = int(np.count_nonzero(out != lab))
    return out, info


def _check_labels(lab: np.ndarray) -> None:
    if lab.ndim not in (2, 3):
        raise InputError(f"label map must be 2D [y, x] or 3D [z, y, x], got shape {lab.shape}")
    if not (np.issubdtype(lab.dtype, np.integer) or lab.dtype == bool):
        raise InputError(f"label map must hold integers, got dtype {lab.dtype}")
    if lab.size and (lab.min() < 0 or lab.max() > _MAX_MODEL_LABEL):
        bad = np.unique(lab[(lab < 0) | (lab > _MAX_MODEL_LABEL)])[:10]
        raise InputError(
            f"label map has values {bad.tolist()} outside the model's classes 0-{_MAX_MODEL_LABEL}")


def postprocess(labels: np.ndarray, spacing, params: PostProcessing = POSTPROCESSING,
                progress: ProgressCallback | None = None, *, return_info: bool = False,
                out: np.ndarray | None = None):
    """Topology rules on a 5-class map, 2D ``[y, x]`` or 3D ``[z, y, x]`` (slice by slice).

    ``spacing``: ``(x, y[, z])`` in mm (ITK order). Returns a new map of the same shape and dtype
    (3D: or ``out``, which may be ``labels`` itself: each slice is read before it is replaced, so
    a whole scan needs no second label volume), and with ``return_info=True`` also a list of
    :class:`SliceInfo` (one per slice).
    """
    lab = np.asarray(labels)
    _check_labels(lab)
    if lab.ndim == 2:
        out, info = postprocess_slice(lab, spacing, params)
        return (out, [info]) if return_info else out
    if out is None:
        out = np.empty_like(lab)
    elif out.shape != lab.shape or out.dtype != lab.dtype:
        raise InputError(f"out has shape {out.shape} and dtype {out.dtype}; "
                         f"need {lab.shape} and {lab.dtype}")
    infos = []
    for z in range(lab.shape[0]):
        out[z], info = postprocess_slice(lab[z], spacing, params)
        infos.append(info)
        report(progress, z + 1, lab.shape[0])
    return (out, infos) if return_info else out
