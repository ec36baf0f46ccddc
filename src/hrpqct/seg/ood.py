"""Out-of-distribution checks: warnings when a scan, or its segmentation, is unlike what the model
knows (issue 14). None of them stops a run: each returns :class:`hrpqct.checks.Finding` warnings,
which the commands print, write into the summary table (``<stem>_scan.csv`` rows ``warning``)
and hand to the Slicer logic's results, like the input checks of :mod:`hrpqct.checks`.

Before the network (:func:`scan_checks`):

* ``ood.spacing``: the in-plane pixel is more than ``OOD.spacing_factor`` times finer or coarser
  than the pixel sizes the model was trained and tested at (the model's ``reference.json``).
* ``ood.intensity``: the limb's HU distribution is far from the training data's: the
  Wasserstein-1 distance (mean absolute difference of the 1st..99th percentiles, HU) exceeds
  ``OOD.intensity_factor`` times the largest distance among the reference phantoms (at least
  ``OOD.intensity_floor_hu``). Catches inverted intensities, another unit, another scanner's
  calibration, fat and muscle far from the phantoms'.
* ``ood.no_limb`` / ``ood.two_limbs`` / ``ood.no_soft_tissue``: no tissue component of limb size,
  a second one of comparable size (two legs), a "limb" with almost no soft tissue (metal foam,
  a phantom, a specimen).

After the network: ``ood.flip`` (:func:`flip_agreement`, test-time augmentation: the labels of
left-right mirrored slices disagree with the labels of the slices; max-probability confidence was
0.99 on real failures, this disagrees when the network is guessing), and after the topology
rules (:func:`check_anatomy`): ``ood.no_bone``, ``ood.no_tibia``, ``ood.tibia_area``,
``ood.tibia_cortex``, ``ood.fibula_area``, ``ood.one_bone``, ``ood.fibula_larger``.

All thresholds: :class:`hrpqct.method.OutOfDistribution` (``OOD``), with sources.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from ..checks import Finding
from ..method import OOD, PREPROCESSING, SCAN, OutOfDistribution
from ..regions import region

__all__ = [
    "REFERENCE_FILE",
    "PERCENTILES",
    "load_reference",
    "limb_facts",
    "reference_from_volumes",
    "check_spacing",
    "check_intensity",
    "check_limbs",
    "scan_checks",
    "flip_agreement",
    "check_flip",
    "check_anatomy",
    "wasserstein_hu",
]

#: The sidecar of a model folder with the training data's pixel sizes and limb HU distribution.
REFERENCE_FILE = "reference.json"
#: Percentiles of the limb's HU distribution compared by ``ood.intensity``.
PERCENTILES = tuple(range(1, 100))

_TC, _TT, _FC, _FT = (region(c).label for c in ("TC", "TT", "FC", "FT"))


# --- reference ---------------------------------------------------------------------------------
def load_reference(model_folder) -> dict[str, Any] | None:
    """``<model_folder>/reference.json`` as a dict, or ``None`` when the model has none."""
    if model_folder is None:
        return None
    path = Path(model_folder) / REFERENCE_FILE
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _sample_slices(nz: int, n: int = 8) -> np.ndarray:
    return np.unique(np.linspace(0, nz - 1, num=min(nz, n)).round().astype(int))


def _to_hu_fn(volume):
    if getattr(volume, "unit", "HU") == "HU":
        return None
    cal = getattr(volume, "calibration", None)
    if volume.unit == "mgHA/ccm" and cal is not None:
        return cal.density_to_hu
    return None


def limb_facts(volume, *, threshold_hu: float = PREPROCESSING.limb_threshold_hu,
               n_slices: int = 8, target_mm: float = 0.25, params: OutOfDistribution = OOD
               ) -> dict[str, Any]:
    """Tissue components of up to ``n_slices`` evenly spaced slices, at about ``target_mm``
    pixels (a strided view): per slice the largest and second-largest component's area (mm2),
    and the HU values of the largest components (for the intensity and soft-tissue checks).
    """
    from scipy import ndimage

    arr = volume.array if volume.array.ndim == 3 else volume.array[None]
    sx, sy = float(volume.spacing[0]), float(volume.spacing[1])
    step = max(1, int(round(target_mm / max(min(sx, sy), 1e-9))))
    px_mm2 = sx * sy * step * step
    conv = _to_hu_fn(volume)
    largest, second, values = [], [], []
    for k in _sample_slices(arr.shape[0], n_slices):
        s = np.asarray(arr[k, ::step, ::step], dtype=np.float32)
        if conv is not None:
            s = conv(s)
        lab, n = ndimage.label(s > threshold_hu)
        if n == 0:
            largest.append(0.0)
            second.append(0.0)
            continue
        sizes = np.bincount(lab.ravel())
        sizes[0] = 0
        order = np.argsort(sizes)[::-1]
        largest.append(float(sizes[order[0]]) * px_mm2)
        second.append(float(sizes[order[1]]) * px_mm2 if n > 1 else 0.0)
        values.append(s[lab == order[0]])
    hu = np.concatenate(values) if values else np.zeros(0, np.float32)
    return {"largest_mm2": np.array(largest), "second_mm2": np.array(second), "hu": hu,
            "step": step}


def _percentiles(hu: np.ndarray) -> np.ndarray:
    return np.percentile(hu, PERCENTILES) if hu.size else np.full(len(PERCENTILES), np.nan)


def limb_modes(hu: np.ndarray, params: OutOfDistribution = OOD) -> dict[str, float | None]:
    """Fat and muscle modes (HU) of the limb's histogram (5 HU bins, smoothed by a 15 HU
    Gaussian): the highest bin in ``fat_mode_window_hu`` / ``muscle_mode_window_hu``, ``None``
    when the window holds under 2 % of the voxels."""
    from scipy import ndimage

    out: dict[str, float | None] = {"fat_hu": None, "muscle_hu": None}
    if hu.size < 100:
        return out
    edges = np.arange(-1000.0, 1000.0 + 5, 5.0)
    h, _ = np.histogram(hu, bins=edges)
    hs = ndimage.gaussian_filter1d(h.astype(float), 3.0)
    c = (edges[:-1] + edges[1:]) / 2
    for key, (lo, hi) in (("fat_hu", params.fat_mode_window_hu),
                          ("muscle_hu", params.muscle_mode_window_hu)):
        m = (c >= lo) & (c < hi)
        if h[m].sum() >= 0.02 * hu.size:
            out[key] = float(c[m][np.argmax(hs[m])])
    return out


def wasserstein_hu(q1, q2) -> float:
    """Wasserstein-1 distance (HU) of two distributions given by the same percentiles."""
    return float(np.mean(np.abs(np.asarray(q1, float) - np.asarray(q2, float))))


def reference_from_volumes(volumes, *, spacing_mm: tuple[float, float] | None = None,
                           note: str = "") -> dict[str, Any]:
    """The ``reference.json`` of a model from scans like its training data (phantoms, HU):
    the range of pixel sizes, the mean percentiles of the limb's HU (1..99), the largest
    distance of one scan to that mean, a histogram (20 HU bins, -1000..3000 HU) for plots."""
    qs, hists, pixels, modes = [], [], [], []
    edges = np.arange(-1000.0, 3000.0 + 1, 20.0)
    for v in volumes:
        hu = limb_facts(v)["hu"]
        qs.append(_percentiles(hu))
        modes.append(limb_modes(hu))
        h, _ = np.histogram(hu, bins=edges)
        hists.append(h / max(1, h.sum()))
        pixels.append(float(v.spacing[0]))
    q = np.mean(qs, axis=0)
    dist = max(wasserstein_hu(x, q) for x in qs)
    lo, hi = spacing_mm if spacing_mm else (min(pixels), max(pixels))
    return {
        "format": "hrpqct-ood-reference", "format_version": 1,
        "note": note,
        "spacing_mm": [float(lo), float(hi)],
        "limb_threshold_hu": PREPROCESSING.limb_threshold_hu,
        "percentiles": list(PERCENTILES),
        "limb_hu_percentiles": [round(float(x), 2) for x in q],
        "max_distance_hu": round(float(dist), 2),
        "modes_hu": {k: (None if not vals else round(float(np.mean(vals)), 1)) for k, vals in (
            (k, [m[k] for m in modes if m[k] is not None]) for k in ("fat_hu", "muscle_hu"))},
        "n_scans": len(qs),
        "histogram_edges_hu": [float(edges[0]), float(edges[-1]), 20.0],
        "histogram": [round(float(x), 6) for x in np.mean(hists, axis=0)],
    }


# --- checks before the network -----------------------------------------------------------------
def _spacing_range(reference, spec) -> tuple[float, float, str]:
    if reference and reference.get("spacing_mm"):
        lo, hi = (float(v) for v in reference["spacing_mm"])
        return lo, hi, "the model was trained and tested at"
    hi = float(spec.input_mm) if spec is not None else SCAN.voxel_mm
    return min(SCAN.voxel_mm, hi), hi, "the model's input pixel and the paper's voxel are"


def check_spacing(volume, reference=None, spec=None, where=None,
                  params: OutOfDistribution = OOD) -> list[Finding]:
    """``ood.spacing``: in-plane pixel outside [lo / factor, hi * factor] of the model's range."""
    where = where or volume.source or "scan"
    px = max(float(volume.spacing[0]), float(volume.spacing[1]))
    lo, hi, what = _spacing_range(reference, spec)
    f = params.spacing_factor
    if lo / f <= px <= hi * f:
        return []
    side = "coarser" if px > hi * f else "finer"
    return [Finding("warning", "ood.spacing",
                    f"{where}: pixels of {px:g} mm are far {side} than the {lo:g}-{hi:g} mm "
                    f"{what} (more than {f:g} x outside): the scan is resampled to the model's "
                    "grid, but fine structures (cortex, skin) it never saw at this resolution "
                    "may be missed; check every region")]


