"""Per-slice preprocessing for the network, and its exact inverse back to the scan's grid.

docs/method.md "Preprocessing", per slice: crop 1600 x 1600 pixels around the limb (pad if smaller),
clip to [-4000, 6000] HU, min-max normalise the clipped crop to [0, 1], bicubic x2 down to
800 x 800 (label maps: nearest neighbour).

Generalised to any in-plane pixel size: the crop has the same *physical* side
(:attr:`InputSpec.crop_mm`, 1600 x 60.7 um = 97.12 mm) and is resampled to the model's input
size, so the network always sees the same mm per pixel. At 60.7 um this is exactly the paper's
1600 -> 800 pipeline.

The inverse (:func:`logits_to_labels`) takes the network's output (any size, normally 1/4 of the
input side), upsamples it to the crop and pastes it at the crop's place in a slice of the input's
shape; pixels outside the crop are background. The crop is in index space, so the label volume
has exactly the input's shape, spacing, origin and direction.

Conventions: slices are ``[y, x]`` arrays in HU; batches are ``[b, y, x]``; boxes and centres
are in native pixels ``(y, x)``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np

from ..errors import InputError
from ..method import MODEL, PREPROCESSING, SCAN, UPSAMPLE_MODES, Preprocessing

__all__ = [
    "InputSpec",
    "CropBox",
    "limb_mask",
    "find_limb_box",
    "crop_box",
    "plan_crop",
    "extract_crops",
    "normalise",
    "resample_to_input",
    "preprocess_slices",
    "labels_to_input",
    "logits_to_labels",
    "UPSAMPLE_MODES",
]



@dataclass(frozen=True)
class InputSpec(Preprocessing):
    """What a model expects; stored in its model card so a model is always fed as it was trained.

    The fields of :class:`hrpqct.method.Preprocessing` (defaults ``PREPROCESSING``): ``crop_mm``,
    physical side of the square crop (mm); ``input_px``, network input side (px); ``clip_hu``,
    intensity window (HU) before min-max; ``limb_threshold_hu``, HU separating air from tissue
    when locating the limb. And: ``pad_hu``, value of padding outside the scan (HU, air,
    ``SCAN.hu_air``); ``antialias``, antialiased bicubic when shrinking (not in the paper;
    PIL-style, the default of torchvision); ``upsample`` (``MODEL.upsample``): ``"bilinear"``
    (interpolate logits, then argmax) or ``"nearest"`` (the paper: argmax, then
    nearest-neighbour).
    """

    pad_hu: float = SCAN.hu_air
    antialias: bool = True
    upsample: str = MODEL.upsample

    def __post_init__(self) -> None:
        object.__setattr__(self, "clip_hu", tuple(float(v) for v in self.clip_hu))
        if self.upsample not in UPSAMPLE_MODES:
            raise InputError(f"upsample must be one of {UPSAMPLE_MODES}, got {self.upsample!r}")
        if not (self.crop_mm > 0 and self.input_px > 0 and self.clip_hu[1] > self.clip_hu[0]):
            raise InputError(f"invalid preprocessing parameters: {self}")

    @property
    def input_mm(self) -> float:
        """Pixel size the network sees, mm (0.1214 mm for the paper's setting)."""
        return self.crop_mm / self.input_px

    def crop_shape(self, spacing_xy: tuple[float, float]) -> tuple[int, int]:
        """Crop size ``(ny, nx)`` in native pixels for an in-plane spacing ``(sx, sy)`` in mm."""
        sx, sy = float(spacing_xy[0]), float(spacing_xy[1])
        return max(1, int(round(self.crop_mm / sy))), max(1, int(round(self.crop_mm / sx)))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["clip_hu"] = list(self.clip_hu)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "InputSpec":
        """From a model card's ``preprocessing`` block; unknown keys are ignored."""
        names = {f.name for f in fields(cls)}
        kw = {k: v for k, v in d.items() if k in names}
        if "clip_hu" in kw:
            kw["clip_hu"] = tuple(kw["clip_hu"])
        return cls(**kw)


@dataclass(frozen=True)
class CropBox:
    """A ``ny x nx`` window whose top-left native pixel is ``(y0, x0)``; may extend past the slice."""

    y0: int
    x0: int
    ny: int
    nx: int

    def overlap(self, shape_yx: tuple[int, int]) -> tuple[tuple[slice, slice], tuple[slice, slice]]:
        """``(slice_index, crop_index)``: matching windows in the slice and in the crop."""
        h, w = int(shape_yx[0]), int(shape_yx[1])
        ys, ye = max(self.y0, 0), min(self.y0 + self.ny, h)
        xs, xe = max(self.x0, 0), min(self.x0 + self.nx, w)
        if ye <= ys or xe <= xs:
            raise InputError(f"crop {self} does not overlap a slice of shape {shape_yx}")
        return (
            (slice(ys, ye), slice(xs, xe)),
            (slice(ys - self.y0, ye - self.y0), slice(xs - self.x0, xe - self.x0)),
        )


def limb_mask(slice_hu: np.ndarray, threshold_hu: float = PREPROCESSING.limb_threshold_hu) -> np.ndarray:
    """Largest connected component of ``slice_hu > threshold_hu`` (bool ``[y, x]``); may be empty."""
    from scipy import ndimage

    fg = np.asarray(slice_hu) > threshold_hu
    lab, n = ndimage.label(fg)
    if n == 0:
        return fg
    sizes = np.bincount(lab.ravel())
    sizes[0] = 0
    return lab == int(np.argmax(sizes))


def find_limb_box(
    volume_hu: np.ndarray,
    threshold_hu: float = PREPROCESSING.limb_threshold_hu,
    max_slices: int = 24,
    step_px: int = 4,
    to_hu=None,
) -> tuple[int, int, int, int] | None:
    """Bounding box ``(y0, y1, x0, x1)`` (native pixels, end exclusive) of the limb, or ``None``.

    Robust and cheap on a whole scan: the maximum over up to ``max_slices`` evenly spaced slices,
    subsampled by ``step_px`` in-plane, thresholded at ``threshold_hu``; the largest connected
    component's bounding box. Works on memory-mapped volumes (reads only those slices).
    ``to_hu``: optional function converting the stored values of a slice to HU.
    """
    vol = volume_hu if volume_hu.ndim == 3 else volume_hu[None]
    nz = vol.shape[0]
    idx = np.unique(np.linspace(0, nz - 1, num=min(nz, max_slices)).round().astype(int))
    mip = None
    for k in idx:
        s = np.asarray(vol[k, ::step_px, ::step_px], dtype=np.float32)
        if to_hu is not None:
            s = to_hu(s)
        mip = s if mip is None else np.maximum(mip, s)
    mask = limb_mask(mip, threshold_hu)
    if not mask.any():
        return None
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    h, w = vol.shape[1], vol.shape[2]
    return (
        int(rows[0]) * step_px,
        min(h, (int(rows[-1]) + 1) * step_px),
        int(cols[0]) * step_px,
        min(w, (int(cols[-1]) + 1) * step_px),
    )


def crop_box(centre_yx: tuple[float, float], crop_shape: tuple[int, int]) -> CropBox:
    """The ``crop_shape`` window centred (to the nearest pixel) on ``centre_yx`` (native px)."""
    ny, nx = int(crop_shape[0]), int(crop_shape[1])
    return CropBox(int(math.floor(centre_yx[0] - ny / 2 + 0.5)),
                   int(math.floor(centre_yx[1] - nx / 2 + 0.5)), ny, nx)


def plan_crop(
    volume_hu: np.ndarray,
    spacing: tuple[float, ...],
    spec: InputSpec = InputSpec(),
    to_hu=None,
) -> tuple[CropBox, dict[str, Any]]:
    """One crop for the whole scan: ``spec.crop_mm`` square centred on the limb's bounding box.

    ``spacing`` is ITK order ``(x, y[, z])`` in mm; ``to_hu`` converts stored values to HU if
    the volume is not in HU. Returns the box and facts for the log:
    ``limb_box`` (y0, y1, x0, x1 or None: no tissue found, the slice centre is used) and
    ``limb_truncated`` (the limb is wider than the crop, so its edges are labelled background).
    """
    ny, nx = spec.crop_shape((spacing[0], spacing[1]))
    h, w = volume_hu.shape[-2], volume_hu.shape[-1]
    limb = find_limb_box(volume_hu, spec.limb_threshold_hu, to_hu=to_hu)
    if limb is None:
        centre = (h / 2.0, w / 2.0)
    else:
        centre = ((limb[0] + limb[1]) / 2.0, (limb[2] + limb[3]) / 2.0)
    box = crop_box(centre, (ny, nx))
    truncated = bool(limb is not None and (limb[1] - limb[0] > ny or limb[3] - limb[2] > nx))
    return box, {"limb_box": limb, "limb_truncated": truncated, "crop_box": asdict(box)}


def extract_crops(slices_hu: np.ndarray, box: CropBox, pad_hu: float = SCAN.hu_air) -> np.ndarray:
    """``[b, ny, nx]`` float32 crops of ``[b, y, x]`` slices (HU), padded with ``pad_hu`` outside."""
    slices_hu = np.asarray(slices_hu)
    if slices_hu.ndim == 2:
        slices_hu = slices_hu[None]
    out = np.full((slices_hu.shape[0], box.ny, box.nx), pad_hu, dtype=np.float32)
    (sy, sx), (cy, cx) = box.overlap(slices_hu.shape[-2:])
    out[:, cy, cx] = slices_hu[:, sy, sx]
    return out


def normalise(crops_hu: np.ndarray, clip_hu: tuple[float, float] = PREPROCESSING.clip_hu) -> np.ndarray:
    """Clip to ``clip_hu`` (HU), then min-max each ``[y, x]`` slice to [0, 1] (float32, in place).

    A constant slice becomes all zeros.
    """
    x = np.asarray(crops_hu, dtype=np.float32)
    np.clip(x, clip_hu[0], clip_hu[1], out=x)
    flat = x.reshape(x.shape[0], -1) if x.ndim == 3 else x.reshape(1, -1)
    lo = flat.min(axis=1)
    rng = flat.max(axis=1) - lo
    scale = np.where(rng > 0, 1.0 / np.where(rng > 0, rng, 1.0), 0.0).astype(np.float32)
    flat -= lo[:, None]
    flat *= scale[:, None]
    return x


def resample_to_input(normalised: np.ndarray, spec: InputSpec = InputSpec()):
    """``[b, ny, nx]`` normalised crops -> float32 torch tensor ``[b, 1, S, S]``, S = input_px.

    Bicubic (a = -0.75), pixel edges aligned (the crop's extent maps to the input's extent),
    clamped back to [0, 1] (bicubic overshoots at sharp edges; not in the paper, which only says
    the input is in [0, 1]); identity when the crop already has the input size.
    """
    import torch
    import torch.nn.functional as F

    t = torch.from_numpy(np.ascontiguousarray(normalised, dtype=np.float32))[:, None]
    s = spec.input_px
    if t.shape[-2:] == (s, s):
        return t
    t = F.interpolate(t, size=(s, s), mode="bicubic", align_corners=False,
                      antialias=bool(spec.antialias))
    return t.clamp_(0.0, 1.0)


def preprocess_slices(slices_hu: np.ndarray, box: CropBox, spec: InputSpec = InputSpec()):
    """The whole docs/method.md pipeline for ``[b, y, x]`` HU slices: network input ``[b, 1, S, S]``."""
    crops = extract_crops(slices_hu, box, spec.pad_hu)
    return resample_to_input(normalise(crops, spec.clip_hu), spec)


def labels_to_input(labels: np.ndarray, box: CropBox, spec: InputSpec = InputSpec()) -> np.ndarray:
    """Label slices ``[b, y, x]`` -> ``[b, S, S]`` uint8 on the network's input grid.

    Crop (pad with background 0), then nearest neighbour (pixel-centre rule, "nearest-exact").
    """
    import torch
    import torch.nn.functional as F

    labels = np.asarray(labels)
    if labels.ndim == 2:
        labels = labels[None]
    crop = np.zeros((labels.shape[0], box.ny, box.nx), dtype=np.uint8)
    (sy, sx), (cy, cx) = box.overlap(labels.shape[-2:])
    crop[:, cy, cx] = labels[:, sy, sx]
    s = spec.input_px
    if crop.shape[-2:] == (s, s):
        return crop
    t = torch.from_numpy(crop)[:, None]
    return F.interpolate(t, size=(s, s), mode="nearest-exact")[:, 0].numpy()


def logits_to_labels(
    logits,
    box: CropBox,
    slice_shape: tuple[int, int],
    upsample: str = MODEL.upsample,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Network logits ``[b, C, h, w]`` (torch, any device) -> labels ``[b, y, x]`` uint8 (numpy).

    ``"bilinear"``: logits interpolated to the crop (edges aligned), then argmax; ``"nearest"``:
    argmax, then nearest neighbour. The crop is pasted at ``box`` in a ``slice_shape`` slice;
    pixels outside the crop are 0. Writes into ``out`` (e.g. a view of the output volume) if
    given. Works one slice at a time so memory stays at one upsampled crop.
    """
    import torch
    import torch.nn.functional as F

    if upsample not in UPSAMPLE_MODES:
        raise InputError(f"upsample must be one of {UPSAMPLE_MODES}, got {upsample!r}")
    b = logits.shape[0]
    h, w = int(slice_shape[0]), int(slice_shape[1])
    if out is None:
        out = np.zeros((b, h, w), dtype=np.uint8)
    else:
        out[...] = 0
    (sy, sx), (cy, cx) = box.overlap((h, w))
    size = (box.ny, box.nx)
    for i in range(b):
        # channels-last: the argmax then reduces over contiguous memory (10x faster on the CPU)
        li = logits[i : i + 1].float().contiguous(memory_format=torch.channels_last)
        if upsample == "bilinear":
            if li.shape[-2:] != size:
                li = F.interpolate(li, size=size, mode="bilinear", align_corners=False)
            lab = li[0].permute(1, 2, 0).argmax(-1)
        else:
            lab = li[0].permute(1, 2, 0).argmax(-1)
            if lab.shape != size:
                lab = F.interpolate(lab[None, None].to(torch.uint8), size=size, mode="nearest-exact")[0, 0]
        out[i, sy, sx] = lab[cy, cx].to(torch.uint8).cpu().numpy()
    return out
