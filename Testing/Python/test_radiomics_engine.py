"""The multi-region engine gives PyRadiomics' own values (one execute per region), every preset."""

from __future__ import annotations

import math

import numpy as np
import pytest
import yaml

pytest.importorskip("radiomics")

from hrpqct.radiomics.engine import (MultiRegionExtractor, check_region,  # noqa: E402
                                     pyradiomics_execute)
from hrpqct.radiomics.masks import region_masks  # noqa: E402
from hrpqct.radiomics.synthetic import synthetic_scan, synthetic_slice  # noqa: E402
from hrpqct.regions import RADIOMICS_REGIONS, region  # noqa: E402

RTOL = 1e-9


def assert_parity(ours, ref, expect_ok=RADIOMICS_REGIONS):
    """Same regions, same reasons (present / absent), same names in order, values to 1e-9."""
    assert list(ours) == list(ref)
    n_values = 0
    for name in ours:
        a, b = ours[name], ref[name]
        assert (a.reason is None) == (b.reason is None), (name, a.reason, b.reason)
        assert list(a.features) == list(b.features), name
        for k, x in a.features.items():
            x, y = float(x), float(b.features[k])
            if math.isnan(x) or math.isnan(y):
                assert math.isnan(x) and math.isnan(y), (name, k, x, y)
            else:
                assert abs(x - y) <= RTOL * max(abs(x), abs(y)), (name, k, x, y)
            n_values += 1
    for name in expect_ok:
        assert ours[name].ok and len(ours[name].features) > 0, name
    return n_values


@pytest.fixture(scope="module")
def slice96():
    sp = 0.9
    img, lab = synthetic_slice(96, sp, seed=3)
    masks = region_masks(lab, [*RADIOMICS_REGIONS, "ST6mm"], (sp, sp))
    masks["absent"] = np.zeros_like(lab, dtype=bool)
    tiny = np.zeros_like(lab, dtype=bool)
    tiny[40:43, 40:43] = True  # 9 pixels <= minimumROISize 16
    masks["tiny"] = tiny
    line = np.zeros_like(lab, dtype=bool)
    line[10, 10:30] = True  # one pixel thick
    masks["line"] = line
    return img, masks, (sp, sp)


def test_paper_preset_parity(slice96):
    img, masks, sp = slice96
    ours = MultiRegionExtractor("paper").execute(img, masks, sp)
    ref = pyradiomics_execute(img, masks, sp, "paper")
    n = assert_parity(ours, ref, expect_ok=[*RADIOMICS_REGIONS, "ST6mm"])
    assert n == 7 * 939
    # absent and too-small regions: no features, a reason (PyRadiomics raises ValueError)
    assert ours["absent"].reason == "absent" and not ours["absent"].features
    assert ours["tiny"].reason.startswith("too small: 9 pixels")
    assert ours["line"].reason.startswith("too thin")
    assert ref["absent"].reason and ref["tiny"].reason and ref["line"].reason


def test_3d_preset_parity():
    img, lab = synthetic_scan(6, 40, 1.0, seed=5)
    sp = (1.0, 1.0, 1.0)
    codes = ("TC", "FC", "AT")  # three of the six, to keep the test short (3D texture is slow)
    masks = {c: lab == region(c).label for c in codes}
    ours = MultiRegionExtractor("3d").execute(img, masks, sp)
    ref = pyradiomics_execute(img, masks, sp, "3d")
    assert assert_parity(ours, ref, expect_ok=codes) == 3 * 1409


USER_SHARED = {  # every image shared between regions; other binning, normalisation, resegmentation
    "setting": {"force2D": True, "binCount": 20, "normalize": True, "normalizeScale": 100,
                "resegmentRange": [-60, 3000], "additionalInfo": True, "minimumROISize": 4,
                "distances": [1, 2], "gldm_a": 1, "weightingNorm": "euclidean"},
    "imageType": {"Original": {}, "LoG": {"sigma": [1.0, 3.0]},
                  "Wavelet": {"wavelet": "haar", "level": 2}, "LBP2D": {"binWidth": 1}},
    "featureClass": {"shape2D": None, "firstorder": None, "glcm": ["MCC", "Idmn", "Contrast"],
                     "glrlm": None, "gldm": None, "glszm": ["ZoneEntropy"]},
}
USER_PER_REGION = {  # resampling: PyRadiomics filters a region-sized crop, so does the engine
    "setting": {"force2D": True, "binWidth": 40, "resampledPixelSpacing": [0.7, 0.7],
                "interpolator": "sitkLinear", "padDistance": 3},
    "imageType": {"Original": {}, "Gradient": {}, "Square": {}},
    "featureClass": {"shape2D": None, "firstorder": None, "glcm": None, "ngtdm": None},
}


@pytest.mark.parametrize("params", [USER_SHARED, USER_PER_REGION], ids=["shared", "per-region"])
def test_user_preset_parity(tmp_path, slice96, params):
    img, masks, sp = slice96
    f = tmp_path / "user.yaml"
    f.write_text(yaml.safe_dump(params), encoding="utf-8")
    sub = {k: masks[k] for k in ("TT", "FT", "AT", "ST6mm", "absent")}
    ours = MultiRegionExtractor(f).execute(img, sub, sp)
    ref = pyradiomics_execute(img, sub, sp, f)
    assert_parity(ours, ref, expect_ok=["TT", "FT"])
    if params is USER_SHARED:
        # resegmented to >= -60 HU: adipose tissue keeps few pixels; either way, same as PyRadiomics
        assert ours["TT"].features["original_shape2D_PixelSurface"] > 0


def test_check_region_mirrors_pyradiomics_rules():
    s = {"minimumROIDimensions": 2, "minimumROISize": 16}
    m = np.zeros((20, 30), bool)
    assert check_region(m, s)[1] == "absent"
    m[5, 7] = True
    assert check_region(m, s)[1] == "single pixel"
    m[5, 7:25] = True
    assert check_region(m, s)[1].startswith("too thin")
    m[4:6, 7:15] = True
    bb, reason, n = check_region(m, s)
    assert reason is None and n == 26
    assert bb.tolist() == [7, 24, 4, 5]  # (L_x, U_x, L_y, U_y), ITK order
    m2 = np.zeros((20, 30), bool)
    m2[2:6, 3:7] = True  # 16 pixels: PyRadiomics needs more than minimumROISize
    assert check_region(m2, s)[1] == "too small: 16 pixels, minimumROISize is 16"


def test_engine_rejects_bad_input(slice96):
    from hrpqct.errors import InputError

    img, masks, sp = slice96
    eng = MultiRegionExtractor("paper")
    with pytest.raises(InputError, match="shape"):
        eng.execute(img, {"TC": masks["TC"][:-1]}, sp)
    with pytest.raises(InputError, match="spacing"):
        eng.execute(img, {"TC": masks["TC"]}, (1.0, 1.0, 1.0))
