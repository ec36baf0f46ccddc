"""The engine's fast path against PyRadiomics' own pieces: matrices vs ``radiomics.cMatrices``,
discretisation vs ``numpy.digitize``, sums and percentiles vs numpy, and the fallbacks."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pytest

pytest.importorskip("radiomics")
pytest.importorskip("numba")

from radiomics import cMatrices, imageoperations  # noqa: E402

from hrpqct.radiomics import fast, kernels  # noqa: E402
from hrpqct.radiomics.engine import MultiRegionExtractor, check_region  # noqa: E402
from hrpqct.radiomics.synthetic import synthetic_slice  # noqa: E402
from hrpqct.regions import RADIOMICS_REGIONS, region  # noqa: E402

from test_radiomics_engine import assert_parity  # noqa: E402


@dataclass
class _Reg:  # what fast.Layout reads of the engine's regions
    mask: np.ndarray
    bb: np.ndarray
    crop_mask: np.ndarray


def _regions(masks):
    out = []
    for m in masks:
        bb, reason, _ = check_region(m, {"minimumROIDimensions": 1})
        assert reason is None
        lo, hi = bb[0::2][::-1], bb[1::2][::-1]
        crop = tuple(slice(int(a), int(b) + 1) for a, b in zip(lo, hi))
        out.append(_Reg(m, bb, m[crop]))
    return out


def _crop(a, m):
    idx = np.nonzero(m)
    return a[tuple(slice(i.min(), i.max() + 1) for i in idx)]


def _random_case(rng, shape, n_regions, p_fill):
    """Random non-overlapping regions (one a sparse speckle) and a float32 image."""
    owner = rng.integers(0, n_regions + 1, shape)
    masks = [(owner == k + 1) & (rng.random(shape) < p_fill) for k in range(n_regions)]
    image = (rng.normal(0, 60, shape) + 40 * np.arange(shape[-1])).astype(np.float32)
    return image, [m for m in masks if m.sum() >= 2 and check_region(m, {
        "minimumROIDimensions": 1})[1] is None]


@pytest.mark.parametrize("shape,settings", [
    ((31, 40), {"force2D": True, "binWidth": 25}),
    ((31, 40), {"force2D": True, "binWidth": 25, "distances": [1, 2], "gldm_a": 1}),
    ((5, 17, 19), {"binWidth": 40}),
    ((5, 17, 19), {"binCount": 12, "distances": [1, 3]}),
])
def test_matrices_equal_pyradiomics_c(shape, settings):
    rng = np.random.default_rng(sum(shape))
    for p_fill in (1.0, 0.6, 0.15):  # solid, holed and sparse regions
        image, masks = _random_case(rng, shape, 3, p_fill)
        regs = _regions(masks)
        dist = max(settings.get("distances", [1]))
        layout = fast.Layout(regs, shape, pad=dist)
        assert sum(len(layer.regions) for layer in layout.layers) == len(regs)
        for layer in layout.layers:
            fi = fast.FastImage(layer, image, settings, fast.FAST_CLASSES)
            for k, reg in enumerate(layer.regions):
                m = reg.mask
                crop_img, crop_m = _crop(image, m), _crop(m, m)
                binned, edges = imageoperations.binImage(crop_img, crop_m, **settings)
                assert np.array_equal(fi.bins[k].binned, binned)
                ng = fi.bins[k].ng
                assert ng == binned[crop_m].max()
                f2d, f2dd = settings.get("force2D", False), 0
                d = np.array(settings.get("distances", [1]))
                ref_glcm, ref_angles = cMatrices.calculate_glcm(binned, crop_m, d, ng, f2d, f2dd)
                ref_glrlm, ref_rl_angles = cMatrices.calculate_glrlm(
                    binned, crop_m, ng, int(max(binned.shape)), f2d, f2dd)
                ref_glszm = cMatrices.calculate_glszm(binned, crop_m, ng, int(crop_m.sum()),
                                                      f2d, f2dd)
                ref_ngtdm = cMatrices.calculate_ngtdm(binned, crop_m, d, ng, f2d, f2dd)
                ref_gldm = cMatrices.calculate_gldm(binned, crop_m, d, ng,
                                                    settings.get("gldm_a", 0), f2d, f2dd)
                raw = fi.raw[k]
                assert np.array_equal(raw["glcm"][0], ref_glcm)
                assert np.array_equal(raw["glcm"][1], ref_angles)
                # the fast GLRLM ends after its longest run (PyRadiomics deletes the empty rest)
                nrun = raw["glrlm"][0].shape[2]
                assert np.array_equal(raw["glrlm"][0], ref_glrlm[:, :, :nrun])
                assert not ref_glrlm[:, :, nrun:].any()
                assert np.array_equal(raw["glrlm"][1], ref_rl_angles)
                assert np.array_equal(raw["glszm"], ref_glszm)
                assert np.array_equal(raw["ngtdm"], ref_ngtdm)  # sums in PyRadiomics' order
                assert np.array_equal(raw["gldm"], ref_gldm)


def test_glrlm_angle_with_single_pixel_lines_is_zeroed_as_pyradiomics():
    # two pixels on one row, nothing else: along y (and the diagonals) every line holds one
    # pixel, so PyRadiomics zeroes those angles; along x the pixels share a line (run of 1 + 1)
    m = np.zeros((4, 6), bool)
    m[1, 1] = m[1, 4] = True
    m[2, 2] = True
    image = np.array(np.arange(24).reshape(4, 6) * 30, np.float32)
    settings = {"binWidth": 25}
    reg = _regions([m])
    fi = fast.FastImage(fast.Layout(reg, m.shape).layers[0], image, settings, {"glrlm"})
    crop_img, crop_m = _crop(image, m), _crop(m, m)
    binned, _ = imageoperations.binImage(crop_img, crop_m, **settings)
    ref, _ = cMatrices.calculate_glrlm(binned, crop_m, int(binned.max()), 4, False, 0)
    nrun = fi.raw[0]["glrlm"][0].shape[2]
    assert np.array_equal(fi.raw[0]["glrlm"][0], ref[:, :, :nrun]) and not ref[:, :, nrun:].any()
    assert (ref.sum(axis=(0, 1, 2)) == 0).any()  # some angle zeroed


def test_digitize_matches_numpy_with_pyradiomics_edges():
    rng = np.random.default_rng(0)
    for dtype in (np.float32, np.float64):
        for bw in (25, 0.5, 400):
            v = (rng.normal(0, 300, 5000) - 1013.7).astype(dtype)
            v[:10] = v[0] - (v[0] % bw)  # values exactly on an edge
            edges = np.asarray(imageoperations.getBinEdges(
                np.array([v.min(), v.max()], dtype=dtype), binWidth=bw))
            out = np.zeros(v.size, np.int32)
            kernels.digitize(v.astype(np.float64), edges.astype(np.float64),
                             np.arange(v.size), out)
            assert np.array_equal(out, np.digitize(v, edges))


@pytest.mark.parametrize("n", [1, 2, 7, 8, 9, 127, 128, 129, 1000, 8193, 100_003])
def test_pairwise_sum_is_numpys(n):
    rng = np.random.default_rng(n)
    x = rng.normal(3, 50, n)
    c, (a, b) = float(x.mean()), np.quantile(x, [0.1, 0.9])
    d = x - c
    inside = (x >= a) & (x <= b)
    refs = [x, (x + 2.0) ** 2, d * d, (d * d) * d, np.abs((d * d) * d), (d * d) * (d * d),
            np.abs(d), np.where(inside, x, 0.0), np.where(inside, np.abs(d), 0.0)]
    for mode, ref in enumerate(refs):
        cc = 2.0 if mode == 1 else c
        assert kernels.pairwise_sum(x, mode, cc, a, b) == np.sum(ref.reshape(1, -1), 1)[0]
    for modes, cc in (([0, 1], 2.0), ([2, 3, 4, 5, 6], c)):  # several terms, one tree walk
        got = kernels.pairwise_sums(x, np.array(modes, np.int64), cc)
        assert got.tolist() == [np.sum(refs[m].reshape(1, -1) if m != 1 else
                                       ((x + cc) ** 2).reshape(1, -1), 1)[0] for m in modes]


def test_order_statistics_and_percentiles_exact():
    rng = np.random.default_rng(1)
    for trial in range(60):
        n = int(rng.integers(1, 3000))
        x = [rng.normal(0, 1, n), rng.integers(0, 10, n).astype(float),
             np.exp(rng.normal(0, 6, n)), np.full(n, 3.0)][trial % 4]
        ranks = fast._needed_indices(n, (10, 25, 75, 90))
        got = fast._order_statistics(x, ranks)
        srt = np.sort(x)
        assert all(got[k] == srt[k] for k in ranks)
        pct = fast._percentiles(got, n, (10, 25, 75, 90))
        for q in (10, 25, 75, 90):
            assert pct[q] == np.nanpercentile(x.reshape(1, -1), q, axis=1)[0], (n, q)


def test_skewness_of_symmetric_values_matches_pyradiomics(tmp_path):
    # m3 is ~1e-13 of sum |d^3|: the guard recomputes it with numpy.power
    import yaml

    rng = np.random.default_rng(5)
    half = rng.normal(0, 50, 400).astype(np.float32)
    img = np.zeros((30, 40), np.float32)
    m = np.zeros((30, 40), bool)
    m[5:25, 0:40] = True
    img[m] = np.concatenate([half, -half])
    f = tmp_path / "fo.yaml"
    f.write_text(yaml.safe_dump({"setting": {"force2D": True},
                                 "imageType": {"Original": {}},
                                 "featureClass": {"firstorder": None, "glcm": None}}),
                 encoding="utf-8")
    from hrpqct.radiomics.engine import pyradiomics_execute

    ours = MultiRegionExtractor(f).execute(img, {"r": m}, (1.0, 1.0))
    ref = pyradiomics_execute(img, {"r": m}, (1.0, 1.0), f)
    assert_parity(ours, ref, expect_ok=["r"])
    assert abs(float(ref["r"].features["original_firstorder_Skewness"])) < 1e-6


@pytest.fixture(scope="module")
def slice64():
    img, lab = synthetic_slice(64, 1.0, seed=11)
    return img, {c: lab == region(c).label for c in RADIOMICS_REGIONS}


def _same(a, b):
    for name in a:
        assert a[name].reason == b[name].reason
        assert list(a[name].features) == list(b[name].features)
        for k, x in a[name].features.items():
            x, y = float(x), float(b[name].features[k])
            assert (math.isnan(x) and math.isnan(y)) or abs(x - y) <= 1e-9 * max(abs(x), abs(y))


def test_fallbacks_without_numba_and_for_non_finite_values(slice64, monkeypatch):
    img, masks = slice64
    ref = MultiRegionExtractor("paper", fast=False).execute(img, masks, (1.0, 1.0))
    calls = []
    orig = fast.FastImage.__init__

    def spy(self, *a, **k):
        calls.append(1)
        orig(self, *a, **k)

    monkeypatch.setattr(fast.FastImage, "__init__", spy)
    _same(MultiRegionExtractor("paper").execute(img, masks, (1.0, 1.0)), ref)
    assert calls  # the fast path ran
    calls.clear()
    monkeypatch.setattr(fast, "available", lambda: False)
    _same(MultiRegionExtractor("paper").execute(img, masks, (1.0, 1.0)), ref)
    assert not calls  # no numba: the per-region path only
    monkeypatch.undo()
    # an infinite value: regions whose filtered values are not finite take the per-region path
    # (what PyRadiomics makes of them, an error here, is then the same as without the fast path)
    bad = img.copy()
    y, x = np.argwhere(masks["MT"])[0]
    bad[y, x] = np.inf
    a = MultiRegionExtractor("paper").execute(bad, masks, (1.0, 1.0))
    b = MultiRegionExtractor("paper", fast=False).execute(bad, masks, (1.0, 1.0))
    _same(a, b)


def test_region_dependent_filters_use_the_per_region_path(slice64, tmp_path, monkeypatch):
    import yaml

    img, masks = slice64
    f = tmp_path / "resampled.yaml"
    f.write_text(yaml.safe_dump({
        "setting": {"force2D": True, "resampledPixelSpacing": [0.8, 0.8],
                    "interpolator": "sitkLinear"},
        "imageType": {"Original": {}}, "featureClass": {"firstorder": None, "glcm": None}}),
        encoding="utf-8")

    def boom(*a, **k):
        raise AssertionError("fast path used with resampling")

    monkeypatch.setattr(fast.FastImage, "__init__", boom)
    from hrpqct.radiomics.engine import pyradiomics_execute

    sub = {k: masks[k] for k in ("TT", "AT")}
    assert_parity(MultiRegionExtractor(f).execute(img, sub, (1.0, 1.0)),
                  pyradiomics_execute(img, sub, (1.0, 1.0), f), expect_ok=["TT", "AT"])


def test_lbp_on_the_regions_box_equals_pyradiomics(tmp_path):
    # small regions in a large image: LBP-2D is computed on their box + margin only
    import yaml

    from hrpqct.radiomics.engine import pyradiomics_execute

    rng = np.random.default_rng(8)
    img = rng.normal(0, 100, (120, 150)).astype(np.float32)
    a = np.zeros(img.shape, bool)
    a[40:55, 60:80] = True
    b = np.zeros(img.shape, bool)
    b[56:70, 62:75] = True
    f = tmp_path / "lbp.yaml"
    f.write_text(yaml.safe_dump({"setting": {"force2D": True},
                                 "imageType": {"LBP2D": {"binWidth": 1, "lbp2DRadius": 2}},
                                 "featureClass": {"firstorder": None, "glszm": None}}),
                 encoding="utf-8")
    masks = {"a": a, "b": b}
    assert_parity(MultiRegionExtractor(f).execute(img, masks, (1.0, 1.0)),
                  pyradiomics_execute(img, masks, (1.0, 1.0), f), expect_ok=["a", "b"])


def test_fast_nanmean_is_numpys():
    rng = np.random.default_rng(4)
    for shape, axis in [((1, 4), 1), ((1, 13), 1), ((1, 1, 1, 13), (1, 2, 3)), ((3, 5, 7), 1),
                        ((2, 300), 1), ((1, 1), 1)]:
        a = rng.normal(0, 1, shape) * 10.0 ** rng.integers(-3, 4, shape)
        for arr in (a, np.swapaxes(a, 0, -1).copy().swapaxes(0, -1)):  # also non-contiguous
            ours, ref = fast._nanmean(arr, axis), np.nanmean(arr, axis)
            assert np.array_equal(ours, ref) and np.shape(ours) == np.shape(ref)
    b = np.array([[1.0, np.nan, 3.0]])
    assert np.array_equal(fast._nanmean(b, 1), np.nanmean(b, 1))


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int16])
def test_gather_and_digitize_bins(dtype):
    rng = np.random.default_rng(3)
    flat = (rng.normal(0, 300, 5000)).astype(dtype)
    idx = np.sort(rng.choice(flat.size, 700, replace=False))
    out = np.empty(idx.size)
    lo, hi, finite = kernels.gather(flat, idx, out)
    ref = flat[idx]
    assert finite and np.array_equal(out, ref.astype(np.float64))
    assert (lo, hi) == (float(ref.min()), float(ref.max()))
    edges = np.arange(np.floor(lo / 25) * 25, hi + 25, 25.0)
    full, bins = np.zeros(idx.size, np.int32), np.empty(idx.size, np.int32)
    kernels.digitize_bins(out, edges, np.arange(idx.size), full, bins)
    assert np.array_equal(bins, np.digitize(out, edges)) and np.array_equal(full, bins)
    if dtype is not np.int16:
        for bad in (np.nan, np.inf, -np.inf):
            f2 = flat.copy()
            f2[idx[5]] = bad
            assert not kernels.gather(f2, idx, out)[2]
