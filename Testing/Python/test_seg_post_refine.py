"""refine(): re-applying the topology rules and the split to an annotator's edited segmentation."""

from __future__ import annotations

import numpy as np
import pytest

from hrpqct.errors import GeometryError, InputError
from hrpqct.regions import model_class, region
from hrpqct.seg.postprocess import postprocess
from hrpqct.seg.refine import detect_kind, refine, to_model_classes
from hrpqct.seg.softtissue import split_soft_tissue

TC, TT, FC, FT, ST = (model_class(c).label for c in ("TC", "TT", "FC", "FT", "ST"))
SK, MT, AT = (region(c).label for c in ("SK", "MT", "AT"))
SP = (0.1, 0.1, 0.1)


def case(gap_px=0):
    """A leg: soft tissue disk (r 95 px) in air, tibia ring (r 40, 8 px thick), muscle left, fat right."""
    n = 200
    yy, xx = np.mgrid[:n, :n]
    r = np.hypot(yy - 100, xx - 100)
    lab = np.zeros((n, n), np.uint8)
    lab[r <= 95] = ST
    lab[r <= 40] = TC
    lab[r <= 32] = TT
    if gap_px:
        lab[(np.abs(xx - 100) < gap_px / 2) & (yy < 100) & (r > 32) & (r <= 40)] = ST
    hu = np.where(xx < 100, 60.0, -110.0)
    hu[(xx < 100) & (np.abs(yy - 100) < 20)] = 300.0  # a tendon (MT seed)
    hu[(xx >= 140) & (np.abs(yy - 100) < 20)] = -400.0  # fat (AT seed)
    hu[lab == TC] = 1200.0
    hu[lab == TT] = 250.0
    return lab, hu, r


def pipeline(lab, hu):
    return split_soft_tissue(postprocess(lab, SP), hu, SP)


def test_kind_detection_and_merge():
    seven = pipeline(*case()[:2])
    assert detect_kind(seven) == "regions" and detect_kind(case()[0]) == "model"
    merged = to_model_classes(seven)
    assert set(np.unique(merged)) == {0, TC, TT, ST}
    with pytest.raises(InputError, match="values"):
        detect_kind(np.array([[9]]))


def test_five_class_input_gives_the_full_pipeline():
    lab, hu, _ = case(gap_px=6)
    lab[10:13, 100:103] = TT  # a stray fragment
    assert (refine(lab, hu, SP) == pipeline(lab, hu)).all()


def test_annotator_closes_a_gap_and_the_marrow_follows():
    lab, hu, r = case()
    seven = pipeline(lab, hu)
    edited = seven.copy()
    edited[(r <= 32) & (np.mgrid[:200, :200][1] > 100)] = MT  # half of the marrow mislabelled as MT
    out = refine(edited, hu, SP)  # MT inside the closed cortex is not soft tissue any more
    assert (out[r <= 31] == TT).all()


def test_erased_leak_becomes_soft_tissue_and_is_split():
    lab, hu, r = case()
    seven = pipeline(lab, hu)
    edited = seven.copy()
    leak = (r > 45) & (r < 55) & (np.mgrid[:200, :200][0] > 130)
    edited[leak] = TT  # the model's trabecular leak (kept when the map is re-used as is)...
    edited[leak] = 0  # ...which the annotator erased with Slicer's eraser
    out = refine(edited, hu, SP)
    assert set(np.unique(out[leak])) <= {MT, AT}
    assert (out[leak] == seven[leak]).all()
    # without the rule the hole is left to the one-component rule (majority of its neighbours)
    as_hole = refine(edited, hu, SP, erased_is_soft_tissue=False)
    assert (as_hole == pipeline(to_model_classes(edited), hu)).all()


