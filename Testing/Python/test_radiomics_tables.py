"""Region names and distance bands; slice-level and patient-level tables with plain measures."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("radiomics")

from hrpqct.errors import InputError  # noqa: E402
from hrpqct.radiomics.masks import (band_distance_mm, band_name, parse_regions,  # noqa: E402
                                    region_masks, tibia_distance_mm)
from hrpqct.radiomics.synthetic import synthetic_scan  # noqa: E402
from hrpqct.radiomics.tables import MEASURE_COLUMNS, aggregate, extract_scan, to_wide  # noqa: E402
from hrpqct.regions import RADIOMICS_REGIONS, region  # noqa: E402
from hrpqct.volume import Calibration  # noqa: E402

L = {c: region(c).label for c in ("TC", "TT", "FC", "FT", "SK", "MT", "AT")}


# --- region names -----------------------------------------------------------------------------
def test_parse_regions():
    assert parse_regions(None) == list(RADIOMICS_REGIONS) == ["TC", "TT", "FC", "FT", "MT", "AT"]
    assert parse_regions("tt, mt,st10MM,ST2.5mm,ST") == ["TT", "MT", "ST10mm", "ST2.5mm", "ST"]
    assert parse_regions(["TC,TT", "TC", "SK"]) == ["TC", "TT", "SK"]
    assert band_name(10) == "ST10mm" and band_distance_mm("ST2.5mm") == 2.5
    assert band_distance_mm("MT") is None
    for bad in ("XX", "ST0mm", "ST-2mm", ""):
        with pytest.raises(InputError):
            parse_regions(bad)


def _disc_phantom(n=121, spacing=(0.5, 0.25)):
    """Tibia: a disc of radius 6 mm (TC ring + TT) at the centre; soft tissue (MT/AT) around."""
    dy, dx = spacing
    yy, xx = np.mgrid[:n, :n]
    r = np.hypot((yy - n // 2) * dy, (xx - n // 2) * dx)
    lab = np.zeros((n, n), np.uint8)
    lab[r <= 14] = L["MT"]
    lab[(r <= 14) & (xx > n // 2)] = L["AT"]
    lab[r <= 6] = L["TC"]
    lab[r <= 5] = L["TT"]
    return lab, r


def test_distance_bands_match_geometry():
    spacing = (0.5, 0.25)  # anisotropic pixels: distances must be in mm, not pixels
    lab, r = _disc_phantom(spacing=spacing)
    masks = region_masks(lab, ["ST2mm", "ST4mm", "ST10mm", "ST", "MT", "TT"], spacing)
    tissue = np.isin(lab, [L["MT"], L["AT"]])
    # brute force: distance from each pixel centre to the nearest tibia pixel centre, in mm
    ty, tx = np.nonzero(np.isin(lab, [L["TC"], L["TT"]]))
    yy, xx = np.nonzero(tissue)
    d = np.sqrt(((yy[:, None] - ty[None]) * spacing[0]) ** 2
                + ((xx[:, None] - tx[None]) * spacing[1]) ** 2).min(1)
    for dist in (2, 4, 10):
        want = np.zeros_like(tissue)
        want[yy[d <= dist], xx[d <= dist]] = True
        assert np.array_equal(masks[f"ST{dist}mm"], want)
    # nested bands inside the soft tissue, annulus areas close to pi((R+d)^2 - R^2)
    assert (masks["ST2mm"] <= masks["ST4mm"]).all() and (masks["ST4mm"] <= masks["ST10mm"]).all()
    assert np.array_equal(masks["ST"], tissue)
    area = masks["ST4mm"].sum() * spacing[0] * spacing[1]
    assert area == pytest.approx(np.pi * (10.0 ** 2 - 6.0 ** 2), rel=0.05)
    assert np.array_equal(masks["MT"], lab == L["MT"])
    # no tibia on a slice: empty bands, distance inf
    empty = np.full((10, 10), L["MT"], np.uint8)
    assert not region_masks(empty, ["ST10mm"], spacing)["ST10mm"].any()
    assert np.isinf(tibia_distance_mm(empty, spacing)).all()


# --- tables -------------------------------------------------------------------------------------
CAL = Calibration(mu_water=0.2402, mu_scaling=8192, density_slope=1632.72,
                  density_intercept=-396.136)


@pytest.fixture(scope="module")
def scan():
    img, lab = synthetic_scan(3, 80, 1.0, seed=2)
    lab[1][lab[1] == L["FT"]] = L["FC"]  # no fibula trabecular region on slice 1
    return img, lab, (1.0, 0.9, 2.0)


@pytest.fixture(scope="module")
def table(scan):
    img, lab, sp = scan
    return extract_scan(img, lab, sp, regions="TT,FT,MT,ST10mm", calibration=CAL)


def test_slice_table_layout_and_plain_measures(scan, table):
    img, lab, (dx, dy, dz) = scan
    assert list(table.columns[:3]) == ["slice", "region", "reason"]
    assert list(table.columns[3:9]) == list(MEASURE_COLUMNS)
    assert table.shape == (3 * 4, 9 + 939)
    assert table["slice"].tolist() == [0] * 4 + [1] * 4 + [2] * 4
    assert table["region"].tolist()[:4] == ["TT", "FT", "MT", "ST10mm"]
    row = table[(table.slice == 2) & (table.region == "MT")].iloc[0]
    m = lab[2] == L["MT"]
    assert row["n_pixels"] == m.sum()
    assert row["area_mm2"] == pytest.approx(m.sum() * dx * dy)
    assert row["volume_mm3"] == pytest.approx(m.sum() * dx * dy * dz)
    assert row["mean_HU"] == pytest.approx(img[2][m].astype(np.float64).mean(), rel=1e-12)
    assert row["sd_HU"] == pytest.approx(img[2][m].astype(np.float64).std(), rel=1e-12)
    want = float(CAL.hu_to_density(np.array(row["mean_HU"])))
    assert row["mean_mgHA_ccm"] == pytest.approx(want, rel=1e-5)
    assert row["original_firstorder_Mean"] == pytest.approx(row["mean_HU"], rel=1e-6)
    assert row["original_shape2D_PixelSurface"] == pytest.approx(row["area_mm2"])


def test_absent_region_gives_nan_and_reason(table):
    ok = table[table.reason.isna()]
    assert len(ok) == 11 and ok.iloc[:, 9:].notna().all(axis=None)
    gone = table[(table.slice == 1) & (table.region == "FT")].iloc[0]
    assert gone["reason"] == "absent" and gone["n_pixels"] == 0 and gone["area_mm2"] == 0
    assert gone.iloc[9:].isna().all() and np.isnan(gone["mean_HU"])


def test_patient_aggregation(scan, table):
    img, lab, _ = scan
    t = table.assign(scan_id="S1")
    agg = aggregate(t, stats=("mean", "median", "sd"), by=["scan_id"])
    assert agg["region"].tolist() == ["TT", "FT", "MT", "ST10mm"]
    f = "original_glcm_Contrast"
    for reg in ("MT", "FT"):
        rows = t[(t.region == reg) & t.reason.isna()]
        a = agg[agg.region == reg].iloc[0]
        assert a["n_slices"] == len(rows) == (2 if reg == "FT" else 3)
        assert a[f] == pytest.approx(rows[f].mean(), rel=1e-12)
        assert a[f + "__median"] == pytest.approx(rows[f].median(), rel=1e-12)
        assert a[f + "__sd"] == pytest.approx(rows[f].std(ddof=1), rel=1e-12)
        allrows = t[t.region == reg]
        assert a["volume_mm3"] == pytest.approx(allrows["volume_mm3"].sum())
        w = allrows["n_pixels"].to_numpy(float)
        good = w > 0
        want = np.sum(allrows["mean_HU"].to_numpy()[good] * w[good]) / w.sum()
        assert a["mean_HU"] == pytest.approx(want)
    mt = agg[agg.region == "MT"].iloc[0]
    pixels = img[lab == L["MT"]].astype(np.float64)  # all slices' MT pixels together
    assert mt["mean_HU"] == pytest.approx(pixels.mean(), rel=1e-12)
    assert mt["sd_HU"] == pytest.approx(pixels.std(), rel=1e-9)
    only_mean = aggregate(t.assign(subject_id="P1"), by=["scan_id"])  # text columns are left out
    assert f in only_mean and f + "__sd" not in only_mean
    with pytest.raises(InputError):
        aggregate(t, stats=("mode",))
    wide = to_wide(agg, by=["scan_id"], columns=["volume_mm3", f])
    assert wide.columns.tolist() == ["scan_id", "TT_volume_mm3", f"TT_{f}", "FT_volume_mm3",
                                     f"FT_{f}", "MT_volume_mm3", f"MT_{f}", "ST10mm_volume_mm3",
                                     f"ST10mm_{f}"]
    assert wide.loc[0, f"MT_{f}"] == agg[agg.region == "MT"][f].iloc[0]


def test_crop_to_the_limb_does_not_change_features(scan):
    """More air around the limb (a larger field of view) gives the same table: slices are cropped
    to the labelled box plus Radiomics.crop_margin_mm (5 mm) first."""
    img, lab, sp = scan

    def padded(p, q):
        return (np.pad(img, ((0, 0), (p, q), (q, p)), constant_values=-1000).astype(np.float32),
                np.pad(lab, ((0, 0), (p, q), (q, p))))

    a = extract_scan(*padded(6, 6), sp, regions="MT", slices=[0])  # >= 5 mm of air each side
    b = extract_scan(*padded(40, 15), sp, regions="MT", slices=[0])
    pd.testing.assert_frame_equal(a, b, check_exact=True)


def test_3d_preset_gives_whole_scan_rows(scan):
    img, lab, sp = scan
    t = extract_scan(img[:, 10:60, 10:60], lab[:, 10:60, 10:60], sp, preset="3d", regions="FC")
    assert t.shape == (1, 9 + 1409) and t["slice"].tolist() == [-1]
    assert t["n_pixels"].iloc[0] == (lab[:, 10:60, 10:60] == L["FC"]).sum()
    assert np.isnan(t["area_mm2"].iloc[0])


def test_bad_inputs():
    img, lab = synthetic_scan(1, 64, 1.0)
    with pytest.raises(InputError):
        extract_scan(img, lab[:, :-1], (1, 1, 1))
    with pytest.raises(InputError):
        extract_scan(img, lab.astype(float), (1, 1, 1))
    with pytest.raises(InputError):
        extract_scan(img, lab, (1, 1, 0))
    with pytest.raises(InputError, match="final region labels"):
        extract_scan(img, np.where(lab > 0, 127, 0).astype(np.uint8), (1, 1, 1))
    bad = img.copy()
    bad[0, 32, 32] = np.nan
    with pytest.raises(InputError, match="NaN"):
        extract_scan(bad, lab, (1, 1, 1))
