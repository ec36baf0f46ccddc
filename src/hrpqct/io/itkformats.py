"""NIfTI, NRRD and MetaImage through SimpleITK: read and write, keeping geometry and unit.

These formats carry no Scanco calibration of their own. When this package writes them, it
records the unit and the calibration in the file (NRRD and MetaImage key/value fields
``hrpqct_*``; the 80-character NIfTI ``descrip`` field), so they read back with the same unit.
Files from elsewhere are taken to hold ``assume_unit`` values (HU unless told otherwise).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import Cancelled, InputError
from ..progress import ProgressCallback
from ..volume import UNITS, Calibration, Volume
from .atomic import atomic_path, full_suffix
from .formats import itk_io_name

__all__ = ["read_itk", "write_itk", "WRITE_SUFFIXES", "sitk_progress"]

#: Single-file formats written by :func:`write_itk` (two-file .nhdr/.mhd are not atomic).
WRITE_SUFFIXES = (".nrrd", ".nii", ".nii.gz", ".mha")

_CAL_FIELDS = ("mu_water", "mu_scaling", "density_slope", "density_intercept")
_NIFTI_KEYS = {"mw": "mu_water", "ms": "mu_scaling", "s": "density_slope", "i": "density_intercept"}


def sitk_progress(obj, progress: ProgressCallback | None) -> list:
    """Forward a SimpleITK process object's progress (0-100) to ``progress``; abort on False.

    Returns a one-element list that holds True if the callback asked to cancel.
    """
    import SimpleITK as sitk

    cancelled = [False]
    if progress is None:
        return cancelled

    def on_progress() -> None:
        done = int(round(obj.GetProgress() * 100))
        if progress(done, 100) is False:
            cancelled[0] = True
            obj.Abort()

    obj.AddCommand(sitk.sitkProgressEvent, on_progress)
    return cancelled


def _unit_from_meta(meta: dict[str, str]) -> tuple[str | None, Calibration | None]:
    """Unit and calibration recorded by :func:`write_itk`, if any."""
    fields: dict[str, Any] = {}
    unit = meta.get("hrpqct_unit")
    for name in _CAL_FIELDS:
        if f"hrpqct_{name}" in meta:
            fields[name] = meta[f"hrpqct_{name}"]
    density_unit = meta.get("hrpqct_density_unit")
    descrip = meta.get("descrip", "")
    if unit is None and descrip.startswith("hrpqct "):  # NIfTI
        for key, value in re.findall(r"(\w+)=(\S+)", descrip):
            if key == "unit":
                unit = value
            elif key in _NIFTI_KEYS:
                fields[_NIFTI_KEYS[key]] = value
    if unit is not None and unit not in UNITS:
        unit = None
    calibration = None
    if len(fields) == len(_CAL_FIELDS):
        try:
            calibration = Calibration(
                **{k: float(v) for k, v in fields.items()},
                **({"density_unit": density_unit} if density_unit else {}),
            )
        except ValueError:
            calibration = None
    return unit, calibration


def _unit_to_meta(volume: Volume, suffix: str) -> dict[str, str]:
    c = volume.calibration
    if suffix in (".nii", ".nii.gz"):
        text = f"hrpqct unit={volume.unit}"
        if c is not None:
            text += (
                f" mw={c.mu_water:.7g} ms={c.mu_scaling:.7g} s={c.density_slope:.9g}"
                f" i={c.density_intercept:.9g}"
            )
        return {"ITK_FileNotes": text[:80]}
    meta = {"hrpqct_unit": volume.unit}
    if c is not None:
        for name in _CAL_FIELDS:
            meta[f"hrpqct_{name}"] = repr(float(getattr(c, name)))
        meta["hrpqct_density_unit"] = c.density_unit
    return meta


def read_itk(
    path: str | os.PathLike,
    assume_unit: str = "HU",
    label: bool = False,
    progress: ProgressCallback | None = None,
) -> tuple[Volume, str]:
    """Read a NIfTI/NRRD/MetaImage file as stored; returns the volume and the unit's origin.

    The unit is the one recorded by :func:`write_itk` if present (origin ``"file"``), otherwise
    ``assume_unit`` (origin ``"assumed"``); with ``label=True`` it is ``"label"``.
    """
    import SimpleITK as sitk

    path = Path(path)
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    if full_suffix(path) not in (".nii", ".nii.gz", ".nrrd", ".nhdr", ".mha", ".mhd"):
        io_name = itk_io_name(path)  # no telling extension: choose the reader by content
        if io_name:
            reader.SetImageIO(io_name)
    try:
        reader.ReadImageInformation()
    except RuntimeError as exc:
        raise InputError(f"{path}: not a readable image ({_sitk_message(exc)})") from None
    dim = reader.GetDimension()
    size = reader.GetSize()
    if dim == 4 and size[3] == 1:
        reader.SetExtractIndex((0, 0, 0, 0))
        reader.SetExtractSize((size[0], size[1], size[2], 0))
    elif dim != 3:
        raise InputError(
            f"{path}: a {dim}D image of size {size}; a 3D volume (x, y, z) is needed"
        )
    if reader.GetNumberOfComponents() != 1:
        raise InputError(
            f"{path}: {reader.GetNumberOfComponents()} values per voxel (colour or vector image);"
            " a scalar volume is needed"
        )
    cancelled = sitk_progress(reader, progress)
    try:
        image = reader.Execute()
    except RuntimeError as exc:
        if cancelled[0]:
            raise Cancelled(f"{path}: reading cancelled") from None
        raise InputError(f"{path}: cannot read the voxel data ({_sitk_message(exc)})") from None
    if cancelled[0]:  # readers may finish despite Abort(); the caller asked to stop
        raise Cancelled(f"{path}: reading cancelled")
    meta = {k: image.GetMetaData(k) for k in image.GetMetaDataKeys()}
    if _format_name(path) == "nifti":
        bad = _nifti_nonfinite(path, meta)
        if bad:
            raise InputError(
                f"{path}: {bad} voxels are NaN or infinite (NIfTI readers silently turn them "
                "into 0); fix or mask them before use"
            )
    unit, calibration = _unit_from_meta(meta)
    origin = "file" if unit is not None else "assumed"
    if label:
        unit, origin = "label", "label"
    elif unit is None:
        unit = assume_unit
    volume = Volume(
        array=array_of(image),
        spacing=image.GetSpacing(),
        origin=image.GetOrigin(),
        direction=image.GetDirection(),
        unit=unit,
        calibration=calibration,
        source=path,
        meta={"format": _format_name(path), "header": meta},
    )
    return volume, origin


class _ImageBuffer:
    """Exposes a SimpleITK image's voxel buffer to numpy and keeps the image alive with it."""

    def __init__(self, image) -> None:
        import SimpleITK as sitk

        self.image = image
        iface = dict(sitk.GetArrayViewFromImage(image).__array_interface__)
        iface["data"] = (iface["data"][0], False)  # writable: the image is ours alone
        self.__array_interface__ = iface


