"""Standard HR-pQCT morphometry of the tibia and the fibula from the seven-region label map.

Arrays in, tables out (:func:`morphometry`). Per bone, from its cortical (TC / FC) and
trabecular (TT / FT) regions of :mod:`hrpqct.regions`:

==================  ===================================================================  ========
column              what                                                                 unit
==================  ===================================================================  ========
Tt.Ar, Ct.Ar,       total (cortical + trabecular), cortical and trabecular area: mean     mm^2
Tb.Ar               over the slices where the bone is present
Ps.Pm, Ec.Pm        periosteal (outer) and endocortical (inner) perimeter, Crofton        mm
Tt.BMD, Ct.BMD,     mean density of the compartments on the unfiltered image              mgHA/ccm
Tb.BMD              (calibrated scans only)
Ct.Th               mean 3D local thickness of the cortical compartment (Hildebrand)     mm
Ct.Th.SD            its standard deviation over the cortical voxels                      mm
Ct.Th.annular       Ct.Ar / mean(Ps.Pm, Ec.Pm) (exact for a circular ring)               mm
Ct.Po               intracortical pore volume / cortical compartment volume               %
Ct.Po.Dm            mean 3D local thickness (diameter) of the pores                       mm
Ct.Po.N             number of pores (3D components)                                       1
Tb.BV/TV            trabecular bone voxels / trabecular compartment voxels                1
Tb.N                1 / mean distance between the mid-axes of the trabecular bone         1/mm
Tb.Th, Tb.Sp        mean 3D local thickness of trabecular bone and of the marrow space   mm
Tb.Th.SD, Tb.Sp.SD  their standard deviations                                            mm
==================  ===================================================================  ========

Column names carry the unit (``Ct.Th_mm``, ``Tt.BMD_mgHA_ccm``, ``Ct.Po_pct``, ``Tb.N_1_mm``);
:data:`UNITS` lists them and the tables' ``attrs`` (written into parquet metadata) repeat them.

Bone segmentation: Gaussian filter (sigma, support in voxels) of the density image, then the
trabecular threshold inside the trabecular compartment and the cortical threshold inside the
cortical compartment (:class:`hrpqct.method.Morphometry`). HU-only scans (no calibration): no
densities; the thresholds are converted to HU with the method's reference XtremeCT II
calibration, and the table's metadata (``density`` and ``note``) say so.

Per slice (:attr:`MorphometryResult.slices`): areas, perimeters, densities, Ct.Th.annular,
Ct.Po, Tb.BV/TV and the slice means of the 3D local thicknesses (Ct.Th, Tb.Th, Tb.Sp) and
Tb.N = 1 / slice mean of the mid-axis spacing. The per-scan values are computed over all the
bone's voxels, not averaged from the slices.

Memory: every bone is processed in its own bounding box (a few float32 copies of it); the input
arrays are only read.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import ndimage as ndi

from .. import regions as R
from ..errors import InputError
from ..method import MORPHOMETRY, Morphometry
from ..progress import ProgressCallback, report
from ..volume import Calibration

__all__ = ["BONES", "UNITS", "MorphometryResult", "morphometry", "morphometry_volume",
           "gaussian_filter", "reference_calibration"]

#: Bone -> (cortical region code, trabecular region code).
BONES: dict[str, tuple[str, str]] = {"tibia": ("TC", "TT"), "fibula": ("FC", "FT")}

#: Column -> unit of the morphometry tables.
UNITS: dict[str, str] = {
    "slices": "1", "Tt.Ar_mm2": "mm2", "Ct.Ar_mm2": "mm2", "Tb.Ar_mm2": "mm2",
    "Ps.Pm_mm": "mm", "Ec.Pm_mm": "mm",
    "Tt.BMD_mgHA_ccm": "mgHA/ccm", "Ct.BMD_mgHA_ccm": "mgHA/ccm", "Tb.BMD_mgHA_ccm": "mgHA/ccm",
    "Ct.Th_mm": "mm", "Ct.Th.SD_mm": "mm", "Ct.Th.annular_mm": "mm",
    "Ct.Po_pct": "%", "Ct.Po.Dm_mm": "mm", "Ct.Po.N": "1",
    "Tb.BV_TV": "1", "Tb.N_1_mm": "1/mm", "Tb.Th_mm": "mm", "Tb.Th.SD_mm": "mm",
    "Tb.Sp_mm": "mm", "Tb.Sp.SD_mm": "mm",
}
_DENSITY = ("Tt.BMD_mgHA_ccm", "Ct.BMD_mgHA_ccm", "Tb.BMD_mgHA_ccm")
_SCAN_COLUMNS = ("bone", *UNITS)
_SLICE_COLUMNS = ("bone", "slice", "Tt.Ar_mm2", "Ct.Ar_mm2", "Tb.Ar_mm2", "Ps.Pm_mm", "Ec.Pm_mm",
                  *_DENSITY, "Ct.Th_mm", "Ct.Th.annular_mm", "Ct.Po_pct", "Tb.BV_TV", "Tb.N_1_mm",
                  "Tb.Th_mm", "Tb.Sp_mm")
HU_ONLY_NOTE = ("HU-only scan (no density calibration): no densities (Tt.BMD, Ct.BMD, Tb.BMD); "
                "bone thresholds converted to HU with the reference XtremeCT II calibration "
                "(hrpqct.method.Morphometry.reference_calibration)")


@dataclass
class MorphometryResult:
    """Per-bone table (``scan``), per-bone-and-slice table (``slices``) and run metadata."""

    scan: pd.DataFrame
    slices: pd.DataFrame
    meta: dict[str, Any] = field(default_factory=dict)

    def value(self, bone: str, column: str) -> float:
        """One scan-level value, e.g. ``value("tibia", "Ct.Th_mm")``."""
        row = self.scan.loc[self.scan["bone"] == bone]
        if row.empty:
            raise KeyError(f"no {bone!r} row; bones: {list(self.scan['bone'])}")
        return float(row[column].iloc[0])


def reference_calibration(params: Morphometry = MORPHOMETRY) -> Calibration:
    """The method's reference XtremeCT II calibration (for HU-only scans' thresholds)."""
    mw, ms, slope, intercept = params.reference_calibration
    return Calibration(mu_water=mw, mu_scaling=ms, density_slope=slope,
                       density_intercept=intercept)


def _affine_to_density(cal: Calibration) -> tuple[float, float]:
    """``density = a * HU + b`` of a calibration."""
    return cal.affine("HU", "mgHA/ccm")


def gaussian_filter(image: np.ndarray, sigma_voxels: float, support_voxels: int) -> np.ndarray:
    """Separable Gaussian of ``sigma_voxels`` truncated at ``support_voxels`` voxels each side
    (weights normalised to 1, edges repeated), float32: the scanner evaluation's filter."""
    x = np.arange(-int(support_voxels), int(support_voxels) + 1, dtype=np.float64)
    w = np.exp(-0.5 * (x / float(sigma_voxels)) ** 2)
    w /= w.sum()
    out = np.asarray(image, dtype=np.float32)
    for axis in range(out.ndim):
        if out.shape[axis] > 1:
            out = ndi.correlate1d(out, w.astype(np.float32), axis=axis, mode="nearest")
    return out


