"""Soft-tissue thresholds (issue 14): the fat and muscle peaks of the scan's own histogram, the
warning when they lie outside the paper's seed windows, and the ``histogram`` option."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hrpqct.errors import InputError
from hrpqct.method import SOFT_TISSUE, SOFT_TISSUE_THRESHOLDS
from hrpqct.regions import SOFT_TISSUE_CLASS, region
from hrpqct.seg.softtissue import (check_peaks, histogram_thresholds, resolve_thresholds,
                                   soft_tissue_peaks, split_soft_tissue)

AT, MT = region("AT").label, region("MT").label


def _leg(fat_hu: float, muscle_hu: float, seed: int = 0):
    """A 2D limb of soft tissue: an outer fat ring around muscle, with noise (0.1 mm pixels)."""
    rng = np.random.default_rng(seed)
    n = 300
    yy, xx = np.mgrid[:n, :n]
    r = np.hypot(yy - n / 2, xx - n / 2)
    lab = np.zeros((n, n), np.uint8)
    lab[r <= 140] = SOFT_TISSUE_CLASS
    hu = np.full((n, n), -1000.0, np.float32)
    hu[r <= 140] = fat_hu
    hu[r <= 100] = muscle_hu
    hu += rng.normal(0, 15, hu.shape).astype(np.float32)
    return lab, hu


def test_choices_are_declared_once():
    assert SOFT_TISSUE_THRESHOLDS == ("paper", "histogram")
    assert SOFT_TISSUE.thresholds == "paper"


def test_peaks_of_a_phantom_like_leg_are_inside_the_paper_windows():
    lab, hu = _leg(-330.0, 130.0)
    p = soft_tissue_peaks(lab, hu)
    assert abs(p["fat_hu"] + 330) <= 10 and abs(p["muscle_hu"] - 130) <= 10
    assert -330 < p["valley_hu"] < 130
    assert check_peaks(p, "leg") == []


def test_real_fat_near_minus_110_warns_and_histogram_thresholds_follow_it():
    # muscle seeds grow 20 pixels into a fat layer that has no seed of its own (-110 HU is
    # outside -600..-200): the paper's split calls the inner fat layer muscle
    lab, hu = _leg(-110.0, 130.0)
    p = soft_tissue_peaks(lab, hu)
    assert abs(p["fat_hu"] + 110) <= 10 and abs(p["muscle_hu"] - 130) <= 10
    found = check_peaks(p, "real")
    assert [f.code for f in found] == ["softtissue.peaks"]
    assert "the fat peak of the soft tissue is at" in found[0].message
    assert "outside the paper's adipose seed window (-600 to -200 HU" in found[0].message
    assert "--soft-tissue-thresholds histogram" in found[0].message
    used = histogram_thresholds(p)
    f, m, t = p["fat_hu"], p["muscle_hu"], p["valley_hu"]
    assert used.thresholds == "histogram" and used.tie_threshold_hu == t
    assert used.adipose_hu == (f - 400.0, (f + t) / 2)
    assert used.myotendinous_hu == ((t + m) / 2, m + 500.0)
    paper = split_soft_tissue(lab, hu, (0.1, 0.1))
    data = split_soft_tissue(lab, hu, (0.1, 0.1), used)
    # the fat ring inside the skin band (r 100..120 px): the histogram option finds it
    r = np.hypot(*np.mgrid[-150:150, -150:150])
    inner = (r > 102) & (r < 118)
    assert np.mean(paper[inner] == AT) < 0.2
    assert np.mean(data[inner] == AT) > 0.8


def test_resolve_thresholds():
    lab, hu = _leg(-110.0, 50.0)
    soft, warnings, peaks = resolve_thresholds(lab, hu, "paper", where="s")
    assert soft == SOFT_TISSUE and len(warnings) == 2 and peaks["fat_hu"] is not None
    soft, warnings, _ = resolve_thresholds(lab, hu, "histogram", where="s")
    assert soft.thresholds == "histogram" and len(warnings) == 2
    only_muscle = np.where(hu < -50, 50.0, hu).astype(np.float32)
    soft, warnings, peaks = resolve_thresholds(lab, only_muscle, "histogram", where="s")
    assert peaks["fat_hu"] is None and soft.adipose_hu == SOFT_TISSUE.adipose_hu
    assert any("no fat peak in the soft tissue" in w for w in warnings)
    with pytest.raises(InputError, match="must be one of paper, histogram"):
        resolve_thresholds(lab, hu, "otsu")


def test_refine_cli_option_and_scan_table(tmp_path, capsys):
    from hrpqct.io import write_image, write_labelmap
    from hrpqct.volume import Volume

    from helpers import cli

    lab, hu = _leg(-110.0, 50.0)
    lab[130:170, 130:170] = region("TC").label  # a bone, so that refine accepts the map
    lab[140:160, 140:160] = region("TT").label
    lab[220:230, 140:150] = region("FC").label
    lab[223:227, 143:147] = region("FT").label
    image = write_image(Volume(hu[None], spacing=(0.1, 0.1, 0.1), unit="HU"), tmp_path / "s.nrrd")
    seg = write_labelmap(Volume(lab[None], spacing=(0.1, 0.1, 0.1), unit="label"),
                         tmp_path / "l.nrrd")
    assert cli("refine", str(seg), str(image), "--out", str(tmp_path / "o"), "--input-kind",
               "model", "--soft-tissue-thresholds", "histogram", "-q") == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "the fat peak of the soft tissue is at" in out
    table = pd.read_csv(tmp_path / "o" / "l_refined_scan.csv").set_index("quantity")
    assert abs(float(table.loc["soft_tissue_fat_peak_hu", "value"]) + 110) <= 10
    assert float(table.loc["adipose_seed_high_hu", "value"]) > -100
    assert cli("refine", str(seg), str(image), "--out", str(tmp_path / "o2"),
               "--soft-tissue-thresholds", "otsu", "-q") == 2
    assert "--soft-tissue-thresholds must be paper or histogram" in capsys.readouterr().err