def array_of(image) -> np.ndarray:
    """The voxels of a SimpleITK image as a ``[z, y, x]`` array that shares the image's memory.

    ``sitk.GetArrayFromImage`` copies: reading a full scan (168 x 2304 x 2304, 1.7 GB as int16)
    then briefly needs twice that. The array returned here owns the image instead (its ``base``);
    the image is freed with the last array or view of it.
    """
    return np.asarray(_ImageBuffer(image))


def _nifti_nonfinite(path: Path, meta: dict[str, str]) -> int:
    """NaN/inf voxels stored in a float NIfTI file (niftilib replaces them with 0 on read)."""
    import gzip

    dtypes = {"16": "f4", "64": "f8"}
    kind = dtypes.get(meta.get("datatype", "").strip())
    if kind is None:
        return 0
    offset = int(float(meta.get("vox_offset", "352")))
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    bad = 0
    with opener(path, "rb") as fh:
        head = fh.read(4)
        order = "<" if int.from_bytes(head, "little") == 348 else ">"
        fh.read(offset - 4)
        dtype = np.dtype(order + kind)
        chunk = dtype.itemsize * (1 << 22)
        while True:
            block = fh.read(chunk)
            if not block:
                break
            block = block[: len(block) - len(block) % dtype.itemsize]
            bad += int(np.count_nonzero(~np.isfinite(np.frombuffer(block, dtype=dtype))))
    return bad


