"""Issue 12: the "fbp" image formation (ramp-shaped, attenuation-dependent noise, beam hardening
between the bones, through-plane motion graded 1-5) and the cohort subjects' bone texture
(subchondral gradient, larger Haversian canals). Each keeps the exact ground truth and the
bit-for-bit seeding; the legacy defaults are unchanged."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import fft as sfft

from hrpqct import regions as R
from hrpqct.errors import InputError
from hrpqct.phantom.anatomy import STACK_MM, Anatomy
from hrpqct.phantom.render import Grid, SliceRenderer, Tissue
from hrpqct.phantom.scan import generate
from hrpqct.phantom.scanner import _sinogram_maps, motion_grade, ramp_noise

GRID = Grid(size=320, n_slices=2)  # 0.44 mm pixels, whole field of view


@pytest.fixture(scope="module")
def pair():
    a = Anatomy(seed=5, cast=False)
    return generate(a, GRID), generate(a.with_(scanner="fbp"), GRID)


def test_fbp_keeps_truth_and_seeding(pair):
    legacy, fbp = pair
    assert np.array_equal(legacy.labels7.array, fbp.labels7.array)
    assert np.array_equal(legacy.labels5.array, fbp.labels5.array)
    assert not np.array_equal(legacy.image.array, fbp.image.array)
    again = generate(Anatomy(seed=5, cast=False, scanner="fbp"), GRID)
    assert np.array_equal(again.image.array, fbp.image.array)
    with pytest.raises(InputError, match="scanner"):
        Anatomy(scanner="cone")


def test_legacy_default_is_the_old_texture():
    a = Anatomy(seed=9)
    assert a.legacy() == a and a.scanner == "legacy" and a.pore_corr_mm == 0.065


def test_ramp_noise_has_the_fbp_spectrum():
    """Power rises with spatial frequency (no low-frequency blotches): the radially averaged
    spectrum at 0.4 x Nyquist is more than 3x that at 0.05 x Nyquist (ramp x Hann: 4.7);
    white noise would give 1."""
    n = ramp_noise((256, 256), np.random.default_rng(0))
    assert abs(n.std() - 1) < 1e-3
    p = np.abs(sfft.fft2(n)) ** 2
    k = np.hypot(*np.meshgrid(sfft.fftfreq(256), sfft.fftfreq(256))) / 0.5
    low, mid = p[(k > 0.04) & (k < 0.06)].mean(), p[(k > 0.38) & (k < 0.42)].mean()
    assert mid / low > 3.0, mid / low


def test_noise_level_follows_attenuation(pair):
    """The noise SD map is lower in air next to the limb than in the limb's centre, and higher in
    the deep compartment (long rays through both bones) than under the skin."""
    legacy, _ = pair
    hu = legacy.image.array[0].astype(np.float32)
    sd, bh = _sinogram_maps(hu, GRID.pixel_mm, 128, 0.1)
    lab = legacy.labels7.array[0]
    air = (lab == 0)
    soft = np.isin(lab, (R.region("MT").label, R.region("AT").label))
    assert sd[air].mean() < 0.85 * sd[soft].mean()
    # beam hardening darkens, it does not brighten on average inside the limb
    assert bh[lab > 0].mean() < 0


def test_beam_hardening_darkens_between_the_bones():
    """Between tibia and fibula the fbp image is darker than the legacy one (noise averaged out
    over the gap's pixels), by 5-150 HU."""
    a = Anatomy(seed=5, cast=False, noise_sd_hu=0.0)
    g = Grid(size=320, n_slices=1)
    legacy = generate(a, g).image.array[0].astype(float)
    fbp = generate(a.with_(scanner="fbp"), g).image.array[0].astype(float)
    lab = generate(a, g).labels5.array[0]
    tib = lab == R.model_class("TC").label
    fib = lab == R.model_class("FC").label
    ty, tx = np.argwhere(tib).mean(axis=0)
    fy, fx = np.argwhere(fib).mean(axis=0)
    t = np.linspace(0, 1, 200)
    ys, xs = np.rint(ty + t * (fy - ty)).astype(int), np.rint(tx + t * (fx - tx)).astype(int)
    gap = lab[ys, xs] == R.SOFT_TISSUE_CLASS
    d = (fbp[ys, xs] - legacy[ys, xs])[gap]
    assert gap.sum() >= 2 and 5.0 < -d.mean() < 150.0, d


@pytest.mark.parametrize("sev, grade", [(0.0, 1), (0.1, 2), (0.3, 3), (0.6, 4), (0.9, 5), (1.0, 5)])
def test_motion_grade(sev, grade):
    assert motion_grade(sev) == grade


def test_through_plane_motion_changes_image_not_truth():
    g = Grid(size=200, n_slices=1)
    base = Anatomy(seed=6, motion=0.8)
    inplane = generate(base, g)  # legacy: in-plane only
    both = generate(base.with_(scanner="fbp"), g)
    still = generate(base.with_(scanner="fbp", motion=0.0), g)
    assert np.array_equal(inplane.labels7.array, both.labels7.array)
    diff = np.abs(still.image.array.astype(float) - both.image.array)
    assert diff.mean() > 5.0


def test_subchondral_gradient():
    """With tb_z_gradient 0.3 the distal end of a standard stack holds 30 % more trabecular bone
    (relative to the middle) than the proximal end, exactly as designed."""
    a = Anatomy(seed=2, tb_bvtv=0.2, tb_z_gradient=0.3, cast=False)
    g = Grid(size=768, n_slices=2, slice_mm=STACK_MM)  # slices at t = 0 and t = 1
    ren = SliceRenderer(a, g)
    fr = []
    for k in (0, 1):
        _, tissue, _, _ = ren.render(k)
        trab = np.isin(tissue, [Tissue.TRAB_BONE, Tissue.MARROW])
        fr.append(np.mean(tissue[trab] == Tissue.TRAB_BONE))
    assert abs(fr[0] - 0.2 * 0.85) < 0.012 and abs(fr[1] - 0.2 * 1.15) < 0.012, fr


def test_cohort_pores_are_larger():
    """Cohort subjects' Haversian canals (pore_corr_mm 0.15) form fewer, larger pores than the
    legacy ones at the same porosity: mean pore area at least 2x on the render grid."""
    from scipy import ndimage as ndi

    g = Grid(size=1152, n_slices=1)
    areas = []
    for corr in (0.065, 0.15):
        a = Anatomy(seed=4, ct_porosity=0.04, pore_corr_mm=corr, cast=False)
        _, tissue, _, _ = SliceRenderer(a, g).render(0)
        lab, n = ndi.label(tissue == Tissue.PORE)
        areas.append((tissue == Tissue.PORE).sum() / max(n, 1))
    assert areas[1] > 2.0 * areas[0], areas
