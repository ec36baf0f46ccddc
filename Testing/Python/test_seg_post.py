"""Topology rules (hrpqct.seg.postprocess) on constructed slices with known answers."""

from __future__ import annotations

import warnings
from dataclasses import replace

import numpy as np
import pytest
from scipy import ndimage as ndi
from skimage.measure import label as cc_label
from skimage.morphology import convex_hull_image

from hrpqct.errors import Cancelled, InputError
from hrpqct.method import POSTPROCESSING
from hrpqct.regions import model_class
from hrpqct.seg.morphology import fill_holes as _fill_holes
from hrpqct.seg.postprocess import (closing_mm, hull_area_px, postprocess,
                                    postprocess_slice, reassign_fragments)

TC, TT, FC, FT, ST = (model_class(c).label for c in ("TC", "TT", "FC", "FT", "ST"))
SP = (0.1, 0.1, 0.1)  # mm


def grid(n=200):
    yy, xx = np.mgrid[:n, :n]
    return yy, xx


def tibia_case(gap_px=6, n=200, centre=(100, 100), r_out=60, thick=10):
    """Soft-tissue disk with a tibia ring (TC) around TT; a vertical gap of ``gap_px`` at the top."""
    yy, xx = grid(n)
    r = np.hypot(yy - centre[0], xx - centre[1])
    lab = np.zeros((n, n), np.uint8)
    lab[r <= 0.48 * n] = ST
    lab[r <= r_out] = TC
    lab[r <= r_out - thick] = TT
    gap = (np.abs(xx - centre[1]) < gap_px / 2) & (yy < centre[0]) & (r > r_out - thick) & (r <= r_out)
    lab[gap] = ST
    return lab, gap, r


def components(mask):
    return int(cc_label(mask, connectivity=2).max())


# --- cortical continuity -----------------------------------------------------------------------
def test_broken_cortex_is_closed_and_its_interior_becomes_trabecular():
    lab, gap, r = tibia_case(gap_px=6)
    lab[(r <= 20) & (np.mgrid[:200, :200][1] < 90)] = ST  # part of the marrow seen as soft tissue
    assert (lab[r <= 20] == ST).any()
    out, info = postprocess(lab, SP, return_info=True)
    info = info[0]
    assert info.hull_gap["TC"] > 0.5  # broken: the ring enclosed only itself
    assert info.closing_mm["TC"] == pytest.approx(0.5)  # 0.6 mm gap: the first radius bridges it
    tc = out == TC
    assert components(tc) == 1
    enclosed = _fill_holes(tc) & ~tc
    # the closed cortex encloses the whole former marrow, and all of it is now trabecular
    assert enclosed[r <= 49].all()
    assert (out[enclosed] == TT).all()
    assert (out == TT).sum() == enclosed.sum()
    # no soft tissue left inside the bone outline, and the gap is bone now (a 6-pixel notch of the
    # gap's outer mouth stays outside the smooth closed outline)
    assert (out[r <= 60] == ST).sum() == 6
    assert (out[gap] == ST).sum() == 6 and (out[r <= 55] != ST).all()
    # changes stay at the gap and the misclassified marrow
    changed = out != lab
    assert changed[(r > 22) & ~ndi.binary_dilation(gap, iterations=8)].sum() == 0


@pytest.mark.parametrize("gap_px", [4, 12, 24])
def test_closing_radius_is_the_smallest_that_encloses(gap_px):
    lab, gap, r = tibia_case(gap_px=gap_px)
    out, info = postprocess(lab, SP, return_info=True)
    used = info[0].closing_mm["TC"]
    assert used > 0
    assert (out[r <= 45] == TT).all()
    tc = out == TC
    assert components(tc) == 1 and (_fill_holes(tc) & ~tc)[r <= 49].all()  # a closed ring
    # the bridge is cortex; the rest of the gap stays a notch of soft tissue outside it
    assert set(np.unique(out[gap])) <= {TC, ST} and (out[gap] == TC).sum() >= 0.3 * gap.sum()
    smaller = used - POSTPROCESSING.closing_step_mm
    if smaller > 0:  # with the radius one step smaller the cortex cannot be closed
        _, info2 = postprocess(lab, SP, replace(POSTPROCESSING, max_closing_radius_mm=smaller),
                               return_info=True)
        assert np.isnan(info2[0].closing_mm["TC"])


def test_closing_changes_only_the_gap():
    # a rough inner (endosteal) surface: pits the closing would fill stay trabecular
    lab, gap, r = tibia_case(gap_px=12)
    yy, xx = np.mgrid[:200, :200]
    ang = np.arctan2(yy - 100, xx - 100)
    pits = (r > 50) & (r <= 53) & (np.cos(12 * ang) > 0.6) & ~gap
    lab[pits] = TT
    out = postprocess(lab, SP)
    assert (out[pits] == TT).all()
    changed = out != lab
    assert not changed[~ndi.binary_dilation(gap, iterations=12)].any()


