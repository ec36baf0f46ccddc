"""Which reader handles a path: by extension first, then by the file's first bytes."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

from ..errors import InputError
from .atomic import full_suffix

__all__ = [
    "detect_format", "itk_io_name", "SCANCO", "DICOM", "ITK", "SEG_NRRD", "READ_SUFFIXES", "where",
]

SCANCO = "scanco"
DICOM = "dicom"
ITK = "itk"  # NIfTI, NRRD, MetaImage through SimpleITK
SEG_NRRD = "seg.nrrd"

_BY_SUFFIX = {
    ".aim": SCANCO, ".isq": SCANCO, ".rsq": SCANCO, ".rad": SCANCO,
    ".dcm": DICOM, ".dicom": DICOM, ".ima": DICOM,
    ".nii": ITK, ".nii.gz": ITK, ".nrrd": ITK, ".nhdr": ITK, ".mha": ITK, ".mhd": ITK,
    ".seg.nrrd": SEG_NRRD,
}
READ_SUFFIXES = tuple(sorted(_BY_SUFFIX))


def where(path: str | os.PathLike | None) -> str:
    """How a path is named in error messages."""
    return str(path) if path is not None else "volume"


def _sniff(path: Path) -> str | None:
    """Format from the first bytes of a file, or None."""
    with open(path, "rb") as fh:
        head = fh.read(512)
    if len(head) >= 132 and head[128:132] == b"DICM":
        return DICOM
    if head.startswith(b"CTDATA-HEADER_V1") or head.startswith(b"AIMDATA_V030"):
        return SCANCO
    if head.startswith(b"NRRD000"):
        return SEG_NRRD if b"Segment0_" in _nrrd_header(path) else ITK
    if head.startswith(b"ObjectType") or b"\nObjectType" in head or head.startswith(b"NDims"):
        return ITK
    if len(head) >= 348 and head[344:347] in (b"n+1", b"ni1"):
        return ITK  # NIfTI-1
    if head[:2] == b"\x1f\x8b":  # gzip: maybe a .nii.gz without its extension
        try:
            with gzip.open(path, "rb") as fh:
                inner = fh.read(348)
            if len(inner) >= 348 and inner[344:347] == b"n+1":
                return ITK
        except OSError:
            return None
    return None


def itk_io_name(path: str | os.PathLike) -> str | None:
    """The ITK ImageIO that reads this NRRD / MetaImage / NIfTI file, judged by content."""
    with open(path, "rb") as fh:
        head = fh.read(512)
    if head.startswith(b"NRRD000"):
        return "NrrdImageIO"
    if head.startswith(b"ObjectType") or head.startswith(b"NDims") or b"\nObjectType" in head:
        return "MetaImageIO"
    if len(head) >= 348 and head[344:347] in (b"n+1", b"ni1"):
        return "NiftiImageIO"
    if head[:2] == b"\x1f\x8b":
        return "NiftiImageIO"
    return None


def _nrrd_header(path: Path, limit: int = 1 << 20) -> bytes:
    with open(path, "rb") as fh:
        data = fh.read(limit)
    end = data.find(b"\n\n")
    return data if end < 0 else data[:end]


def detect_format(path: str | os.PathLike) -> str:
    """``"scanco"``, ``"dicom"``, ``"itk"`` or ``"seg.nrrd"`` for an existing file or folder.

    A folder is read as a DICOM series. Raises :class:`InputError` naming the file when it does
    not exist or its format is not one this package reads.
    """
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: no such file or folder")
    if p.is_dir():
        return DICOM
    if p.stat().st_size == 0:
        raise InputError(f"{p}: the file is empty")
    suffix = full_suffix(p)
    if suffix == ".nrrd":
        # A .nrrd written by Slicer's Segmentations module is a segmentation even without .seg
        try:
            if b"Segment0_" in _nrrd_header(p):
                return SEG_NRRD
        except OSError as exc:
            raise InputError(f"{p}: cannot read ({exc})") from None
    if suffix in _BY_SUFFIX:
        return _BY_SUFFIX[suffix]
    try:
        sniffed = _sniff(p)
    except OSError as exc:
        raise InputError(f"{p}: cannot read ({exc})") from None
    if sniffed is None:
        raise InputError(
            f"{p}: unknown image format (extension {suffix or 'none'!r}); readable: "
            f"{', '.join(READ_SUFFIXES)}, a DICOM file or a folder holding one DICOM series"
        )
    return sniffed
