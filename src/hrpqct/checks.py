"""Garbage in, refused or flagged: the checks of inputs that are simply wrong (issue 16).

Every check returns :class:`Finding` objects; :func:`settle` raises the first *error* as an
:class:`hrpqct.errors.InputError` (or :class:`~hrpqct.errors.ModelError`) and returns the
*warnings* as one-line strings, which the commands print (``warning: ...``), write into their
summary table (``<stem>_scan.csv`` rows ``warning``; ``<out>.warnings.txt`` next to a radiomics
table) and hand to the Slicer logic's result objects.

The rule (``docs/input-checks.md``): an **error** when no correct result can come out (a blank
scan, 8-bit data that cannot be HU, a mask given as the scan, a field of view that cannot hold a
tibia, an empty segmentation, a deleted bone segment, a network whose weights or output are not
numbers); a **warning** when a result can be computed but may be off, and the user is the one
to judge (non-square pixels, slices much thicker than the pixels, a wide-but-small field of
view, a mask padded onto the scan's grid, regions without voxels, a bone region absent from a
label map).

Thresholds are properties of the checks, not of the method (``hrpqct.method``), and live here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import InputError, ModelError

__all__ = [
    "Finding",
    "LIMITS",
    "Limits",
    "settle",
    "check_scan",
    "check_labels",
    "check_regions_present",
    "check_refine_input",
    "check_model_weights",
    "check_model_output",
    "radiomics_input_checks",
    "input_warnings_path",
    "write_warnings",
    "read_warnings",
]


@dataclass(frozen=True)
class Finding:
    """One result of a check: ``level`` ``"error"`` or ``"warning"``, a stable ``code`` and the
    one-line ``message`` a user sees (naming the file)."""

    level: str
    code: str
    message: str


@dataclass(frozen=True)
class Limits:
    """Thresholds of the input checks (see ``docs/input-checks.md``)."""

    #: HU range a CT scan's bulk lies in (1st to 99th percentile of the voxels).
    hu_low: float = -3000.0
    hu_high: float = 10000.0
    #: At most this many distinct integer values, all in 0-255: a label map or mask, not a scan.
    max_label_values: int = 8
    #: Smallest field of view: an error below ``min_fov_px`` pixels or ``min_fov_mm`` mm in x or y,
    #: a warning below ``warn_fov_mm`` (a distal tibia with its fibula is ~50 mm across).
    min_fov_px: int = 32
    min_fov_mm: float = 5.0
    warn_fov_mm: float = 40.0
    #: Pixels whose sides differ by more than this fraction are "not square".
    square_tolerance: float = 0.05
    #: Slices thicker than this multiple of the pixel size are "thick".
    thick_slice_ratio: float = 3.0
    #: Voxels sampled for the value checks (a strided sample of the whole scan).
    sample_voxels: int = 2_000_000


LIMITS = Limits()
_BONES = ("TC", "TT", "FC", "FT")


def settle(findings, *, model: bool = False) -> list[str]:
    """Raise the first error (``InputError``, or ``ModelError`` with ``model``), noting how many
    more there are; return the warnings' messages."""
    findings = list(findings)
    errors = [f for f in findings if f.level == "error"]
    if errors:
        more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
        raise (ModelError if model else InputError)(errors[0].message + more)
    return [f.message for f in findings if f.level == "warning"]


def _sample(array: np.ndarray, n: int) -> np.ndarray:
    """A strided sample of about ``n`` voxels covering the whole array (a view where possible)."""
    if array.size <= n:
        return np.asarray(array).ravel()
    step = int(np.ceil((array.size / n) ** (1 / 3)))
    return np.asarray(array[::step, ::step, ::step] if array.ndim == 3 else array.ravel()[::step ** 3]
                      ).ravel()


