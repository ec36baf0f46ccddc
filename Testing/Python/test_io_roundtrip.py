"""Round trips through every writer: values, voxel type, spacing, origin, direction, unit."""

from __future__ import annotations

import os

import numpy as np
import pytest

from hrpqct.io import read_labelmap, read_scan, write_image, write_labelmap
from hrpqct.volume import Calibration, Volume

CAL = Calibration(mu_water=0.2464, mu_scaling=8192.0, density_slope=1441.13599,
                  density_intercept=-356.445007)
TH = 0.3
ROT = np.array([[np.cos(TH), -np.sin(TH), 0.0], [np.sin(TH), np.cos(TH), 0.0], [0.0, 0.0, 1.0]])
SPACING = (0.0607, 0.0607, 0.0607)
ORIGIN = (12.5, -40.25, 7.0)
EXTS = [".nrrd", ".nii", ".nii.gz", ".mha"]


def _geometry_close(a: Volume, b: Volume) -> None:
    assert a.shape == b.shape
    np.testing.assert_allclose(a.spacing, b.spacing, rtol=1e-6)  # NIfTI stores float32
    np.testing.assert_allclose(a.origin, b.origin, atol=1e-5)
    np.testing.assert_allclose(a.direction, b.direction, atol=1e-6)


@pytest.fixture()
def hu_int16() -> Volume:
    rng = np.random.default_rng(1)
    a = rng.integers(-1000, 3000, size=(6, 9, 11)).astype(np.int16)
    return Volume(a, spacing=SPACING, origin=ORIGIN, direction=ROT.ravel(), unit="HU", calibration=CAL)


@pytest.mark.parametrize("ext", EXTS)
def test_image_roundtrip_keeps_values_type_geometry_unit(tmp_path, hu_int16, ext):
    p = write_image(hu_int16, tmp_path / f"scan{ext}")
    assert p.exists() and [f.name for f in tmp_path.iterdir()] == [p.name]  # no temp file left
    back = read_scan(p, unit="native")
    assert back.array.dtype == np.int16
    np.testing.assert_array_equal(back.array, hu_int16.array)
    _geometry_close(back, hu_int16)
    assert back.unit == "HU" and back.meta["unit_source"] == "file"
    assert back.calibration is not None
    for f in ("mu_water", "mu_scaling", "density_slope", "density_intercept"):
        assert getattr(back.calibration, f) == pytest.approx(getattr(CAL, f), rel=1e-7)
    # the recorded calibration serves a density request
    dens = read_scan(p, unit="mgHA/ccm")
    np.testing.assert_allclose(dens.array, CAL.hu_to_density(hu_int16.array), atol=2e-3)


@pytest.mark.parametrize("ext", EXTS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.uint16])
def test_image_roundtrip_other_types(tmp_path, ext, dtype):
    rng = np.random.default_rng(2)
    a = (rng.random((3, 5, 4)) * 1000).astype(dtype)
    v = Volume(a, spacing=(0.5, 0.25, 2.0), origin=(-1.0, 2.0, -3.0), unit="mgHA/ccm", calibration=CAL)
    back = read_scan(write_image(v, tmp_path / f"x{ext}"), unit="native")
    assert back.array.dtype == dtype
    np.testing.assert_array_equal(back.array, a)
    assert back.unit == "mgHA/ccm"
    _geometry_close(back, v)


def test_foreign_file_is_assumed_hu_unless_told(tmp_path):
    import SimpleITK as sitk

    p = tmp_path / "foreign.nii.gz"
    sitk.WriteImage(sitk.GetImageFromArray(np.full((2, 3, 4), 100, np.int16)), str(p))
    v = read_scan(p)
    assert v.unit == "HU" and v.meta["unit_source"] == "assumed (HU)" and v.calibration is None
    n = read_scan(p, unit="native", assume_unit="native")
    assert n.unit == "native"
    d = read_scan(p, unit="HU", assume_unit="native", calibration=CAL)  # Scanco raw values
    np.testing.assert_allclose(d.array, 100 * 1000.0 / (CAL.mu_water * CAL.mu_scaling) - 1000.0, atol=1e-3)


def test_compression_is_on_by_default(tmp_path):
    a = np.zeros((20, 64, 64), np.int16)
    v = Volume(a, unit="HU")
    for ext in (".nrrd", ".mha"):
        small = write_image(v, tmp_path / f"c{ext}")
        big = write_image(v, tmp_path / f"u{ext}", compress=False)
        assert os.path.getsize(small) * 20 < os.path.getsize(big)
        np.testing.assert_array_equal(read_scan(small, unit="native").array, a)


