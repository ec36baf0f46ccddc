"""Standard morphometry on constructed volumes with known answers (hrpqct.morphometry).

Rings and tubes of known wall thickness (Ct.Th within half a voxel), plates and rods of known
thickness and spacing (Tb.Th, Tb.Sp, Tb.N within 5 %), pores of known volume (Ct.Po within 1 %
absolute) and known calibrated densities (exact).

Volumes whose structure runs out of the array end on a plane of mirror symmetry through voxel
centres: the morphometry treats the array's faces as open (the first and last slice of a scan do
not cut spheres), so such a volume is measured as one period of an infinite structure.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from hrpqct import regions as R
from hrpqct.errors import InputError
from hrpqct.method import MORPHOMETRY
from hrpqct.morphometry import HU_ONLY_NOTE, morphometry, reference_calibration
from hrpqct.morphometry.thickness import (edt_squared, local_thickness, ridge_mask,
                                          thickness_stats)
from hrpqct.volume import Calibration

TC, TT, FC, FT = (R.region(c).label for c in ("TC", "TT", "FC", "FT"))
CORTEX_MG, BONE_MG, MARROW_MG = 1000.0, 1200.0, 0.0


# --- the local-thickness kernel -----------------------------------------------------------------
def test_edt_matches_scipy_on_a_random_structure():
    from scipy import ndimage as ndi

    rng = np.random.default_rng(1)
    m = ndi.gaussian_filter(rng.standard_normal((20, 30, 40)), 2) > 0
    sp = (0.1, 0.07, 0.05)
    ref = ndi.distance_transform_edt(m, sampling=sp) ** 2  # scipy: no background beyond the array
    assert np.allclose(edt_squared(m, sp)[m], ref[m], rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("n", [1, 2, 3, 4, 7, 10])
def test_plate_thickness_is_exact_for_odd_and_even_voxel_counts(n):
    m = np.zeros((n + 12, 6, 6), bool)
    m[6:6 + n] = True
    h = 0.0607
    tau = local_thickness(m, (h, h, h))
    assert np.allclose(tau[m], n * h, atol=1e-5)
    assert (tau[~m] == 0).all()


def test_ball_thickness_is_its_diameter():
    r = 9
    g = np.mgrid[-12:13, -12:13, -12:13]
    m = (g ** 2).sum(0) <= r * r
    tau = local_thickness(m, (1.0, 1.0, 1.0))
    # the digital ball |v|^2 <= 81 is 2r + 1 = 19 voxels wide along the axes, but its nearest
    # outside voxel centre lies sqrt(82) from the centre (diagonally): the largest inscribed
    # sphere with the boundary halfway to it has a diameter of 2 sqrt(82) - 1 = 17.1 voxels
    assert tau[12, 12, 12] == pytest.approx(2 * math.sqrt(82) - 1, abs=0.05)
    mean, *_ = thickness_stats(tau, m)
    assert mean == pytest.approx(2 * math.sqrt(82) - 1, rel=0.01)


def test_ridge_of_an_even_plate_is_one_voxel_thick():
    m = np.zeros((20, 5, 5), bool)
    m[5:11] = True  # 6 voxels
    ridge = ridge_mask(m, (1.0, 1.0, 1.0))
    assert ridge[:, 2, 2].sum() == 1 and ridge[7:9, 2, 2].any()


def test_a_structure_without_background_has_no_thickness():
    tau = local_thickness(np.ones((4, 5, 6), bool), (1.0, 1.0, 1.0))
    assert np.isnan(tau).all()


# --- constructed bones ----------------------------------------------------------------------------
def _tube(nz, n, r_out_mm, wall_mm, h, centre=None):
    """Label map and mgHA/ccm image of a circular tube (cortex TC) around marrow (TT)."""
    c = (n - 1) / 2 if centre is None else centre
    yy, xx = np.mgrid[0:n, 0:n]
    r = np.hypot((yy - c) * h, (xx - c) * h)
    cort2 = (r <= r_out_mm) & (r > r_out_mm - wall_mm)
    trab2 = r <= r_out_mm - wall_mm
    lab = np.zeros((nz, n, n), np.uint8)
    lab[:, cort2] = TC
    lab[:, trab2] = TT
    # marrow well below the trabecular threshold even next to the cortex after the Gaussian
    # (an empty marrow cavity: no trabecular bone, so no Tb.* measures)
    img = np.where(lab == TC, CORTEX_MG, np.where(lab == TT, -400.0, -100.0)).astype(np.float32)
    return lab, img


@pytest.mark.parametrize("h", [0.0607, 0.082, 0.1])
@pytest.mark.parametrize("nz", [1, 30])  # a ring (one slice) and a tube
def test_ring_and_tube_wall_thickness_within_half_a_voxel(h, nz):
    wall, r_out = 1.2, 8.0
    n = int(2 * r_out / h) + 8
    lab, img = _tube(nz, n, r_out, wall, h)
    res = morphometry(img, lab, (h, h, h), unit="mgHA/ccm", bones=("tibia",))
    wall_vox = np.round(wall / h)  # the digital wall is a whole number of voxels thick radially
    assert abs(res.value("tibia", "Ct.Th_mm") - wall) <= h / 2 + 1e-9
    assert abs(res.value("tibia", "Ct.Th.annular_mm") - wall) <= h / 2
    assert res.value("tibia", "Ct.Po_pct") == 0.0
    assert res.value("tibia", "Tt.Ar_mm2") == pytest.approx(math.pi * r_out ** 2, rel=0.01)
    assert res.value("tibia", "Ps.Pm_mm") == pytest.approx(2 * math.pi * r_out, rel=0.02)
    assert res.value("tibia", "Ec.Pm_mm") == pytest.approx(2 * math.pi * (r_out - wall), rel=0.02)
    assert len(res.slices) == nz and res.slices["Ct.Th_mm"].between(wall - h, wall + h).all()
    assert wall_vox > 10


@pytest.mark.parametrize("wall", [0.5, 0.9, 2.0])
def test_tube_walls_of_several_thicknesses(wall):
    h = 0.0607
    n = int(2 * 6.0 / h) + 8
    lab, img = _tube(12, n, 6.0, wall, h)
    res = morphometry(img, lab, (h, h, h), unit="mgHA/ccm", bones=("tibia",))
    assert abs(res.value("tibia", "Ct.Th_mm") - wall) <= h / 2


def _plates(n_plate, period, periods, h, ny=10, nz=8):
    """Plates perpendicular to x, ``n_plate`` voxels thick, one every ``period`` voxels, centred
    on x = 0, period, ... (the array's ends are mirror planes); trabecular region everywhere."""
    nx = periods * period + 1
    x = np.arange(nx)
    d = np.minimum(x % period, period - x % period)
    plate = d <= (n_plate - 1) // 2
    img = np.broadcast_to(np.where(plate, BONE_MG, MARROW_MG).astype(np.float32),
                          (nz, ny, nx)).copy()
    lab = np.full((nz, ny, nx), TT, np.uint8)
    return lab, img


@pytest.mark.parametrize("h", [0.0607, 0.082])
@pytest.mark.parametrize("n_plate,period", [(3, 15), (5, 13), (7, 25)])
def test_plates_of_known_thickness_and_spacing(h, n_plate, period):
    lab, img = _plates(n_plate, period, 6, h)
    res = morphometry(img, lab, (h, h, h), unit="mgHA/ccm", bones=("tibia",))
    th, sp, spacing = n_plate * h, (period - n_plate) * h, period * h
    assert res.value("tibia", "Tb.Th_mm") == pytest.approx(th, rel=0.05)
    assert res.value("tibia", "Tb.Sp_mm") == pytest.approx(sp, rel=0.05)
    assert res.value("tibia", "Tb.N_1_mm") == pytest.approx(1 / spacing, rel=0.05)
    assert res.value("tibia", "Tb.BV_TV") == pytest.approx(n_plate / period, rel=0.05)
    assert math.isnan(res.value("tibia", "Ct.Th_mm"))  # no cortex in this volume


def _rods(d_vox, period, periods, nz=6):
    """Rods along z, digital discs of diameter ``d_vox`` (odd) on a square lattice, centred on
    the lattice points (the array's ends in x and y are mirror planes)."""
    n = periods * period + 1
    yy, xx = np.mgrid[0:n, 0:n]
    dy = np.minimum(yy % period, period - yy % period)
    dx = np.minimum(xx % period, period - xx % period)
    rod = dy ** 2 + dx ** 2 <= ((d_vox - 1) / 2 + 0.5) ** 2 - 0.25
    # 700 mgHA/ccm: after the Gaussian (sigma 0.8, support 1) every rod voxel stays above 320 and
    # the marrow voxels in the disc's concave corners stay below (higher values add them to the rod)
    img = np.broadcast_to(np.where(rod, 700.0, MARROW_MG).astype(np.float32), (nz, n, n)).copy()
    return np.full((nz, n, n), TT, np.uint8), img, rod


def _lattice_space_thickness(period, radius, n=240, nq=1200):
    """Mean local thickness of the space around a square lattice of discs (continuous, exact
    up to sampling): the maximal discs of that space are centred on the Voronoi edges x = P/2 and
    y = P/2, so tau(p) = 2 max{r(q): q on the edges, |p - q| <= r(q)}, r(q) = dist(q, rods) - radius.
    Averaged over the quarter cell [0, P/2]^2 outside the disc (the rest follows by symmetry)."""
    P = float(period)
    t = (np.arange(nq) + 0.5) / nq * P / 2
    q = np.concatenate([np.column_stack([np.full(nq, P / 2), t]),
                        np.column_stack([t, np.full(nq, P / 2)])])
    centres = np.array([[0, 0], [P, 0], [0, P], [P, P]], float)
    rq = np.min(np.linalg.norm(q[:, None, :] - centres[None], axis=2), axis=1) - radius
    g = (np.arange(n) + 0.5) / n * P / 2
    px, py = np.meshgrid(g, g)
    p = np.column_stack([px.ravel(), py.ravel()])
    p = p[np.hypot(p[:, 0], p[:, 1]) > radius]
    taus = np.zeros(len(p))
    for i in range(0, len(p), 4000):
        dist = np.linalg.norm(p[i:i + 4000, None, :] - q[None], axis=2)
        taus[i:i + 4000] = 2 * np.max(np.where(dist <= rq[None], rq[None], 0.0), axis=1)
    return float(taus.mean())


@pytest.mark.parametrize("d_vox,period", [(9, 25), (13, 33)])
def test_rods_of_known_thickness_and_spacing(d_vox, period):
    """Rods of 9 and 13 voxels (0.55 and 0.79 mm). Thinner digital discs are measured up to one
    voxel below their nominal diameter: the sphere's boundary is put half a voxel before the
    nearest outside voxel centre, exact for faces along the axes (plates, tube walls) but not
    along a digital disc's diagonal steps (docs/morphometry.md)."""
    h = 0.0607
    lab, img, rod = _rods(d_vox, period, 4)
    res = morphometry(img, lab, (h, h, h), unit="mgHA/ccm", bones=("tibia",))
    assert res.value("tibia", "Tb.Th_mm") == pytest.approx(d_vox * h, rel=0.05)
    r_eq = math.sqrt(rod[:period, :period].sum() / math.pi)  # radius of the same-area disc
    sp_ref = _lattice_space_thickness(period, r_eq) * h
    n_ref = 1 / (_lattice_space_thickness(period, 0.0) * h)  # mid-axes: the rods' centre lines
    assert res.value("tibia", "Tb.Sp_mm") == pytest.approx(sp_ref, rel=0.05)
    assert res.value("tibia", "Tb.N_1_mm") == pytest.approx(n_ref, rel=0.05)
    assert res.value("tibia", "Tb.BV_TV") == pytest.approx(rod.mean(), rel=0.01)


def test_pores_of_known_volume():
    h = 0.0607
    n = int(2 * 7.0 / h) + 8
    lab, img = _tube(20, n, 7.0, 2.0, h)
    c = (n - 1) / 2
    zz, yy, xx = np.mgrid[0:20, 0:n, 0:n]
    pore = np.zeros(lab.shape, bool)
    rng = np.random.default_rng(3)
    angles = np.linspace(0, 2 * np.pi, 24, endpoint=False)
    for k, a in enumerate(angles):  # 24 spherical pores of radius 3-5 voxels mid-wall
        rad = 3 + k % 3
        cy, cx = c + (6.0 / h) * np.sin(a), c + (6.0 / h) * np.cos(a)
        cz = 4 + rng.integers(0, 12)
        pore |= (zz - cz) ** 2 + (yy - cy) ** 2 + (xx - cx) ** 2 <= rad ** 2
    assert (lab[pore] == TC).all()
    img[pore] = 0.0
    res = morphometry(img, lab, (h, h, h), unit="mgHA/ccm", bones=("tibia",))
    truth = 100.0 * pore.sum() / (lab == TC).sum()
    # the Gaussian rounds the pores' voxel corners off (the scanner evaluation's partial volume):
    # within 0.25 % absolute (required: 1 %)
    assert res.value("tibia", "Ct.Po_pct") == pytest.approx(truth, abs=0.25)
    assert res.value("tibia", "Ct.Po.N") == 24
    assert 6 * h <= res.value("tibia", "Ct.Po.Dm_mm") <= 11 * h  # diameters 7-11 voxels


def test_partial_volume_at_the_cortex_surface_is_no_porosity():
    h = 0.0607
    n = int(2 * 6.0 / h) + 8
    lab, img = _tube(10, n, 6.0, 1.0, h)
    # a blurred periosteal edge: the outermost cortical voxels below the cortical threshold
    from scipy import ndimage as ndi

    edge = (lab == TC) & ndi.binary_dilation(lab == 0, iterations=1)
    img[edge] = 300.0
    res = morphometry(img, lab, (h, h, h), unit="mgHA/ccm", bones=("tibia",))
    assert res.value("tibia", "Ct.Po_pct") == 0.0


def test_known_calibrated_densities_are_exact():
    cal = Calibration(mu_water=0.2402, mu_scaling=8192.0, density_slope=1632.71997,
                      density_intercept=-396.135986)
    a = cal.mu_water / 1000 * cal.density_slope
    b = cal.mu_water * cal.density_slope + cal.density_intercept
    lab = np.zeros((4, 40, 40), np.uint8)
    lab[:, 5:35, 5:35] = TC
    lab[:, 10:30, 10:30] = TT
    hu = np.full(lab.shape, -200.0, np.float32)
    hu[lab == TC] = 2100.0
    hu[lab == TT] = 300.0
    res = morphometry(hu, lab, (0.1, 0.1, 0.1), unit="HU", calibration=cal, bones=("tibia",))
    n_c, n_t = (lab == TC).sum(), (lab == TT).sum()
    ct, tb = a * 2100.0 + b, a * 300.0 + b
    assert res.value("tibia", "Ct.BMD_mgHA_ccm") == pytest.approx(ct, rel=1e-6)
    assert res.value("tibia", "Tb.BMD_mgHA_ccm") == pytest.approx(tb, rel=1e-6)
    assert res.value("tibia", "Tt.BMD_mgHA_ccm") == pytest.approx((ct * n_c + tb * n_t) / (n_c + n_t),
                                                                   rel=1e-6)
    assert res.value("tibia", "Tt.Ar_mm2") == pytest.approx(30 * 30 * 0.01)
    assert res.value("tibia", "Ct.Ar_mm2") == pytest.approx((900 - 400) * 0.01)
    assert res.meta["density"] == "scan calibration" and res.meta["note"] == ""
    # the same scan given in mgHA/ccm
    res2 = morphometry(cal.hu_to_density(hu), lab, (0.1, 0.1, 0.1), unit="mgHA/ccm",
                       bones=("tibia",))
    assert res2.value("tibia", "Ct.BMD_mgHA_ccm") == pytest.approx(ct, rel=1e-5)


def test_hu_only_scan_gets_a_note_and_no_density():
    h = 0.0607
    lab, img = _tube(6, 200, 5.0, 1.0, h)
    ref = reference_calibration()
    hu = ref.density_to_hu(img)
    res = morphometry(hu, lab, (h, h, h), unit="HU", bones=("tibia",))
    assert res.meta["note"] == HU_ONLY_NOTE and "HU-only" in res.scan.attrs["note"]
    assert np.isnan(res.scan[["Tt.BMD_mgHA_ccm", "Ct.BMD_mgHA_ccm", "Tb.BMD_mgHA_ccm"]]).all().all()
    assert res.slices["Ct.BMD_mgHA_ccm"].isna().all()
    # the microstructure is still measured, with the thresholds in HU (826 and 1157 HU)
    assert abs(res.value("tibia", "Ct.Th_mm") - 1.0) <= h / 2
    assert "826" in res.meta["trabecular_threshold"] and "1157" in res.meta["cortical_threshold"]


def test_both_bones_and_a_missing_one():
    h = 0.1
    lab, img = _tube(5, 130, 5.0, 1.0, h, centre=40)
    lab2, _ = _tube(5, 130, 2.5, 0.6, h, centre=95)
    lab[lab2 == TC], lab[lab2 == TT] = FC, FT
    img[lab2 == FC], img[lab2 == FT] = CORTEX_MG, -400.0
    res = morphometry(img, lab, (h, h, h), unit="mgHA/ccm")
    assert list(res.scan["bone"]) == ["tibia", "fibula"]
    assert res.value("fibula", "Ct.Th_mm") == pytest.approx(0.6, abs=h / 2)
    assert res.value("tibia", "Ct.Th_mm") == pytest.approx(1.0, abs=h / 2)
    assert set(res.slices["bone"]) == {"tibia", "fibula"}
    lab[lab >= FC] = 0
    res = morphometry(img, lab, (h, h, h), unit="mgHA/ccm")
    assert res.value("fibula", "slices") == 0 and math.isnan(res.value("fibula", "Tt.Ar_mm2"))
    for col, unit in res.meta["units"].items():
        assert col in res.scan.columns and unit


def test_defaults_are_the_standard_evaluation():
    assert (MORPHOMETRY.gauss_sigma_voxels, MORPHOMETRY.gauss_support_voxels) == (0.8, 1)
    assert MORPHOMETRY.trabecular_threshold_mgha == 320.0
    assert MORPHOMETRY.cortical_threshold_mgha == 450.0


def test_bad_inputs_name_the_problem():
    with pytest.raises(InputError, match="same shape"):
        morphometry(np.zeros((2, 3, 3)), np.zeros((2, 3, 4), np.uint8), (1, 1, 1))
    with pytest.raises(InputError, match="square"):
        morphometry(np.zeros((2, 3, 3)), np.zeros((2, 3, 3), np.uint8), (1, 1, 2))
    with pytest.raises(InputError, match="HU or mgHA/ccm"):
        morphometry(np.zeros((2, 3, 3)), np.zeros((2, 3, 3), np.uint8), (1, 1, 1), unit="native")
    with pytest.raises(InputError, match="unknown bone"):
        morphometry(np.zeros((2, 3, 3)), np.zeros((2, 3, 3), np.uint8), (1, 1, 1), bones=("ulna",))
