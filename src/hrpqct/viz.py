"""Pictures people would rather look at than read: slice overviews with region overlays."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from . import regions as R

__all__ = ["overlay_rgb", "save_overview", "save_comparison", "save_confidence_plot", "BONE_WINDOW_HU",
           "SOFT_WINDOW_HU"]

BONE_WINDOW_HU = (-1000.0, 3500.0)  # shows trabeculae, cortex and soft tissue at once
SOFT_WINDOW_HU = (-600.0, 600.0)  # separates fat, muscle and tendon


def _grey(img: np.ndarray, window: tuple[float, float]) -> np.ndarray:
    lo, hi = window
    g = np.clip((img.astype(np.float32) - lo) / (hi - lo), 0, 1)
    return np.repeat(g[..., None], 3, axis=-1)


def overlay_rgb(image_hu: np.ndarray, labels: np.ndarray, table=R.REGIONS,
                window: tuple[float, float] = BONE_WINDOW_HU, alpha: float = 0.45) -> np.ndarray:
    """RGB float image: the slice in grey with each label's colour blended in."""
    rgb = _grey(image_hu, window)
    lut = R.lookup_table(table).astype(np.float32) / 255.0
    lab = np.clip(labels, 0, len(lut) - 1)
    m = lab > 0
    rgb[m] = (1 - alpha) * rgb[m] + alpha * lut[lab[m]]
    return rgb


def _crop_box(labels: np.ndarray, margin: int) -> tuple[slice, slice]:
    ys, xs = np.nonzero(labels)
    if len(ys) == 0:
        return slice(None), slice(None)
    return (slice(max(ys.min() - margin, 0), ys.max() + margin + 1),
            slice(max(xs.min() - margin, 0), xs.max() + margin + 1))


def save_overview(path: str | os.PathLike, image_hu: np.ndarray, labels: np.ndarray | None = None,
                  table=R.REGIONS, pixel_mm: float | None = None, title: str = "",
                  crop: bool = True, dpi: int = 110) -> Path:
    """Write a PNG: the slice (bone window), the soft-tissue window, and the region overlay with a
    legend and a 10 mm scale bar. ``image_hu`` and ``labels`` are 2D [y, x]."""
    plt = _figure()
    from matplotlib.patches import Patch

    path = Path(path)
    if crop:
        fg = labels > 0 if labels is not None else ndi.median_filter(image_hu, 5) > -500
        sl = _crop_box(fg, int(round(8.0 / pixel_mm)) if pixel_mm else 40)
    else:
        sl = (slice(None),) * 2
    img = image_hu[sl]
    panels = [(_grey(img, BONE_WINDOW_HU), f"HU {BONE_WINDOW_HU[0]:.0f} to {BONE_WINDOW_HU[1]:.0f}"),
              (_grey(img, SOFT_WINDOW_HU), f"HU {SOFT_WINDOW_HU[0]:.0f} to {SOFT_WINDOW_HU[1]:.0f}")]
    if labels is not None:
        panels.append((overlay_rgb(img, labels[sl], table), "regions"))
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 5.4))
    for ax, (rgb, sub) in zip(np.atleast_1d(axes), panels):
        ax.imshow(rgb, interpolation="nearest")
        ax.set_title(sub, fontsize=10)
        ax.set_axis_off()
        if pixel_mm:
            n = 10.0 / pixel_mm
            h, w = rgb.shape[:2]
            ax.plot([w * 0.05, w * 0.05 + n], [h * 0.95, h * 0.95], color="white", lw=3)
            ax.text(w * 0.05 + n / 2, h * 0.93, "10 mm", color="white", ha="center", fontsize=9)
    if labels is not None:
        present = set(np.unique(labels[sl]).tolist())
        handles = [Patch(color=np.array(r.color) / 255, label=f"{r.code} {r.name}")
                   for r in table if r.label in present]
        np.atleast_1d(axes)[-1].legend(handles=handles, loc="upper right", fontsize=7, framealpha=0.8)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    _save(fig, path, dpi)
    plt.close(fig)
    return path


def _figure():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path, dpi: int) -> Path:
    from .io.atomic import atomic_path

    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=dpi, format="png")
    finally:
        fig.clf()
    return path


def save_comparison(path: str | os.PathLike, image_hu: np.ndarray, predicted: np.ndarray,
                    truth: np.ndarray | None = None, table=R.REGIONS, pixel_mm: float | None = None,
                    title: str = "", dpi: int = 110) -> Path:
    """PNG of one slice: the image, the predicted regions and (if given) the ground truth with the
    disagreeing pixels outlined in white. 2D arrays [y, x]."""
    plt = _figure()
    from matplotlib.patches import Patch

    fg = (predicted > 0) | (truth > 0 if truth is not None else False)
    sl = _crop_box(fg, int(round(8.0 / pixel_mm)) if pixel_mm else 40)
    img = image_hu[sl]
    panels = [(_grey(img, BONE_WINDOW_HU), "scan"), (overlay_rgb(img, predicted[sl], table), "predicted")]
    if truth is not None:
        t = truth[sl]
        rgb = overlay_rgb(img, t, table)
        wrong = predicted[sl] != t
        edge = wrong & ~ndi.binary_erosion(wrong)
        rgb[edge] = 1.0
        agree = 100.0 * (1 - wrong[t > 0].mean()) if (t > 0).any() else float("nan")
        panels.append((rgb, f"ground truth (white: disagreement; {agree:.1f} % of limb pixels agree)"))
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 5.6))
    for ax, (rgb, sub) in zip(np.atleast_1d(axes), panels):
        ax.imshow(rgb, interpolation="nearest")
        ax.set_title(sub, fontsize=10)
        ax.set_axis_off()
    present = set(np.unique(predicted[sl]).tolist())
    handles = [Patch(color=np.array(r.color) / 255, label=f"{r.code} {r.name}") for r in table
               if r.label in present]
    np.atleast_1d(axes)[1].legend(handles=handles, loc="upper right", fontsize=7, framealpha=0.8)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    out = _save(fig, Path(path), dpi)
    plt.close(fig)
    return out


def save_confidence_plot(path: str | os.PathLike, confidence, n_flag: int = 5, title: str = "",
                         dpi: int = 110) -> Path:
    """PNG: per-slice mean max-probability and entropy, the ``n_flag`` least confident slices
    marked (those an annotator should look at first). ``confidence`` is the DataFrame of
    :class:`hrpqct.seg.inference.SegmentationResult`."""
    plt = _figure()
    c = confidence
    fig, ax = plt.subplots(figsize=(8, 3.2))
    ax.plot(c["slice"], c["mean_max_prob"], color="tab:blue", label="mean max probability")
    ax.set_xlabel("slice")
    ax.set_ylabel("mean max probability", color="tab:blue")
    ax2 = ax.twinx()
    ax2.plot(c["slice"], c["mean_entropy"], color="tab:orange", label="mean entropy")
    ax2.set_ylabel("mean entropy (nats)", color="tab:orange")
    worst = c.nsmallest(min(n_flag, len(c)), "mean_max_prob")
    ax.scatter(worst["slice"], worst["mean_max_prob"], color="red", zorder=3,
               label=f"{len(worst)} least confident")
    ax.legend(loc="lower left", fontsize=8)
    ax.set_title(title or "segmentation confidence per slice", fontsize=10)
    fig.tight_layout()
    out = _save(fig, Path(path), dpi)
    plt.close(fig)
    return out
