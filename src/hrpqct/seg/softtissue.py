"""Soft-tissue subdivision into skin, myotendinous and adipose tissue (docs/method.md).

Input: the 5-class map (after the topology rules), the image in HU and the pixel spacing in mm.
Output: the 7-region map of :data:`hrpqct.regions.REGIONS` (bone labels unchanged, soft tissue
split into SK, MT, AT, background 0). Per 2D slice ``[y, x]``; volumes slice by slice.

Exact rules (all parameters from :class:`hrpqct.method.SoftTissue`):

* **Limb and outside.** The limb is every non-background pixel with its enclosed holes filled;
  *outside* is the rest (air). Pixels beyond the image edge are not outside: a limb cut by the
  field of view gets no skin along the cut.
* **Skin** (``skin_band_mm``, 2 mm): a soft-tissue pixel is skin when its centre lies at most
  2 mm (inclusive) from the limb's outer surface, the surface being the pixel edges between the
  limb and the outside: the Euclidean distance in mm (spacing-aware, so anisotropic pixels are
  handled) from the pixel centre to the nearest outside pixel *square*,
  ``min_q hypot(sy * max(|dy| - 1/2, 0), sx * max(|dx| - 1/2, 0))``. Along a straight edge the
  band is therefore ``floor(2 mm / s + 1/2)`` pixels thick (20 pixels at 0.1 mm, 33 at 60.7 um),
  the pixel count nearest to 2 mm. Computed exactly as a dilation of the outside by that disk
  (:func:`band_element`), bit-parallel. Distance is measured from the outside only, never from
  bone.
* **Seeds** in the rest of the soft tissue: myotendinous where ``100 <= HU <= 600``, adipose
  where ``-600 <= HU <= -200`` (both ends inclusive). Seed components (``connectivity``, 8) with
  fewer than ``min_seed_px`` (30) pixels are removed; a component of exactly 30 stays.
* **Growth**: each seed set independently is dilated ``dilation_steps`` (20) times by one pixel
  (3 x 3 square for connectivity 8, cross for 4), each step restricted to the non-skin soft
  tissue, so growth never enters skin or bone. A pixel reached by one set only takes its class.
* **Tie rule**: pixels reached by neither set, and pixels reached by both, are myotendinous when
  ``HU >= -50`` (``tie_threshold_hu``) and adipose when ``HU < -50``. Seeds keep their class
  under this rule, since every seed lies on its own side of -50 HU.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage as ndi

from ..errors import GeometryError, InputError
from ..method import SOFT_TISSUE, SoftTissue
from ..progress import ProgressCallback, report
from ..regions import BACKGROUND, MODEL_TO_REGION, SOFT_TISSUE_CLASS, model_class, region
from .morphology import bbox, dilate_rows, fill_holes, inplane_sampling, pack, structure, unpack, window

__all__ = [
    "SK", "MT", "AT",
    "band_element",
    "skin_band",
    "seeds",
    "grow",
    "split_slice",
    "split_soft_tissue",
]

SK, MT, AT = region("SK").label, region("MT").label, region("AT").label
_ST = SOFT_TISSUE_CLASS
_BONE = tuple(MODEL_TO_REGION)  # model bone labels (1-4), identical in the final map
assert model_class("ST").label == _ST


def band_element(band_mm: float, sampling: tuple[float, float]) -> np.ndarray:
    """Offsets ``(dy, dx)`` (pixels) whose pixel square lies within ``band_mm`` of a pixel centre.

    Boolean array of shape ``(2 K + 1, 2 L + 1)`` centred on (K, L): True where
    ``hypot(sy * max(|dy| - 1/2, 0), sx * max(|dx| - 1/2, 0)) <= band_mm``.
    """
    sy, sx = sampling
    k = int(math.floor(band_mm / sy + 0.5)) + 1
    m = int(math.floor(band_mm / sx + 0.5)) + 1
    dy, dx = np.mgrid[-k:k + 1, -m:m + 1]
    return np.hypot(np.maximum(np.abs(dy) - 0.5, 0) * sy, np.maximum(np.abs(dx) - 0.5, 0) * sx) <= band_mm


def skin_band(labels: np.ndarray, sampling: tuple[float, float],
              band_mm: float = SOFT_TISSUE.skin_band_mm) -> np.ndarray:
    """Skin mask of a 2D 5-class slice: soft tissue within ``band_mm`` (inclusive) of the outside.

    Exactly: soft-tissue pixels whose centre lies within ``band_mm`` (Euclidean, mm) of some
    outside pixel square, computed as a dilation of the outside by :func:`band_element`.
    """
    lab = np.asarray(labels)
    st = lab == _ST
    skin = np.zeros(lab.shape, dtype=bool)
    box = bbox(lab != BACKGROUND)
    if box is None or not st.any():
        return skin
    # The limb's box plus one pixel of outside: for any limb pixel, an outside pixel beyond that
    # ring has a ring pixel at least as close in both axes, so the crop changes no distance.
    sl, _ = window(lab.shape, box, 1)
    limb = fill_holes(lab[sl] != BACKGROUND)
    if limb.all():
        return skin
    skin[sl] = st[sl] & dilate_rows(~limb, band_element(band_mm, sampling))
    return skin


def seeds(image_hu: np.ndarray, mask: np.ndarray, hu_range: tuple[float, float],
          min_px: int, connectivity: int = 8) -> np.ndarray:
    """Pixels of ``mask`` with ``lo <= HU <= hi``, minus components smaller than ``min_px`` pixels."""
    lo, hi = hu_range
    s = mask & (image_hu >= lo) & (image_hu <= hi)
    if min_px > 1 and s.any():
        comp, n = ndi.label(s, structure=structure(connectivity))
        sizes = np.bincount(comp.ravel(), minlength=n + 1)
        small = sizes < min_px
        small[0] = False
        s &= ~small[comp]
    return s


def grow(seed: np.ndarray, mask: np.ndarray, steps: int, connectivity: int = 8) -> np.ndarray:
    """``steps`` one-pixel dilations of ``seed``, each restricted to ``mask`` (2D booleans).

    Equivalent to repeating ``binary_dilation(x) & mask`` ``steps`` times (seeds are kept).
    """
    seed = seed & mask
    if steps <= 0 or not seed.any():
        return seed
    if connectivity not in (4, 8):
        structure(connectivity)  # raises
    box = bbox(mask)
    out = np.zeros_like(seed)
    sl, _ = window(mask.shape, box, 0)
    # Bit-parallel: rows packed into 64-bit words (bit i of word j = column 64 j + i), so one
    # dilation step is a handful of shifts and ORs over H x W/64 words.
    w, m = pack(seed[sl]), pack(mask[sl])
    for _ in range(steps):
        left = w << np.uint64(1)  # column x -> x + 1
        left[:, 1:] |= w[:, :-1] >> np.uint64(63)
        right = w >> np.uint64(1)  # column x -> x - 1
        right[:, :-1] |= w[:, 1:] << np.uint64(63)
        if connectivity == 8:
            h = w | left | right
            v = h.copy()
            v[1:] |= h[:-1]
            v[:-1] |= h[1:]
        else:
            v = w | left | right
            v[1:] |= w[:-1]
            v[:-1] |= w[1:]
        v &= m
        if np.array_equal(v, w):
            break
        w = v
    out[sl] = unpack(w, seed[sl].shape[1])
    return out


def _check(labels: np.ndarray, image_hu: np.ndarray) -> None:
    if labels.shape != image_hu.shape:
        raise GeometryError(f"label map shape {labels.shape} != image shape {image_hu.shape}")
    if labels.ndim not in (2, 3):
        raise InputError(f"expected a 2D [y, x] or 3D [z, y, x] label map, got shape {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise InputError(f"label map must hold integers, got dtype {labels.dtype}")
    if not (np.issubdtype(image_hu.dtype, np.number) and not np.iscomplexobj(image_hu)):
        raise InputError(f"image must be real numbers in HU, got dtype {image_hu.dtype}")
    if labels.size and (labels.min() < 0 or labels.max() > _ST):
        bad = np.unique(labels[(labels < 0) | (labels > _ST)])[:10]
        raise InputError(f"label map has values {bad.tolist()}; the split needs the 5-class map (0-{_ST})")


def split_slice(labels: np.ndarray, image_hu: np.ndarray, spacing,
                params: SoftTissue = SOFT_TISSUE) -> np.ndarray:
    """Split the soft tissue of one 2D 5-class slice; returns the 7-region slice (uint8)."""
    lab = np.asarray(labels)
    hu = np.asarray(image_hu)
    sampling = inplane_sampling(spacing)
    out = np.zeros(lab.shape, dtype=np.uint8)
    for b in _BONE:
        out[lab == b] = MODEL_TO_REGION[b]
    st = lab == _ST
    if not st.any():
        return out
    if not np.isfinite(hu[st]).all():
        raise InputError("image has NaN or infinite HU values inside the soft tissue")
    skin = skin_band(lab, sampling, params.skin_band_mm)
    inner = st & ~skin
    conn = params.connectivity
    mt = grow(seeds(hu, inner, params.myotendinous_hu, params.min_seed_px, conn), inner,
              params.dilation_steps, conn)
    at = grow(seeds(hu, inner, params.adipose_hu, params.min_seed_px, conn), inner,
              params.dilation_steps, conn)
    above = hu >= params.tie_threshold_hu
    is_mt = np.where(mt ^ at, mt, above)  # one claim: that class; none or both: the HU rule
    out[inner] = np.where(is_mt[inner], MT, AT)
    out[skin] = SK
    return out


def split_soft_tissue(labels: np.ndarray, image_hu: np.ndarray, spacing,
                      params: SoftTissue = SOFT_TISSUE,
                      progress: ProgressCallback | None = None, *,
                      out: np.ndarray | None = None) -> np.ndarray:
    """5-class map + image (HU) -> 7-region map (uint8), 2D ``[y, x]`` or 3D ``[z, y, x]``.

    ``spacing``: ``(x, y[, z])`` in mm (ITK order). Bone labels are copied; only soft tissue (5)
    is split into skin (5), myotendinous (6) and adipose (7); background stays 0. 3D: ``out``
    (uint8, the map's shape) receives the result and may be ``labels`` itself (each slice is read
    before it is replaced), so a whole scan needs no second label volume.
    """
    lab = np.asarray(labels)
    hu = np.asarray(image_hu)
    _check(lab, hu)
    if lab.ndim == 2:
        return split_slice(lab, hu, spacing, params)
    if out is None:
        out = np.empty(lab.shape, dtype=np.uint8)
    elif out.shape != lab.shape or out.dtype != np.uint8:
        raise InputError(f"out has shape {out.shape} and dtype {out.dtype}; need {lab.shape} and uint8")
    for z in range(lab.shape[0]):
        out[z] = split_slice(lab[z], hu[z], spacing, params)
        report(progress, z + 1, lab.shape[0])
    return out
