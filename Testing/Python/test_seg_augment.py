"""Training augmentation for other scanners (issue 14, ``train-seg --robust-augment``): each does
what it says, keeps the shapes, and moves or keeps the labels as it should."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hrpqct.method import AUGMENTATION
from hrpqct.regions import SOFT_TISSUE_CLASS, model_class
from hrpqct.seg.dataset import Augment, augment_pair, degrade_resolution, gaussian_blur

S = 96
TC, TT, FC, FT = (model_class(c).label for c in ("TC", "TT", "FC", "FT"))


@pytest.fixture(scope="module")
def pair():
    """A normalised [1, S, S] slice: air 0, limb 0.3 with texture, tibia 0.9 / 0.6, fibula."""
    yy, xx = np.mgrid[:S, :S]
    lab = np.zeros((S, S), np.int64)
    lab[np.hypot(yy - 48, xx - 44) < 36] = SOFT_TISSUE_CLASS
    lab[np.hypot(yy - 46, xx - 40) < 16] = TC
    lab[np.hypot(yy - 46, xx - 40) < 12] = TT
    lab[np.hypot(yy - 60, xx - 66) < 7] = FC
    lab[np.hypot(yy - 60, xx - 66) < 4] = FT
    img = np.zeros((S, S), np.float32)
    img[lab == SOFT_TISSUE_CLASS] = 0.3
    img[lab == TC] = img[lab == FC] = 0.9
    img[lab == TT] = img[lab == FT] = 0.6
    img += 0.05 * np.sin(xx / 2.0) * (lab > 0)  # fine texture
    return torch.from_numpy(img)[None], torch.from_numpy(lab)


def _run(pair, *names, seed=0, **kw):
    img, lab = pair
    aug = Augment().only(*names)
    if kw:
        from dataclasses import replace

        aug = replace(aug, **kw)
    return augment_pair(img.clone(), lab.clone(), aug, torch.Generator().manual_seed(seed), 0.152)


def _hf(img) -> float:
    """High-frequency energy: mean squared horizontal difference."""
    return float(((img[..., 1:] - img[..., :-1]) ** 2).mean())


def test_defaults_are_declared_in_method_and_off_unless_robust(pair):
    aug = Augment()
    assert not aug.robust and aug.resolution_scanners_mm == AUGMENTATION.resolution_scanners_mm
    assert aug.resolution_range_mm == (0.2, 0.8) and aug.radius_prob == AUGMENTATION.radius_prob
    img, lab = pair
    # robust off: the same images as before the robust block existed (4 draws only)
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    a = augment_pair(img.clone(), lab.clone(), aug, g1)
    b = augment_pair(img.clone(), lab.clone(), aug, g2)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert float(torch.rand(1, generator=g1)) == float(torch.rand(1, generator=g2))
    d = Augment(**Augment(robust=True).to_dict())  # JSON-style round trip (lists -> tuples)
    assert d == Augment(robust=True)


def test_intensity_only_augmentations_keep_the_labels_exactly(pair):
    img, lab = pair
    for name in ("resolution", "blur", "motion", "noise", "calib"):
        out, olab = _run(pair, name, seed=1)
        assert out.shape == img.shape and out.dtype == torch.float32
        assert torch.equal(olab, lab), name
        assert not torch.allclose(out, img), name


def test_resolution_removes_fine_detail_and_is_seeded(pair):
    img, _ = pair
    out, _ = _run(pair, "resolution", seed=2, resolution_scanners_mm=(),
                  resolution_range_mm=(0.6, 0.6))
    assert _hf(out) < 0.5 * _hf(img)
    again, _ = _run(pair, "resolution", seed=2, resolution_scanners_mm=(),
                    resolution_range_mm=(0.6, 0.6))
    assert torch.equal(out, again)
    # finer than the model grid (60.7 um < 152 um): nothing to simulate
    assert torch.equal(degrade_resolution(img, 0.0607 / 0.152), img)
    coarse = degrade_resolution(img, 0.8 / 0.152)
    assert coarse.shape == img.shape and _hf(coarse) < _hf(degrade_resolution(img, 2.0))


def test_blur_and_noise_do_what_they_say(pair):
    img, _ = pair
    assert _hf(gaussian_blur(img, 1.5)) < 0.3 * _hf(img)
    assert torch.equal(gaussian_blur(img, 0.0), img)
    out, _ = _run(pair, "noise", seed=4, noise_sd=0.05, noise_grain_px=0.0)
    sd = float((out - img).std())
    assert 0.0 < sd <= 0.05 + 1e-3


def test_motion_adds_a_shifted_ghost(pair):
    img, _ = pair
    out, _ = _run(pair, "motion", seed=5, motion_px=8.0, motion_weight=0.3)
    diff = (out - img).abs()
    assert float(diff.max()) > 0.01 and float(diff.max()) <= 0.3 * float(img.max()) + 1e-6


def test_position_moves_image_and_labels_together(pair):
    img, lab = pair
    out, olab = _run(pair, "position", seed=6, zoom=0.0, shift_fraction=0.15)
    assert out.shape == img.shape and olab.shape == lab.shape
    bright = out[0] > 0.75
    cort = olab == TC
    # the cortex label follows the bright cortex of the image
    assert float((bright & cort).sum()) > 0.6 * float(cort.sum())
    ys, xs = torch.nonzero(lab == TC, as_tuple=True)
    ys2, xs2 = torch.nonzero(olab == TC, as_tuple=True)
    moved = abs(float(ys2.float().mean() - ys.float().mean())) + abs(
        float(xs2.float().mean() - xs.float().mean()))
    assert moved > 1.0
    zoomed, zlab = _run(pair, "position", seed=6, zoom=0.2, shift_fraction=0.0)
    assert int((zlab > 0).sum()) != int((lab > 0).sum())


def test_radius_negative_has_one_small_bone_and_a_background_target(pair):
    img, lab = pair
    out, olab = _run(pair, "radius", seed=7)
    assert int(olab.sum()) == 0  # the whole target is background
    limb_before = int((img[0] > 0.15).sum())
    limb_after = int((out[0] > 0.15).sum())
    assert limb_after < 0.5 * limb_before  # shrunk to radius_zoom (0.6) squared
    # the fibula is painted over: only one bright bone left
    from scipy import ndimage

    _, n = ndimage.label(out[0].numpy() > 0.75)
    _, n0 = ndimage.label(img[0].numpy() > 0.75)
    assert n0 == 2 and n == 1


def test_dataset_passes_the_model_pixel_size(tmp_path):
    from hrpqct.seg.dataset import SliceDataset

    class Cache:
        meta = {"input_spec": {"crop_mm": 97.12, "input_px": 640}}
        input_px = 640

        def __len__(self):
            return 0

    ds = SliceDataset(Cache(), Augment(robust=True))
    assert ds.input_mm == pytest.approx(97.12 / 640)