# --- helpers ------------------------------------------------------------------------------------
def _bone_boxes(labels: np.ndarray, ids: dict[str, tuple[int, int]]) -> dict[str, tuple]:
    """Bounding box (z0, z1, y0, y1, x0, x1) of each bone's two labels, one slice at a time."""
    lut = np.zeros(256, np.uint8)
    for k, (c, t) in enumerate(ids.values(), start=1):
        lut[c] = lut[t] = k
    nb = len(ids)
    zs = [[] for _ in range(nb)]
    ys = [[np.inf, -np.inf] for _ in range(nb)]
    xs = [[np.inf, -np.inf] for _ in range(nb)]
    for z in range(labels.shape[0]):
        sl = lut[labels[z]]
        if not sl.any():
            continue
        rows = np.zeros((nb + 1, sl.shape[0]), bool)
        cols = np.zeros((nb + 1, sl.shape[1]), bool)
        r, c = np.nonzero(sl)
        v = sl[r, c]
        rows[v, r] = True
        cols[v, c] = True
        for k in range(nb):
            if rows[k + 1].any():
                zs[k].append(z)
                yy = np.flatnonzero(rows[k + 1])
                xx = np.flatnonzero(cols[k + 1])
                ys[k] = [min(ys[k][0], yy[0]), max(ys[k][1], yy[-1])]
                xs[k] = [min(xs[k][0], xx[0]), max(xs[k][1], xx[-1])]
    out = {}
    ny, nx = labels.shape[1:]
    for k, bone in enumerate(ids):
        if not zs[k]:
            continue
        # one voxel of margin in-plane (background there is a barrier); none beyond the array
        out[bone] = (zs[k][0], zs[k][-1] + 1, max(0, int(ys[k][0]) - 1),
                     min(ny, int(ys[k][1]) + 2), max(0, int(xs[k][0]) - 1),
                     min(nx, int(xs[k][1]) + 2))
    return out