def check_intensity(volume, reference, where=None, facts=None,
                    params: OutOfDistribution = OOD) -> list[Finding]:
    """``ood.intensity``: the limb's HU percentiles far from the reference's (Wasserstein-1)."""
    where = where or volume.source or "scan"
    if not reference or "limb_hu_percentiles" not in reference:
        return []
    facts = facts or limb_facts(volume)
    if facts["hu"].size == 0:
        return []
    q = _percentiles(facts["hu"])
    ref = np.asarray(reference["limb_hu_percentiles"], float)
    dist = wasserstein_hu(q, ref)
    limit = max(params.intensity_floor_hu, params.intensity_factor * float(reference.get(
        "max_distance_hu", 0.0)))
    med, rmed = float(q[49]), float(ref[49])
    ref_modes = reference.get("modes_hu") or {}
    modes = limb_modes(facts["hu"], params)
    moved = [f"{name} peak {modes[k]:.0f} HU, training {ref_modes[k]:.0f}"
             for k, name in (("fat_hu", "fat"), ("muscle_hu", "muscle"))
             if modes.get(k) is not None and ref_modes.get(k) is not None
             and abs(modes[k] - ref_modes[k]) > params.mode_tolerance_hu]
    peaks = f"; {'; '.join(moved)}" if moved else ""
    if dist > limit:
        return [Finding("warning", "ood.intensity",
                        f"{where}: the limb's intensities are unlike the model's training data "
                        f"(distance {dist:.0f} HU, limit {limit:.0f}; median {med:.0f} HU, "
                        f"training {rmed:.0f} HU; 5th-95th percentile {q[4]:.0f} to {q[94]:.0f} "
                        f"HU, training {ref[4]:.0f} to {ref[94]:.0f}{peaks}): another scanner, "
                        "calibration or unit, or inverted values? The regions may be wrong")]
    if not moved:
        return []
    return [Finding("warning", "ood.intensity",
                    f"{where}: the limb's tissue peaks are not where the model's training data "
                    f"has them ({'; '.join(moved)}; more than {params.mode_tolerance_hu:g} HU "
                    "apart): another scanner or calibration? The regions may be wrong")]


