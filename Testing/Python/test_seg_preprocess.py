"""Preprocessing (crop, clip, min-max, resample) and its inverse back to the native grid."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage

from hrpqct.errors import InputError
from hrpqct.method import PREPROCESSING, SCAN
from hrpqct.seg.preprocess import (CropBox, InputSpec, crop_box, extract_crops, find_limb_box,
                                   labels_to_input, logits_to_labels, normalise, plan_crop,
                                   preprocess_slices, resample_to_input)


def one_hot_logits(labels: np.ndarray, n: int = 6) -> torch.Tensor:
    """[b, y, x] labels -> [b, n, y, x] logits with a margin of 10 for the true class."""
    t = torch.from_numpy(labels.astype(np.int64))
    return torch.nn.functional.one_hot(t, n).permute(0, 3, 1, 2).float() * 10.0


def test_paper_geometry_at_60_7_um():
    spec = InputSpec()
    assert spec.crop_shape((SCAN.voxel_mm, SCAN.voxel_mm)) == (PREPROCESSING.crop_px,) * 2 == (1600, 1600)
    assert spec.input_px == 800
    assert spec.input_mm == pytest.approx(0.1214)
    # other pixel sizes: same physical crop (XtremeCT I: 82 um -> 1184 px), anisotropic allowed
    assert spec.crop_shape((0.082, 0.082)) == (1184, 1184)
    assert spec.crop_shape((0.1, 0.05)) == (1942, 971)  # (ny, nx) from spacing (x, y)


def test_crop_box_centring_and_padding():
    box = crop_box((10.0, 10.0), (8, 8))
    assert box == CropBox(6, 6, 8, 8)
    sl = np.arange(12 * 14, dtype=np.float32).reshape(1, 12, 14)
    # box past the top-left corner: padded there, copied elsewhere
    box = CropBox(-3, -2, 6, 7)
    crop = extract_crops(sl, box, pad_hu=-1000.0)
    assert crop.shape == (1, 6, 7)
    assert (crop[0, :3, :] == -1000).all() and (crop[0, :, :2] == -1000).all()
    np.testing.assert_array_equal(crop[0, 3:, 2:], sl[0, 0:3, 0:5])
    # box past the bottom-right corner
    box = CropBox(9, 10, 5, 6)
    crop = extract_crops(sl, box, pad_hu=-7.0)
    np.testing.assert_array_equal(crop[0, :3, :4], sl[0, 9:12, 10:14])
    assert (crop[0, 3:] == -7).all() and (crop[0, :, 4:] == -7).all()
    with pytest.raises(InputError):
        extract_crops(sl, CropBox(50, 50, 4, 4))


def test_find_limb_box_ignores_small_blobs():
    vol = np.full((10, 200, 240), -1000.0, dtype=np.float32)
    yy, xx = np.mgrid[:200, :240]
    limb = ((yy - 90) / 60.0) ** 2 + ((xx - 130) / 80.0) ** 2 <= 1
    vol[:, limb] = 40.0
    vol[:, 5:15, 5:15] = 500.0  # a small bright object (e.g. the scanner bed), not the limb
    y0, y1, x0, x1 = find_limb_box(vol, step_px=2)
    assert abs(y0 - 30) <= 2 and abs(y1 - 151) <= 2 and abs(x0 - 50) <= 2 and abs(x1 - 211) <= 2
    box, facts = plan_crop(vol, (0.5, 0.5, 0.5), InputSpec(crop_mm=50.0, input_px=50))
    assert (box.ny, box.nx) == (100, 100)
    assert abs(box.y0 + 50 - 90) <= 2 and abs(box.x0 + 50 - 130) <= 2
    assert facts["limb_truncated"] is True  # the limb is 160 px wide, the crop 100
    assert find_limb_box(np.full((2, 20, 20), -1000.0)) is None


def test_normalise_clip_and_min_max_per_slice():
    a = np.array([[[-5000.0, 0.0], [1000.0, 7000.0]], [[3.0, 3.0], [3.0, 3.0]]], dtype=np.float32)
    n = normalise(a.copy(), (-4000.0, 6000.0))
    np.testing.assert_allclose(n[0], [[0.0, 0.4], [0.5, 1.0]], atol=1e-7)
    assert (n[1] == 0).all()  # constant slice -> zeros, no division by zero
    assert n.dtype == np.float32


def test_resample_to_input_bicubic_x2_and_identity():
    spec = InputSpec(crop_mm=1600 * SCAN.voxel_mm, input_px=800)
    rng = np.random.default_rng(0)
    img = ndimage.gaussian_filter(rng.random((1, 1600, 1600)).astype(np.float32), 8)
    x = resample_to_input(img, spec)
    assert tuple(x.shape) == (1, 1, 800, 800) and x.dtype == torch.float32
    # a smooth image: each output pixel ~ the mean of its 2 x 2 block
    blocks = img[0].reshape(800, 2, 800, 2).mean(axis=(1, 3))
    np.testing.assert_allclose(x[0, 0].numpy(), blocks, atol=2e-3)
    same = resample_to_input(img[:, :800, :800], spec)
    np.testing.assert_array_equal(same[0, 0].numpy(), img[0, :800, :800])


def test_preprocess_slices_end_to_end():
    spec = InputSpec(crop_mm=6.4, input_px=32)  # 64 px crop at 0.1 mm -> 32 px input
    sl = np.full((2, 80, 90), -1000.0, dtype=np.float32)
    sl[:, 20:60, 30:70] = 8000.0  # clipped to 6000
    box = crop_box((40, 50), spec.crop_shape((0.1, 0.1)))
    x = preprocess_slices(sl, box, spec)
    assert tuple(x.shape) == (2, 1, 32, 32)
    assert float(x.min()) == 0.0 and float(x.max()) == 1.0  # bicubic overshoot clamped
    assert float(x[0, 0, 16, 16]) == pytest.approx(1.0, abs=1e-4)  # inside the clipped block


def test_exact_inverse_on_the_crop_grid():
    """Logits that are one-hot labels on the crop grid come back exactly, in place, 0 outside."""
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 6, size=(3, 50, 70)).astype(np.uint8)
    for box in (CropBox(5, 7, 30, 40), CropBox(-4, 50, 30, 40)):
        crop = np.zeros((3, box.ny, box.nx), np.uint8)
        (sy, sx), (cy, cx) = box.overlap(labels.shape[1:])
        crop[:, cy, cx] = labels[:, sy, sx]
        for mode in ("bilinear", "nearest"):
            back = logits_to_labels(one_hot_logits(crop), box, labels.shape[1:], mode)
            assert back.shape == labels.shape and back.dtype == np.uint8
            np.testing.assert_array_equal(back[:, sy, sx], labels[:, sy, sx])
            outside = np.ones(labels.shape[1:], bool)
            outside[sy, sx] = False
            assert (back[:, outside] == 0).all()


@pytest.mark.parametrize("mode", ["nearest", "bilinear"])
def test_label_map_round_trip_identical_in_the_interior(mode):
    """Labels -> network grid (x2 down, nearest) -> back (x2 up): identical away from edges."""
    spec = InputSpec(crop_mm=12.8, input_px=64, upsample=mode)  # 128 px crop at 0.1 mm
    yy, xx = np.mgrid[:150, :160]
    lab = np.zeros((150, 160), np.uint8)
    lab[((yy - 75) / 50.0) ** 2 + ((xx - 80) / 55.0) ** 2 <= 1] = 5
    lab[((yy - 70) / 25.0) ** 2 + ((xx - 70) / 25.0) ** 2 <= 1] = 1
    lab[((yy - 70) / 18.0) ** 2 + ((xx - 70) / 18.0) ** 2 <= 1] = 2
    lab[((yy - 95) / 8.0) ** 2 + ((xx - 115) / 8.0) ** 2 <= 1] = 3
    lab[((yy - 95) / 5.0) ** 2 + ((xx - 115) / 5.0) ** 2 <= 1] = 4
    labels = lab[None]
    box = crop_box((75, 80), spec.crop_shape((0.1, 0.1)))
    small = labels_to_input(labels, box, spec)
    assert small.shape == (1, 64, 64)
    back = logits_to_labels(one_hot_logits(small), box, labels.shape[1:], mode)
    # interior: pixels whose 5 x 5 neighbourhood has one label, inside the crop
    (sy, sx), _ = box.overlap(labels.shape[1:])
    uniform = ndimage.maximum_filter(lab, 5) == ndimage.minimum_filter(lab, 5)
    inside = np.zeros_like(uniform)
    inside[sy, sx] = True
    interior = uniform & inside
    assert interior.sum() > 0.7 * inside.sum()
    np.testing.assert_array_equal(back[0][interior], lab[interior])
    assert (back[0] != lab).sum() < 0.05 * lab.size


def test_input_spec_round_trips_through_a_dict():
    spec = InputSpec(crop_mm=80.0, input_px=512, upsample="nearest", antialias=False)
    assert InputSpec.from_dict({**spec.to_dict(), "unknown": 1}) == spec
    with pytest.raises(InputError):
        InputSpec(upsample="cubic")