def _perimeters(mask: np.ndarray, px_mm: float) -> np.ndarray:
    """Crofton perimeter (mm) of each slice of a 3D mask (isotropic in-plane pixels)."""
    from skimage.measure import perimeter_crofton

    out = np.zeros(mask.shape[0])
    for z in range(mask.shape[0]):
        if mask[z].any():
            out[z] = perimeter_crofton(np.pad(mask[z], 1), directions=4) * px_mm
    return out


def _pores(cort: np.ndarray, bone_c: np.ndarray, params: Morphometry) -> tuple[np.ndarray, int]:
    """Intracortical pores: components of ``cort & ~bone_c`` of at least ``min_pore_voxels``
    voxels that do not touch the cortical compartment's surface (inside the array)."""
    cand = cort & ~bone_c
    if not cand.any():
        return cand, 0
    conn = {6: 1, 18: 2, 26: 3}.get(params.pore_connectivity)
    if conn is None:
        raise InputError(f"pore_connectivity must be 6, 18 or 26, got {params.pore_connectivity}")
    lab, n = ndi.label(cand, structure=ndi.generate_binary_structure(3, conn))
    if n == 0:
        return cand, 0
    surface = cort & ~ndi.binary_erosion(cort, structure=ndi.generate_binary_structure(3, 1),
                                         border_value=1)
    drop = np.zeros(n + 1, bool)
    drop[np.unique(lab[surface & cand])] = True
    sizes = np.bincount(lab.ravel(), minlength=n + 1)
    drop |= sizes < params.min_pore_voxels
    drop[0] = True
    keep = ~drop[lab]
    del lab
    return keep, int((~drop).sum())


def _ratio(a, b):
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(b > 0, a / np.where(b > 0, b, 1), np.nan)


def _thickness(mask: np.ndarray, spacing, work: np.ndarray, boundary: str = "face"):
    from .thickness import local_thickness, thickness_stats

    tau = local_thickness(mask, spacing, work=work, boundary=boundary)
    mean, sd, sums, cnt = thickness_stats(tau, mask)
    return mean, sd, _ratio(sums, cnt)


