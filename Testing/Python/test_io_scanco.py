"""Real Scanco AIM/ISQ files (../shared/data/scanco, see its README) and broken Scanco files."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from hrpqct.errors import CalibrationError, InputError
from hrpqct.io import read_labelmap, read_scan, read_scanco_header

DATA = Path(os.environ.get("HRPQCT_SCANCO_DATA",
                           Path(__file__).resolve().parents[2].parent / "shared" / "data" / "scanco"))
pytestmark = [
    pytest.mark.scanco,
    pytest.mark.skipif(not (DATA / "aluminum.aim").is_file(), reason=f"no Scanco sample files in {DATA}"),
]

# Calibration of aluminum.aim (README of the data folder)
AL_MU_SCALING, AL_MU_WATER = 8192.0, 0.2464
AL_SLOPE, AL_INTERCEPT = 1441.13599, -356.445007


def test_aluminum_shape_spacing_calibration():
    vol = read_scan(DATA / "aluminum.aim")
    assert vol.shape == (100, 130, 130)
    assert vol.unit == "HU" and vol.array.dtype == np.float32
    np.testing.assert_allclose(vol.spacing, (0.082, 0.082, 0.082), rtol=1e-6)
    np.testing.assert_allclose(vol.direction, np.eye(3).ravel())
    cal = vol.calibration
    assert cal is not None
    assert cal.mu_scaling == AL_MU_SCALING
    assert cal.mu_water == pytest.approx(AL_MU_WATER)
    assert cal.density_slope == pytest.approx(AL_SLOPE)
    assert cal.density_intercept == pytest.approx(AL_INTERCEPT)
    assert cal.density_unit == "mg HA/ccm"
    assert vol.meta["header"]["Version"] == "AIMDATA_V020"
    assert vol.meta["stored_dtype"] == "int16"


def test_aluminum_hu_and_density_follow_the_header_formulas():
    raw = read_scan(DATA / "aluminum.aim", unit="native")
    assert raw.unit == "native" and raw.array.dtype == np.int16
    assert (int(raw.array.min()), int(raw.array.max())) == (-2134, 10544)  # header DataRange
    r = raw.array.astype(np.float64)
    hu = read_scan(DATA / "aluminum.aim", unit="HU")
    dens = read_scan(DATA / "aluminum.aim", unit="mgHA/ccm")
    assert dens.unit == "mgHA/ccm"
    np.testing.assert_allclose(hu.array, r * 1000.0 / (AL_MU_WATER * AL_MU_SCALING) - 1000.0, atol=2e-3)
    np.testing.assert_allclose(dens.array, r / AL_MU_SCALING * AL_SLOPE + AL_INTERCEPT, atol=2e-3)
    # the two units agree through the calibration, both ways
    np.testing.assert_allclose(hu.calibration.hu_to_density(hu.array), dens.array, atol=2e-3)
    np.testing.assert_allclose(hu.in_unit("mgHA/ccm").array, dens.array, atol=2e-3)
    # README: ITK's own rescaling gives -2057..4223 (whole HU, truncated towards zero)
    assert int(np.trunc(hu.array.min())) == -2057 and int(np.trunc(hu.array.max())) == 4223


def test_aluminum_hu_matches_itk_ioscanco_own_conversion():
    import itk

    itk_hu = itk.array_from_image(itk.imread(str(DATA / "aluminum.aim"), itk.F))
    ours = read_scan(DATA / "aluminum.aim").array
    assert itk_hu.shape == ours.shape
    # itk-ioscanco truncates to whole HU in the stored type; ours keeps the fraction
    diff = ours - itk_hu
    assert np.max(np.abs(diff)) < 1.0 + 1e-3
    assert np.all(itk_hu == np.round(itk_hu))
    assert 0.3 < float(np.mean(np.abs(diff))) < 0.7  # truncation error is ~uniform in [0, 1)


def test_xt2_radius_mask_char_typed_with_calibrated_header():
    hdr = read_scanco_header(DATA / "XT2_RADIUS_82_SEG.AIM")
    assert hdr["ComponentType"] == "char"
    assert hdr["MuScaling"] == 8192.0 and hdr["MuWater"] == pytest.approx(0.2402)
    assert hdr["RescaleSlope"] == pytest.approx(1632.71997)
    assert hdr["RescaleIntercept"] == pytest.approx(-396.135986)
    assert hdr["RescaleUnits"] == "mg HA/ccm"
    mask = read_labelmap(DATA / "XT2_RADIUS_82_SEG.AIM")
    assert mask.unit == "label" and mask.array.dtype == np.uint8
    assert mask.shape == (123, 364, 420)
    np.testing.assert_allclose(mask.spacing, (0.082,) * 3, rtol=1e-6)
    values, counts = np.unique(mask.array, return_counts=True)
    assert values.tolist() == [0, 127]
    assert counts[1] == 3032038


def test_uncalibrated_aim_and_isq_hold_the_same_volume():
    aim = read_scan(DATA / "test_aim.AIM", unit="native")
    isq = read_scan(DATA / "test_isq.ISQ", unit="native")
    for vol in (aim, isq):
        assert vol.shape == (25, 25, 25) and vol.array.dtype == np.int16
        assert vol.calibration is None and vol.unit == "native"
        np.testing.assert_allclose(vol.spacing, (0.06068,) * 3, rtol=1e-6)
    assert set(np.unique(aim.array).tolist()) == {0, 1}
    np.testing.assert_array_equal(aim.array, isq.array)
    assert isq.meta["header"]["Version"] == "CTDATA-HEADER_V1"


def test_tube_binary_cylinder():
    vol = read_labelmap(DATA / "tube.aim")
    assert vol.shape == (193, 64, 64)
    np.testing.assert_allclose(vol.spacing, (0.034,) * 3, rtol=1e-6)
    assert np.unique(vol.array).tolist() == [0, 127]


@pytest.mark.parametrize("unit", ["HU", "mgHA/ccm"])
def test_uncalibrated_file_refuses_calibrated_units(unit):
    with pytest.raises(CalibrationError, match="test_aim.AIM"):
        read_scan(DATA / "test_aim.AIM", unit=unit)


def test_calibration_argument_serves_an_uncalibrated_file():
    from hrpqct.volume import Calibration

    cal = Calibration(mu_water=0.25, mu_scaling=1.0, density_slope=1000.0, density_intercept=-250.0)
    vol = read_scan(DATA / "test_aim.AIM", unit="HU", calibration=cal)
    raw = read_scan(DATA / "test_aim.AIM", unit="native").array
    np.testing.assert_allclose(vol.array, raw * 1000.0 / 0.25 - 1000.0, atol=1e-3)
    assert vol.meta["unit_source"] == "calibration argument"


def _cut(src: Path, dst: Path, keep: int) -> Path:
    dst.write_bytes(src.read_bytes()[:keep])
    return dst


@pytest.mark.parametrize("keep", [100, 3000, "half"])
def test_truncated_aim_names_the_file(tmp_path, keep):
    src = DATA / "aluminum.aim"
    n = src.stat().st_size // 2 if keep == "half" else keep
    bad = _cut(src, tmp_path / "cut.aim", n)
    with pytest.raises(InputError, match=str(bad)):
        read_scan(bad)


def test_truncated_compressed_mask_names_the_file(tmp_path):
    src = DATA / "XT2_RADIUS_82_SEG.AIM"
    bad = _cut(src, tmp_path / "cut_seg.aim", src.stat().st_size - 10_000)
    with pytest.raises(InputError, match="truncated"):
        read_labelmap(bad)


def test_truncated_isq_names_the_file(tmp_path):
    src = DATA / "test_isq.ISQ"
    bad = _cut(src, tmp_path / "cut.isq", src.stat().st_size - 100)
    with pytest.raises(InputError, match=r"cut\.isq.*truncated"):
        read_scan(bad, unit="native")