def check_limbs(volume, where=None, facts=None, params: OutOfDistribution = OOD) -> list[Finding]:
    """``ood.no_limb``, ``ood.two_limbs``, ``ood.no_soft_tissue`` on the sampled slices."""
    where = where or volume.source or "scan"
    facts = facts or limb_facts(volume)
    big, second = facts["largest_mm2"], facts["second_mm2"]
    if big.size == 0:
        return []
    out: list[Finding] = []
    no_limb = big < params.min_limb_mm2
    if no_limb.mean() > 0.5:
        out.append(Finding("warning", "ood.no_limb",
                           f"{where}: no limb found: the largest piece of tissue above "
                           f"{PREPROCESSING.limb_threshold_hu:g} HU is {float(np.median(big)):.0f} "
                           f"mm2 (a lower leg is over {params.min_limb_mm2:g} mm2); the regions "
                           "are not those of a distal tibia"))
        return out
    two = (second >= params.second_limb_fraction * big) & (second >= params.min_limb_mm2)
    if two.mean() > 0.5:
        out.append(Finding("warning", "ood.two_limbs",
                           f"{where}: two limbs in the field of view ({float(np.median(big)):.0f} "
                           f"and {float(np.median(second)):.0f} mm2): the model segments one leg "
                           "(the crop is centred on the limbs' box), the other may be cut or "
                           "labelled background; crop the scan to one leg"))
    hu = facts["hu"]
    lo, hi = params.soft_tissue_hu
    frac = float(np.mean((hu >= lo) & (hu <= hi))) if hu.size else 0.0
    if frac < params.min_soft_tissue_fraction:
        out.append(Finding("warning", "ood.no_soft_tissue",
                           f"{where}: only {100 * frac:.0f} % of the 'limb' is soft tissue "
                           f"({lo:g} to {hi:g} HU; a lower leg is mostly muscle and fat): a "
                           "phantom, a specimen or a foam, not a leg? The seven regions are "
                           "meaningless here"))
    return out