def test_gap_wider_than_the_largest_closing_is_left_alone():
    lab, gap, r = tibia_case(gap_px=110)  # an 11 mm gap, larger than 2 x 4 mm
    out, info = postprocess(lab, SP, return_info=True)
    assert np.isnan(info[0].closing_mm["TC"])
    assert (out == lab).all()


def test_intact_cortex_and_concave_intact_cortex_are_unchanged():
    lab, _, r = tibia_case(gap_px=0)
    out, info = postprocess(lab, SP, return_info=True)
    assert info[0].closing_mm["TC"] == 0.0 and info[0].pixels_changed == 0
    assert (out == lab).all()
    # a kidney-shaped intact cortex: hull gap above the tolerance, but closing encloses nothing new
    yy, xx = grid()
    lab2 = np.zeros((200, 200), np.uint8)
    lab2[np.hypot(yy - 100, xx - 100) <= 95] = ST
    bone = (np.hypot(yy - 100, xx - 100) <= 60) & ~(np.hypot(yy - 100, xx - 175) <= 45)
    inner = ndi.binary_erosion(bone, iterations=8)
    lab2[bone] = TC
    lab2[inner] = TT
    out2, info2 = postprocess(lab2, SP, return_info=True)
    assert info2[0].hull_gap["TC"] > POSTPROCESSING.hull_gap_tolerance
    assert info2[0].closing_mm["TC"] == 0 or np.isnan(info2[0].closing_mm["TC"])
    assert (out2 == lab2).all()


def test_cortex_broken_into_two_arcs_keeps_both_and_closes():
    lab, gap, r = tibia_case(gap_px=6)
    xx = np.mgrid[:200, :200][1]
    gap2 = (np.abs(xx - 100) < 3) & (np.mgrid[:200, :200][0] > 100) & (r > 50) & (r <= 60)
    lab[gap2] = ST
    assert components(lab == TC) == 2
    out = postprocess(lab, SP)
    assert components(out == TC) == 1
    assert (out[r <= 49] == TT).all()
    assert (out[(r > 50) & (r <= 60) & ~gap & ~gap2] == TC).all()  # neither arc was lost


def test_tibia_and_fibula_cortices_do_not_merge():
    n = 260
    yy, xx = grid(n)
    lab = np.zeros((n, n), np.uint8)
    lab[np.hypot(yy - 130, xx - 130) <= 125] = ST
    rt = np.hypot(yy - 130, xx - 100)
    lab[rt <= 60] = TC
    lab[rt <= 50] = TT
    gap = (np.abs(yy - 130) < 4) & (xx > 100) & (rt > 50) & (rt <= 61)  # tibial gap facing the fibula
    lab[gap] = ST
    rf = np.hypot(yy - 130, xx - 181)
    lab[rf <= 18] = FC  # 3 px of soft tissue between the two cortices
    lab[rf <= 12] = FT
    before_fib = np.isin(lab, (FC, FT))
    out = postprocess(lab, SP)
    assert (out[before_fib] == lab[before_fib]).all()  # the fibula is untouched
    fib = np.isin(out, (FC, FT))
    tib = np.isin(out, (TC, TT))
    assert not (ndi.binary_dilation(fib, structure=np.ones((3, 3), bool)) & tib).any()
    assert (out[rt <= 49] == TT).all()  # the tibia was still closed


# --- one component per class -------------------------------------------------------------------
def test_island_takes_its_neighbours_label():
    lab, _, r = tibia_case(gap_px=0)
    lab[20:24, 100:104] = TT  # trabecular island in soft tissue
    lab[95:98, 95:98] = ST  # soft-tissue island in the marrow
    lab[60:62, 30:32] = FC  # fibula-cortex speck in soft tissue (the fibula is elsewhere)
    yy, xx = grid()
    rf = np.hypot(yy - 100, xx - 178)
    lab[rf <= 12] = FC
    lab[rf <= 7] = FT
    lab[5, 5] = ST  # soft tissue speck in the air
    out = postprocess(lab, SP)
    assert (out[20:24, 100:104] == ST).all()
    assert (out[95:98, 95:98] == TT).all()
    assert (out[60:62, 30:32] == ST).all()
    assert out[5, 5] == 0
    assert (out == FC).sum() == (lab == FC).sum() - 4


