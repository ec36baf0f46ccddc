"""DICOM series through SimpleITK's GDCM series reader (rescale slope/intercept applied)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import Cancelled, InputError
from ..volume import Volume
from ..progress import ProgressCallback
from .itkformats import _sitk_message, array_of, sitk_progress

__all__ = ["read_dicom", "dicom_series_files"]

_MODALITY, _SERIES_UID = "0008|0060", "0020|000e"
_SLOPE, _INTERCEPT, _RESCALE_TYPE = "0028|1053", "0028|1052", "0028|1054"


def dicom_series_files(path: str | os.PathLike) -> list[str]:
    """The files of the one DICOM series in a folder, or of the series a given file belongs to.

    Raises :class:`InputError` naming the folder when it holds no series or several (then pass
    one file of the wanted series).
    """
    import SimpleITK as sitk

    p = Path(path)
    if p.is_dir():
        ids = sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(p))
        if not ids:
            raise InputError(f"{p}: no DICOM series in this folder")
        if len(ids) > 1:
            counts = ", ".join(
                f"{uid} ({len(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(p), uid))} files)"
                for uid in ids
            )
            raise InputError(
                f"{p}: {len(ids)} DICOM series in this folder ({counts}); pass one file of the "
                "wanted series instead of the folder"
            )
        return list(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(p), ids[0]))
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(p))
    try:
        reader.ReadImageInformation()
    except RuntimeError as exc:
        raise InputError(f"{p}: not a readable DICOM file ({_sitk_message(exc)})") from None
    if not reader.HasMetaDataKey(_SERIES_UID):
        return [str(p)]
    uid = reader.GetMetaData(_SERIES_UID).strip()
    files = list(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(p.parent), uid))
    return files or [str(p)]


def _unit_of(tags: dict[str, str], assume_unit: str) -> tuple[str, str]:
    """Unit of the rescaled values and where it came from."""
    rescale_type = tags.get(_RESCALE_TYPE, "").strip().upper()
    if rescale_type == "HU":
        return "HU", "RescaleType"
    if "HA" in rescale_type or "MG" in rescale_type:
        return "mgHA/ccm", "RescaleType"
    if tags.get(_MODALITY, "").strip().upper() == "CT":
        return "HU", "Modality CT"
    return assume_unit, "assumed"


def read_dicom(
    path: str | os.PathLike, assume_unit: str = "HU", progress: ProgressCallback | None = None
) -> tuple[Volume, str]:
    """Read a DICOM series (a folder, or one file of the series) with its rescale applied.

    Values are HU when RescaleType is HU or the modality is CT, mgHA/ccm when RescaleType names
    a density, else ``assume_unit``. Returns the volume and where its unit came from. Integer
    results that fit are returned as int16.
    """
    import SimpleITK as sitk

    p = Path(path)
    files = dicom_series_files(p)
    if len(files) == 1:
        reader = sitk.ImageFileReader()
        reader.SetFileName(files[0])
    else:
        reader = sitk.ImageSeriesReader()
        reader.SetFileNames(files)
        reader.MetaDataDictionaryArrayUpdateOn()
    cancelled = sitk_progress(reader, progress)
    try:
        image = reader.Execute()
    except RuntimeError as exc:
        if cancelled[0]:
            raise Cancelled(f"{p}: reading cancelled") from None
        raise InputError(f"{p}: cannot read the DICOM series ({_sitk_message(exc)})") from None
    if cancelled[0]:
        raise Cancelled(f"{p}: reading cancelled")
    if image.GetDimension() != 3 or (len(files) == 1 and image.GetSize()[2] == 1):
        raise InputError(
            f"{p}: one 2D DICOM image of size {image.GetSize()[:2]}; a 3D volume is needed "
            "(a series of slices, or a multi-frame file)"
        )
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise InputError(f"{p}: colour DICOM images cannot be used; a greyscale CT is needed")
    if len(files) == 1:
        slice_tags = [{k: reader.GetMetaData(k) for k in reader.GetMetaDataKeys()}]
    else:
        slice_tags = [
            {k: reader.GetMetaData(i, k) for k in reader.GetMetaDataKeys(i)}
            for i in range(len(files))
        ]
    tags = slice_tags[0]
    unit, unit_origin = _unit_of(tags, assume_unit)
    array = array_of(image)
    if array.dtype.kind in "iu" and array.dtype.itemsize > 2 and array.size:
        lo, hi = int(array.min()), int(array.max())
        if np.iinfo(np.int16).min <= lo and hi <= np.iinfo(np.int16).max:
            array = array.astype(np.int16)
    rescale = sorted(
        {(t.get(_SLOPE, "1").strip(), t.get(_INTERCEPT, "0").strip()) for t in slice_tags}
    )
    meta = {
        "format": "dicom",
        "files": len(files),
        "series_uid": tags.get(_SERIES_UID, "").strip(),
        "modality": tags.get(_MODALITY, "").strip(),
        "rescale": [{"slope": float(s or 1), "intercept": float(i or 0)} for s, i in rescale],
        "header": tags,
    }
    if image.HasMetaDataKey("ITK_non_uniform_sampling_deviation"):
        meta["warnings"] = [
            "slice spacing is not uniform (deviation "
            f"{image.GetMetaData('ITK_non_uniform_sampling_deviation')} mm)"
        ]
    volume = Volume(
        array=array,
        spacing=image.GetSpacing(),
        origin=image.GetOrigin(),
        direction=image.GetDirection(),
        unit=unit,
        source=p,
        meta=meta,
    )
    return volume, unit_origin
