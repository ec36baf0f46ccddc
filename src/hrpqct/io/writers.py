"""Write images and label maps (NRRD, NIfTI, MetaImage, Slicer .seg.nrrd); every write is atomic."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from ..errors import InputError
from ..regions import REGIONS, Region
from ..volume import Volume
from .atomic import full_suffix
from .itkformats import write_itk
from .readers import as_label_array
from .segfile import write_segmentation

__all__ = ["write_image", "write_labelmap"]


def write_image(volume: Volume, path: str | os.PathLike, compress: bool = True) -> Path:
    """Write an image as ``.nrrd``, ``.nii``/``.nii.gz`` or ``.mha`` (chosen by extension).

    Values, voxel type, spacing/origin (mm) and direction are kept; the unit and calibration are
    stored in the file so :func:`hrpqct.io.read_scan` reads them back. ``compress`` (default on)
    gzip-compresses NRRD and MetaImage data. Returns the path written.
    """
    if full_suffix(path) == ".seg.nrrd":
        raise InputError(f"{path}: .seg.nrrd holds segmentations; use write_segmentation")
    return write_itk(volume, path, compress=compress)


def write_labelmap(
    volume: Volume, path: str | os.PathLike, compress: bool = True,
    table: tuple[Region, ...] = REGIONS,
) -> Path:
    """Write an integer label map; ``.seg.nrrd`` goes through :func:`write_segmentation`.

    Voxels are stored in the smallest unsigned integer type that holds them (uint8 for the
    region maps); fractions or negative values raise :class:`InputError`.
    """
    if full_suffix(path) == ".seg.nrrd":
        return write_segmentation(volume, path, table=table)
    array = as_label_array(volume.array, str(volume.source or path))
    labels = replace(volume, array=array, unit="label", calibration=None)
    return write_itk(labels, path, compress=compress)
