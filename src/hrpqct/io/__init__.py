"""Scan and label-map input/output (Scanco AIM/ISQ, DICOM, NIfTI, NRRD, MHA, .seg.nrrd).

Reading returns :class:`hrpqct.volume.Volume` with an explicit unit; every write is atomic.
Heavy back-ends (ITK, SimpleITK, slicerio) are imported when first used.
"""

from .atomic import atomic_path
from .formats import detect_format
from .info import describe, describe_file
from .readers import as_label_array, check_finite, read_labelmap, read_pair, read_scan
from .scanco import read_scanco_header, scanco_calibration
from .segfile import match_region, read_segmentation_file, write_segmentation
from .units import SCAN_UNITS
from .writers import write_image, write_labelmap

__all__ = [
    "read_scan",
    "read_labelmap",
    "read_pair",
    "write_image",
    "write_labelmap",
    "write_segmentation",
    "read_segmentation_file",
    "read_scanco_header",
    "scanco_calibration",
    "match_region",
    "describe",
    "describe_file",
    "detect_format",
    "check_finite",
    "as_label_array",
    "atomic_path",
    "SCAN_UNITS",
]