def scan_checks(volume, reference=None, spec=None, where=None,
                params: OutOfDistribution = OOD) -> list[Finding]:
    """The checks before the network: spacing, intensity, limbs (one pass over the slices)."""
    facts = limb_facts(volume, threshold_hu=spec.limb_threshold_hu if spec is not None
                       else PREPROCESSING.limb_threshold_hu)
    return (check_spacing(volume, reference, spec, where, params)
            + check_limbs(volume, where, facts, params)
            + check_intensity(volume, reference, where, facts, params))


# --- test-time augmentation --------------------------------------------------------------------
def _bone_dice(a: np.ndarray, b: np.ndarray) -> float:
    scores = []
    for c in (_TC, _TT, _FC, _FT):
        x, y = a == c, b == c
        n = int(x.sum()) + int(y.sum())
        if n:
            scores.append(2.0 * int(np.count_nonzero(x & y)) / n)
    return float(np.mean(scores)) if scores else float("nan")


def flip_agreement(volume, predictor, box, spec, slices) -> dict[int, float]:
    """Test-time augmentation: each slice in ``slices`` and its left-right mirror through the
    network (``predictor``, :class:`hrpqct.seg.inference.Predictor`); the mirror's labels are
    mirrored back and compared with the slice's, at the network's output resolution: mean Dice
    over the bone classes present in either (1 = the same bones, NaN = no bone in either).
    """
    import torch

    from .inference import _hu_reader
    from .preprocess import extract_crops, normalise, resample_to_input

    read = _hu_reader(volume)
    out: dict[int, float] = {}
    for k in slices:
        k = int(k)
        crops = extract_crops(read(k, k + 1), box, spec.pad_hu)
        x = resample_to_input(normalise(crops, spec.clip_hu), spec)
        logits = predictor(torch.cat([x, x.flip(-1)]))
        a = logits[0].argmax(0).cpu().numpy()
        b = logits[1].argmax(0).flip(-1).cpu().numpy()
        out[k] = _bone_dice(a, b)
    return out


def check_flip(agreement: dict[int, float], where, params: OutOfDistribution = OOD
               ) -> list[Finding]:
    """``ood.flip``: mean bone Dice between a slice's and its mirror's labels below the limit."""
    vals = np.array([v for v in agreement.values() if np.isfinite(v)], float)
    if vals.size == 0:
        return []
    mean = float(vals.mean())
    if mean >= params.min_flip_agreement:
        return []
    worst = min((k for k, v in agreement.items() if np.isfinite(v)), key=lambda k: agreement[k])
    return [Finding("warning", "ood.flip",
                    f"{where}: the network labels the bones differently when the slice is "
                    f"mirrored (bone Dice {mean:.2f} on {vals.size} slices, below "
                    f"{params.min_flip_agreement:g}; worst slice {worst}): it is guessing, "
                    "whatever its per-pixel confidence; check the regions")]