def test_majority_of_outside_neighbours_and_ties():
    # a 2x2 fragment of FT: its 12 outside 8-neighbours are 8 ST and 4 TT -> ST
    lab = np.full((12, 12), ST, np.uint8)
    lab[:, :3] = TT  # big TT component on the left
    lab[0:12, 3] = TT
    lab[4:6, 4:6] = FT
    lab[10:12, 8:12] = FT  # the main FT component
    out, nfrag = reassign_fragments(lab)
    assert nfrag == 1
    assert (out[4:6, 4:6] == ST).all()
    # tie: ring of 8 around a single pixel, 4 TT + 4 ST -> the lower label (TT)
    lab = np.full((9, 9), ST, np.uint8)
    lab[:, :4] = TT
    lab[4, 4] = FC
    lab[3:6, 5] = ST
    lab[7:9, 6:9] = FC  # the main FC component
    lab[3, 4] = TT  # outside neighbours of (4,4): (3,3)TT (3,4)TT (3,5)ST (4,3)TT (4,5)ST (5,3)TT (5,4)ST (5,5)ST
    out, _ = reassign_fragments(lab)
    assert out[4, 4] == TT


def test_neighbouring_fragments_do_not_swap():
    lab = np.full((20, 20), TT, np.uint8)
    lab[8:10, 8:10] = ST  # two fragments touching each other inside TT
    lab[8:10, 10:12] = FC
    lab[0, 0] = ST
    lab[0:3, 15:20] = ST  # soft tissue main component (larger than the ST fragments)
    lab[17:20, 0:5] = FC  # fibula cortex main component
    out, _ = reassign_fragments(lab)
    assert (out[8:10, 8:12] == TT).all()


def test_fragment_surrounded_by_fragments_is_resolved_in_a_later_pass():
    lab = np.full((30, 30), ST, np.uint8)
    lab[:, :2] = FT  # FT main component
    lab[10:20, 10:20] = TT  # TT fragment (main TT is bigger, below)
    lab[14:16, 14:16] = FC  # FC fragment inside the TT fragment: no settled neighbour at first
    lab[22:30, 2:30] = TT  # main TT
    lab[0:2, 20:22] = FC  # main FC
    out, n = reassign_fragments(lab)
    assert n == 2
    assert (out[10:20, 10:20] == ST).all()


def test_background_air_at_the_border_is_kept_and_enclosed_air_is_filled():
    lab = np.zeros((40, 40), np.uint8)
    lab[:, 10:30] = ST  # the limb splits the air into a left and a right part
    lab[20:23, 20:23] = 0  # an air hole inside the soft tissue
    out = postprocess(lab, SP)
    assert (out[:, :10] == 0).all() and (out[:, 30:] == 0).all()
    assert (out[20:23, 20:23] == ST).all()


def test_every_class_has_one_component_on_a_noisy_slice():
    rng = np.random.default_rng(3)
    lab, _, r = tibia_case(gap_px=8, n=240, centre=(110, 100))
    yy, xx = grid(240)
    rf = np.hypot(yy - 110, xx - 185)
    lab[rf <= 16] = FC
    lab[rf <= 10] = FT
    for _ in range(40):
        y, x = rng.integers(5, 230, 2)
        s = rng.integers(1, 6)
        lab[y:y + s, x:x + s] = rng.integers(0, 6)
    out = postprocess(lab, SP)
    for c in (TC, TT, FC, FT, ST):
        assert components(out == c) == 1, c
    air = cc_label(out == 0, connectivity=2)
    border = np.unique(np.concatenate([air[0], air[-1], air[:, 0], air[:, -1]]))
    assert set(np.unique(air)) - {0} <= set(border)  # every air piece left touches the border
    assert (out[r <= 45] == TT).all()
    assert (out[rf <= 9] == FT).all()


# --- volumes, progress, errors --------------------------------------------------------------------
def test_volume_is_processed_slice_by_slice_with_progress():
    a, _, _ = tibia_case(gap_px=6)
    b, _, _ = tibia_case(gap_px=0)
    b[20:23, 100:103] = TT
    vol = np.stack([a, b, np.zeros_like(a)])
    calls = []
    out = postprocess(vol, SP, progress=lambda d, t: calls.append((d, t)))
    assert out.shape == vol.shape and out.dtype == vol.dtype
    assert (out[0] == postprocess(a, SP)).all() and (out[1] == postprocess(b, SP)).all()
    assert (out[2] == 0).all()
    assert calls == [(1, 3), (2, 3), (3, 3)]
    with pytest.raises(Cancelled):
        postprocess(vol, SP, progress=lambda d, t: False)


def test_bad_input_raises_input_error():
    with pytest.raises(InputError, match="outside"):
        postprocess(np.full((5, 5), 7, np.uint8), SP)
    with pytest.raises(InputError, match="integers"):
        postprocess(np.zeros((5, 5), np.float32), SP)
    with pytest.raises(InputError, match="spacing"):
        postprocess(np.zeros((5, 5), np.uint8), (0.1, -1.0))
    with pytest.raises(InputError, match="2D"):
        postprocess(np.zeros((5,), np.uint8), SP)


