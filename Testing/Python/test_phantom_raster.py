"""The scanline polygon fill equals exact point-in-polygon tests at pixel centres."""

import numpy as np
import pytest
from matplotlib.path import Path

from hrpqct.phantom.raster import fill_polygon, offset_polygon


def _reference(rc, shape):
    rr, cc = np.mgrid[: shape[0], : shape[1]]
    pts = np.column_stack([rr.ravel(), cc.ravel()]).astype(float)
    return Path(rc).contains_points(pts).reshape(shape)


@pytest.mark.parametrize("seed", range(6))
def test_fill_matches_point_in_polygon(seed):
    rng = np.random.default_rng(seed)
    th = np.sort(rng.uniform(0, 2 * np.pi, 40))
    r = rng.uniform(8, 25, 40)
    rc = np.column_stack([30.3 + r * np.sin(th), 28.7 + r * np.cos(th)])  # star-shaped, off-grid
    shape = (64, 60)
    got = fill_polygon(rc, shape)
    ref = _reference(rc, shape)
    assert got.sum() > 200
    assert np.array_equal(got, ref)


def test_fill_clips_to_image_and_ors_into_out():
    rc = np.array([[-5.5, -5.5], [-5.5, 10.5], [10.5, 10.5], [10.5, -5.5]])
    out = np.zeros((8, 8), dtype=bool)
    out[7, 7] = True
    fill_polygon(rc, (8, 8), out)
    assert out.all()


def test_offset_polygon_circle():
    th = np.linspace(0, 2 * np.pi, 720, endpoint=False)
    circle = np.column_stack([10 * np.cos(th), 10 * np.sin(th)])
    inner = offset_polygon(circle, 1.5)
    assert np.allclose(np.hypot(*inner.T), 8.5, atol=1e-3)
    outer = offset_polygon(circle[::-1], -2.0)  # orientation does not matter
    assert np.allclose(np.hypot(*outer.T), 12.0, atol=1e-3)
