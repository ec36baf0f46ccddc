"""DICOM series: rescale slope/intercept applied -> HU, geometry kept, series selection."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hrpqct.errors import CalibrationError, InputError
from hrpqct.io import read_scan
from hrpqct.volume import Calibration

SLOPE, INTERCEPT = 2.0, -1024.0
SPACING = (0.25, 0.3, 0.5)
ORIGIN = (10.0, -20.0, 30.0)


def write_series(folder: Path, hu: np.ndarray, series_uid: str = "1.2.826.0.1.3680043.8.498.1",
                 modality: str = "CT", rescale_type: str | None = "HU") -> list[Path]:
    """Write ``hu`` (z, y, x) as one CT slice per file with rescale tags (GDCM stores raw)."""
    import SimpleITK as sitk

    folder.mkdir(parents=True, exist_ok=True)
    image = sitk.GetImageFromArray(hu.astype(np.int16))
    image.SetSpacing(SPACING)
    image.SetOrigin(ORIGIN)
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    paths = []
    for k in range(hu.shape[0]):
        s = image[:, :, k]
        position = image.TransformIndexToPhysicalPoint((0, 0, k))
        tags = {
            "0008|0060": modality,
            "0008|0016": "1.2.840.10008.5.1.4.1.1.2",  # CT Image Storage
            "0008|0018": f"{series_uid}.{k + 1}",
            "0020|000d": "1.2.826.0.1.3680043.8.498.99",
            "0020|000e": series_uid,
            "0020|0013": str(k + 1),
            "0020|0032": "\\".join(f"{c:.6f}" for c in position),
            "0020|0037": "1\\0\\0\\0\\1\\0",
            "0018|0050": str(SPACING[2]),
            "0028|1052": f"{INTERCEPT:g}",
            "0028|1053": f"{SLOPE:g}",
        }
        if rescale_type is not None:
            tags["0028|1054"] = rescale_type
        for key, value in tags.items():
            s.SetMetaData(key, value)
        path = folder / f"IM{k:04d}"  # no extension, as scanners often write them
        writer.SetFileName(str(path))
        writer.SetImageIO("GDCMImageIO")
        writer.Execute(s)
        paths.append(path)
    return paths


@pytest.fixture()
def hu() -> np.ndarray:
    rng = np.random.default_rng(3)
    # even values so that slope 2 stores them exactly
    return (rng.integers(-500, 1500, size=(5, 12, 10)) * 2).astype(np.int16)


def test_series_folder_reads_as_hu(tmp_path, hu):
    import pydicom

    files = write_series(tmp_path / "series", hu)
    stored = pydicom.dcmread(files[0]).pixel_array
    expected_stored = (hu[0].astype(np.int32) - int(INTERCEPT)) // int(SLOPE)
    np.testing.assert_array_equal(stored, expected_stored)  # the file really holds raw values

    vol = read_scan(tmp_path / "series")
    assert vol.unit == "HU"
    assert vol.shape == (5, 12, 10)
    np.testing.assert_array_equal(vol.array, hu)
    np.testing.assert_allclose(vol.spacing, SPACING, rtol=1e-6)
    np.testing.assert_allclose(vol.origin, ORIGIN, atol=1e-5)
    np.testing.assert_allclose(vol.direction, np.eye(3).ravel(), atol=1e-6)
    assert vol.meta["format"] == "dicom"
    assert vol.meta["files"] == 5
    assert vol.meta["rescale"] == [{"slope": SLOPE, "intercept": INTERCEPT}]
    assert vol.meta["unit_source"] == "RescaleType"


def test_series_progress_and_cancel(tmp_path, hu):
    from hrpqct.errors import Cancelled

    write_series(tmp_path / "series", hu)
    calls = []
    read_scan(tmp_path / "series", progress=lambda done, total: calls.append(done))
    assert calls and calls[-1] == 100
    with pytest.raises(Cancelled):
        read_scan(tmp_path / "series", progress=lambda done, total: False)


def test_one_file_of_a_series_reads_the_whole_series(tmp_path, hu):
    files = write_series(tmp_path / "series", hu)
    vol = read_scan(files[2])
    assert vol.shape == hu.shape
    np.testing.assert_array_equal(vol.array, hu)


def test_unit_from_modality_and_density_requests(tmp_path, hu):
    write_series(tmp_path / "s", hu, rescale_type=None)
    vol = read_scan(tmp_path / "s", unit="native")
    assert vol.unit == "HU" and vol.meta["unit_source"] == "Modality CT"
    with pytest.raises(CalibrationError, match=str(tmp_path / "s")):
        read_scan(tmp_path / "s", unit="mgHA/ccm")
    cal = Calibration(mu_water=0.2464, mu_scaling=8192.0, density_slope=1441.13599,
                      density_intercept=-356.445007)
    dens = read_scan(tmp_path / "s", unit="mgHA/ccm", calibration=cal)
    assert dens.unit == "mgHA/ccm"
    np.testing.assert_allclose(dens.array, cal.hu_to_density(hu), atol=1e-3)


def test_two_series_in_one_folder_is_refused_with_both_ids(tmp_path, hu):
    write_series(tmp_path / "mixed", hu, series_uid="1.2.3.111")
    write_series(tmp_path / "other", hu[:3], series_uid="1.2.3.222")
    for p in (tmp_path / "other").iterdir():
        p.rename(tmp_path / "mixed" / f"B{p.name}")
    with pytest.raises(InputError) as err:
        read_scan(tmp_path / "mixed")
    msg = str(err.value)
    assert str(tmp_path / "mixed") in msg and "1.2.3.111" in msg and "1.2.3.222" in msg
    # one file picks its own series
    vol = read_scan(tmp_path / "mixed" / "BIM0000")
    assert vol.shape == (3, 12, 10)


def test_single_2d_dicom_file_is_refused(tmp_path, hu):
    files = write_series(tmp_path / "one", hu[:1])
    with pytest.raises(InputError, match="2D"):
        read_scan(files[0])


def test_folder_without_dicom_is_refused(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("nothing here", encoding="utf-8")
    with pytest.raises(InputError, match="no DICOM series"):
        read_scan(tmp_path / "empty")