# --- the measurement ----------------------------------------------------------------------------
def _one_bone(image, labels, box, c_id, t_id, spacing, to_density, thr_trab, thr_cort,
              density_ok, params, step):
    from .thickness import ridge_mask

    z0, z1, y0, y1, x0, x1 = box
    hz, hy, hx = spacing
    lab = np.ascontiguousarray(labels[z0:z1, y0:y1, x0:x1])
    cort = lab == c_id
    trab = lab == t_id
    del lab
    tot = cort | trab
    nz = z1 - z0
    px_mm2 = hy * hx
    a_tot = tot.sum(axis=(1, 2))
    a_cort = cort.sum(axis=(1, 2))
    a_trab = trab.sum(axis=(1, 2))
    present = a_tot > 0
    sl: dict[str, np.ndarray] = {"slice": np.arange(z0, z1)}
    sl["Tt.Ar_mm2"] = a_tot * px_mm2
    sl["Ct.Ar_mm2"] = a_cort * px_mm2
    sl["Tb.Ar_mm2"] = a_trab * px_mm2
    px = math.sqrt(px_mm2)
    sl["Ps.Pm_mm"] = _perimeters(tot, px)
    sl["Ec.Pm_mm"] = _perimeters(trab, px)
    del tot
    step()

    # densities on the unfiltered image; then the filtered image for the bone segmentation
    img = np.asarray(image[z0:z1, y0:y1, x0:x1], dtype=np.float32)
    a, b = to_density
    if a != 1.0 or b != 0.0:
        img = img * np.float32(a) + np.float32(b)  # mgHA/ccm (or HU for HU-only scans)
    if density_ok:
        s_c = np.where(cort, img, 0).sum(axis=(1, 2), dtype=np.float64)
        s_t = np.where(trab, img, 0).sum(axis=(1, 2), dtype=np.float64)
        sl["Tt.BMD_mgHA_ccm"] = _ratio(s_c + s_t, a_cort + a_trab)
        sl["Ct.BMD_mgHA_ccm"] = _ratio(s_c, a_cort)
        sl["Tb.BMD_mgHA_ccm"] = _ratio(s_t, a_trab)
        sums = {"Tt": (s_c.sum() + s_t.sum(), a_tot.sum()), "Ct": (s_c.sum(), a_cort.sum()),
                "Tb": (s_t.sum(), a_trab.sum())}
    else:
        for col in _DENSITY:
            sl[col] = np.full(nz, np.nan)
    filt = gaussian_filter(img, params.gauss_sigma_voxels, params.gauss_support_voxels)
    del img
    bone_t = trab & (filt >= np.float32(thr_trab))
    bone_c = cort & (filt >= np.float32(thr_cort))
    del filt
    step()

    scan: dict[str, float] = {"slices": int(present.sum())}
    for k in ("Tt.Ar_mm2", "Ct.Ar_mm2", "Tb.Ar_mm2", "Ps.Pm_mm", "Ec.Pm_mm"):
        scan[k] = float(sl[k][present].mean()) if present.any() else math.nan
    if density_ok:
        for k, (s, n) in sums.items():
            scan[f"{k}.BMD_mgHA_ccm"] = float(s / n) if n else math.nan
    else:
        for col in _DENSITY:
            scan[col] = math.nan
    mean_pm = 0.5 * (sl["Ps.Pm_mm"] + sl["Ec.Pm_mm"])
    sl["Ct.Th.annular_mm"] = _ratio(sl["Ct.Ar_mm2"], mean_pm)
    scan["Ct.Th.annular_mm"] = float(_ratio(scan["Ct.Ar_mm2"],
                                            0.5 * (scan["Ps.Pm_mm"] + scan["Ec.Pm_mm"])))

    work = np.empty(cort.shape, np.float32)
    # cortex: thickness and porosity
    scan["Ct.Th_mm"], scan["Ct.Th.SD_mm"], sl["Ct.Th_mm"] = _thickness(cort, spacing, work)
    pores, n_pores = _pores(cort, bone_c, params)
    del bone_c
    p_sl = pores.sum(axis=(1, 2))
    sl["Ct.Po_pct"] = 100.0 * _ratio(p_sl, a_cort)
    scan["Ct.Po_pct"] = float(100.0 * _ratio(p_sl.sum(), a_cort.sum()))
    scan["Ct.Po.N"] = n_pores
    scan["Ct.Po.Dm_mm"] = _thickness(pores, spacing, work)[0] if n_pores else math.nan
    del pores, cort
    step()

    # trabecular bone
    sl["Tb.BV_TV"] = _ratio(bone_t.sum(axis=(1, 2)), a_trab)
    scan["Tb.BV_TV"] = float(_ratio(bone_t.sum(), a_trab.sum()))
    if bone_t.any():
        scan["Tb.Th_mm"], scan["Tb.Th.SD_mm"], sl["Tb.Th_mm"] = _thickness(bone_t, spacing, work)
    else:
        scan["Tb.Th_mm"] = scan["Tb.Th.SD_mm"] = math.nan
        sl["Tb.Th_mm"] = np.full(nz, np.nan)
    step()
    marrow = trab & ~bone_t
    if marrow.any() and bone_t.any():  # no trabecular bone: no separation either
        scan["Tb.Sp_mm"], scan["Tb.Sp.SD_mm"], sl["Tb.Sp_mm"] = _thickness(marrow, spacing, work)
    else:
        scan["Tb.Sp_mm"] = scan["Tb.Sp.SD_mm"] = math.nan
        sl["Tb.Sp_mm"] = np.full(nz, np.nan)
    del marrow
    step()
    # Tb.N: inverse mean spacing of the mid-axes (ridge) of the trabecular bone
    if bone_t.any():
        ridge = ridge_mask(bone_t, spacing, thin=True, work=work)
        space = trab & ~ridge
        del ridge
        mean_sp, _, sl_sp = _thickness(space, spacing, work, boundary="centre")
        scan["Tb.N_1_mm"] = 1.0 / mean_sp if mean_sp > 0 else math.nan
        sl["Tb.N_1_mm"] = _ratio(1.0, sl_sp)
    else:
        scan["Tb.N_1_mm"] = math.nan
        sl["Tb.N_1_mm"] = np.full(nz, np.nan)
    step()
    slices = pd.DataFrame({k: sl[k] for k in _SLICE_COLUMNS if k in sl})
    return scan, slices[present].reset_index(drop=True)


