"""Subject anatomy of a synthetic distal-tibia cross-section, in millimetres.

The cross-section follows the anatomy at 7.3 % of tibia length (about 2.5 cm above the ankle
joint): a rounded-triangular tibia lying eccentrically, subcutaneous on its anteromedial face, with
the fibula posterolateral in the fibular notch; extensor tendons in front; tibialis posterior and
flexor digitorum longus tendons posteromedially; the flexor hallucis longus muscle belly behind the
bones; peroneal tendons and the peroneus brevis belly behind the fibula; Kager's fat pad in front of
the Achilles tendon; subcutaneous fat and skin around everything; the scanner's carbon-fibre cast
outside. Everything is expressed as closed polygons in mm (image x to the right, image y
downwards = posterior, for a left leg the fibula is on the image's right) so that it can be
rasterised exactly at any pixel size.

Geometry changes smoothly along the stack: each slice's shapes are a function of ``z_mm``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
from scipy.interpolate import CubicSpline

from ..errors import InputError
from ..method import SCAN

__all__ = ["Anatomy", "Structure", "SliceGeometry", "slice_geometry", "STACK_MM"]

#: Physical length of a standard stack (168 slices x 60.7 um), mm: shapes vary over this length.
STACK_MM = SCAN.n_slices * SCAN.voxel_mm

_N_POINTS = 720  # polygon vertices per closed curve


@dataclass(frozen=True)
class Anatomy:
    """One subject's anatomy and tissue properties. Lengths in mm, intensities in HU.

    Defaults describe an average post-menopausal woman; :func:`hrpqct.phantom.cohort` derives
    subjects from a latent bone-and-muscle health score.
    """

    seed: int = 0
    side: str = "left"  # "left": fibula on the image's right; "right": mirrored
    rotation_deg: float = 0.0  # in-plane rotation of the whole limb
    # --- tibia ---------------------------------------------------------------------------
    tibia_radius_mm: float = 15.0  # equivalent-circle radius (Tt.Ar ~ 700 mm^2)
    tibia_aspect: float = 1.12  # medio-lateral / antero-posterior
    tibia_flare: float = 0.07  # relative radius growth over one stack length, distally
    tibia_ct_th_mm: float = 1.15  # mean cortical thickness
    tibia_ct_th_variation: float = 0.35  # relative variation of thickness around the perimeter
    # --- fibula --------------------------------------------------------------------------
    fibula_radius_mm: float = 6.3
    fibula_ct_th_mm: float = 1.05
    fibula_gap_mm: float = 2.2  # between tibial and fibular periosteal surfaces
    fibula_angle_deg: float = 38.0  # direction from tibia centre, from lateral towards posterior
    # --- bone tissue ---------------------------------------------------------------------
    ct_porosity: float = 0.05  # pore area fraction of the cortex
    tb_bvtv: float = 0.22  # trabecular bone volume fraction (XtremeCT II, direct)
    tb_spacing_mm: float = 1.0  # trabecular repeat distance (sets the network's wavelength)
    cortical_hu: float = 2650.0  # fully mineralised cortical matrix
    trabecular_hu: float = 2350.0  # trabecular matrix (before partial-volume blur)
    marrow_hu: float = -150.0
    pore_hu: float = 20.0
    pore_corr_mm: float = 0.065  # Haversian canal size: correlation length of the pore field
    endo_roughness: float = 0.18  # irregularity of the endosteal margin (relative thickness)
    pore_endo_weight: float = 1.2  # concentration of pores towards the endosteal surface
    pore_margin: float = 0.0  # pore-free fraction of the cortical thickness at both surfaces
    tb_z_gradient: float = 0.0  # relative BV/TV change from the proximal to the distal end
    tb_radial_gradient: float = 0.35  # extra trabecular density under the cortex
    # --- soft tissue ---------------------------------------------------------------------
    soft_depth_scale: float = 1.0  # scales the deep soft-tissue depth (limb size)
    subcut_fat_mm: float = 4.5  # subcutaneous fat thickness away from the tibia's medial face
    dermis_mm: float = 1.3
    muscle_hu: float = 125.0  # muscle density at 68 kVp (METHOD's seeds: myotendinous 100-600 HU)
    fat_infiltration: float = 0.06  # intramuscular fat area fraction
    tendon_hu: float = 330.0
    fat_hu: float = -330.0
    dermis_hu: float = 150.0
    vessel_hu: float = 45.0
    septa_hu: float = 10.0  # fibrous septa in the subcutaneous fat
    # --- scanner -------------------------------------------------------------------------
    cast: bool = True  # carbon-fibre limb holder around the leg
    cast_hu: float = 180.0
    cast_gap_mm: float = 2.5
    noise_sd_hu: float = 170.0  # white-noise SD at 60.7 um voxels (scaled for other voxel sizes)
    blur_sigma_mm: float = 0.05  # Gaussian point-spread function
    motion: float = 0.0  # 0 = none, 1 = severe (streaks and doubled edges)
    scanner: str = "legacy"  # image formation: "legacy" (white noise) or "fbp" (scanner.py)
    extra: dict = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if self.side not in ("left", "right"):
            raise InputError(f"side must be 'left' or 'right', got {self.side!r}")
        if not 0.0 <= self.tb_bvtv < 0.6:
            raise InputError(f"tb_bvtv must be in [0, 0.6), got {self.tb_bvtv}")
        if self.scanner not in ("legacy", "fbp"):
            raise InputError(f"scanner must be 'legacy' or 'fbp', got {self.scanner!r}")
        if not 0.0 <= self.ct_porosity < 0.5:
            raise InputError(f"ct_porosity must be in [0, 0.5), got {self.ct_porosity}")

    def with_(self, **changes) -> "Anatomy":
        return replace(self, **changes)

    def legacy(self) -> "Anatomy":
        """The same subject with the bone texture and image formation of before issue 12."""
        return replace(self, pore_corr_mm=0.065, endo_roughness=0.18, pore_endo_weight=1.2,
                       pore_margin=0.0,
                       tb_z_gradient=0.0,
                       tb_radial_gradient=0.35, scanner="legacy")


@dataclass(frozen=True)
class Structure:
    """A closed polygon (N x 2, columns x, y in mm) with its tissue."""

    name: str
    polygon: np.ndarray
    tissue: str  # "tendon", "muscle", "fat", "vessel"


@dataclass
class SliceGeometry:
    """All curves of one slice, in mm, in the limb frame (x right, y posterior)."""

    limb: np.ndarray
    deep: np.ndarray  # inner boundary of the subcutaneous fat (deep fascia)
    tibia: np.ndarray
    fibula: np.ndarray
    tibia_centre: np.ndarray
    fibula_centre: np.ndarray
    tibia_ct_th: "callable"  # angle (rad, about tibia centre) -> cortical thickness, mm
    fibula_ct_th: "callable"
    structures: list[Structure]
    cast_outer: np.ndarray | None
    cast_inner: np.ndarray | None


# ------------------------------------------------------------------------------------------
# Subject-specific random shape coefficients (fixed per subject, i.e. per seed).
# ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Shape:
    tibia_harm: np.ndarray  # (k, 2) amplitude/phase of harmonics 2..
    fibula_harm: np.ndarray
    limb_depth_jitter: np.ndarray  # multiplicative jitter of the soft-tissue depth control points
    ct_profile: np.ndarray  # harmonics of cortical thickness around the perimeter
    structure_jitter: np.ndarray  # (n_structures, 4): angle, radial fraction, size, rotation


def _shape(anat: Anatomy) -> _Shape:
    rng = np.random.default_rng([anat.seed, 101])
    tib = np.column_stack([
        np.array([0.035, 0.075, 0.02, 0.012, 0.008]) * rng.uniform(0.6, 1.4, 5),
        rng.uniform(-0.25, 0.25, 5),
    ])
    fib = np.column_stack([
        np.array([0.06, 0.1, 0.02]) * rng.uniform(0.5, 1.5, 3),
        rng.uniform(-0.4, 0.4, 3),
    ])
    return _Shape(
        tibia_harm=tib,
        fibula_harm=fib,
        limb_depth_jitter=rng.uniform(0.85, 1.15, len(_DEPTH_CONTROL)),
        ct_profile=np.column_stack([rng.normal(0, 1, 4), rng.uniform(0, 2 * np.pi, 4)]),
        structure_jitter=rng.normal(0, 1, (len(_STRUCTURES), 4)),
    )


# Soft-tissue depth beyond the tibia (mm), by direction about the tibia centre (degrees; 0 =
# lateral, 90 = posterior, 180 = medial, 270 = anterior, for the left-leg frame).
_DEPTH_CONTROL = [
    (0.0, 17.0),  # lateral (beyond this the fibula and peroneals push the outline out)
    (38.0, 29.0),  # posterolateral: fibula + peroneus brevis
    (75.0, 32.0),  # posterior: FHL belly, Kager's fat pad, Achilles tendon
    (100.0, 33.0),
    (135.0, 17.0),  # posteromedial: tibialis posterior and FDL tendons, vessels
    (170.0, 5.5),  # medial: subcutaneous tibia
    (215.0, 4.5),  # anteromedial
    (260.0, 9.5),  # anterior: tibialis anterior, EHL
    (310.0, 11.5),  # anterolateral: EDL, peroneus tertius
]

# Structures in the deep compartment: name, tissue, angle (deg about the tibia centre), radial
# position as a fraction between the tibial surface (0) and the deep fascia (1), semi-axes (mm)
# tangential and radial.
_STRUCTURES = [
    ("achilles_tendon", "tendon", 88.0, 0.80, 7.2, 2.9),
    ("fhl_muscle", "muscle", 70.0, 0.40, 11.5, 7.0),
    ("soleus_muscle", "muscle", 100.0, 0.62, 8.5, 3.8),
    ("fhl_tendon", "tendon", 95.0, 0.30, 1.9, 1.5),
    ("peroneus_brevis_muscle", "muscle", 30.0, 0.70, 6.5, 4.2),
    ("peroneus_longus_tendon", "tendon", 22.0, 0.86, 2.4, 1.6),
    ("peroneus_brevis_tendon", "tendon", 33.0, 0.62, 2.0, 1.4),
    ("tibialis_posterior_tendon", "tendon", 140.0, 0.35, 2.7, 1.9),
    ("fdl_tendon", "tendon", 124.0, 0.45, 1.9, 1.5),
    ("fdl_muscle", "muscle", 118.0, 0.55, 3.6, 2.4),
    ("posterior_tibial_artery", "vessel", 110.0, 0.55, 1.1, 1.1),
    ("posterior_tibial_vein", "vessel", 106.0, 0.62, 1.3, 0.9),
    ("tibialis_anterior_tendon", "tendon", 242.0, 0.55, 2.8, 2.0),
    ("ehl_muscle", "muscle", 282.0, 0.55, 4.4, 2.6),
    ("ehl_tendon", "tendon", 272.0, 0.55, 1.7, 1.4),
    ("edl_muscle", "muscle", 312.0, 0.50, 4.8, 2.8),
    ("edl_tendon", "tendon", 305.0, 0.55, 2.3, 1.5),
    ("anterior_tibial_artery", "vessel", 288.0, 0.25, 0.9, 0.9),
]


def _theta(n: int = _N_POINTS) -> np.ndarray:
    return np.linspace(0.0, 2 * np.pi, n, endpoint=False)


def _harmonic_radius(theta: np.ndarray, harm: np.ndarray, first: int = 2) -> np.ndarray:
    r = np.ones_like(theta)
    for k, (amp, phase) in enumerate(harm, start=first):
        r = r + amp * np.cos(k * (theta - phase))
    return r


def _ellipse(centre, a: float, b: float, angle: float, n: int = 160, wobble: float = 0.0,
             phase=(0.0, 0.0, 0.0, 0.0)) -> np.ndarray:
    """Ellipse with semi-axes a, b (mm) rotated by ``angle``; ``wobble`` adds smooth lobes so
    that muscle bellies are not perfect ellipses."""
    t = _theta(n)
    ca, sa = np.cos(angle), np.sin(angle)
    r = 1.0 + wobble * (0.6 * np.cos(2 * t + phase[0]) + 0.4 * np.cos(3 * t + phase[1])
                        + 0.25 * np.cos(5 * t + phase[2]))
    x, y = a * r * np.cos(t), b * r * np.sin(t)
    return np.column_stack([centre[0] + ca * x - sa * y, centre[1] + sa * x + ca * y])


def _radial_at(poly_r: np.ndarray, theta: np.ndarray, angle: float) -> float:
    """Radius of a star-shaped curve r(theta) sampled on ``theta`` at ``angle`` (periodic)."""
    return float(np.interp(angle % (2 * np.pi), theta, poly_r, period=2 * np.pi))


def slice_geometry(anat: Anatomy, z_mm: float) -> SliceGeometry:
    """Every curve of the slice at height ``z_mm`` (0 = proximal end of the stack)."""
    sh = _shape(anat)
    t = z_mm / STACK_MM  # 0..1 over a standard stack
    th = _theta()

    # --- tibia: rounded triangle with a fibular notch ---------------------------------------
    fib_dir = np.deg2rad(anat.fibula_angle_deg)
    r_t = _harmonic_radius(th, sh.tibia_harm)
    dtheta = np.angle(np.exp(1j * (th - fib_dir)))
    r_t = r_t * (1.0 - 0.11 * np.exp(-0.5 * (dtheta / 0.32) ** 2))  # fibular notch
    scale = anat.tibia_radius_mm * (1.0 + anat.tibia_flare * t)
    xy_t = np.column_stack([r_t * np.cos(th), r_t * np.sin(th)])
    xy_t[:, 0] *= np.sqrt(anat.tibia_aspect)
    xy_t[:, 1] /= np.sqrt(anat.tibia_aspect)
    # normalise to the requested equivalent-circle radius
    area = 0.5 * abs(np.dot(xy_t[:, 0], np.roll(xy_t[:, 1], 1)) - np.dot(xy_t[:, 1], np.roll(xy_t[:, 0], 1)))
    xy_t *= scale / np.sqrt(area / np.pi)
    tib_centre = np.array([0.25 * t, -0.15 * t])
    tibia = xy_t + tib_centre
    r_tib = np.hypot(xy_t[:, 0], xy_t[:, 1])  # radius about the tibia centre, sampled at angle th

    # cortical thickness around the perimeter (smooth), thinner distally and posteriorly
    def tibia_ct_th(angle: np.ndarray) -> np.ndarray:
        prof = np.zeros_like(angle, dtype=float)
        for k, (amp, ph) in enumerate(sh.ct_profile, start=1):
            prof += amp * np.cos(k * angle - ph) / k
        prof /= max(1e-6, np.sqrt(np.sum(1.0 / np.arange(1, len(sh.ct_profile) + 1) ** 2)))
        post = 0.18 * np.cos(angle - np.pi / 2)  # posterior wall thinner
        return anat.tibia_ct_th_mm * (1.0 - 0.18 * t) * np.clip(
            1.0 + anat.tibia_ct_th_variation * (0.6 * prof - post), 0.35, 2.2)

    # --- fibula -------------------------------------------------------------------------------
    r_f = _harmonic_radius(th, sh.fibula_harm)
    xy_f = np.column_stack([r_f * np.cos(th), r_f * np.sin(th)])
    f_scale = anat.fibula_radius_mm * (1.0 + 0.05 * t)
    area_f = 0.5 * abs(np.dot(xy_f[:, 0], np.roll(xy_f[:, 1], 1)) - np.dot(xy_f[:, 1], np.roll(xy_f[:, 0], 1)))
    xy_f *= f_scale / np.sqrt(area_f / np.pi)
    r_fib = np.hypot(xy_f[:, 0], xy_f[:, 1])
    d = (_radial_at(r_tib, th, fib_dir) + max(0.6, anat.fibula_gap_mm - 0.3 * t)
         + _radial_at(r_fib, th, fib_dir + np.pi))
    fib_centre = tib_centre + d * np.array([np.cos(fib_dir), np.sin(fib_dir)])
    fibula = xy_f + fib_centre

    def fibula_ct_th(angle: np.ndarray) -> np.ndarray:
        return anat.fibula_ct_th_mm * (1.0 - 0.1 * t) * (1.0 + 0.15 * np.cos(angle - fib_dir - 0.5))

    # --- limb outline: tibia radius + soft-tissue depth by direction ---------------------------
    ang = np.deg2rad([a for a, _ in _DEPTH_CONTROL])
    depth = np.array([dd for _, dd in _DEPTH_CONTROL]) * sh.limb_depth_jitter * anat.soft_depth_scale
    # subcutaneous fat adds everywhere but over the tibia's medial face (weight ~0 there)
    fat_w = 0.35 + 0.65 * (1 - np.exp(-0.5 * (np.angle(np.exp(1j * (ang - np.deg2rad(195)))) / 0.55) ** 2))
    depth = depth + (anat.subcut_fat_mm - 4.5) * fat_w
    depth = np.maximum(depth, 3.2 + anat.dermis_mm)
    ang_p = np.concatenate([ang, [ang[0] + 2 * np.pi]])
    dep_p = np.concatenate([depth, [depth[0]]])
    s_th = CubicSpline(ang_p, dep_p, bc_type="periodic")(th)
    r_limb = r_tib + np.maximum(s_th, 3.2 + anat.dermis_mm)
    # enclose the fibula with at least 7 mm of soft tissue beyond it
    rel = fibula - tib_centre
    f_rad, f_ang = np.hypot(rel[:, 0], rel[:, 1]), np.arctan2(rel[:, 1], rel[:, 0])
    close = np.abs(np.angle(np.exp(1j * (th[:, None] - f_ang[None, :])))) < 0.12
    need = np.where(close.any(axis=1), np.max(np.where(close, f_rad[None, :], 0.0), axis=1) + 7.0, 0.0)
    r_limb = np.maximum(r_limb, need)
    r_limb = _smooth_periodic(r_limb, 9)
    limb = np.column_stack([r_limb * np.cos(th), r_limb * np.sin(th)]) + tib_centre

    # deep fascia: inside the dermis and subcutaneous fat
    fat_th = np.clip(anat.subcut_fat_mm * (0.25 + 0.75 * (1 - np.exp(
        -0.5 * (np.angle(np.exp(1j * (th - np.deg2rad(195)))) / 0.6) ** 2))), 0.8, None)
    r_deep = np.maximum(r_limb - anat.dermis_mm - fat_th, r_tib + 0.3)
    deep = np.column_stack([r_deep * np.cos(th), r_deep * np.sin(th)]) + tib_centre

    # --- structures in the deep compartment ----------------------------------------------------
    structures = []
    for (name, tissue, a_deg, frac, sa, sb), jit in zip(_STRUCTURES, sh.structure_jitter):
        a = np.deg2rad(a_deg + 4.0 * jit[0])
        fr = float(np.clip(frac + 0.04 * jit[1], 0.12, 0.9))
        size = float(np.clip(1.0 + 0.1 * jit[2], 0.75, 1.3))
        if tissue == "muscle" and name.startswith("fhl"):
            size *= 1.0 - 0.2 * t  # the FHL belly tapers distally
        r_in = _radial_at(r_tib, th, a)
        if need[np.argmin(np.abs(np.angle(np.exp(1j * (th - a)))))] > 0:
            r_in = max(r_in, _radial_at(need, th, a) - 7.0)  # beyond the fibula
        r_out = _radial_at(r_deep, th, a)
        rr = r_in + fr * max(r_out - r_in, 0.5)
        direction = np.array([np.cos(a), np.sin(a)])
        poly = _ellipse(tib_centre + rr * direction, sa * size, sb * size, a + np.pi / 2 + 0.15 * jit[3],
                        wobble=0.12 if tissue == "muscle" else 0.04, phase=jit)
        # push outwards until clear of both bones (tendons glide next to, not inside, bone)
        for _ in range(40):
            if not (_inside(tibia, poly).any() or _inside(fibula, poly).any()):
                break
            poly = poly + 0.4 * direction
        structures.append(Structure(name, poly, tissue))

    cast_outer = cast_inner = None
    if anat.cast:
        # limb holder: the limb outline pushed out by a gap that is smallest posteriorly (where the
        # calf rests), 1.3 mm thick
        gap = anat.cast_gap_mm * (1.0 + 0.8 * np.sin(th - np.pi / 2 + np.pi))  # ~0 posteriorly
        gap = np.clip(gap, 0.25, None)
        r_ci = _smooth_periodic(r_limb + gap, 25)
        cast_inner = np.column_stack([r_ci * np.cos(th), r_ci * np.sin(th)]) + tib_centre
        r_co = r_ci + 1.3
        cast_outer = np.column_stack([r_co * np.cos(th), r_co * np.sin(th)]) + tib_centre

    geo = SliceGeometry(
        limb=limb, deep=deep, tibia=tibia, fibula=fibula, tibia_centre=tib_centre,
        fibula_centre=fib_centre, tibia_ct_th=tibia_ct_th, fibula_ct_th=fibula_ct_th,
        structures=structures, cast_outer=cast_outer, cast_inner=cast_inner,
    )
    return _orient(geo, anat, t)


def _inside(polygon: np.ndarray, points: np.ndarray) -> np.ndarray:
    from matplotlib.path import Path

    return Path(polygon).contains_points(points)


def _smooth_periodic(r: np.ndarray, width: int) -> np.ndarray:
    k = np.hanning(2 * width + 1)
    k /= k.sum()
    padded = np.concatenate([r[-width:], r, r[:width]])
    return np.convolve(padded, k, mode="valid")


def _orient(geo: SliceGeometry, anat: Anatomy, t: float) -> SliceGeometry:
    """Centre the limb, rotate and mirror for the leg side."""
    centre = geo.limb.mean(axis=0)
    rot = np.deg2rad(anat.rotation_deg + 1.0 * t)
    c, s = np.cos(rot), np.sin(rot)
    mat = np.array([[c, -s], [s, c]])
    if anat.side == "right":
        mat = mat @ np.diag([-1.0, 1.0])

    def tf(p):
        return None if p is None else (np.asarray(p) - centre) @ mat.T

    # thickness functions take the angle in the output frame: map back to the input frame
    def back(fn):
        def g(angle):
            a = np.asarray(angle, dtype=float) - rot
            if anat.side == "right":
                a = np.pi - a
            return fn(a)
        return g

    return SliceGeometry(
        limb=tf(geo.limb), deep=tf(geo.deep), tibia=tf(geo.tibia), fibula=tf(geo.fibula),
        tibia_centre=tf(geo.tibia_centre), fibula_centre=tf(geo.fibula_centre),
        tibia_ct_th=back(geo.tibia_ct_th), fibula_ct_th=back(geo.fibula_ct_th),
        structures=[Structure(st.name, tf(st.polygon), st.tissue) for st in geo.structures],
        cast_outer=tf(geo.cast_outer), cast_inner=tf(geo.cast_inner),
    )
