"""Bad input raises InputError (or a subclass) whose message names the file and the problem."""

from __future__ import annotations

import numpy as np
import pytest

from hrpqct.errors import CalibrationError, GeometryError, InputError
from hrpqct.io import read_labelmap, read_pair, read_scan, write_image, write_labelmap
from hrpqct.volume import Volume


def _sitk_write(array, path, spacing=None, origin=None):
    import SimpleITK as sitk

    img = sitk.GetImageFromArray(array)
    if spacing is not None:
        img.SetSpacing(spacing)
    if origin is not None:
        img.SetOrigin(origin)
    sitk.WriteImage(img, str(path))
    return path


def test_missing_file(tmp_path):
    p = tmp_path / "nope.nii.gz"
    with pytest.raises(InputError, match=f"{p}: no such file"):
        read_scan(p)
    with pytest.raises(InputError, match="no such file"):
        read_labelmap(p)


def test_empty_file(tmp_path):
    p = tmp_path / "empty.aim"
    p.write_bytes(b"")
    with pytest.raises(InputError, match=f"{p}: the file is empty"):
        read_scan(p)


@pytest.mark.parametrize("name,content", [
    ("junk.aim", bytes(range(256)) * 80),
    ("hello.isq", b"hello, not a scan\n" * 40),
    ("junk.rsq", b"\x00" * 4096),
])
def test_non_scanco_file_with_scanco_extension(tmp_path, name, content):
    p = tmp_path / name
    p.write_bytes(content)
    with pytest.raises(InputError, match=f"{p}: not a readable Scanco"):
        read_scan(p)


def test_nifti_renamed_to_aim(tmp_path):
    src = _sitk_write(np.zeros((3, 4, 5), np.int16), tmp_path / "x.nii")
    p = tmp_path / "x.aim"
    src.rename(p)
    with pytest.raises(InputError, match=str(p)):
        read_scan(p, unit="native")


def test_unknown_format(tmp_path):
    p = tmp_path / "notes.txt"
    p.write_text("just text, no image here\n" * 30, encoding="utf-8")
    with pytest.raises(InputError, match=f"{p}: unknown image format"):
        read_scan(p)


def test_truncated_nrrd(tmp_path):
    p = _sitk_write(np.arange(4000, dtype=np.int16).reshape(10, 20, 20), tmp_path / "t.nrrd")
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match=str(p)):
        read_scan(p)


def test_2d_image_where_3d_is_needed(tmp_path):
    p = _sitk_write(np.zeros((20, 30), np.int16), tmp_path / "slice.nrrd")
    with pytest.raises(InputError, match=rf"{p}: a 2D image.*3D volume"):
        read_scan(p)
    with pytest.raises(InputError, match="2D"):
        read_labelmap(p)


def test_colour_image_refused(tmp_path):
    import SimpleITK as sitk

    img = sitk.GetImageFromArray(np.zeros((3, 4, 5, 3), np.uint8), isVector=True)
    p = tmp_path / "rgb.mha"
    sitk.WriteImage(img, str(p))
    with pytest.raises(InputError, match=f"{p}: 3 values per voxel"):
        read_scan(p)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("ext", [".nii.gz", ".nii", ".nrrd", ".mha"])
def test_nan_inf_voxels(tmp_path, bad, ext):
    a = np.zeros((4, 5, 6), np.float32)
    a[1, 2, 3] = bad
    a[3, 0, 0] = bad
    p = _sitk_write(a, tmp_path / f"nan{ext}")
    with pytest.raises(InputError, match=rf"{p}: 2 voxels are NaN or infinite"):
        read_scan(p)


def test_label_map_with_fractions_or_negatives(tmp_path):
    p = _sitk_write(np.full((2, 3, 4), 1.5, np.float32), tmp_path / "frac.nrrd")
    with pytest.raises(InputError, match=f"{p}: label map has non-integer"):
        read_labelmap(p)
    q = _sitk_write(np.full((2, 3, 4), -1, np.int16), tmp_path / "neg.nrrd")
    with pytest.raises(InputError, match=f"{q}: label map has negative"):
        read_labelmap(q)