def morphometry(
    image: np.ndarray,
    labels: np.ndarray,
    spacing_zyx,
    *,
    unit: str = "HU",
    calibration: Calibration | None = None,
    params: Morphometry = MORPHOMETRY,
    bones: tuple[str, ...] | None = None,
    progress: ProgressCallback | None = None,
    where: str = "scan",
) -> MorphometryResult:
    """Standard morphometry of each bone (module docstring).

    ``image``: the scan, ``[z, y, x]``, in ``unit`` ("HU" or "mgHA/ccm"); ``labels``: the final
    seven-region label map on the same grid; ``spacing_zyx``: voxel size in mm (z, y, x);
    ``calibration``: the scan's Scanco calibration (HU -> mgHA/ccm). HU without a calibration
    is an HU-only scan: no densities, thresholds from the reference calibration (metadata
    ``note``). ``where`` names the input in error messages.
    """
    image = np.asarray(image)
    labels = np.asarray(labels)
    if image.ndim != 3 or labels.shape != image.shape:
        raise InputError(f"{where}: image {image.shape} and label map {labels.shape} must be 3D "
                         "arrays of the same shape")
    if labels.dtype.kind not in "ui" or (labels.size and int(labels.max()) > 255):
        raise InputError(f"{where}: the label map must hold integer region labels 0-255, "
                         f"got {labels.dtype}")
    sp = tuple(float(s) for s in spacing_zyx)
    if len(sp) != 3 or any(not np.isfinite(s) or s <= 0 for s in sp):
        raise InputError(f"{where}: spacing_zyx must be 3 positive numbers (mm), got {spacing_zyx}")
    if abs(sp[1] - sp[2]) > 1e-6 * sp[1]:
        raise InputError(f"{where}: in-plane pixels must be square for the perimeters, got "
                         f"y {sp[1]} mm, x {sp[2]} mm")
    bones = tuple(bones or params.bones)
    unknown = [b for b in bones if b not in BONES]
    if unknown:
        raise InputError(f"{where}: unknown bone(s) {unknown}; known: {list(BONES)}")

    if unit == "mgHA/ccm":
        to_density, density_ok, note = (1.0, 0.0), True, ""
        thr_t, thr_c = params.trabecular_threshold_mgha, params.cortical_threshold_mgha
        density_source = "image (mgHA/ccm)"
    elif unit == "HU" and calibration is not None:
        to_density, density_ok, note = _affine_to_density(calibration), True, ""
        thr_t, thr_c = params.trabecular_threshold_mgha, params.cortical_threshold_mgha
        density_source = "scan calibration"
    elif unit == "HU":
        ref = reference_calibration(params)
        a, b = _affine_to_density(ref)
        to_density, density_ok, note = (1.0, 0.0), False, HU_ONLY_NOTE
        thr_t = (params.trabecular_threshold_mgha - b) / a
        thr_c = (params.cortical_threshold_mgha - b) / a
        density_source = "none (HU-only scan)"
    else:
        raise InputError(f"{where}: morphometry needs a scan in HU or mgHA/ccm, got {unit!r}")

    ids = {b: tuple(R.region(code).label for code in BONES[b]) for b in bones}
    boxes = _bone_boxes(labels, ids)
    per_bone = 6
    total = per_bone * len(bones)
    done = [0]

    def step():
        done[0] += 1
        report(progress, done[0], total)

    report(progress, 0, total)
    rows, slices = [], []
    for bone in bones:
        if bone not in boxes:
            rows.append({"bone": bone, "slices": 0})
            done[0] += per_bone - 1
            step()
            continue
        c_id, t_id = ids[bone]
        scan, sl = _one_bone(image, labels, boxes[bone], c_id, t_id, sp, to_density, thr_t, thr_c,
                             density_ok, params, step)
        rows.append({"bone": bone, **scan})
        sl.insert(0, "bone", bone)
        slices.append(sl)
    scan_df = pd.DataFrame(rows).reindex(columns=list(_SCAN_COLUMNS))
    scan_df["slices"] = scan_df["slices"].fillna(0).astype(int)
    scan_df["Ct.Po.N"] = scan_df["Ct.Po.N"].astype("Int64")
    slice_df = (pd.concat(slices, ignore_index=True) if slices
                else pd.DataFrame(columns=list(_SLICE_COLUMNS)))
    meta = {
        "units": {k: v for k, v in UNITS.items()},
        "input_unit": unit,
        "density": density_source,
        "note": note,
        "trabecular_threshold": f"{params.trabecular_threshold_mgha:g} mgHA/ccm"
        + ("" if density_ok else f" = {thr_t:.1f} HU (reference calibration)"),
        "cortical_threshold": f"{params.cortical_threshold_mgha:g} mgHA/ccm"
        + ("" if density_ok else f" = {thr_c:.1f} HU (reference calibration)"),
        "gauss_sigma_voxels": params.gauss_sigma_voxels,
        "gauss_support_voxels": params.gauss_support_voxels,
        "spacing_zyx_mm": list(sp),
        "method": "hrpqct.method.Morphometry; docs/morphometry.md",
    }
    for df in (scan_df, slice_df):
        df.attrs.update({"units": meta["units"], "note": note, "density": density_source})
    return MorphometryResult(scan=scan_df, slices=slice_df, meta=meta)


def morphometry_volume(image, labels, *, params: Morphometry = MORPHOMETRY,
                       progress: ProgressCallback | None = None,
                       bones: tuple[str, ...] | None = None) -> MorphometryResult:
    """:func:`morphometry` of two :class:`hrpqct.volume.Volume` objects on one grid."""
    from ..volume import check_same_geometry

    check_same_geometry(image, labels)
    where = str(image.source or "scan")
    return morphometry(image.array, labels.array, image.spacing_zyx, unit=image.unit,
                       calibration=image.calibration, params=params, bones=bones,
                       progress=progress, where=where)