def check_scan(volume, where=None, limits: Limits = LIMITS) -> list[Finding]:
    """Checks of a scan read in HU (:class:`hrpqct.volume.Volume`): blank, 8-bit, not HU, a mask
    given as the scan, too small a field of view (errors); non-square pixels, thick slices, a
    small field of view (warnings)."""
    where = where or volume.source or "scan"
    arr = np.asarray(volume.array)
    out: list[Finding] = []
    unit = getattr(volume, "unit", "HU")
    nz, ny, nx = arr.shape if arr.ndim == 3 else (1, *arr.shape[-2:])
    sx, sy = float(volume.spacing[0]), float(volume.spacing[1])
    sz = float(volume.spacing[2]) if len(volume.spacing) > 2 else sx
    fx, fy = nx * sx, ny * sy
    if min(nx, ny) < limits.min_fov_px or min(fx, fy) < limits.min_fov_mm:
        out.append(Finding("error", "scan.too_small",
                           f"{where}: the field of view is {nx} x {ny} px ({fx:.1f} x {fy:.1f} mm), "
                           f"too small to hold a distal tibia (at least {limits.min_fov_px} px and "
                           f"{limits.min_fov_mm:g} mm a side; HR-pQCT: about 140 mm)"))
    elif min(fx, fy) < limits.warn_fov_mm:
        out.append(Finding("warning", "scan.small_fov",
                           f"{where}: the field of view is only {fx:.1f} x {fy:.1f} mm; a distal "
                           "tibia with its fibula is about 50 mm across, so part of the leg may "
                           "be outside it"))
    if arr.size == 0:
        out.append(Finding("error", "scan.empty", f"{where}: the scan has no voxels"))
        return out
    if arr.dtype in (np.int8, np.uint8) and unit == "HU":
        out.append(Finding("error", "scan.8bit",
                           f"{where}: 8-bit voxels ({arr.dtype}) cannot hold HU (air is -1000 HU, "
                           "cortical bone above 1000 HU); export the scan in HU as 16-bit or float, "
                           "or as the scanner's native values"))
    sample = _sample(arr, limits.sample_voxels)
    lo, hi = float(sample.min()), float(sample.max())
    if lo == hi and float(arr.min()) == float(arr.max()):
        out.append(Finding("error", "scan.constant",
                           f"{where}: every voxel is {lo:g} {unit}: a blank image, not a scan"))
        return out
    values = np.unique(sample[: min(sample.size, 200_000)])
    if (values.size <= limits.max_label_values and np.all(values == np.round(values))
            and values[0] >= 0 and values[-1] <= 255):
        shown = ", ".join(f"{v:g}" for v in values)
        out.append(Finding("error", "scan.label_like",
                           f"{where}: holds only the values {shown}: a mask or label map, not a "
                           "scan (are the scan and segmentation arguments swapped?)"))
    elif unit == "HU":
        p1, p99 = (float(v) for v in np.percentile(sample, [1, 99]))
        if p1 < limits.hu_low or p99 > limits.hu_high or p1 > 1000.0:
            out.append(Finding("error", "scan.not_hu",
                               f"{where}: values from {p1:g} to {p99:g} (1st to 99th percentile) "
                               "are not HU (air is -1000, soft tissue about 0 to 100, bone up to "
                               "about 3000); is the file in another unit (read it with "
                               "--assume-unit / the right calibration)?"))
    if abs(sx - sy) > limits.square_tolerance * min(sx, sy):
        out.append(Finding("warning", "scan.non_square",
                           f"{where}: pixels are not square ({sx:g} x {sy:g} mm); the model was "
                           "trained on square pixels: check the regions"))
    if nz > 1 and sz > limits.thick_slice_ratio * max(sx, sy):
        out.append(Finding("warning", "scan.thick_slices",
                           f"{where}: slices are {sz:g} mm apart, {sz / max(sx, sy):.1f} times the "
                           f"pixel size ({max(sx, sy):g} mm); HR-pQCT slices are as thick as the "
                           "pixels, so thin structures are blurred and the volumes are coarse"))
    return out


def check_labels(labels, where=None) -> list[Finding]:
    """Checks of a segmentation on the scan's grid: empty (error); padded onto the scan's grid
    from a smaller mask (warning)."""
    where = where or labels.source or "segmentation"
    arr = np.asarray(labels.array)
    out: list[Finding] = []
    if arr.size == 0 or not np.any(arr):
        out.append(Finding("error", "labels.empty",
                           f"{where}: the segmentation is empty (no labelled voxel)"))
    padded = (labels.meta or {}).get("padded_from")
    if padded:
        out.append(Finding("warning", "labels.padded",
                           f"{where}: the segmentation ({' x '.join(map(str, padded['shape']))} "
                           f"voxels) is smaller than the scan ({' x '.join(map(str, arr.shape))}); "
                           f"it was placed at voxel {tuple(padded['start_zyx'])} (z, y, x) and "
                           "padded with background"))
    return out


def check_regions_present(labels, names, region_voxels: dict, where=None) -> list[Finding]:
    """Radiomics regions without a voxel: an error if all are empty, else a warning naming them.

    ``region_voxels``: region name -> voxel count in the volume."""
    where = where or labels.source or "segmentation"
    empty = [n for n in names if region_voxels.get(n, 0) == 0]
    if names and len(empty) == len(names):
        return [Finding("error", "labels.regions_empty",
                        f"{where}: none of the regions {', '.join(names)} has a voxel: nothing to "
                        "measure")]
    if empty:
        return [Finding("warning", "labels.region_missing",
                        f"{where}: region(s) {', '.join(empty)} have no voxel; their rows are "
                        "empty")]
    return []