@pytest.mark.parametrize("ext", EXTS)
def test_labelmap_roundtrip(tmp_path, ext):
    rng = np.random.default_rng(4)
    a = rng.integers(0, 8, size=(5, 7, 6)).astype(np.int64)  # any integer type in
    v = Volume(a, spacing=SPACING, origin=ORIGIN, direction=ROT.ravel(), unit="label")
    back = read_labelmap(write_labelmap(v, tmp_path / f"labels{ext}"))
    assert back.unit == "label" and back.array.dtype == np.uint8  # smallest type out
    np.testing.assert_array_equal(back.array, a)
    _geometry_close(back, v)
    # a scan reader sees the recorded unit and refuses to call labels HU
    assert read_scan(tmp_path / f"labels{ext}", unit="native").unit == "label"


def test_labelmap_wider_than_a_byte(tmp_path):
    a = np.zeros((2, 3, 4), np.int32)
    a[0, 0, 0] = 300
    back = read_labelmap(write_labelmap(Volume(a, unit="label"), tmp_path / "wide.nrrd"))
    assert back.array.dtype == np.uint16 and int(back.array.max()) == 300


def test_interrupted_write_leaves_old_file_and_no_temp(tmp_path, hu_int16, monkeypatch):
    import SimpleITK as sitk

    target = tmp_path / "scan.nrrd"
    target.write_bytes(b"previous complete file")

    def half_write(image, path, *args, **kwargs):
        with open(path, "wb") as fh:
            fh.write(b"NRRD0004\n half a file")
        raise RuntimeError("disk full")

    monkeypatch.setattr(sitk, "WriteImage", half_write)
    with pytest.raises(Exception, match="disk full"):
        write_image(hu_int16, target)
    assert target.read_bytes() == b"previous complete file"
    assert [f.name for f in tmp_path.iterdir()] == ["scan.nrrd"]


def test_atomic_path_keeps_extension_and_cleans_up(tmp_path):
    from hrpqct.io import atomic_path

    with pytest.raises(KeyError):
        with atomic_path(tmp_path / "a.nii.gz") as tmp:
            assert tmp.parent == tmp_path and tmp.name.endswith(".nii.gz") and tmp.name.startswith(".a.")
            tmp.write_bytes(b"partial")
            raise KeyError("boom")
    assert list(tmp_path.iterdir()) == []
    with atomic_path(tmp_path / "a.nii.gz", verify=False) as tmp:
        tmp.write_bytes(b"done")
    assert (tmp_path / "a.nii.gz").read_bytes() == b"done"
    assert [f.name for f in tmp_path.iterdir()] == ["a.nii.gz"]


def test_progress_and_cancel(tmp_path, hu_int16):
    from hrpqct.errors import Cancelled

    p = write_image(hu_int16, tmp_path / "scan.nrrd")
    calls = []
    read_scan(p, progress=lambda done, total: calls.append((done, total)))
    assert calls[0] == (0, 100) and calls[-1] == (100, 100)
    with pytest.raises(Cancelled, match="scan.nrrd"):
        read_scan(p, progress=lambda done, total: False)


def test_format_detected_by_content_without_extension(tmp_path, hu_int16):
    p = write_image(hu_int16, tmp_path / "scan.nrrd")
    bare = tmp_path / "scan_without_extension"
    p.rename(bare)
    back = read_scan(bare, unit="native")
    np.testing.assert_array_equal(back.array, hu_int16.array)


def test_reading_shares_the_readers_buffer_instead_of_copying(tmp_path):
    # a full scan is 1.7 GB as int16: reading must not hold two copies at once
    import gc
    import tracemalloc

    from hrpqct.io import read_scan, write_image
    from hrpqct.volume import Volume

    arr = (np.arange(40 * 256 * 256) % 3000 - 1000).astype(np.int16).reshape(40, 256, 256)
    write_image(Volume(arr, spacing=(0.1, 0.1, 0.2), unit="HU"), tmp_path / "s.nrrd")
    read_scan(tmp_path / "s.nrrd")  # imports and caches outside the measurement
    tracemalloc.start()
    try:
        vol = read_scan(tmp_path / "s.nrrd")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 0.25 * arr.nbytes  # numpy allocated no voxel copy (the reader's buffer is C++)
    assert np.array_equal(vol.array, arr) and vol.array.flags.writeable
    view = vol.array[5:7]
    view[0, 0, 0] = 1234  # writable: the buffer is this volume's own
    del vol
    gc.collect()
    assert view[0, 0, 0] == 1234 and np.array_equal(view[1], arr[6])  # alive while a view is
