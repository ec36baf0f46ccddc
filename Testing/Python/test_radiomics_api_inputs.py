"""The radiomics engine's Python API, called directly as researchers will (issue 16, part 5):
SimpleITK images with their geometry accepted; label maps as masks, probability maps, lists,
missing or (z, y, x)-ordered spacing and odd presets refused with one clear message; a preset
dict accepted."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from hrpqct.errors import InputError
from hrpqct.radiomics.engine import MultiRegionExtractor, pyradiomics_execute
from hrpqct.radiomics.presets import load_preset
from hrpqct.radiomics.tables import extract_scan

SMALL = {"setting": {"binWidth": 25, "force2D": True, "force2Ddimension": 0},
         "imageType": {"Original": {}},
         "featureClass": {"firstorder": ["Mean", "Energy"], "shape2D": ["PixelSurface"]}}


@pytest.fixture(scope="module")
def engine():
    return MultiRegionExtractor(SMALL)


def _slice(seed=0):
    rng = np.random.default_rng(seed)
    img = rng.normal(100, 40, (40, 50)).astype(np.float32)
    lab = np.zeros((40, 50), np.uint8)
    lab[5:20, 5:25] = 1
    lab[22:35, 10:40] = 2
    return img, lab


def test_preset_dict_is_accepted_and_equals_the_same_file(tmp_path):
    import yaml

    p = tmp_path / "small.yaml"
    p.write_text(yaml.safe_dump(SMALL), encoding="utf-8")
    a, b = load_preset(SMALL), load_preset(p)
    assert a.name == "custom" and a.digest == b.digest and a.feature_names() == b.feature_names()


@pytest.mark.parametrize("bad,message", [
    (["paper"], "preset must be 'paper' or '3d', a parameter file path, a dict of PyRadiomics "
                "parameters or a Preset; got a list"),
    (3, "got a int"),
    ({"settings": {}}, r"preset dict: unknown section\(s\) \['settings'\]"),
    ({"featureClass": {"glcm": ["NoSuchFeature"]}},
     "preset dict: PyRadiomics rejected the parameters: Feature Class glcm contains "
     "unrecognized features"),
])
def test_odd_presets_are_refused(bad, message):
    with pytest.raises(InputError, match=message):
        load_preset(bad)


def test_simpleitk_image_brings_its_spacing(engine):
    img, lab = _slice()
    sitk_img = sitk.GetImageFromArray(img)
    sitk_img.SetSpacing((0.5, 0.25))
    mask = sitk.GetImageFromArray((lab == 1).astype(np.uint8))
    mask.CopyInformation(sitk_img)
    got = engine.execute(sitk_img, {"A": mask})
    want = engine.execute(img, {"A": lab == 1}, (0.5, 0.25))
    assert got["A"].features == want["A"].features
    assert got["A"].features["original_shape2D_PixelSurface"] == pytest.approx(300 * 0.125)
    with pytest.raises(InputError, match=r"spacing \(1.0, 1.0\) disagrees with the image's own "
                                         r"spacing \(0.5, 0.25\)"):
        engine.execute(sitk_img, {"A": lab == 1}, (1.0, 1.0))
    off = sitk.GetImageFromArray((lab == 1).astype(np.uint8))  # default spacing 1, 1
    with pytest.raises(InputError, match="mask of region 'A' is not on the image's grid"):
        engine.execute(sitk_img, {"A": off})


def test_label_map_as_a_region_mask_is_refused(engine):
    img, lab = _slice()
    with pytest.raises(InputError, match=r"mask of region 'bone' holds several labels \(1, 2\): an "
                                         "integer label map would merge them into one region"):
        engine.execute(img, {"bone": lab}, (1.0, 1.0))
    # one label value (0/k) is one region, as before
    one = np.where(lab == 2, 2, 0)
    assert engine.execute(img, {"B": one}, (1.0, 1.0))["B"].features == \
        engine.execute(img, {"B": lab == 2}, (1.0, 1.0))["B"].features


def test_probability_map_is_refused(engine):
    img, lab = _slice()
    prob = np.where(lab == 1, 0.8, 0.1).astype(np.float32)
    with pytest.raises(InputError, match=r"mask of region 'A' holds fractional values \(0.1 to "
                                         r"0.8\): a probability map\? Pass a boolean mask"):
        engine.execute(img, {"A": prob}, (1.0, 1.0))
    with pytest.raises(InputError, match="fractional values"):
        pyradiomics_execute(img, {"A": prob}, (1.0, 1.0), preset=SMALL)


@pytest.mark.parametrize("call,message", [
    (lambda e, img, m: e.execute(img.tolist(), {"A": m}, (1.0, 1.0)),
     r"the image must be a numpy array, a SimpleITK image or an hrpqct Volume, not a list"),
    (lambda e, img, m: e.execute(img, {"A": m.tolist()}, (1.0, 1.0)),
     r"the mask of region 'A' must be a numpy array, .* not a list"),
    (lambda e, img, m: e.execute(img, m, (1.0, 1.0)),
     r"masks must be a dict region name -> mask, not a single image; wrap it"),
    (lambda e, img, m: e.execute(img, [m], (1.0, 1.0)),
     r"masks must be a dict region name -> boolean mask, not a list"),
    (lambda e, img, m: e.execute(img, {"A": m}),
     r"spacing is missing: a numpy image carries no pixel size; pass spacing=\(x, y\) in mm"),
    (lambda e, img, m: e.execute(img, {"A": m}, None),
     r"spacing is missing"),
    (lambda e, img, m: e.execute(img, {"A": m}, (1.0, 1.0, 1.0)),
     r"spacing \(1.0, 1.0, 1.0\) has 3 values but the image is 2D"),
    (lambda e, img, m: e.execute(img, {"A": m}, (1.0, -1.0)),
     r"must be positive, finite mm"),
    (lambda e, img, m: e.execute(img, {"A": m}, 0.5),
     r"spacing of the image must be 2 numbers in mm"),
    (lambda e, img, m: e.execute(img, {"A": m[:10]}, (1.0, 1.0)),
     r"mask of region 'A' has shape \(10, 50\), image \(40, 50\)"),
])
def test_confusing_inputs_get_one_clear_message(engine, call, message):
    img, lab = _slice()
    with pytest.raises(InputError, match=message):
        call(engine, img, lab == 1)


def test_spacing_in_zyx_order_is_refused():
    rng = np.random.default_rng(0)
    img = rng.normal(100, 40, (4, 30, 30)).astype(np.float32)
    lab = np.zeros(img.shape, np.uint8)
    lab[:, 5:20, 5:20] = 1
    # true voxels 0.1 x 0.1 x 0.5 mm, given in array order (z, y, x)
    with pytest.raises(InputError, match=r"spacing \(0.5, 0.1, 0.1\) of the image looks like "
                                         r"\(z, y, x\) order: .* i.e. \(0.1, 0.1, 0.5\)"):
        extract_scan(img, lab, (0.5, 0.1, 0.1), preset=SMALL, regions="TC")
    ok = extract_scan(img, lab, (0.1, 0.1, 0.5), preset=SMALL, regions="TC")
    assert ok["original_shape2D_PixelSurface"].iloc[0] == pytest.approx(225 * 0.01)
    forced = extract_scan(img, lab, (0.5, 0.1, 0.1), preset=SMALL, regions="TC",
                          check_spacing=False)  # a truly non-square scan
    assert forced["original_shape2D_PixelSurface"].iloc[0] == pytest.approx(225 * 0.05)


def test_extract_scan_takes_simpleitk_images():
    rng = np.random.default_rng(1)
    arr = rng.normal(100, 40, (3, 30, 30)).astype(np.float32)
    lab = np.zeros(arr.shape, np.uint8)
    lab[:, 5:20, 5:20] = 1
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing((0.2, 0.2, 0.4))
    limg = sitk.GetImageFromArray(lab)
    limg.CopyInformation(img)
    a = extract_scan(img, limg, preset=SMALL, regions="TC")
    b = extract_scan(arr, lab, (0.2, 0.2, 0.4), preset=SMALL, regions="TC")
    assert a.equals(b)
    limg.SetSpacing((0.3, 0.3, 0.4))
    with pytest.raises(InputError, match="the label map is not on the image's grid"):
        extract_scan(img, limg, preset=SMALL, regions="TC")
