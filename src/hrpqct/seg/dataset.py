"""Training data for the segmentation model: cases, the patient split, a slice cache, augmentation.

* :func:`read_cases`: scans with 5-class masks from a manifest CSV, a folder holding
  ``manifest.csv`` (e.g. a ``hrpqct phantom-cohort`` folder) or a folder of case folders, each
  with ``image.*`` and ``labels5.*`` (or ``mask.*``); any format :mod:`hrpqct.io` reads. 7-region
  masks are accepted and merged to the 5 classes (skin, muscle, fat -> soft tissue).
* :func:`synthetic_cohort`: a synthetic cohort rendered once into a cache folder (resumable).
* :func:`split_by_patient`: seeded train / validation / test split of *patients* (60/20/20), so
  no patient's slices are in two splits.
* :func:`build_cache` / :class:`SliceCache`: every slice preprocessed exactly as at inference
  (:mod:`hrpqct.seg.preprocess`: one crop per scan around the limb, clip, per-slice min-max,
  bicubic resampling to the model input) and its mask brought to the input grid (nearest
  neighbour), stored once as memory-mapped ``float16`` images and ``uint8`` labels per split,
  keyed by a hash of the input files and the preprocessing, so epochs and re-runs never redo it.
* :class:`SliceDataset`: a torch dataset over a cache with seeded augmentation (left-right flip,
  small rotation, intensity scale/shift; optional random patch), reproducible per
  ``(seed, epoch, index)`` so an interrupted run resumes identically.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import InputError
from ..io.atomic import swap_folder
from ..method import PREPROCESSING, SYNTHETIC_TRAINING, TRAINING, Augmentation
from ..progress import ProgressCallback, report
from ..regions import MODEL_CLASSES, REGIONS
from .preprocess import InputSpec, labels_to_input, plan_crop, preprocess_slices

__all__ = [
    "Case",
    "read_cases",
    "synthetic_cohort",
    "split_by_patient",
    "load_case",
    "preprocess_case",
    "select_slices",
    "SliceCache",
    "build_cache",
    "Augment",
    "augment_pair",
    "SliceDataset",
    "SPLITS",
]

SPLITS = ("train", "val", "test")
CACHE_VERSION = 1
_MASK_COLUMNS = ("segmentation5", "labels5", "mask", "segmentation")
_PATIENT_COLUMNS = ("patient_id", "subject_id", "patient")
_IMAGE_EXT = (".nrrd", ".nhdr", ".nii", ".nii.gz", ".mha", ".mhd", ".aim", ".isq", ".dcm")


@dataclass(frozen=True)
class Case:
    """One scan with its mask; ``patient`` groups the scans of one person for the split."""

    patient: str
    scan: str
    mask: str

    def key(self) -> dict[str, Any]:
        """Identity of the input files for the cache key (path, size, modification time)."""
        out = {"patient": self.patient}
        for name in ("scan", "mask"):
            p = Path(getattr(self, name))
            st = p.stat() if p.exists() else None
            out[name] = [str(p.resolve()), st.st_size if st else None, st.st_mtime_ns if st else None]
        return out


def _read_manifest(path: Path) -> list[Case]:
    import pandas as pd

    try:
        df = pd.read_csv(path)
    except Exception as exc:  # noqa: BLE001 - pandas raises many kinds
        raise InputError(f"{path}: cannot read the manifest: {exc}") from exc
    if "scan" not in df.columns:
        raise InputError(f"{path}: manifest has no 'scan' column (columns: {list(df.columns)})")
    mask_col = next((c for c in _MASK_COLUMNS if c in df.columns), None)
    if mask_col is None:
        raise InputError(f"{path}: manifest has no mask column (one of {', '.join(_MASK_COLUMNS)})")
    pcol = next((c for c in _PATIENT_COLUMNS if c in df.columns), None)
    synthetic = pcol == "subject_id" and "seed" in df.columns  # a hrpqct phantom-cohort manifest
    base = path.parent
    cases = []
    for i, row in enumerate(df.itertuples(index=False)):
        scan, mask = getattr(row, "scan"), getattr(row, mask_col)
        if not isinstance(scan, str) or not isinstance(mask, str):
            raise InputError(f"{path}: row {i + 2} lacks a scan or {mask_col} path")
        scan_p = Path(scan) if Path(scan).is_absolute() else base / scan
        mask_p = Path(mask) if Path(mask).is_absolute() else base / mask
        for p in (scan_p, mask_p):
            if not p.exists():
                raise InputError(f"{path}: row {i + 2}: file {p} not found")
        patient = str(getattr(row, pcol)) if pcol else scan_p.parent.name or scan_p.stem
        if synthetic:  # every phantom cohort numbers its subjects from sub-0001: add the subject seed
            patient = f"{patient}-seed{int(getattr(row, 'seed'))}"
        cases.append(Case(patient, str(scan_p.resolve()), str(mask_p.resolve())))
    if not cases:
        raise InputError(f"{path}: manifest lists no scans")
    return cases


def _find(folder: Path, stems: Sequence[str]) -> Path | None:
    for p in sorted(folder.iterdir()):
        name = p.name.lower()
        for s in stems:
            if name.startswith(s + ".") and any(name.endswith(e) for e in (*_IMAGE_EXT, ".seg.nrrd")):
                return p
    return None


def read_cases(path: str | os.PathLike) -> list[Case]:
    """Cases from a manifest CSV, a folder with ``manifest.csv``, or a folder of case folders.

    Manifest columns: ``scan`` and a mask column (``segmentation5``, ``labels5``, ``mask`` or
    ``segmentation``), optionally ``patient_id``/``subject_id`` (default: the scan's folder);
    relative paths are relative to the manifest. In a ``hrpqct phantom-cohort`` manifest
    (``subject_id`` and ``seed`` columns, no ``patient_id``) the patient is
    ``<subject_id>-seed<seed>``, so subjects of different cohorts never share an id. Case folders: ``<case>/image.<ext>`` and
    ``<case>/labels5.<ext>`` (or ``mask.<ext>``); the folder name is the patient.
    """
    path = Path(path)
    if path.is_file():
        return _read_manifest(path)
    if not path.is_dir():
        raise InputError(f"{path}: training data not found (a manifest CSV or a folder)")
    if (path / "manifest.csv").is_file():
        return _read_manifest(path / "manifest.csv")
    cases = []
    for sub in sorted(p for p in path.iterdir() if p.is_dir()):
        img, mask = _find(sub, ("image",)), _find(sub, ("labels5", "mask"))
        if img is not None and mask is not None:
            cases.append(Case(sub.name, str(img.resolve()), str(mask.resolve())))
    if not cases:
        raise InputError(f"{path}: no manifest.csv and no case folders with image.* and labels5.* "
                         "(or mask.*) files")
    return cases


def synthetic_cohort(cache: str | os.PathLike, n_subjects: int, *,
                     size: int = SYNTHETIC_TRAINING.size_px, slices: int = SYNTHETIC_TRAINING.slices,
                     seed: int = 0, workers: int = 1, progress: ProgressCallback | None = None) -> Path:
    """Render (or reuse) a synthetic cohort in ``cache``; returns its ``manifest.csv``.

    The folder name encodes the arguments, and rendering is resumable, so a second call with the
    same arguments costs nothing.
    """
    from ..phantom.files import write_cohort
    from ..phantom.render import Grid

    out = Path(cache) / f"synthetic-n{n_subjects}-px{size}-z{slices}-seed{seed}"
    write_cohort(out, n_subjects, Grid(size=size, n_slices=slices), seed=seed, workers=workers,
                 progress=progress)
    return out / "manifest.csv"


def split_by_patient(patients: Sequence[str], fractions: Sequence[float] = TRAINING.split,
                     seed: int = TRAINING.seed) -> dict[str, list[str]]:
    """Seeded split of the distinct ``patients`` into train / val / test (sorted id lists).

    Counts: ``round(n * f_val)`` validation and ``round(n * f_test)`` test patients (at least one
    each when there are 3 or more patients and the fraction is positive); the rest train.
    """
    ids = sorted(set(map(str, patients)))
    n = len(ids)
    f = np.asarray(fractions, dtype=float)
    if f.shape != (3,) or (f < 0).any() or f.sum() <= 0:
        raise InputError(f"split fractions must be three non-negative numbers, got {fractions}")
    f = f / f.sum()
    if n == 0:
        raise InputError("no patients to split")
    n_val = int(round(n * f[1]))
    n_test = int(round(n * f[2]))
    if n >= 3:
        n_val = max(n_val, 1 if f[1] > 0 else 0)
        n_test = max(n_test, 1 if f[2] > 0 else 0)
    n_val, n_test = min(n_val, n - 1), min(n_test, max(0, n - 1 - n_val))
    order = np.random.default_rng([int(seed), 60_20_20]).permutation(n)
    shuffled = [ids[i] for i in order]
    val = shuffled[:n_val]
    test = shuffled[n_val:n_val + n_test]
    train = shuffled[n_val + n_test:]
    return {"train": sorted(train), "val": sorted(val), "test": sorted(test)}


def load_case(case: Case):
    """``(image Volume in HU, 5-class label array uint8 [z, y, x])`` of a case, on one grid."""
    from ..io import read_pair
    from .refine import to_model_classes

    try:
        image, mask = read_pair(case.scan, case.mask, "HU", table=REGIONS)
    except InputError:
        if not str(case.mask).lower().endswith(".seg.nrrd"):
            raise
        image, mask = read_pair(case.scan, case.mask, "HU", table=MODEL_CLASSES)
    try:
        labels = to_model_classes(mask.array)
    except InputError as exc:
        raise InputError(f"{case.mask}: {exc}") from exc
    return image, labels


def select_slices(n_slices: int, per_scan: int | None) -> np.ndarray:
    """Indices of ``per_scan`` evenly spaced slices (all when ``None`` or >= ``n_slices``)."""
    if per_scan is None or per_scan >= n_slices:
        return np.arange(n_slices)
    if per_scan < 1:
        raise InputError(f"slices per scan must be >= 1, got {per_scan}")
    return np.unique(np.linspace(0, n_slices - 1, per_scan).round().astype(int))


def preprocess_case(image_hu: np.ndarray, labels: np.ndarray, spacing, spec: InputSpec,
                    slices: np.ndarray | None = None, batch: int = 8):
    """Network inputs ``[n, S, S]`` float16 and labels ``[n, S, S]`` uint8 of one scan.

    Exactly the inference preprocessing: :func:`plan_crop` on the whole scan (HU, ``[z, y, x]``,
    ``spacing`` ITK ``(x, y, z)`` mm), then :func:`preprocess_slices` per slice; labels by
    :func:`labels_to_input` (nearest neighbour) on the same crop.
    """
    slices = np.arange(image_hu.shape[0]) if slices is None else np.asarray(slices)
    box, _ = plan_crop(image_hu, spacing, spec)
    s = spec.input_px
    imgs = np.empty((len(slices), s, s), dtype=np.float16)
    labs = np.empty((len(slices), s, s), dtype=np.uint8)
    for a in range(0, len(slices), batch):
        idx = slices[a:a + batch]
        x = preprocess_slices(np.asarray(image_hu[idx], dtype=np.float32), box, spec)
        imgs[a:a + len(idx)] = x[:, 0].numpy().astype(np.float16)
        labs[a:a + len(idx)] = labels_to_input(np.asarray(labels[idx]), box, spec)
    return imgs, labs


class SliceCache:
    """A built cache folder: ``images.npy`` (float16 ``[n, S, S]``), ``labels.npy`` (uint8),
    ``index.csv`` (patient, scan, slice) and ``meta.json``; arrays are memory-mapped read-only."""

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder)
        try:
            self.meta = json.loads((self.folder / "meta.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise InputError(f"{self.folder}: not a slice cache: {exc}") from exc
        self.images = np.load(self.folder / "images.npy", mmap_mode="r")
        self.labels = np.load(self.folder / "labels.npy", mmap_mode="r")
        import pandas as pd

        self.index = pd.read_csv(self.folder / "index.csv")
        if not (len(self.images) == len(self.labels) == len(self.index)):
            raise InputError(f"{self.folder}: cache arrays disagree in length; delete the folder")

    def __len__(self) -> int:
        return len(self.images)

    @property
    def input_px(self) -> int:
        return int(self.images.shape[-1])


def _cache_key(cases: Sequence[Case], spec: InputSpec, per_scan: int | None) -> str:
    blob = json.dumps({"v": CACHE_VERSION, "spec": spec.to_dict(), "per_scan": per_scan,
                       "cases": [c.key() for c in cases]}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def build_cache(cases: Sequence[Case], folder: str | os.PathLike, spec: InputSpec, *,
                slices_per_scan: int | None = None, progress: ProgressCallback | None = None,
                ) -> SliceCache:
    """Preprocess ``cases`` once into ``folder/<key>/`` (or reuse it) and open it.

    ``key`` hashes the preprocessing, the slice selection and every input file's path, size and
    modification time, so changed inputs get a new cache. Built in a temporary folder and moved
    into place, so an interrupted build leaves nothing half-written.
    """
    import pandas as pd

    if not cases:
        raise InputError("no cases to preprocess")
    root = Path(folder)
    final = root / _cache_key(cases, spec, slices_per_scan)
    if (final / "meta.json").is_file():
        return SliceCache(final)
    root.mkdir(parents=True, exist_ok=True)
    # pass 1: read each case once, preprocess, append to per-case temporary arrays
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=root))
    try:
        parts, rows = [], []
        total = len(cases)
        report(progress, 0, total)
        for i, case in enumerate(cases):
            image, labels = load_case(case)
            idx = select_slices(image.shape[0], slices_per_scan)
            imgs, labs = preprocess_case(image.array, labels, image.spacing, spec, idx)
            np.save(tmp / f"part{i}-img.npy", imgs)
            np.save(tmp / f"part{i}-lab.npy", labs)
            parts.append(len(idx))
            rows += [{"patient": case.patient, "scan": case.scan, "mask": case.mask,
                      "slice": int(k), "spacing_mm": float(image.spacing[0])} for k in idx]
            del image, labels, imgs, labs
            report(progress, i + 1, total)
        n, s = sum(parts), spec.input_px
        img_mm = np.lib.format.open_memmap(tmp / "images.npy", "w+", np.float16, (n, s, s))
        lab_mm = np.lib.format.open_memmap(tmp / "labels.npy", "w+", np.uint8, (n, s, s))
        at = 0
        for i, k in enumerate(parts):
            img_mm[at:at + k] = np.load(tmp / f"part{i}-img.npy")
            lab_mm[at:at + k] = np.load(tmp / f"part{i}-lab.npy")
            (tmp / f"part{i}-img.npy").unlink()
            (tmp / f"part{i}-lab.npy").unlink()
            at += k
        img_mm.flush()
        lab_mm.flush()
        del img_mm, lab_mm
        pd.DataFrame(rows).to_csv(tmp / "index.csv", index=False)
        (tmp / "meta.json").write_text(json.dumps(
            {"version": CACHE_VERSION, "input_spec": spec.to_dict(), "slices_per_scan": slices_per_scan,
             "n_slices": n, "n_cases": len(cases), "patients": sorted({c.patient for c in cases})},
            indent=2), encoding="utf-8")
        swap_folder(tmp, final, replace=False)  # another process may have built it meanwhile
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return SliceCache(final)


# --- augmentation ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Augment(Augmentation):
    """Augmentation parameters: the fields of :class:`hrpqct.method.Augmentation` (defaults
    ``TRAINING.augment``); ``enabled=False`` turns all off.

    ``flip_prob``: probability of a left-right mirror (a left leg becomes a right one);
    ``rotate_deg``: rotation drawn uniformly in +-this (degrees), about the crop centre (image
    bilinear, labels nearest neighbour, outside filled with the image minimum and background);
    ``intensity_scale``/``intensity_shift``: ``x * (1 + a) + b`` with ``a``, ``b`` uniform in
    +-these (the input is min-max normalised to [0, 1]).

    ``robust=True`` (``train-seg --robust-augment``, issue 14) adds, each with its probability
    (:class:`hrpqct.method.Augmentation`): radius-like negatives, field of view and limb position
    (shift, zoom), resolution (down to a scanner's or a pQCT/CT pixel size and back to the model
    grid), blur, motion ghosts, correlated noise and calibration errors; see
    :func:`augment_pair` and ``docs/training.md``.
    """

    def __post_init__(self) -> None:
        for name in ("resolution_scanners_mm", "resolution_range_mm"):
            object.__setattr__(self, name, tuple(float(v) for v in getattr(self, name)))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values (tuples as lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    def only(self, *names: str) -> "Augment":
        """The robust augmentations named (``"resolution"``, ``"noise"``, ``"calib"``, ``"blur"``,
        ``"motion"``, ``"position"``, ``"radius"``) always on, every other one off (for tests and
        for the per-setting evaluation); flips, rotation and jitter off."""
        from dataclasses import replace

        kw = {f"{n}_prob": (1.0 if n in names else 0.0) for n in _ROBUST}
        return replace(self, enabled=True, robust=True, flip_prob=0.0, rotate_deg=0.0,
                       intensity_scale=0.0, intensity_shift=0.0, **kw)


_ROBUST = ("radius", "position", "resolution", "blur", "motion", "noise", "calib")
_N_ROBUST_DRAWS = 24


def _affine(image, label, mat, fill_label: bool = True):
    """Resample ``image [1, S, S]`` (bilinear, outside = its minimum) and ``label [S, S]``
    (nearest, outside = background) through the 2 x 3 ``affine_grid`` matrix ``mat``."""
    import torch
    import torch.nn.functional as F

    grid = F.affine_grid(torch.tensor([mat], dtype=torch.float32), [1, 1, *image.shape[-2:]],
                         align_corners=False)
    lo = image.min()
    image = F.grid_sample((image - lo)[None], grid, mode="bilinear", padding_mode="zeros",
                          align_corners=False)[0] + lo
    if label is not None:
        label = F.grid_sample(label[None, None].float(), grid, mode="nearest",
                              padding_mode="zeros", align_corners=False)[0, 0].long()
    return image, label


def gaussian_blur(image, sigma_px: float):
    """``image [1, S, S]`` smoothed by a Gaussian of ``sigma_px`` pixels (separable, reflected
    edges); unchanged for sigma below 0.1 pixel."""
    import torch
    import torch.nn.functional as F

    if sigma_px < 0.1:
        return image
    r = max(1, int(math.ceil(3 * sigma_px)))
    x = torch.arange(-r, r + 1, dtype=torch.float32)
    k = torch.exp(-0.5 * (x / sigma_px) ** 2)
    k = k / k.sum()
    t = F.pad(image[None], (r, r, r, r), mode="reflect")
    t = F.conv2d(t, k.view(1, 1, 1, -1))
    t = F.conv2d(t, k.view(1, 1, -1, 1))
    return t[0]


def degrade_resolution(image, factor: float):
    """``image [1, S, S]`` brought down to ``S / factor`` pixels (area average, as a coarser
    detector) and back up to ``S`` (bilinear, as inference resamples a coarse scan); unchanged
    for ``factor <= 1``."""
    import torch.nn.functional as F

    if factor <= 1.0:
        return image
    s = image.shape[-1]
    small = max(4, int(round(s / factor)))
    t = F.interpolate(image[None], size=(small, small), mode="area")
    return F.interpolate(t, size=image.shape[-2:], mode="bilinear", align_corners=False)[0]


def _robust(image, label, aug: Augment, gen, input_mm: float):
    import torch

    from ..regions import SOFT_TISSUE_CLASS, model_class

    u = torch.rand(_N_ROBUST_DRAWS, generator=gen, dtype=torch.float64).tolist()
    s = image.shape[-1]
    # radius-like negative: fibula painted over, the limb shrunk to a forearm, target background
    if u[0] < aug.radius_prob:
        fib = (label == model_class("FC").label) | (label == model_class("FT").label)
        soft = label == SOFT_TISSUE_CLASS
        if fib.any():
            fill = image[0][soft].median() if soft.any() else image.min()
            image = image.clone()
            image[0][fib] = fill
        z = 1.0 / max(aug.radius_zoom, 1e-3)
        image, _ = _affine(image, None, [[z, 0.0, 0.0], [0.0, z, 0.0]])
        label = torch.zeros_like(label)
    # field of view and limb position: shift and zoom about the centre
    if u[1] < aug.position_prob:
        zoom = 1.0 + (2 * u[2] - 1) * aug.zoom
        tx, ty = ((2 * u[3] - 1) * 2 * aug.shift_fraction, (2 * u[4] - 1) * 2 * aug.shift_fraction)
        z = 1.0 / zoom
        image, label = _affine(image, label, [[z, 0.0, tx], [0.0, z, ty]])
    # resolution: a scanner's pixel (XtremeCT II / I) or a pQCT / clinical CT pixel
    if u[5] < aug.resolution_prob:
        scanners = aug.resolution_scanners_mm
        if scanners and u[6] < 0.4:
            target = scanners[min(int(u[7] * len(scanners)), len(scanners) - 1)]
        else:
            lo, hi = aug.resolution_range_mm
            target = lo + u[7] * (hi - lo)
        image = degrade_resolution(image, target / input_mm)
    if u[8] < aug.blur_prob:
        image = gaussian_blur(image, u[9] * aug.blur_px)
    # motion: a ghost of the slice shifted in a random direction
    if u[10] < aug.motion_prob:
        d = u[11] * aug.motion_px
        ang = 2 * math.pi * u[12]
        dy, dx = int(round(d * math.sin(ang))), int(round(d * math.cos(ang)))
        w = u[13] * aug.motion_weight
        image = (1 - w) * image + w * torch.roll(image, shifts=(dy, dx), dims=(-2, -1))
    # correlated noise: white noise smoothed to a grain, scaled to its SD
    if u[14] < aug.noise_prob:
        n = torch.randn(image.shape, generator=gen, dtype=torch.float32)
        n = gaussian_blur(n, u[15] * aug.noise_grain_px)
        sd = float(n.std())
        if sd > 0:
            image = image + n * (u[16] * aug.noise_sd / sd)
    # calibration errors: scale and offset
    if u[17] < aug.calib_prob:
        a = (2 * u[18] - 1) * aug.calib_scale
        b = (2 * u[19] - 1) * aug.calib_shift
        image = image * (1.0 + a) + b
    del s
    return image, label


def augment_pair(image, label, aug: Augment, gen, input_mm: float | None = None):
    """Augment one ``[1, S, S]`` float image and ``[S, S]`` int64 label with torch generator ``gen``.

    Always draws the same number of random numbers, so the stream does not depend on outcomes
    (with ``aug.robust`` a second, fixed-size block follows, plus ``S x S`` normal draws when
    noise is added). ``input_mm``: pixel size of the network input (mm), for the resolution
    augmentation (default the paper's 0.1214 mm).
    """
    import torch

    u = torch.rand(4, generator=gen, dtype=torch.float64).tolist()
    if not aug.enabled:
        return image, label
    if u[0] < aug.flip_prob:
        image = image.flip(-1)
        label = label.flip(-1)
    theta = math.radians((2 * u[1] - 1) * aug.rotate_deg)
    if theta != 0.0:
        c, s = math.cos(theta), math.sin(theta)
        image, label = _affine(image, label, [[c, -s, 0.0], [s, c, 0.0]])
    a = (2 * u[2] - 1) * aug.intensity_scale
    b = (2 * u[3] - 1) * aug.intensity_shift
    if aug.robust:
        image, label = _robust(image, label, aug, gen, float(input_mm or PREPROCESSING.crop_mm
                                                             / PREPROCESSING.input_px))
    return image * (1.0 + a) + b, label


class SliceDataset:
    """Torch-style dataset over a :class:`SliceCache`: ``(image [1, S, S] float32, label [S, S] int64)``.

    With ``patch_px`` smaller than the input, a ``patch_px`` square is cut from the augmented
    slice, centred on a random limb pixel (label > 0) when there is one. Randomness comes from a
    generator seeded with ``(seed, epoch, index)``: call :meth:`set_epoch` each epoch.
    """

    def __init__(self, cache: SliceCache, augment: Augment | None = None, *, seed: int = TRAINING.seed,
                 patch_px: int | None = None) -> None:
        self.cache = cache
        self.augment = augment or Augment(enabled=False)
        self.seed = int(seed)
        self.epoch = 0
        self.patch_px = None if not patch_px or patch_px >= cache.input_px else int(patch_px)
        spec = (getattr(cache, "meta", None) or {}).get("input_spec") or {}
        self.input_mm = (float(spec["crop_mm"]) / float(spec["input_px"])
                         if spec.get("crop_mm") and spec.get("input_px") else None)

    def __len__(self) -> int:
        return len(self.cache)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def generator(self, index: int):
        import torch

        g = torch.Generator()
        g.manual_seed(int(np.random.SeedSequence([self.seed, self.epoch, int(index)]).generate_state(1)[0]))
        return g

    def __getitem__(self, index: int):
        import torch

        img = torch.from_numpy(np.asarray(self.cache.images[index], dtype=np.float32))[None]
        lab = torch.from_numpy(np.asarray(self.cache.labels[index], dtype=np.int64))
        g = self.generator(index)
        img, lab = augment_pair(img, lab, self.augment, g, self.input_mm)
        if self.patch_px:
            p, s = self.patch_px, lab.shape[-1]
            fg = torch.nonzero(lab > 0)
            r = torch.rand(2, generator=g, dtype=torch.float64).tolist()
            if len(fg):
                cy, cx = fg[min(int(r[0] * len(fg)), len(fg) - 1)].tolist()
            else:
                cy, cx = int(r[0] * s), int(r[1] * s)
            y0 = min(max(cy - p // 2, 0), s - p)
            x0 = min(max(cx - p // 2, 0), s - p)
            img, lab = img[:, y0:y0 + p, x0:x0 + p], lab[y0:y0 + p, x0:x0 + p]
        return img.contiguous(), lab.contiguous()
