"""Per-region summaries (hrpqct.seg.summary) against hand-computed numbers."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from hrpqct.errors import GeometryError, InputError
from hrpqct.regions import MODEL_CLASSES
from hrpqct.seg.summary import summarize, write_summary
from hrpqct.volume import Calibration

SPACING = (0.5, 0.4, 2.0)  # x, y, z mm: pixel 0.2 mm^2, voxel 0.4 mm^3


def constructed():
    lab = np.zeros((2, 4, 5), np.uint8)
    hu = np.full(lab.shape, -1000.0)
    lab[0] = [[1, 1, 2, 2, 0],
              [5, 5, 6, 6, 7],
              [6, 7, 7, 7, 0],
              [0, 0, 0, 0, 0]]
    hu[0] = [[1000, 1200, 200, 300, -1000],
             [10, 30, 50, 70, -100],
             [40, -120, -80, -100, -1000],
             [-1000] * 5]
    lab[1, 0, :3] = [6, 6, 7]
    hu[1, 0, :3] = [60, 80, -90]
    return lab, hu


def test_region_table_equals_hand_computed_values():
    lab, hu = constructed()
    s = summarize(lab, hu, SPACING)
    r = s.regions.set_index("code")
    assert list(r.index) == ["TC", "TT", "FC", "FT", "SK", "MT", "AT"]
    assert r.loc["TC", "voxels"] == 2
    assert r.loc["TC", "volume_mm3"] == pytest.approx(0.8)
    assert r.loc["TC", "area_mm2_mean"] == pytest.approx(0.2)  # (0.4 + 0) / 2 slices
    assert r.loc["TC", "area_mm2_max"] == pytest.approx(0.4)
    assert r.loc["TC", "area_mm2_min"] == 0.0
    assert r.loc["TC", "slices_present"] == 1
    assert r.loc["TC", "mean_hu"] == pytest.approx(1100.0)
    assert r.loc["TC", "sd_hu"] == pytest.approx(100.0)  # population SD
    assert r.loc["MT", "voxels"] == 5
    assert r.loc["MT", "volume_mm3"] == pytest.approx(2.0)
    assert r.loc["MT", "mean_hu"] == pytest.approx(60.0)  # (50 + 70 + 40 + 60 + 80) / 5
    assert r.loc["MT", "sd_hu"] == pytest.approx(math.sqrt(200.0))
    assert r.loc["AT", "mean_hu"] == pytest.approx(-98.0)
    assert r.loc["SK", "mean_hu"] == pytest.approx(20.0) and r.loc["SK", "sd_hu"] == pytest.approx(10.0)
    assert r.loc["FC", "voxels"] == 0 and math.isnan(r.loc["FC", "mean_hu"])
    assert "mean_mgHA_ccm" not in r.columns


def test_scan_numbers_and_per_slice_table():
    lab, hu = constructed()
    s = summarize(lab, hu, SPACING)
    assert s.scan["fat_fraction"] == pytest.approx(5 / 10)  # AT / (MT + AT)
    assert s.scan["fat_fraction_with_skin"] == pytest.approx(5 / 12)  # AT / (SK + MT + AT)
    assert s.scan["muscle_density_hu"] == pytest.approx(60.0)
    assert s.scan["soft_tissue_volume_mm3"] == pytest.approx(12 * 0.4)
    assert s.scan["slices"] == 2
    sl = s.slices
    assert list(sl["slice"]) == [0, 1]
    assert list(sl["MT_area_mm2"]) == pytest.approx([0.6, 0.4])
    assert list(sl["AT_area_mm2"]) == pytest.approx([0.8, 0.2])
    assert sl.loc[0, "MT_mean_hu"] == pytest.approx(160 / 3)
    assert sl.loc[1, "AT_mean_hu"] == pytest.approx(-90.0)
    assert math.isnan(sl.loc[1, "TC_mean_hu"])
    assert list(sl["fat_fraction"]) == pytest.approx([4 / 7, 1 / 3])
    assert list(sl["fat_fraction_with_skin"]) == pytest.approx([4 / 9, 1 / 3])


def test_density_with_a_calibration():
    lab, hu = constructed()
    cal = Calibration(mu_water=0.24, mu_scaling=8192, density_slope=1600.0, density_intercept=-390.0)
    s = summarize(lab, hu, SPACING, calibration=cal)
    r = s.regions.set_index("code")
    # mgHA/ccm = (HU + 1000) * mu_water / 1000 * slope + intercept
    assert r.loc["MT", "mean_mgHA_ccm"] == pytest.approx(1060 * 0.24 / 1000 * 1600 - 390)
    assert r.loc["MT", "sd_mgHA_ccm"] == pytest.approx(math.sqrt(200) * 0.24 / 1000 * 1600)
    assert r.loc["MT", "mean_mgHA_ccm"] == pytest.approx(float(cal.hu_to_density(np.float64(60.0))), rel=1e-6)
    assert s.scan["muscle_density_mgHA_ccm"] == pytest.approx(r.loc["MT", "mean_mgHA_ccm"])


def test_sd_is_stable_for_large_offsets_and_many_slices():
    rng = np.random.default_rng(0)
    lab = np.full((20, 30, 30), 6, np.uint8)
    hu = 1e6 + rng.normal(0, 3.0, lab.shape)  # large offset: naive sum of squares would cancel
    s = summarize(lab, hu, (0.1, 0.1, 0.1))
    mt = s.regions.set_index("code").loc["MT"]
    assert mt["mean_hu"] == pytest.approx(hu.mean(), rel=1e-12)
    assert mt["sd_hu"] == pytest.approx(hu.std(), rel=1e-9)


def test_model_class_table_and_2d_input():
    lab, hu = constructed()
    five = np.where(lab >= 5, 5, lab)
    s = summarize(five[0], hu[0], SPACING[:2], table=MODEL_CLASSES)
    r = s.regions.set_index("code")
    assert list(r.index) == ["TC", "TT", "FC", "FT", "ST"]
    assert r.loc["ST", "voxels"] == 9
    assert r.loc["ST", "volume_mm3"] == pytest.approx(9 * 0.2)  # 2D: a 1 mm slice
    assert "fat_fraction" not in s.scan


def test_write_summary_round_trip(tmp_path):
    lab, hu = constructed()
    s = summarize(lab, hu, SPACING)
    paths = write_summary(s, tmp_path, "scan1")
    assert [p.name for p in paths] == ["scan1_regions.csv", "scan1_slices.csv", "scan1_scan.csv"]
    back = pd.read_csv(paths[0])
    assert back.loc[back.code == "MT", "mean_hu"].iloc[0] == pytest.approx(60.0)
    scan = pd.read_csv(paths[2]).set_index("quantity")["value"]
    assert scan["fat_fraction"] == pytest.approx(0.5)
    assert not list(tmp_path.glob(".*"))  # no temporary files left
    with pytest.raises(InputError):
        write_summary(s, tmp_path / "missing", "x")


def test_bad_input():
    lab, hu = constructed()
    with pytest.raises(GeometryError):
        summarize(lab, hu[:, :-1], SPACING)
    bad = hu.copy()
    bad[0, 1, 2] = np.nan  # inside MT
    with pytest.raises(InputError, match="NaN"):
        summarize(lab, bad, SPACING)
    bad = hu.copy()
    bad[0, 3, 3] = np.nan  # background: ignored
    assert summarize(lab, bad, SPACING).scan["fat_fraction"] == pytest.approx(0.5)
    with pytest.raises(InputError, match="spacing"):
        summarize(lab, hu, (0.5, 0.0, 2.0))
