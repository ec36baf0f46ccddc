"""Small synthetic distal-tibia slices for tests and benchmarks of the radiomics engine.

These are not the project's phantom (:mod:`hrpqct.phantom`, exact ground truth, realistic
anatomy); they are quick 7-region label maps with plausible shapes and HU-like noisy textures,
enough to exercise every feature class on every region: a tibia and a fibula (cortical ring
around a trabecular centre), soft tissue around them split into myotendinous (MT) and adipose
(AT) tissue, and a skin band (SK) along the outer boundary. Label values come from
:mod:`hrpqct.regions`.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from ..method import SOFT_TISSUE
from ..regions import region

__all__ = ["synthetic_slice", "synthetic_scan"]


def _ellipse(shape, centre, radii, angle=0.0):
    yy, xx = np.mgrid[: shape[0], : shape[1]].astype(np.float64)
    dy, dx = yy - centre[0], xx - centre[1]
    c, s = np.cos(angle), np.sin(angle)
    u = (dx * c + dy * s) / radii[1]
    v = (-dx * s + dy * c) / radii[0]
    return u * u + v * v <= 1.0


def synthetic_slice(
    size: int = 192,
    spacing_mm: float = 0.5,
    seed: int = 0,
    z: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """One synthetic slice: ``(image [y, x] float32 in HU, labels [y, x] uint8, final map 1-7)``.

    The limb fills most of a ``size`` x ``size`` field; shapes scale with ``size`` (pixels) so
    a slice keeps all seven regions at any size >= 64. ``spacing_mm`` only sets the skin band
    width (``SoftTissue.skin_band_mm``) in pixels. ``z`` (0-1) slowly deforms the shapes, so
    slices of one scan differ a little; ``seed`` changes shapes and textures.
    """
    rng = np.random.default_rng(seed)
    n = int(size)
    shape = (n, n)
    jitter = lambda a: a * (1.0 + 0.05 * rng.standard_normal())  # noqa: E731
    zc = 0.04 * np.sin(2 * np.pi * z)
    lab = np.zeros(shape, np.uint8)

    limb = _ellipse(shape, (n * 0.5, n * 0.5), (jitter(n * 0.42), jitter(n * 0.46)), 0.2 + zc)
    tibia = _ellipse(shape, (n * (0.44 + zc), n * 0.42), (jitter(n * 0.19), jitter(n * 0.22)), 0.5)
    fibula = _ellipse(shape, (n * 0.64, n * (0.70 - zc)), (jitter(n * 0.075), jitter(n * 0.065)))
    fibula &= ~ndi.binary_dilation(tibia, iterations=max(2, n // 40))

    tc_w = max(2, n // 40)
    fc_w = max(2, n // 70)
    tt = ndi.binary_erosion(tibia, iterations=tc_w)
    ft = ndi.binary_erosion(fibula, iterations=fc_w)

    skin_px = max(1, int(round(SOFT_TISSUE.skin_band_mm / spacing_mm)))
    inner = ndi.binary_erosion(limb, iterations=skin_px)
    soft = inner & ~tibia & ~fibula
    # adipose: a subcutaneous layer plus a few intermuscular blobs; the rest is myotendinous
    sub_w = max(2, n // 30)
    subcut = inner & ~ndi.binary_erosion(inner, iterations=sub_w)
    smooth = ndi.gaussian_filter(rng.standard_normal(shape), n / 25)
    blobs = smooth > np.quantile(smooth, 0.85)
    adipose = soft & (subcut | (blobs & ~ndi.binary_dilation(tibia | fibula, iterations=sub_w)))

    lab[limb] = region("SK").label
    lab[soft] = region("MT").label
    lab[adipose] = region("AT").label
    lab[tibia] = region("TC").label
    lab[tt] = region("TT").label
    lab[fibula] = region("FC").label
    lab[ft] = region("FT").label

    # HU-like textures: smooth random fields plus pixel noise
    def field(scale, sd):
        return ndi.gaussian_filter(rng.standard_normal(shape), scale) * sd * scale * 2.5

    img = np.full(shape, -1000.0) + rng.normal(0, 30, shape)
    noise = rng.normal(0, 60, shape)
    trab = ndi.gaussian_filter(rng.standard_normal(shape), 1.2) > 0.05
    tissue = {
        "TC": 1400.0 + field(2.0, 120) + noise,
        "TT": np.where(trab, 700.0, 20.0) + field(3.0, 60) + noise,
        "FC": 1250.0 + field(2.0, 100) + noise,
        "FT": np.where(trab, 600.0, 0.0) + field(3.0, 60) + noise,
        "SK": 30.0 + field(1.5, 40) + noise,
        "MT": 60.0 + field(2.5, 50) + noise,
        "AT": -110.0 + field(2.5, 30) + noise,
    }
    for code, values in tissue.items():
        m = lab == region(code).label
        img[m] = values[m]
    return img.astype(np.float32), lab


def synthetic_scan(
    n_slices: int = 4,
    size: int = 192,
    spacing_mm: float = 0.5,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """A stack of :func:`synthetic_slice`: ``(image [z, y, x] float32 HU, labels [z, y, x] uint8)``.

    Slices share ``seed`` for the shapes' base size and vary smoothly with ``z``; textures differ
    per slice.
    """
    imgs, labs = [], []
    for k in range(n_slices):
        img, lab = synthetic_slice(size, spacing_mm, seed=seed * 1000 + k, z=k / max(n_slices, 1))
        imgs.append(img)
        labs.append(lab)
    return np.stack(imgs), np.stack(labs)
