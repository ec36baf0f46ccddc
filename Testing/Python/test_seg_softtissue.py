"""Soft-tissue split (hrpqct.seg.softtissue) on constructed slices with known answers."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from scipy import ndimage as ndi

from hrpqct.errors import Cancelled, GeometryError, InputError
from hrpqct.method import SOFT_TISSUE
from hrpqct.regions import model_class, region
from hrpqct.seg.softtissue import grow, seeds, skin_band, split_slice, split_soft_tissue

TC, TT, FC, FT, ST = (model_class(c).label for c in ("TC", "TT", "FC", "FT", "ST"))
SK, MT, AT = (region(c).label for c in ("SK", "MT", "AT"))
NEUTRAL_FAT = -100.0  # below -50 HU, outside both seed ranges: unseeded, adipose by the HU rule
NEUTRAL_MUSCLE = 0.0  # above -50 HU, outside both seed ranges


def brute_distance_to_outside(limb, sy, sx):
    """Distance (mm) from each pixel centre to the union of outside pixel squares, by brute force."""
    oy, ox = np.nonzero(~limb)
    py, px = np.nonzero(limb)
    d = np.full(limb.shape, 0.0)
    best = np.full(py.size, np.inf)
    for k in range(0, oy.size, 2000):
        dy = np.maximum(np.abs(py[:, None] - oy[None, k:k + 2000]) - 0.5, 0) * sy
        dx = np.maximum(np.abs(px[:, None] - ox[None, k:k + 2000]) - 0.5, 0) * sx
        best = np.minimum(best, np.hypot(dy, dx).min(axis=1))
    d[py, px] = best
    return d


# --- skin -----------------------------------------------------------------------------------
@pytest.mark.parametrize("s, band_px", [(0.1, 20), (0.0607, 33), (0.15, 13)])
def test_skin_is_a_band_of_2_mm_at_different_spacings(s, band_px):
    n = int(round(8.0 / s))  # an 8 mm field, soft tissue everywhere but a 1-pixel air frame
    lab = np.full((n, n), ST, np.uint8)
    lab[0], lab[-1], lab[:, 0], lab[:, -1] = 0, 0, 0, 0
    out = split_slice(lab, np.full((n, n), NEUTRAL_FAT), (s, s))
    mid = n // 2
    row = out[mid]
    # along a straight edge: the pixels whose centres lie within 2 mm of the surface,
    # i.e. (k - 1/2) * s <= 2 mm for the k-th pixel in from the edge
    assert (row[1:1 + band_px] == SK).all() and row[1 + band_px] != SK
    assert band_px == int(np.floor(SOFT_TISSUE.skin_band_mm / s + 0.5))
    width_mm = band_px * s
    assert abs(width_mm - 2.0) <= s / 2  # the closest pixel count to 2 mm
    # everywhere (corners included): skin <=> distance to the outside <= 2 mm
    d = brute_distance_to_outside(lab != 0, s, s)
    assert ((out == SK) == ((lab == ST) & (d <= 2.0))).all()


@pytest.mark.parametrize("sampling", [(0.1, 0.1), (0.07, 0.11), (0.0607, 0.0607)])
def test_skin_equals_brute_force_distance_on_a_disk(sampling):
    n = 110
    yy, xx = np.mgrid[:n, :n]
    limb = np.hypot((yy - 55) * sampling[0], (xx - 54) * sampling[1]) <= 3.2
    limb[50:54, : int(54 - 3.2 / sampling[1]) + 6] = False  # a notch of air, open to the outside
    lab = np.where(limb, ST, 0).astype(np.uint8)
    lab[limb & (np.hypot((yy - 55) * sampling[0], (xx - 54) * sampling[1]) <= 0.8)] = TT
    ref = brute_distance_to_outside(limb, *sampling)
    skin = skin_band(lab, sampling)
    assert (skin == ((lab == ST) & (ref <= 2.0))).all()
    assert skin.sum() > 0 and ((lab == ST) & ~skin).sum() > 0


def test_skin_is_measured_from_the_air_not_from_bone():
    n = 120  # at 0.1 mm: 12 mm
    lab = np.full((n, n), ST, np.uint8)
    lab[:, :1] = 0  # air only on the left
    lab[:, 60:] = TC  # bone on the right; soft tissue spans columns 1..59
    out = split_slice(lab, np.full((n, n), NEUTRAL_FAT), (0.1, 0.1))
    assert (out[:, 1:21] == SK).all()
    assert not (out[:, 21:60] == SK).any()  # next to bone: not skin
    assert (out[:, 60:] == TC).all()


def test_no_skin_along_the_edge_of_the_field_of_view():
    lab = np.full((50, 50), ST, np.uint8)  # the limb fills the image: no air anywhere
    out = split_slice(lab, np.full((50, 50), NEUTRAL_FAT), (0.1, 0.1))
    assert not (out == SK).any()


def test_enclosed_air_does_not_create_skin():
    lab = np.full((80, 80), ST, np.uint8)
    lab[0], lab[-1], lab[:, 0], lab[:, -1] = 0, 0, 0, 0
    lab[38:42, 38:42] = 0  # an air bubble inside: not the outer surface
    out = split_slice(lab, np.full((80, 80), NEUTRAL_FAT), (0.1, 0.1))
    assert not (out[25:55, 25:55] == SK).any()
    assert (out[38:42, 38:42] == 0).all()


# --- seeds, growth and the -50 HU rule ----------------------------------------------------------
def strip(length=160, height=9, hu=NEUTRAL_FAT):
    """A strip of inner soft tissue (no air: no skin) with a uniform HU."""
    lab = np.full((height, length), ST, np.uint8)
    return lab, np.full(lab.shape, hu, float)


def test_twenty_dilations_reach_exactly_twenty_pixels():
    lab, hu = strip()
    hu[:, 0:10] = 300.0  # a 90-pixel myotendinous seed; the rest -100 HU (unseeded, adipose by rule)
    out = split_slice(lab, hu, (0.1, 0.1))
    assert (out[:, :30] == MT).all()  # 10 seed columns + 20 grown
    assert (out[:, 30:] == AT).all()
    assert SOFT_TISSUE.dilation_steps == 20
    # the same along a diagonal (3 x 3 square element: chessboard reach)
    lab = np.full((60, 60), ST, np.uint8)
    hu = np.full(lab.shape, NEUTRAL_FAT)
    hu[:6, :6] = 300.0
    out = split_slice(lab, hu, (0.1, 0.1))
    assert out[25, 25] == MT and out[26, 26] == AT and out[25, 0] == MT and out[26, 0] == AT


def test_growth_stays_inside_soft_tissue():
    lab, hu = strip(length=80)
    hu[:, :10] = 300.0
    lab[:, 20] = TC  # a wall of bone: the seed cannot grow through it
    out = split_slice(lab, hu, (0.1, 0.1))
    assert (out[:, 10:20] == MT).all()
    assert (out[:, 20] == TC).all()
    assert (out[:, 21:] == AT).all()  # unreached, -100 HU


@pytest.mark.parametrize("size, kept", [(29, False), (30, True)])
def test_seed_components_under_30_pixels_are_removed(size, kept):
    lab, hu = strip()
    ys, xs = np.divmod(np.arange(size), 6)
    hu[ys + 1, xs + 40] = 300.0  # one component of `size` pixels (6 wide), in -100 HU tissue
    out = split_slice(lab, hu, (0.1, 0.1))
    assert (out[ys + 1, xs + 40] == MT).all()  # a removed seed is still MT by the -50 HU rule...
    # ...but only a kept seed grows: 20 pixels on each side along the strip
    assert (out == MT).sum() == (9 * (6 + 40) if kept else size)


def test_diagonal_pixels_connect_seed_components():
    lab, hu = strip()
    # two 15-pixel blocks touching only at a corner: one 30-pixel component with 8-connectivity
    hu[1:4, 40:45] = 300.0
    hu[4:7, 45:50] = 300.0
    assert (split_slice(lab, hu, (0.1, 0.1)) == MT).sum() > 30  # kept, grown
    four = replace(SOFT_TISSUE, connectivity=4)
    assert (split_slice(lab, hu, (0.1, 0.1), four) == MT).sum() == 30  # two 15s: removed


def test_seed_ranges_are_inclusive():
    mask = np.ones((1, 8), bool)
    hu = np.array([[99.0, 100.0, 600.0, 601.0, -601.0, -600.0, -200.0, -199.0]])
    mt = seeds(hu, mask, SOFT_TISSUE.myotendinous_hu, 1)
    at = seeds(hu, mask, SOFT_TISSUE.adipose_hu, 1)
    assert mt[0].tolist() == [False, True, True, False, False, False, False, False]
    assert at[0].tolist() == [False, False, False, False, False, True, True, False]


def test_minus_50_hu_rule_for_contested_and_unassigned_pixels():
    lab, hu = strip(length=200, height=12)
    hu[:, :10] = 300.0  # MT seed, grows over columns 10..29
    hu[:, 40:50] = -400.0  # AT seed, grows over columns 20..39 and 50..69
    # contested columns 20..29: the HU rule decides, -50 itself going to myotendinous
    hu[:, 20:30] = np.array([-40, -60, -50, -49, -51, 10, -200, -45, -55, -50.0])
    # claimed by one set only: that set wins whatever the HU
    hu[:, 12] = -150.0  # reached by MT only
    hu[:, 35] = 40.0  # reached by AT only
    # unassigned (beyond both reaches): the HU rule
    hu[:, 100:106] = np.array([-49.0, -51.0, -50.0, 0.0, -100.0, 99.0])
    out = split_slice(lab, hu, (0.1, 0.1))
    expect_contested = [MT, AT, MT, MT, AT, MT, AT, MT, AT, MT]
    assert out[5, 20:30].tolist() == expect_contested
    assert (out[:, 12] == MT).all() and (out[:, 35] == AT).all()
    assert out[5, 100:106].tolist() == [MT, AT, MT, MT, AT, MT]
    assert (out[:, :10] == MT).all() and (out[:, 40:50] == AT).all()


def test_bone_and_air_never_become_soft_tissue():
    rng = np.random.default_rng(0)
    lab = rng.integers(0, 6, (80, 80)).astype(np.uint8)
    lab[20:60, 20:60] = ST
    hu = rng.normal(-50, 300, lab.shape)
    out = split_slice(lab, hu, (0.1, 0.1))
    for b in (TC, TT, FC, FT):
        assert ((out == b) == (lab == b)).all()
    assert ((out == 0) == (lab == 0)).all()
    assert set(np.unique(out[lab == ST])) <= {SK, MT, AT}


# --- building blocks, volumes, errors -----------------------------------------------------------
@pytest.mark.parametrize("conn", [4, 8])
def test_grow_equals_repeated_dilation(conn):
    rng = np.random.default_rng(conn)
    st = np.ones((3, 3), bool) if conn == 8 else ndi.generate_binary_structure(2, 1)
    for shape in [(37, 70), (64, 130), (5, 200)]:
        mask = rng.random(shape) < 0.8
        seed = (rng.random(shape) < 0.01) & mask
        ref = seed.copy()
        for _ in range(7):
            ref = ndi.binary_dilation(ref, structure=st) & mask
        assert (grow(seed, mask, 7, conn) == ref).all()


def test_volume_progress_and_errors():
    lab = np.full((3, 30, 30), ST, np.uint8)
    lab[:, 0] = 0
    hu = np.full(lab.shape, NEUTRAL_MUSCLE)
    calls = []
    out = split_soft_tissue(lab, hu, (0.1, 0.1, 0.5), progress=lambda d, t: calls.append(d))
    assert out.dtype == np.uint8 and out.shape == lab.shape and calls == [1, 2, 3]
    assert (out[:, 1:21] == SK).all() and (out[:, 21:] == MT).all()
    with pytest.raises(Cancelled):
        split_soft_tissue(lab, hu, (0.1, 0.1, 0.5), progress=lambda d, t: False)
    with pytest.raises(GeometryError):
        split_soft_tissue(lab, hu[:, :-1], (0.1, 0.1, 0.5))
    bad = hu.copy()
    bad[1, 10, 10] = np.nan
    with pytest.raises(InputError, match="NaN"):
        split_soft_tissue(lab, bad, (0.1, 0.1, 0.5))
    with pytest.raises(InputError, match="5-class"):
        split_soft_tissue(np.full((4, 4), 7, np.uint8), np.zeros((4, 4)), (0.1, 0.1))