def test_mismatched_geometry_names_both_files(tmp_path):
    img = _sitk_write(np.zeros((4, 5, 6), np.int16), tmp_path / "img.nrrd", spacing=(0.1, 0.1, 0.1))
    m1 = _sitk_write(np.zeros((4, 5, 7), np.uint8), tmp_path / "shape.nrrd", spacing=(0.1, 0.1, 0.1))
    m2 = _sitk_write(np.zeros((4, 5, 6), np.uint8), tmp_path / "spacing.nrrd", spacing=(0.2, 0.1, 0.1))
    m3 = _sitk_write(np.zeros((4, 5, 6), np.uint8), tmp_path / "origin.nrrd", spacing=(0.1, 0.1, 0.1),
                     origin=(5.0, 0.0, 0.0))
    for mask in (m1, m2, m3):
        with pytest.raises(GeometryError) as err:
            read_pair(img, mask)
        assert str(img) in str(err.value) and str(mask) in str(err.value)


def test_cropped_mask_on_the_image_grid_is_padded(tmp_path):
    img = _sitk_write(np.zeros((6, 8, 10), np.int16), tmp_path / "img.nrrd", spacing=(0.5, 0.5, 1.0),
                      origin=(1.0, 2.0, 3.0))
    sub = np.ones((2, 3, 4), np.uint8) * 2
    # starts at voxel (x=3, y=2, z=1) of the image
    mask = _sitk_write(sub, tmp_path / "crop.nrrd", spacing=(0.5, 0.5, 1.0), origin=(2.5, 3.0, 4.0))
    image, labels = read_pair(img, mask)
    assert labels.shape == image.shape
    assert labels.array[1:3, 2:5, 3:7].tolist() == sub.tolist()
    assert int(labels.array.sum()) == int(sub.sum())
    assert labels.meta["padded_from"]["start_zyx"] == [1, 2, 3]


def test_density_requested_without_calibration(tmp_path):
    p = _sitk_write(np.zeros((3, 4, 5), np.int16), tmp_path / "plain.nii.gz")
    with pytest.raises(CalibrationError, match=f"{p}: mgHA/ccm requested"):
        read_scan(p, unit="mgHA/ccm")
    with pytest.raises(CalibrationError, match=str(p)):
        read_scan(p, unit="HU", assume_unit="native")


def test_bad_unit_arguments(tmp_path):
    p = _sitk_write(np.zeros((3, 4, 5), np.int16), tmp_path / "plain.nrrd")
    with pytest.raises(InputError, match="unknown unit"):
        read_scan(p, unit="kelvin")
    with pytest.raises(InputError, match="assume_unit"):
        read_scan(p, assume_unit="label")


def test_segmentation_is_not_a_scan(tmp_path):
    from hrpqct.io import write_segmentation

    p = write_segmentation(Volume(np.zeros((2, 3, 4), np.uint8), unit="label"), tmp_path / "s.seg.nrrd")
    with pytest.raises(InputError, match=f"{p}: is a Slicer segmentation"):
        read_scan(p)


def test_write_errors_name_the_file(tmp_path):
    v = Volume(np.zeros((2, 3, 4), np.int16), unit="HU")
    with pytest.raises(InputError, match="does not exist"):
        write_image(v, tmp_path / "missing-folder" / "x.nrrd")
    with pytest.raises(InputError, match=r"x\.mhd: cannot write"):
        write_image(v, tmp_path / "x.mhd")
    with pytest.raises(InputError, match="write_segmentation"):
        write_image(v, tmp_path / "x.seg.nrrd")
    with pytest.raises(InputError, match="non-integer"):
        write_labelmap(Volume(np.full((2, 3, 4), 0.5, np.float32)), tmp_path / "l.nrrd")
    with pytest.raises(InputError, match=r"label values \[9\]"):
        from hrpqct.io import write_segmentation

        write_segmentation(Volume(np.full((2, 3, 4), 9, np.uint8), unit="label"), tmp_path / "s.seg.nrrd")
    assert sorted(p.name for p in tmp_path.iterdir()) == []
