"""Scanner effects added to a noise-free HU slice: quantum noise and motion streaks.

Noise is Gaussian, slightly correlated (as after filtered back-projection), with its standard
deviation given for 60.7 um voxels and scaled by sqrt(voxel volume ratio) for other voxel sizes.
Motion is simulated the way it arises: the slice's sinogram is computed, the projections acquired
while the leg was displaced are shifted, and the difference between the filtered back-projections
of the disturbed and the clean sinogram (streaks tangent to bone edges, doubled cortices) is added
to the image.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from ..method import SCAN

__all__ = ["add_noise", "motion_artefact"]


def add_noise(hu: np.ndarray, sd_hu: float, pixel_mm: float, slice_mm: float,
              rng: np.random.Generator) -> np.ndarray:
    """``hu`` plus correlated Gaussian noise of SD ``sd_hu`` (at 60.7 um voxels), float32."""
    if sd_hu <= 0:
        return hu.astype(np.float32)
    scale = np.sqrt(SCAN.voxel_mm**3 / (pixel_mm * pixel_mm * slice_mm))
    n = rng.standard_normal(hu.shape).astype(np.float32)
    n = ndi.gaussian_filter(n, 0.6)
    n *= np.float32(sd_hu * scale / max(float(n.std()), 1e-6))
    return hu.astype(np.float32) + n


def motion_artefact(hu: np.ndarray, severity: float, rng_params: np.random.Generator,
                    pixel_mm: float, work_px: int = 320) -> np.ndarray:
    """Streak artefact image (HU) for a slice ``hu`` and a motion ``severity`` in [0, 1].

    ``rng_params`` draws the motion (which projections, how far), so pass a generator seeded per
    subject to get the same motion on every slice of a scan.
    """
    if severity <= 0:
        return np.zeros_like(hu, dtype=np.float32)
    from skimage.transform import iradon, radon

    h, w = hu.shape
    zoom = work_px / max(h, w)
    small = ndi.zoom(hu.astype(np.float32) + 1000.0, zoom, order=1)
    side = max(small.shape)
    pad = np.zeros((side, side), dtype=np.float32)
    pad[: small.shape[0], : small.shape[1]] = small
    theta = np.linspace(0.0, 180.0, 2 * side, endpoint=False)
    sino = radon(pad, theta=theta, circle=False)
    # the leg moves during a window of the rotation, by up to ~0.5 mm
    start = rng_params.uniform(0, len(theta))
    width = len(theta) * (0.15 + 0.25 * rng_params.uniform())
    amp_px = severity * 0.5 / (pixel_mm / zoom)
    idx = np.arange(len(theta))
    phase = ((idx - start) % len(theta)) / width
    disp = np.where(phase < 1.0, amp_px * np.sin(np.pi * np.clip(phase, 0, 1)), 0.0)
    moved = np.stack([ndi.shift(sino[:, i], disp[i], order=1, mode="nearest")
                      for i in range(len(theta))], axis=1)
    rec0 = iradon(sino, theta=theta, circle=False, filter_name="ramp")
    rec1 = iradon(moved, theta=theta, circle=False, filter_name="ramp")
    art = (rec1 - rec0)[: small.shape[0], : small.shape[1]]
    full = ndi.zoom(art, (h / art.shape[0], w / art.shape[1]), order=1)
    return full[:h, :w].astype(np.float32)