# --- after the topology rules ------------------------------------------------------------------
def check_anatomy(labels: np.ndarray, spacing, where, params: OutOfDistribution = OOD
                  ) -> list[Finding]:
    """Anatomical plausibility of a 5-class or 7-region map (bone labels are the same in both):
    ``ood.no_bone``, ``ood.no_tibia``, ``ood.tibia_area``, ``ood.tibia_cortex``,
    ``ood.fibula_area``, ``ood.one_bone``, ``ood.fibula_larger``. Areas per slice (mm2), means
    over the slices where the bone is present; cortical thickness is the annular estimate
    ``Ct.Ar / (2 sqrt(pi Tt.Ar))`` (cortical area over the perimeter of the disk of the same
    total area)."""
    lab = np.asarray(labels)
    if lab.ndim == 2:
        lab = lab[None]
    nz = lab.shape[0]
    if nz == 0:
        return []
    px = float(spacing[0]) * float(spacing[1])
    counts = np.stack([np.bincount(lab[z].ravel(), minlength=8)[:8] for z in range(nz)])
    tc, tt, fc, ft = (counts[:, c] * px for c in (_TC, _TT, _FC, _FT))
    tib, fib = tc + tt, fc + ft
    out: list[Finding] = []
    if not np.any(tib > 0) and not np.any(fib > 0):
        return [Finding("warning", "ood.no_bone",
                        f"{where}: no bone was segmented on any of the {nz} slices: the scan "
                        "holds no tibia or fibula the model recognises (not a distal tibia, or "
                        "out of what the model knows); the soft tissue regions cover the whole "
                        "limb")]
    present = tib >= 0.25 * params.tibia_area_mm2[0]
    if present.mean() < params.min_tibia_slice_fraction:
        out.append(Finding("warning", "ood.no_tibia",
                           f"{where}: no tibia found on {int(nz - present.sum())} of {nz} slices "
                           f"(tibia area below {0.25 * params.tibia_area_mm2[0]:g} mm2): the "
                           "largest bone of the leg is missing or labelled as another region; "
                           "check the segmentation"))
        if not present.any():
            return out
    t_mean = float(tib[present].mean())
    lo, hi = params.tibia_area_mm2
    if not lo <= t_mean <= hi:
        out.append(Finding("warning", "ood.tibia_area",
                           f"{where}: the tibia's area is {t_mean:.0f} mm2 (mean over the slices "
                           f"with a tibia), far outside {lo:g}-{hi:g} mm2 (typical 600-900 mm2 at "
                           "the distal tibia): another site, another scale, or a mislabelled bone?"))
    ct_th = tc[present] / (2.0 * np.sqrt(math.pi * tib[present]))
    th = float(ct_th.mean())
    lo, hi = params.tibia_ct_th_mm
    if not lo <= th <= hi:
        out.append(Finding("warning", "ood.tibia_cortex",
                           f"{where}: the tibia's cortex is {th:.2f} mm thick (annular estimate), "
                           f"far outside {lo:g}-{hi:g} mm (typical 1.0-1.6 mm): the cortical and "
                           "trabecular regions are probably wrong"))
    fpresent = fib > 0
    if not fpresent.any():
        out.append(Finding("warning", "ood.one_bone",
                           f"{where}: only one bone was segmented (no fibula on any slice): the "
                           "distal tibia site shows the fibula beside the tibia; a radius, another "
                           "site, or a fibula outside the field of view?"))
        return out
    f_mean = float(fib[fpresent].mean())
    lo, hi = params.fibula_area_mm2
    if not lo <= f_mean <= hi:
        out.append(Finding("warning", "ood.fibula_area",
                           f"{where}: the fibula's area is {f_mean:.0f} mm2 (mean over the slices "
                           f"with a fibula), far outside {lo:g}-{hi:g} mm2"))
    both = present & fpresent
    if both.any():
        ratio = float(np.median(tib[both] / fib[both]))
        if ratio < params.min_tibia_to_fibula_area:
            out.append(Finding("warning", "ood.fibula_larger",
                               f"{where}: the 'fibula' is {1 / ratio:.1f} times the 'tibia' in "
                               f"area (the tibia should be over {params.min_tibia_to_fibula_area:g}"
                               " times larger): the bones are probably swapped or mislabelled"))
    return out