def _format_name(path: Path) -> str:
    suffix = full_suffix(path)
    return {".nii": "nifti", ".nii.gz": "nifti", ".nrrd": "nrrd", ".nhdr": "nrrd",
            ".mha": "metaimage", ".mhd": "metaimage"}.get(suffix, suffix.lstrip(".") or "itk")


def _sitk_message(exc: Exception) -> str:
    """The informative last line of a SimpleITK/ITK exception, without source locations."""
    lines = [
        ln.strip() for ln in str(exc).splitlines()
        if ln.strip() and not ln.startswith("Exception thrown in SimpleITK")
    ]
    msg = lines[-1] if lines else type(exc).__name__
    msg = re.sub(r"^(sitk::ERROR:|ITK ERROR:\s*\w+\(0x[0-9a-fA-F]+\):)\s*", "", msg)
    return re.sub(r"^\[\w+\]\s*", "", msg)


def write_itk(volume: Volume, path: str | os.PathLike, compress: bool = True) -> Path:
    """Write ``volume`` as NRRD, NIfTI (.nii/.nii.gz) or MetaImage (.mha), chosen by extension.

    Voxel type, spacing, origin and direction (mm, LPS) are kept; the unit and calibration
    are recorded in the file. ``compress``: gzip/zlib for NRRD and MetaImage (.nii.gz is always
    compressed, .nii never). The write is atomic. Returns the path written.
    """
    import SimpleITK as sitk

    path = Path(path)
    suffix = full_suffix(path)
    if suffix not in WRITE_SUFFIXES:
        hint = " (use write_segmentation for .seg.nrrd)" if suffix == ".seg.nrrd" else ""
        raise InputError(
            f"{path}: cannot write {suffix or 'files without extension'!s}{hint}; "
            f"choose one of {', '.join(WRITE_SUFFIXES)}"
        )
    array = np.asarray(volume.array)
    if array.dtype == bool:
        array = array.astype(np.uint8)
    elif array.dtype == np.float16:
        array = array.astype(np.float32)
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(volume.spacing)
    image.SetOrigin(volume.origin)
    image.SetDirection(volume.direction)
    for key, value in _unit_to_meta(volume, suffix).items():
        image.SetMetaData(key, value)
    with atomic_path(path, expect={"shape_xyz": list(image.GetSize())}) as tmp:
        try:
            sitk.WriteImage(image, str(tmp), useCompression=compress and suffix != ".nii")
        except RuntimeError as exc:
            raise _write_error(path, exc) from None
    return path


def _write_error(path: Path, exc: RuntimeError):
    """One line for an ITK write failure; names a full disk or read-only folder when that is it."""
    import shutil

    from ..errors import OutputError
    from .outputs import MIN_FREE_BYTES

    text = str(exc)
    lowered = text.lower()
    try:
        full = shutil.disk_usage(path.parent).free < MIN_FREE_BYTES
    except OSError:
        full = False
    if full or "no space left" in lowered:
        return OutputError(f"{path}: cannot write: the disk is full (no space left on device)")
    if "read-only" in lowered:
        return OutputError(f"{path}: cannot write: read-only file system")
    if not os.access(path.parent, os.W_OK):
        return OutputError(f"{path}: cannot write: permission denied")
    return OutputError(f"{path}: cannot write ({_sitk_message(exc)})")