def test_parameters_are_taken_from_the_dataclass():
    lab, _, _ = tibia_case(gap_px=14)
    _, info = postprocess(lab, SP, replace(POSTPROCESSING, max_closing_radius_mm=0.5), return_info=True)
    assert np.isnan(info[0].closing_mm["TC"])  # a 1.4 mm gap needs more than 0.5 mm


# --- building blocks match their textbook definitions -------------------------------------------
@pytest.mark.parametrize("sampling", [(0.1, 0.1), (0.08, 0.12)])
def test_closing_mm_equals_binary_closing_with_a_disk(sampling):
    rng = np.random.default_rng(0)
    for _ in range(5):
        m = np.zeros((90, 90), bool)
        for _ in range(6):
            y, x = rng.integers(20, 60, 2)
            m[y:y + rng.integers(2, 12), x:x + rng.integers(2, 12)] = True
        for radius in (0.25, 0.5, 0.93):
            sy, sx = sampling
            ry, rx = int(radius / sy) + 1, int(radius / sx) + 1
            dy, dx = np.mgrid[-ry:ry + 1, -rx:rx + 1]
            disk = np.hypot(dy * sy, dx * sx) <= radius + 1e-9
            ref = ndi.binary_closing(m, structure=disk)
            assert (closing_mm(m, radius, sampling) == ref).all()


def test_hull_area_matches_skimage():
    rng = np.random.default_rng(1)
    for i in range(60):
        m = np.zeros((50, 60), bool)
        for _ in range(rng.integers(1, 6)):
            y, x = rng.integers(0, 45, 2)
            m[y:y + rng.integers(1, 6), x:x + rng.integers(1, 6)] = True
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref = int(convex_hull_image(m, offset_coordinates=False).sum())
        assert hull_area_px(m) == ref


def test_fill_holes_matches_scipy():
    rng = np.random.default_rng(2)
    for conn in (4, 8):
        m = rng.random((70, 70)) < 0.45
        st = np.ones((3, 3), bool) if conn == 4 else ndi.generate_binary_structure(2, 1)
        assert (_fill_holes(m, conn) == ndi.binary_fill_holes(m, structure=st)).all()


def test_one_pixel_diagonal_cortex_encloses():
    lab = np.full((40, 40), ST, np.uint8)
    yy, xx = grid(40)
    diamond = np.abs(yy - 20) + np.abs(xx - 20)
    lab[diamond == 12] = TC  # a one-pixel-thick 8-connected diamond
    lab[diamond < 12] = ST  # marrow mislabelled as soft tissue
    out = postprocess(lab, SP)
    assert (out[diamond < 12] == TT).all()
    assert (out[diamond == 12] == TC).all()


def test_marrow_called_soft_tissue_next_to_the_cortex_becomes_trabecular():
    # half the marrow predicted as soft tissue, bordered mostly by cortex: the enclosure rule,
    # not the majority rule (which would give it to the cortex), decides
    lab, _, r = tibia_case(gap_px=0)
    xx = np.mgrid[:200, :200][1]
    lab[(r <= 50) & (xx > 100)] = ST
    out = postprocess(lab, SP)
    assert (out[r <= 50] == TT).all()
    assert ((out == TC) == (lab == TC)).all()


def test_thin_cortex_gap_is_bridged_by_a_cortex_thick_layer_and_the_notch_behind_is_marrow():
    # a thin (4 px) cortex with a 2 mm gap and a pocket of marrow called soft tissue behind it
    lab, gap, r = tibia_case(gap_px=20, thick=4)
    yy, xx = np.mgrid[:200, :200]
    pocket = (np.hypot(yy - 48, xx - 100) <= 9) & (r <= 56)
    lab[pocket] = ST
    out, info = postprocess(lab, SP, return_info=True)
    assert info[0].closing_mm["TC"] > 0
    tc = out == TC
    assert components(tc) == 1 and (_fill_holes(tc) & ~tc)[r <= 50].all()
    assert (out[pocket & (r <= 49)] == TT).all()  # the pocket is enclosed: marrow, not cortex
    # the bridge is about as thick as the cortex, not the whole notch
    assert (out[gap] == TC).sum() <= 2 * (gap.sum() * 4 / 10) + 10


def test_a_ring_that_cannot_be_closed_keeps_its_arcs():
    lab, gap, r = tibia_case(gap_px=70)  # a 7 mm gap at the top: wider than 4 mm disks bridge...
    yy, xx = np.mgrid[:200, :200]
    gap2 = (np.abs(yy - 100) < 2) & (xx < 100) & (r > 50)  # ...and a second, narrow break
    lab[gap2 & (lab == TC)] = ST
    arcs = lab == TC
    assert components(arcs) == 2
    out, info = postprocess(lab, SP, return_info=True)
    assert np.isnan(info[0].closing_mm["TC"])
    assert ((out == TC) == arcs).all()  # both arcs kept, nothing added