def test_hand_painted_soft_tissue_is_kept_by_default_and_can_be_recomputed():
    lab, hu, r = case()
    seven = pipeline(lab, hu)
    painted = (np.abs(np.mgrid[:200, :200][0] - 60) < 5) & (np.abs(np.mgrid[:200, :200][1] - 150) < 5)
    assert (seven[painted] == AT).all()
    edited = seven.copy()
    edited[painted] = MT  # the annotator calls this a tendon
    edited[r <= 40] = np.where(r[r <= 40] <= 30, TT, TC)  # and thins the cortex by 2 pixels
    out = refine(edited, hu, SP)
    assert (out[painted] == MT).all()
    assert (out[(r > 30) & (r <= 40)] == TC).all() and (out[r <= 30] == TT).all()
    fresh = refine(edited, hu, SP, keep_soft_tissue_edits=False)
    assert (fresh[painted] == AT).all()
    assert (fresh == pipeline(to_model_classes(edited), hu)).all()


def test_only_split_does_not_touch_bone():
    lab, hu, _ = case()
    lab[10:13, 100:103] = TT  # a fragment the topology rules would remove
    out = refine(lab, hu, SP, only="split")
    assert (out[10:13, 100:103] == TT).all()
    assert (out == split_soft_tissue(lab, hu, SP)).all()


def test_only_topology_keeps_every_soft_tissue_label():
    lab, hu, r = case()
    seven = pipeline(lab, hu)
    edited = seven.copy()
    edited[60:65, 150:155] = MT  # hand edit in the fat
    edited[15:18, 100:103] = TT  # a trabecular fragment in the skin/subcutis
    out = refine(edited, hu, SP, only="topology")
    soft_before = np.isin(edited, (SK, MT, AT))
    assert (out[soft_before] == edited[soft_before]).all()  # SK, MT, AT untouched
    assert set(np.unique(out[15:18, 100:103])) <= {SK, MT, AT}  # the fragment went to soft tissue
    assert (out[15:18, 100:103] == split_soft_tissue(postprocess(to_model_classes(edited), SP),
                                                    hu, SP)[15:18, 100:103]).all()
    # a 5-class map stays a 5-class map
    five = refine(lab, hu, SP, only="topology")
    assert five.max() <= ST and (five == postprocess(lab, SP)).all()


def test_volume_progress_and_errors():
    lab, hu, _ = case()
    vol, huv = np.stack([lab, lab]), np.stack([hu, hu])
    calls = []
    out = refine(vol, huv, SP, progress=lambda d, t: calls.append(d))
    assert out.shape == vol.shape and out.dtype == np.uint8 and calls == [1, 2]
    assert (out[0] == pipeline(lab, hu)).all()
    with pytest.raises(GeometryError):
        refine(vol, hu, SP)
    with pytest.raises(InputError, match="only"):
        refine(lab, hu, SP, only="bones")
    with pytest.raises(InputError, match="integer"):
        refine(lab.astype(float), hu, SP)


def test_whole_scan_steps_in_place_equal_the_copies():
    # hrpqct segment runs both steps in place on the network's labels (one label volume for a
    # whole scan): the result must equal the step-by-step copies, slice for slice
    lab2, hu2, _ = case(gap_px=6)
    lab = np.stack([lab2, case()[0], lab2])
    hu = np.stack([hu2, hu2, hu2])
    lab[0, 150:153, 20:23] = TT  # an island in the soft tissue
    five = postprocess(lab, SP)
    seven = split_soft_tissue(five, hu, SP)
    work = lab.copy()
    assert postprocess(work, SP, out=work) is work
    assert np.array_equal(work, five) and not np.array_equal(five, lab)
    assert split_soft_tissue(work, hu, SP, out=work) is work
    assert np.array_equal(work, seven) and {SK, MT, AT} <= set(np.unique(work))
    with pytest.raises(InputError, match="out has shape"):
        postprocess(lab, SP, out=np.zeros((2, 200, 200), np.uint8))
    with pytest.raises(InputError, match="out has shape"):
        split_soft_tissue(five, hu, SP, out=np.zeros(five.shape, np.int32))
