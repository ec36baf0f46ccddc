"""Rasterise a subject's anatomy into HU slices and exact 5-class / 7-region label maps.

Each slice is rendered on a supersampled grid (pixels of at most 0.075 mm) inside the limb's
bounding box: polygons are filled, the cortex is the part of each bone within the local cortical
thickness of its periosteal surface (Euclidean distance), pores, trabeculae and intramuscular fat
come from thresholded random fields, and every pixel gets a tissue and an HU value. The HU image
is blurred by the scanner's point-spread function and block-averaged to the output grid (partial
volume); labels are sampled at the output pixel centres, so they are exact for that grid. The skin
region is the 2 mm band of the soft tissue along the limb's outer boundary (docs/method.md), measured
on the output grid with the same definition as the soft-tissue split.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from .. import regions as R
from ..errors import InputError
from ..method import SCAN
from ..seg.softtissue import skin_band
from .anatomy import Anatomy, slice_geometry
from .raster import fill_polygon, offset_polygon
from .texture import StackField, bandpass_field, lowpass_field

__all__ = ["Grid", "Tissue", "SliceRenderer"]


class Tissue:
    """Tissue codes of the rendered (noise-free) tissue map."""

    AIR, CAST, DERMIS, SUBCUT_FAT, SEPTUM, DEEP_FAT, MUSCLE, IM_FAT, TENDON, VESSEL, \
        CORTEX, PORE, TRAB_BONE, MARROW = range(14)
    FAT = (SUBCUT_FAT, SEPTUM, DEEP_FAT, IM_FAT)
    LEAN = (DERMIS, MUSCLE, TENDON, VESSEL)


@dataclass(frozen=True)
class Grid:
    """Output voxel grid. ``size`` pixels per side; by default the pixel size keeps the XtremeCT II
    field of view (140 mm), so a small ``size`` gives the same anatomy at coarser pixels."""

    size: int = 2304
    n_slices: int = SCAN.n_slices
    spacing_mm: float | None = None  # in-plane pixel size; default field_of_view / size
    slice_mm: float | None = None  # slice distance; default = in-plane pixel size
    offset_mm: tuple[float, float] = (0.0, 0.0)  # limb centre relative to the image centre (x, y)

    def __post_init__(self) -> None:
        if self.size < 32 or self.n_slices < 1:
            raise InputError(f"grid too small: size {self.size}, slices {self.n_slices}")

    @property
    def pixel_mm(self) -> float:
        return float(self.spacing_mm or SCAN.field_of_view_mm / self.size)

    @property
    def z_mm(self) -> float:
        return float(self.slice_mm or self.pixel_mm)

    @property
    def fov_mm(self) -> float:
        return self.size * self.pixel_mm

    @property
    def supersample(self) -> int:
        """Odd sub-sampling factor so that rendering happens at pixels of <= 0.075 mm (at most 7x)."""
        ratio = self.pixel_mm / 0.075
        ss = int(np.ceil(ratio))
        ss += (ss + 1) % 2  # make odd
        return int(min(max(ss, 1), 7))


def _close_cortex(lab5: np.ndarray) -> np.ndarray:
    """On coarse grids, pixel-centre sampling can miss a thin cortex; make every trabecular pixel
    that touches (8-neighbourhood) anything but its own bone cortical, so the cortex always
    encloses the trabecular compartment. A no-op when pixels are much finer than the cortex."""
    for cort, trab in ((R.model_class("TC").label, R.model_class("TT").label),
                       (R.model_class("FC").label, R.model_class("FT").label)):
        outside = ~np.isin(lab5, (cort, trab))
        touch = ndi.binary_dilation(outside, structure=np.ones((3, 3), dtype=bool))
        lab5[(lab5 == trab) & touch] = cort
    return lab5


class SliceRenderer:
    """Renders slices of one subject on one grid; slices can be rendered in any order."""

    def __init__(self, anat: Anatomy, grid: Grid) -> None:
        self.anat = anat
        self.grid = grid
        self.ss = grid.supersample
        self.rpx = grid.pixel_mm / self.ss  # render pixel, mm
        n = grid.size
        # Region of interest on the output grid: union of the limb (and cast) over the stack.
        pts = []
        for z in np.linspace(0, (grid.n_slices - 1) * grid.z_mm, 5):
            g = slice_geometry(anat, z)
            pts.append(g.cast_outer if g.cast_outer is not None else g.limb)
        pts = np.concatenate(pts)
        margin = 1.5 + 4 * anat.blur_sigma_mm
        cols = self._to_out(pts)[:, 1]
        rows = self._to_out(pts)[:, 0]
        self.r0 = max(int(np.floor(rows.min() - margin / grid.pixel_mm)) - 1, 0)
        self.r1 = min(int(np.ceil(rows.max() + margin / grid.pixel_mm)) + 2, n)
        self.c0 = max(int(np.floor(cols.min() - margin / grid.pixel_mm)) - 1, 0)
        self.c1 = min(int(np.ceil(cols.max() + margin / grid.pixel_mm)) + 2, n)
        if rows.min() < 0 or cols.min() < 0 or rows.max() > n - 1 or cols.max() > n - 1:
            raise InputError(
                f"the limb ({np.ptp(pts[:, 0]):.0f} x {np.ptp(pts[:, 1]):.0f} mm) does not fit in the "
                f"{grid.fov_mm:.0f} mm field of view (size {n} px at {grid.pixel_mm:.4f} mm)")
        self.shape_r = ((self.r1 - self.r0) * self.ss, (self.c1 - self.c0) * self.ss)
        self._fields()

    # --- coordinates -------------------------------------------------------------------------
    def _to_out(self, xy: np.ndarray) -> np.ndarray:
        """mm (x, y) -> output-grid (row, col) pixel coordinates."""
        g = self.grid
        c = (xy[:, 0] + g.offset_mm[0]) / g.pixel_mm + (g.size - 1) / 2
        r = (xy[:, 1] + g.offset_mm[1]) / g.pixel_mm + (g.size - 1) / 2
        return np.column_stack([r, c])

    def _to_render(self, xy: np.ndarray) -> np.ndarray:
        """mm (x, y) -> (row, col) on the supersampled region grid."""
        rc = (self._to_out(xy) + 0.5) * self.ss - 0.5
        rc[:, 0] -= self.r0 * self.ss
        rc[:, 1] -= self.c0 * self.ss
        return rc

    def _fill(self, poly: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        return fill_polygon(self._to_render(poly), self.shape_r, out)

    def _mm_grid(self, sl: tuple[slice, slice]) -> tuple[np.ndarray, np.ndarray]:
        """mm coordinates (x, y) of the render pixels in a sub-window of the region."""
        g = self.grid
        rows = np.arange(sl[0].start, sl[0].stop)
        cols = np.arange(sl[1].start, sl[1].stop)
        rows_o = (rows + self.r0 * self.ss + 0.5) / self.ss - 0.5
        cols_o = (cols + self.c0 * self.ss + 0.5) / self.ss - 0.5
        y = (rows_o - (g.size - 1) / 2) * g.pixel_mm - g.offset_mm[1]
        x = (cols_o - (g.size - 1) / 2) * g.pixel_mm - g.offset_mm[0]
        return np.meshgrid(x, y)

    # --- random fields -----------------------------------------------------------------------
    def _fields(self) -> None:
        a, shp, px = self.anat, self.shape_r, self.rpx
        self.f_trab = StackField(lambda rng: bandpass_field(shp, px, 2.0 * a.tb_spacing_mm, rng),
                                 key_mm=2.2, seed=a.seed, tag=1)
        self.f_rod = StackField(lambda rng: lowpass_field(shp, px, 0.09, rng),
                                key_mm=2.5, seed=a.seed, tag=7)
        self.f_break = StackField(lambda rng: lowpass_field(shp, px, 0.3, rng),
                                  key_mm=1.5, seed=a.seed, tag=8)
        self.f_pore = StackField(lambda rng: lowpass_field(shp, px, a.pore_corr_mm, rng),
                                 key_mm=3.0, seed=a.seed, tag=2)
        self.f_endo = StackField(lambda rng: lowpass_field(shp, px, 0.35, rng),
                                 key_mm=0.8, seed=a.seed, tag=3)
        self.f_fat = StackField(lambda rng: lowpass_field(shp, px, 0.35, rng, anisotropy=2.5),
                                key_mm=2.0, seed=a.seed, tag=4)
        self.f_septa = StackField(lambda rng: bandpass_field(shp, px, 5.0, rng),
                                  key_mm=2.5, seed=a.seed, tag=5)
        self.f_tex = StackField(lambda rng: lowpass_field(shp, px, 0.12, rng),
                                key_mm=0.5, seed=a.seed, tag=6)

    # --- one slice ---------------------------------------------------------------------------
    def render(self, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Slice ``k``: (noise-free HU on the output region after PSF and partial volume,
        tissue map at render resolution, 5-class labels, 7-region labels) - the last two on the
        output region grid ``[r0:r1, c0:c1]``."""
        a = self.anat
        z = k * self.grid.z_mm
        geo = slice_geometry(a, z)
        tissue = np.full(self.shape_r, Tissue.AIR, dtype=np.uint8)
        label5 = np.zeros(self.shape_r, dtype=np.uint8)

        if geo.cast_outer is not None:
            cast = self._fill(geo.cast_outer) & ~self._fill(geo.cast_inner)
            tissue[cast] = Tissue.CAST

        limb = self._fill(geo.limb)
        deep = self._fill(geo.deep) & limb
        tib = self._fill(geo.tibia) & limb
        fib = self._fill(geo.fibula) & limb & ~tib
        soft = limb & ~tib & ~fib

        # dermis, subcutaneous fat with fibrous septa, deep compartment
        below_dermis = self._fill(offset_polygon(geo.limb, a.dermis_mm))
        tissue[soft] = Tissue.DEEP_FAT
        subcut = soft & ~deep
        tissue[subcut] = Tissue.SUBCUT_FAT
        septa = subcut & (np.abs(self.f_septa.at(z)) < 0.05)
        tissue[septa] = Tissue.SEPTUM
        tissue[soft & ~below_dermis] = Tissue.DERMIS
        deep_soft = soft & deep & below_dermis
        muscle = np.zeros_like(limb)
        for st in geo.structures:
            if st.tissue == "muscle":
                self._fill(st.polygon, muscle)
        muscle &= deep_soft
        tissue[muscle] = Tissue.MUSCLE
        if a.fat_infiltration > 0 and muscle.any():
            f = self.f_fat.at(z)  # (cheap enough over the region; muscles are spread out)
            thr = np.quantile(f[muscle], 1.0 - a.fat_infiltration)
            tissue[muscle & (f > thr)] = Tissue.IM_FAT
        for st in geo.structures:
            if st.tissue in ("tendon", "vessel"):
                m = self._fill(st.polygon) & deep_soft
                tissue[m] = Tissue.TENDON if st.tissue == "tendon" else Tissue.VESSEL

        # bones: cortex within the local thickness of the periosteal surface
        for mask, centre, th_fn, lab_c, lab_t in (
            (tib, geo.tibia_centre, geo.tibia_ct_th, R.model_class("TC").label, R.model_class("TT").label),
            (fib, geo.fibula_centre, geo.fibula_ct_th, R.model_class("FC").label, R.model_class("FT").label),
        ):
            if not mask.any():
                continue
            sl = ndi.find_objects(mask.astype(np.uint8))[0]
            sl = tuple(slice(max(s.start - 2, 0), s.stop + 2) for s in sl)
            m = mask[sl]
            endo, pores = self.f_endo.at(z, sl), self.f_pore.at(z, sl)
            trab_f, rod_f, brk_f = self.f_trab.at(z, sl), self.f_rod.at(z, sl), self.f_break.at(z, sl)
            d = ndi.distance_transform_edt(m, sampling=self.rpx)
            x, y = self._mm_grid(sl)
            ang = np.arctan2(y - centre[1], x - centre[0])
            th = th_fn(ang)
            rel = d / np.maximum(th, 1e-3)
            cortex = m & (rel <= 1.0 + a.endo_roughness * endo)
            # enclosed = everything of the bone that is not cortex; cortex must stay a closed ring
            trab = m & ~cortex
            lab = label5[sl]
            lab[cortex] = lab_c
            lab[trab] = lab_t
            t_sl = tissue[sl]
            t_sl[cortex] = Tissue.CORTEX
            if a.ct_porosity > 0 and cortex.any():
                # Haversian canals, denser towards the endosteal surface (trabecularisation)
                p = pores + a.pore_endo_weight * np.clip(rel, 0, 1.2) ** 2
                room = cortex
                if a.pore_margin > 0:  # intracortical canals, clear of both surfaces
                    inner = cortex & (rel > a.pore_margin) & (rel < 1.0 - a.pore_margin)
                    room = inner if inner.sum() > a.ct_porosity * cortex.sum() * 1.5 else cortex
                q = 1.0 - a.ct_porosity if room is cortex else \
                    max(0.0, 1.0 - a.ct_porosity * cortex.sum() / max(room.sum(), 1))
                thr = np.quantile(p[room], q)
                t_sl[room & (p > thr)] = Tissue.PORE
            if trab.any():
                t_sl[trab] = Tissue.MARROW
                bone = self._trabeculae(trab, np.abs(trab_f), rod_f, brk_f, d - th, z)
                t_sl[bone] = Tissue.TRAB_BONE
        label5[soft] = R.SOFT_TISSUE_CLASS

        hu = self._hu(tissue, z)
        out = self._to_output(hu)
        c = self.ss // 2
        lab5 = _close_cortex(label5[c::self.ss, c::self.ss].copy())
        tis = tissue[c::self.ss, c::self.ss]
        lab7 = self._labels7(lab5, tis)
        return out, tissue, lab5, lab7

    def _trabeculae(self, trab: np.ndarray, band: np.ndarray, rod: np.ndarray, brk: np.ndarray,
                    depth_mm: np.ndarray, z_mm: float = 0.0) -> np.ndarray:
        """Trabecular bone inside ``trab``: struts and plates (the thickened zero set of a band-pass
        field, interrupted in patches) plus rods cut across (blobs), denser under the cortex;
        exactly ``tb_bvtv`` of the compartment's area (times the subchondral gradient along z:
        ``1 + tb_z_gradient * (t - 1/2)``, t = 0 proximal, 1 distal over a standard stack)."""
        a = self.anat
        bvtv = a.tb_bvtv
        if a.tb_z_gradient:
            from .anatomy import STACK_MM
            bvtv = float(np.clip(bvtv * (1.0 + a.tb_z_gradient * (z_mm / STACK_MM - 0.5)), 0.01, 0.59))
        near = np.exp(-np.clip(depth_mm, 0, None) / 1.5)  # 1 at the endosteal surface
        strut = band - a.tb_radial_gradient * near + 0.5 * (brk < -0.5)  # lower = more likely bone
        thr_s = np.quantile(strut[trab], 0.8 * bvtv)
        bone = trab & (strut <= thr_s)
        rest = trab & ~bone
        if rest.any():
            thr_r = np.quantile(rod[rest], 1.0 - 0.2 * bvtv / max(1e-6, rest.mean() / trab.mean()))
            bone |= rest & (rod > thr_r)
        return bone

    def _labels7(self, lab5: np.ndarray, tis: np.ndarray) -> np.ndarray:
        lab7 = np.zeros_like(lab5)
        for code in ("TC", "TT", "FC", "FT"):
            lab7[lab5 == R.model_class(code).label] = R.region(code).label
        soft = lab5 == R.SOFT_TISSUE_CLASS
        fat = np.isin(tis, Tissue.FAT)
        lab7[soft & fat] = R.region("AT").label
        lab7[soft & ~fat] = R.region("MT").label
        # the 2 mm band exactly as the soft-tissue split defines it (distance from a pixel centre to
        # the nearest outside pixel square; see hrpqct.seg.softtissue.skin_band)
        skin = skin_band(lab5, (self.grid.pixel_mm, self.grid.pixel_mm)) & soft
        lab7[skin] = R.region("SK").label
        return lab7

    def _hu(self, tissue: np.ndarray, z: float) -> np.ndarray:
        a = self.anat
        tex = self.f_tex.at(z)
        base = np.zeros(Tissue.MARROW + 1, dtype=np.float32)
        amp = np.zeros_like(base)
        for code, hu, am in (
            (Tissue.AIR, -1000.0, 0.0), (Tissue.CAST, a.cast_hu, 25.0),
            (Tissue.DERMIS, a.dermis_hu, 20.0), (Tissue.SUBCUT_FAT, a.fat_hu, 12.0),
            (Tissue.SEPTUM, a.septa_hu, 10.0), (Tissue.DEEP_FAT, a.fat_hu + 10.0, 12.0),
            (Tissue.MUSCLE, a.muscle_hu, 14.0), (Tissue.IM_FAT, a.fat_hu + 60.0, 15.0),
            (Tissue.TENDON, a.tendon_hu, 30.0), (Tissue.VESSEL, a.vessel_hu, 8.0),
            (Tissue.CORTEX, a.cortical_hu, 60.0), (Tissue.PORE, a.pore_hu, 20.0),
            (Tissue.TRAB_BONE, a.trabecular_hu, 80.0), (Tissue.MARROW, a.marrow_hu, 15.0),
        ):
            base[code], amp[code] = hu, am
        return base[tissue] + amp[tissue] * tex

    def _to_output(self, hu: np.ndarray) -> np.ndarray:
        """PSF blur at render resolution, then block-average to the output pixels."""
        sig = self.anat.blur_sigma_mm / self.rpx
        if sig > 0.1:
            hu = ndi.gaussian_filter(hu, sig, mode="nearest")
        s = self.ss
        if s > 1:
            h, w = hu.shape
            hu = hu.reshape(h // s, s, w // s, s).mean(axis=(1, 3))
        return hu.astype(np.float32)
