"""Scanner effects added to a noise-free HU slice: quantum noise and motion streaks.

Two image formations (``Anatomy.scanner``): ``"legacy"`` (the default, what the bundled
segmentation model was trained on): stationary, slightly correlated Gaussian noise of one SD
everywhere, in-plane rigid motion. ``"fbp"`` (issue 12): noise with the ramp-shaped spectrum of
filtered back-projection and a level that follows the attenuation along the rays through each
pixel (lower in air, higher behind dense bone), beam-hardening streaks between tibia and fibula,
and motion that also moves through the plane.

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

__all__ = ["add_noise", "motion_artefact", "motion_grade", "fbp_scanner", "ramp_noise"]


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


def motion_grade(severity: float) -> int:
    """The motion score 1-5 (1 none, 5 severe; graded like the manufacturer's visual score) of
    a motion ``severity`` in [0, 1]: 1 at 0, then 2-5 by quarters."""
    if severity <= 0:
        return 1
    return int(np.clip(2 + np.floor(4 * min(severity, 0.999)), 2, 5))


def motion_artefact(hu: np.ndarray, severity: float, rng_params: np.random.Generator,
                    pixel_mm: float, work_px: int = 320, hu_neighbour: np.ndarray | None = None
                    ) -> np.ndarray:
    """Streak artefact image (HU) for a slice ``hu`` and a motion ``severity`` in [0, 1].

    ``rng_params`` draws the motion (which projections, how far), so pass a generator seeded per
    subject to get the same motion on every slice of a scan. ``hu_neighbour`` (the next slice):
    through-plane motion; during the moving window the projections are blended towards the
    neighbour's by up to ``severity`` (a shift of up to one slice along the limb).
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
    sino_nb = None
    if hu_neighbour is not None:
        small_nb = ndi.zoom(hu_neighbour.astype(np.float32) + 1000.0, zoom, order=1)
        pad_nb = np.zeros_like(pad)
        pad_nb[: small_nb.shape[0], : small_nb.shape[1]] = small_nb
        sino_nb = radon(pad_nb, theta=theta, circle=False)
    # the leg moves during a window of the rotation, by up to ~0.5 mm
    start = rng_params.uniform(0, len(theta))
    width = len(theta) * (0.15 + 0.25 * rng_params.uniform())
    amp_px = severity * 0.5 / (pixel_mm / zoom)
    idx = np.arange(len(theta))
    phase = ((idx - start) % len(theta)) / width
    disp = np.where(phase < 1.0, amp_px * np.sin(np.pi * np.clip(phase, 0, 1)), 0.0)
    moved = np.stack([ndi.shift(sino[:, i], disp[i], order=1, mode="nearest")
                      for i in range(len(theta))], axis=1)
    if sino_nb is not None:
        wz = np.where(phase < 1.0, severity * np.sin(np.pi * np.clip(phase, 0, 1)), 0.0)
        moved = (1 - wz)[None, :] * moved + wz[None, :] * sino_nb
    rec0 = iradon(sino, theta=theta, circle=False, filter_name="ramp")
    rec1 = iradon(moved, theta=theta, circle=False, filter_name="ramp")
    art = (rec1 - rec0)[: small.shape[0], : small.shape[1]]
    full = ndi.zoom(art, (h / art.shape[0], w / art.shape[1]), order=1)
    return full[:h, :w].astype(np.float32)


# --- "fbp" image formation (issue 12) ---------------------------------------------------------
#: linear attenuation of water at the XtremeCT II's 68 kVp, 1/mm (the reference calibration's
#: mu_water 0.2402 1/cm; hrpqct.method.MORPHOMETRY.reference_calibration)
MU_WATER_MM = 0.02402


def _sinogram_maps(hu: np.ndarray, pixel_mm: float, work_px: int, bh_coeff: float,
                   self_weight: float = 0.25) -> tuple[np.ndarray, np.ndarray]:
    """(relative noise SD map, beam-hardening artefact in HU) of a slice, on its own grid.

    At a coarse working grid the slice's attenuation is forward-projected (parallel beam). The
    variance of a ray is proportional to 1 / transmitted intensity = exp(line integral); the
    variance of a reconstructed pixel is the back-projection of the ray variances (unfiltered).
    Beam hardening: the measured line integral of bone falls short of the linear one by
    ``bh_coeff * p_bone^2`` (the polychromatic spectrum hardens along dense paths). With
    ``p_bone = p1 + p2`` (the two largest bones), the cross term ``2 p1 p2`` lies on the rays
    through both bones and reconstructs to the dark streaks between tibia and fibula; the self
    terms (cupping, largely removed by the scanner's own correction) are kept at ``self_weight``.
    """
    from skimage.transform import iradon, radon

    h, w = hu.shape
    zoom = work_px / max(h, w)
    small = ndi.zoom(hu.astype(np.float32), zoom, order=1)
    side = max(small.shape)
    mu = np.zeros((side, side), dtype=np.float32)
    bone = np.zeros_like(mu)
    px = pixel_mm / zoom
    mu[: small.shape[0], : small.shape[1]] = np.clip(small + 1000.0, 0, None) / 1000.0 * MU_WATER_MM * px
    bone[: small.shape[0], : small.shape[1]] = np.clip(small - 600.0, 0, None) / 1000.0 * MU_WATER_MM * px
    theta = np.linspace(0.0, 180.0, max(side // 2, 32), endpoint=False)
    p = radon(mu, theta=theta, circle=False)
    lab, nlab = ndi.label(bone > 0)
    sizes = np.bincount(lab.ravel())[1:] if nlab else np.zeros(0)
    big = np.argsort(sizes)[::-1][:2] + 1
    pbs = [radon(np.where(lab == b, bone, 0), theta=theta, circle=False) for b in big]
    var = np.exp(np.clip(p, 0, 20))
    vmap = iradon(var, theta=theta, circle=False, filter_name=None)
    vmap = np.clip(vmap, 1e-6, None)
    sd = np.sqrt(vmap / np.median(vmap[small.shape[0] // 4: 3 * small.shape[0] // 4,
                                       small.shape[1] // 4: 3 * small.shape[1] // 4]))
    err = np.zeros_like(p)
    for pb in pbs:
        err -= bh_coeff * self_weight * pb ** 2
    if len(pbs) == 2:
        err -= bh_coeff * 2.0 * pbs[0] * pbs[1]
    art = iradon(err, theta=theta, circle=False, filter_name="ramp") / (MU_WATER_MM * px) * 1000.0
    out_sd = ndi.zoom(sd[: small.shape[0], : small.shape[1]], (h / small.shape[0], w / small.shape[1]), order=1)
    art *= (mu > 0.05 * MU_WATER_MM * px)  # inside the object (streaks in air are not read)
    out_bh = ndi.zoom(art[: small.shape[0], : small.shape[1]], (h / small.shape[0], w / small.shape[1]), order=1)
    return out_sd[:h, :w].astype(np.float32), out_bh[:h, :w].astype(np.float32)


def ramp_noise(shape: tuple[int, int], rng: np.random.Generator, cutoff: float = 0.9) -> np.ndarray:
    """Unit-SD noise with the power spectrum of filtered back-projection: ramp ``|k|`` times a
    Hann apodisation reaching zero at ``cutoff`` x Nyquist (no power at k = 0, so no blotches)."""
    from scipy import fft as sfft

    n = rng.standard_normal(shape).astype(np.float32)
    spec = sfft.rfft2(n, workers=-1)
    fy = sfft.fftfreq(shape[0])[:, None]
    fx = sfft.rfftfreq(shape[1])[None, :]
    k = np.sqrt(fx ** 2 + fy ** 2) / 0.5  # 1 at Nyquist
    win = np.where(k < cutoff, 0.5 * (1 + np.cos(np.pi * k / cutoff)), 0.0)
    spec *= np.sqrt(k * win).astype(np.float32)
    out = sfft.irfft2(spec, s=shape, workers=-1).astype(np.float32)
    return out / np.float32(max(float(out.std()), 1e-6))


def fbp_scanner(hu: np.ndarray, sd_hu: float, pixel_mm: float, slice_mm: float,
                rng: np.random.Generator, work_px: int = 128, bh_coeff: float = 0.1) -> np.ndarray:
    """``hu`` with reconstruction-like noise and beam hardening (module ``fbp`` option): noise of
    a ramp-filtered spectrum whose SD follows the attenuation along the rays through each pixel
    (``sd_hu`` at the limb's centre, at 60.7 um voxels), plus beam-hardening streaks."""
    sd_map, bh = _sinogram_maps(hu, pixel_mm, work_px, bh_coeff)
    scale = np.sqrt(SCAN.voxel_mm ** 3 / (pixel_mm * pixel_mm * slice_mm))
    noise = ramp_noise(hu.shape, rng) * np.float32(sd_hu * scale) * sd_map
    return hu.astype(np.float32) + bh + noise
