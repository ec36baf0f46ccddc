"""Read any supported scan or label map: format dispatch, unit requests, input checks."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import CalibrationError, InputError
from ..progress import ProgressCallback
from ..regions import REGIONS, Region
from ..volume import Calibration, Volume, check_same_geometry
from . import formats
from .dicom import read_dicom
from .itkformats import read_itk
from .scanco import read_scanco, read_scanco_header, scanco_calibration
from .segfile import read_segmentation_file
from .units import check_unit, convert, linear

__all__ = ["read_scan", "read_labelmap", "read_pair", "check_finite", "as_label_array"]


def check_finite(volume: Volume) -> Volume:
    """Raise :class:`InputError` naming the file if a float volume has NaN or inf voxels."""
    array = volume.array
    if array.dtype.kind not in "fc":
        return volume
    bad = 0
    step = max(1, (1 << 24) // max(1, array[0].size))  # ~16 M voxels per block
    for z in range(0, array.shape[0], step):
        bad += int(np.count_nonzero(~np.isfinite(array[z:z + step])))
    if bad:
        raise InputError(
            f"{formats.where(volume.source)}: {bad} voxels are NaN or infinite "
            f"(of {array.size}); fix or mask them before use"
        )
    return volume


def _to_unit(volume: Volume, unit: str, calibration: Calibration | None) -> Volume:
    """Convert to ``unit`` ("native" = leave as stored); native + calibration = Scanco raw."""
    where = formats.where(volume.source)
    cal = volume.calibration or calibration
    if unit == "native" or unit == volume.unit:
        return volume if cal is volume.calibration else _replace_cal(volume, cal)
    if volume.unit == "native" and cal is not None:
        array = linear(volume.array, *cal.affine("raw", unit))
    else:
        array = convert(volume.array, volume.unit, unit, cal, where)
    out = _replace_cal(volume, cal)
    return out.with_array(array, unit=unit, converted_from=volume.unit)


def _replace_cal(volume: Volume, cal: Calibration | None) -> Volume:
    from dataclasses import replace

    return replace(volume, calibration=cal)


def read_scan(
    path: str | os.PathLike,
    unit: str = "HU",
    *,
    assume_unit: str = "HU",
    calibration: Calibration | None = None,
    progress: ProgressCallback | None = None,
) -> Volume:
    """Read a 3D scan and return it in ``unit``; ``Volume.unit`` says what the numbers are.

    Formats (by extension, else by content): Scanco ``.aim/.isq/.rsq/.rad``; DICOM (a folder
    holding one series, or any file of a series); NIfTI ``.nii/.nii.gz``; NRRD ``.nrrd/.nhdr``;
    MetaImage ``.mha/.mhd``.

    ``unit``:
      * ``"HU"`` / ``"mgHA/ccm"``: converted as needed (float32 when converted). Scanco files use
        their header calibration (HU = raw*1000/(MuWater*MuScaling) - 1000; mgHA/ccm = raw /
        MuScaling * slope + intercept). Converting between HU and mgHA/ccm needs a calibration:
        the file's, else ``calibration``; without one :class:`CalibrationError` names the file.
      * ``"native"``: no conversion. Scanco: the stored integers (unit ``"native"``); DICOM: the
        values after the file's rescale slope/intercept; other formats: the values as stored.

    Units of files without a calibration: DICOM values are HU when RescaleType is HU or the
    modality is CT. NIfTI, NRRD and MetaImage files carry no calibration, so their values are
    taken to be ``assume_unit`` (HU unless told otherwise), except files written by
    :func:`hrpqct.io.write_image`, which record their unit and calibration. With
    ``assume_unit="native"`` and a ``calibration``, values are taken as Scanco raw integers.

    Geometry (spacing, origin in mm, direction; ITK/LPS) is kept. Raises :class:`InputError`
    (naming the file) for a missing file, unknown format, truncated or non-Scanco data, 2D
    images, NaN/inf voxels; :class:`CalibrationError` when ``unit`` needs a missing calibration.
    """
    check_unit(unit)
    check_unit(assume_unit, "assume_unit")
    path = Path(path)
    fmt = formats.detect_format(path)
    if fmt == formats.SEG_NRRD:
        raise InputError(f"{path}: is a Slicer segmentation, not a scan; use read_labelmap")
    if fmt == formats.SCANCO:
        header_cal = None if calibration is None else scanco_calibration(read_scanco_header(path))
        if calibration is None or unit == "native" or header_cal is not None:
            volume = read_scanco(path, unit, progress=progress)  # the header's calibration wins
            volume.meta["unit_source"] = "Scanco header" if unit != "native" else "stored values"
            return check_finite(volume)
        volume = read_scanco(path, "native", progress=progress)
        volume.meta["unit_source"] = "calibration argument"
    elif fmt == formats.DICOM:
        volume, origin = read_dicom(path, assume_unit=assume_unit, progress=progress)
        volume.meta["unit_source"] = origin
    else:
        volume, origin = read_itk(path, assume_unit=assume_unit, progress=progress)
        volume.meta["unit_source"] = "file" if origin == "file" else f"assumed ({assume_unit})"
    check_finite(volume)
    uncalibrated = volume.calibration is None and calibration is None
    if unit != "native" and volume.unit == "native" and uncalibrated:
        raise CalibrationError(
            f"{path}: values are 'native' (no calibration in the file); {unit} needs a "
            "calibration argument, or read with unit='native'"
        )
    return _to_unit(volume, unit, calibration)


def as_label_array(array: np.ndarray, where: str) -> np.ndarray:
    """An integer label array in the smallest unsigned type; rejects fractions and negatives."""
    array = np.asarray(array)
    if array.dtype == bool:
        return array.astype(np.uint8)
    if array.dtype.kind == "f":
        if not np.all(np.isfinite(array)):
            raise InputError(f"{where}: label map has NaN or infinite voxels")
        if not np.array_equal(array, np.round(array)):
            raise InputError(f"{where}: label map has non-integer values (is it an image?)")
    elif array.dtype.kind not in "iu":
        raise InputError(f"{where}: label map voxels must be integers, got {array.dtype}")
    if array.size == 0:
        return array.astype(np.uint8)
    lo, hi = array.min(), array.max()
    if lo < 0:
        raise InputError(f"{where}: label map has negative values (min {lo}); labels are >= 0")
    for dtype in (np.uint8, np.uint16, np.uint32):
        if hi <= np.iinfo(dtype).max:
            return array.astype(dtype, copy=False)
    raise InputError(f"{where}: label values up to {hi} do not fit 32 bits")


def read_labelmap(
    path: str | os.PathLike,
    table: tuple[Region, ...] = REGIONS,
    unmatched: str = "error",
    progress: ProgressCallback | None = None,
) -> Volume:
    """Read an integer label map (any supported format) or a Slicer ``.seg.nrrd``.

    Returns ``Volume(unit="label")`` with unsigned integer voxels. Segmentation files are mapped
    onto ``table``'s label values by segment id / name / short code / terminology (see
    :func:`hrpqct.io.segfile.read_segmentation_file` for ``unmatched`` and overlaps); other
    formats keep the file's label values (Scanco masks keep their stored values, e.g. 0/127).
    """
    path = Path(path)
    fmt = formats.detect_format(path)
    if fmt == formats.SEG_NRRD:
        return read_segmentation_file(path, table=table, unmatched=unmatched)
    if fmt == formats.SCANCO:
        volume = read_scanco(path, "native", progress=progress)
    elif fmt == formats.DICOM:
        volume, _ = read_dicom(path, assume_unit="native", progress=progress)
    else:
        volume, _ = read_itk(path, label=True, progress=progress)
    array = as_label_array(volume.array, str(path))
    out = volume.with_array(array, unit="label")
    out.calibration = None
    return out


def _fit_to_grid(mask: Volume, image: Volume, tol: float = 1e-3) -> Volume:
    """Pad ``mask`` onto ``image``'s grid when it is an exact sub-grid of it (a cropped mask).

    Returns ``mask`` unchanged otherwise; :func:`check_same_geometry` then reports the mismatch.
    """
    if mask.shape == image.shape or not (
        np.allclose(mask.spacing, image.spacing, rtol=1e-4, atol=1e-6)
        and np.allclose(mask.direction, image.direction, atol=1e-4)
    ):
        return mask
    d = np.asarray(image.direction).reshape(3, 3)
    shift_mm = np.asarray(mask.origin) - np.asarray(image.origin)
    offset_xyz = d.T @ shift_mm / np.asarray(image.spacing)
    start = np.round(offset_xyz).astype(int)
    if np.any(np.abs(offset_xyz - start) > tol):
        return mask
    start_zyx = start[::-1]
    stop_zyx = start_zyx + np.asarray(mask.shape)
    if np.any(start_zyx < 0) or np.any(stop_zyx > np.asarray(image.shape)):
        return mask
    array = np.zeros(image.shape, dtype=mask.array.dtype)
    array[tuple(slice(a, b) for a, b in zip(start_zyx, stop_zyx))] = mask.array
    from dataclasses import replace

    return replace(
        mask, array=array, origin=image.origin,
        meta={**mask.meta, "padded_from": {"shape": mask.shape, "start_zyx": start_zyx.tolist()}},
    )


def read_pair(
    image_path: str | os.PathLike,
    mask_path: str | os.PathLike,
    unit: str = "HU",
    *,
    table: tuple[Region, ...] = REGIONS,
    unmatched: str = "error",
    **scan_kwargs,
) -> tuple[Volume, Volume]:
    """Read a scan and its label map and check they share a voxel grid.

    A mask that covers an exact sub-block of the image grid (e.g. a Slicer segmentation saved
    cropped to its extent) is padded with background onto the image grid. Any other mismatch of
    shape, spacing, origin or direction raises :class:`GeometryError` naming both files.
    """
    image = read_scan(image_path, unit, **scan_kwargs)
    mask = read_labelmap(mask_path, table=table, unmatched=unmatched)
    mask = _fit_to_grid(mask, image)
    check_same_geometry(image, mask)
    return image, mask