def check_refine_input(labels: np.ndarray, kind: str, where, segments=None) -> list[Finding]:
    """Checks of an edited segmentation before ``refine``: a bone region whose segment was
    deleted from the ``.seg.nrrd`` (error: refine would relabel its voxels as soft tissue), a
    bone region without a voxel in a label map (warning)."""
    from .regions import MODEL_CLASSES, REGIONS

    table = REGIONS if kind == "regions" else MODEL_CLASSES
    out: list[Finding] = []
    if segments is not None:
        have = {s.get("label") for s in segments}
        gone = [r for r in table if r.label not in have and r.code in _BONES]
        if gone:
            names = ", ".join(f"{r.name} ({r.code})" for r in gone)
            out.append(Finding("error", "refine.segment_deleted",
                               f"{where}: the segment(s) {names} are missing (deleted?); refine "
                               "would relabel their voxels as soft tissue; restore them (or "
                               "re-run hrpqct segment) first"))
            return out
    arr = np.asarray(labels)
    if arr.size:
        counts = np.bincount(arr.ravel(), minlength=max(r.label for r in table) + 1)
        empty = [r for r in table if r.code in _BONES and counts[r.label] == 0]
        if empty:
            names = ", ".join(f"{r.name} ({r.code})" for r in empty)
            level = "error" if len(empty) == 4 else "warning"
            out.append(Finding(level, "refine.bone_missing",
                               f"{where}: has no voxel of {names}; "
                               + ("refine needs the bones" if level == "error" else
                                  "if it was erased by mistake, restore it before refining")))
    return out


def check_model_weights(model, where) -> list[Finding]:
    """Network parameters that are NaN or infinite (a damaged weights file): an error."""
    import torch

    bad = total = 0
    with torch.no_grad():
        for p in model.parameters():
            total += p.numel()
            if p.is_floating_point():
                bad += int((~torch.isfinite(p)).sum())
    if bad:
        return [Finding("error", "model.weights_nonfinite",
                        f"{where}: {bad:,} of {total:,} weights are NaN or infinite: the weights "
                        "file is damaged; reinstall or retrain the model")]
    return []


def check_model_output(confidence, where) -> list[Finding]:
    """Per-slice confidence (``mean_max_prob``) that is NaN: the network's output is not a
    number (weights that do not fit, damaged or overflowing): an error."""
    values = np.asarray(confidence["mean_max_prob"], dtype=float)
    nan = int(np.count_nonzero(~np.isfinite(values)))
    if nan:
        return [Finding("error", "model.output_nan",
                        f"{where}: the network's output is NaN on {nan} of {values.size} slices; "
                        "the weights are damaged or do not fit this model")]
    return []


def radiomics_input_checks(image, labels, names, scan_where=None, seg_where=None) -> list[Finding]:
    """The checks of a radiomics run: the scan, the segmentation, and the requested regions."""
    from .method import RADIOMICS
    from .radiomics.masks import band_distance_mm
    from .regions import region

    found = check_scan(image, scan_where) + check_labels(labels, seg_where)
    if any(f.level == "error" for f in found):
        return found
    arr = np.asarray(labels.array)
    counts = np.bincount(arr.ravel(), minlength=256) if arr.size else np.zeros(256, int)
    tissue = int(sum(counts[region(c).label] for c in RADIOMICS.band_tissues))
    voxels = {}
    for n in names:
        if n == "ST" or band_distance_mm(n) is not None:
            voxels[n] = tissue
        else:
            voxels[n] = int(counts[region(n).label])
    return found + check_regions_present(labels, list(names), voxels, seg_where)


def input_warnings_path(table_path) -> "Path":
    """Where the input warnings of a radiomics table ``x.parquet`` go: ``x.warnings.txt``."""
    from pathlib import Path

    p = Path(table_path)
    return p.with_name(f"{p.stem}.warnings.txt")


def write_warnings(path, warnings) -> None:
    """Write the warnings, one a line (atomic); remove an old file when there are none."""
    from pathlib import Path

    from .io.atomic import atomic_path

    path = Path(path)
    if not warnings:
        try:
            path.unlink()
        except FileNotFoundError:
            pass
        return
    with atomic_path(path) as tmp:
        tmp.write_text("".join(f"{w}\n" for w in warnings), encoding="utf-8")


def read_warnings(path) -> list[str]:
    """The warnings written by :func:`write_warnings` (none if the file is absent)."""
    from pathlib import Path

    path = Path(path)
    if not path.is_file():
        return []
    return [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
