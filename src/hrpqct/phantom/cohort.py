"""Synthetic cohorts: subjects with a latent bone-health score, clinical covariates, DXA
T-scores, osteoporosis labels, and the anatomy from which their scans are rendered.

The generative model (docs/phantom.md gives every effect size, its target and its source):

* sex (70 % women), age, height and BMI are drawn first; height shrinks after 60;
* a latent **bone** health score ``h`` (standard normal in the cohort) depends on age (-), male
  sex (+), BMI (+) and an individual part; the femoral-neck T-score is ``t0 + t1 h + noise``;
  osteoporosis: T <= -2.5; three classes: normal T >= -1, osteopenia -2.5 < T < -1, osteoporosis
  T <= -2.5 (hrpqct.method.CLASSIFICATION);
* each bone parameter of the anatomy (trabecular number and thickness, cortical thickness,
  porosity and mineralisation) is log-normal: ``base * exp(cv * z)`` with
  ``z = loading * h + sqrt(1 - loading^2) * e`` (:class:`Effect`), so its correlation with ``h``
  is the loading and its osteoporotic-vs-normal difference follows from ``cv * loading``. Bone is
  lost mainly by losing trabeculae (Tb.N loading 0.55, Tb.Th 0.12);
* soft tissue is **not** driven by ``h``: muscle density depends on age, sex and BMI (the
  predictors Warden et al. 2025 report) plus an individual part; a configurable coupling to
  ``h`` (``muscle_coupling``, default weak) is the only direct link;
* ``association="null"``: the T-score's latent score is drawn independently of the covariates
  and of everything rendered, so nothing in the images (or the covariates) predicts the label;
  ``association="strong"``: bone loadings 0.95 and soft tissue coupled to ``h`` as the earlier
  model did (a stated strong-signal setting for demonstrations; not realistic);
* other clinical variables (lumbar-spine and total-hip T-scores, grip strength, gait speed, chair
  rise time, vitamin D, bone turnover markers, prior fracture, glucocorticoids, smoking,
  parental hip fracture, falls) are correlated with ``h``, age and sex as in clinical data;
* the standard HR-pQCT parameters of each subject are those of its anatomy, so that
  "non-radiomics" models have the same kind of inputs as the paper's.

Everything is seeded: the same ``seed`` and model give the same table and scans, bit for bit.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace

import numpy as np
import pandas as pd

from ..method import CLASSIFICATION, PHANTOM
from .anatomy import Anatomy

__all__ = ["CohortModel", "Effect", "make_subjects", "anatomy_for", "cohort_phantoms",
           "t_score_classes",
           "SUBJECT_COLUMNS", "ASSOCIATIONS", "TARGETS",
           "effect_table"]

ASSOCIATIONS = ("published", "null", "strong")


@dataclass(frozen=True)
class Effect:
    """A log-normal bone parameter ``base * exp(cv * z)``, ``z = loading h + sqrt(1-loading^2) e``:
    ``loading`` is its correlation with the latent bone health ``h`` (on the log scale),
    ``cv`` its spread (log SD) in the cohort; ``male`` a relative offset for men beyond ``h``."""

    base: float
    loading: float
    cv: float
    male: float = 0.0


@dataclass(frozen=True)
class CohortModel:
    """Coefficients of the generative cohort model (module docstring; docs/phantom.md)."""

    association: str = PHANTOM.association  # "published", "null" or "strong" (ASSOCIATIONS)
    female_fraction: float = 0.7
    age_mean: float = 68.0
    age_sd: float = 8.0
    age_range: tuple[float, float] = (50.0, 90.0)
    bmi_mean: float = 26.5
    bmi_sd: float = 4.5
    # latent health h = standardised(-a_age*(age-68) + a_male*male + a_bmi*(BMI-26.5) + e)
    h_age: float = 0.045
    h_male: float = 0.6
    h_bmi: float = 0.06
    h_individual_sd: float = 0.8
    # femoral-neck T-score = t0 + t1 * h + N(0, t_sd)
    t0: float = -1.75
    t1: float = 0.95
    t_sd: float = 0.55
    # fraction of scans with visible motion, and its severity range
    motion_fraction: float = 0.15
    # --- bone (docs/phantom.md, "Effect sizes"): loadings and spreads give the target
    # correlations with the T-score and osteoporotic-vs-normal differences
    tb_n: Effect = Effect(1.5, 0.55, 0.19)  # relative trabecular number (1/spacing)
    tb_th: Effect = Effect(1.0, 0.12, 0.10, male=0.10)  # relative trabecular thickness
    ct_th: Effect = Effect(1.05, 0.60, 0.22)  # mm
    ct_po: Effect = Effect(0.035, -0.35, 0.44)  # true pore area fraction of the cortex
    ct_mineral: Effect = Effect(2480.0, 0.45, 0.03)  # cortical matrix HU
    tb_mineral: Effect = Effect(2350.0, 0.20, 0.03)  # trabecular matrix HU
    tb_bvtv_base: float = 0.26  # at relative Tb.N and Tb.Th 1 (spacing 1 / 1.5 mm)
    pore_corr_mm: float = 0.18  # Haversian canal size (correlation length of the pore field) ...
    pore_size_exponent: float = 0.5  # ... times (porosity / base porosity)^exponent: canals enlarge
    pore_endo_weight: float = 0.3  # pores concentrated towards the endosteum (legacy 1.2)
    pore_margin: float = 0.15  # pore-free surface layers (legacy 0)
    tb_z_gradient: float = 0.3  # BV/TV +15 % at the distal (subchondral) end, -15 % proximally
    tb_radial_gradient: float = 0.5  # denser under the cortex than centrally
    endo_roughness: float = 0.18  # endosteal margin irregularity at h = 0 ...
    endo_roughness_per_sd: float = -0.35  # ... log change per SD of h (rougher when osteoporotic)
    marrow_hu: float = -120.0
    marrow_hu_per_decade: float = -5.0
    # --- soft tissue: muscle density by age, sex, BMI (Warden et al. 2025 name these
    # predictors; leg muscle density 3.3 % lower per decade and 2.6 % lower in women)
    muscle_hu: float = 125.0  # women, 68 years, BMI 26.5
    muscle_hu_per_decade: float = -4.1  # 3.3 % of 125 HU
    muscle_hu_male: float = 3.3  # 2.6 % of 125 HU
    muscle_hu_per_bmi: float = -0.8  # (design value: more fat, lower density; not published)
    muscle_hu_sd: float = 11.0
    muscle_coupling: float = 0.1  # HU per HU of residual SD, per SD of h (weak; docs/phantom.md)
    fat_infiltration: float = 0.06
    fat_infiltration_per_bmi: float = 0.025  # log change per BMI unit
    fat_infiltration_per_decade: float = 0.15  # log change per decade
    fat_infiltration_sd: float = 0.25
    scanner: str = PHANTOM.scanner  # image formation of rendered scans: "legacy" or "fbp"

    def __post_init__(self) -> None:
        if self.association not in ASSOCIATIONS:
            raise ValueError(f"association must be one of {ASSOCIATIONS}, got {self.association!r}")

    @classmethod
    def preset(cls, association: str = PHANTOM.association, **changes) -> "CohortModel":
        """The published (default), null or strong model (module docstring)."""
        m = cls(association=association)
        if association == "strong":
            m = replace(m, tb_n=replace(m.tb_n, loading=0.95, cv=0.22),
                        tb_th=replace(m.tb_th, loading=0.9, cv=0.15),
                        ct_th=replace(m.ct_th, loading=0.95), ct_po=replace(m.ct_po, loading=-0.9),
                        ct_mineral=replace(m.ct_mineral, loading=0.9),
                        tb_mineral=replace(m.tb_mineral, loading=0.9), muscle_coupling=1.1)
        return replace(m, **changes)

    def loadings_off(self) -> bool:
        return self.association == "null"


SUBJECT_COLUMNS = (
    "subject_id", "seed", "sex", "age", "height_cm", "weight_kg", "bmi", "health",
    "t_score_fn", "bmd_fn_g_cm2", "t_score_ls", "t_score_th", "osteoporosis", "bmd_class",
)


#: Target intervals of the published model (docs/phantom.md, "Effect sizes"): per subject-table
#: column, (low, high) of its Pearson correlation with the femoral-neck T-score and of its
#: relative difference, osteoporotic (T <= -2.5) vs normal (T >= -1) women. Design targets: the
#: directions and rough magnitudes follow the abstracts in hrpqct.morphometry.reference.FINDINGS
#: (bone lost by losing trabeculae; porosity up; muscle density set by age, sex and fat), the
#: magnitudes are not read from XtremeCT II tables (none was available; docs/phantom.md).
TARGETS: dict[str, tuple[tuple[float, float], tuple[float, float]]] = {
    "anat_tb_n_rel": ((0.35, 0.60), (-0.30, -0.10)),
    "anat_tb_th_rel": ((-0.05, 0.20), (-0.08, 0.03)),
    "anat_tb_bvtv": ((0.35, 0.60), (-0.35, -0.12)),
    "anat_tb_spacing_mm": ((-0.60, -0.35), (0.10, 0.40)),
    "anat_tibia_ct_th_mm": ((0.40, 0.65), (-0.35, -0.12)),
    "anat_ct_porosity": ((-0.45, -0.15), (0.15, 0.80)),
    "anat_cortical_hu": ((0.25, 0.55), (-0.08, -0.01)),
    "anat_muscle_hu": ((-0.05, 0.25), (-0.08, 0.02)),
    "anat_fat_infiltration": ((-0.25, 0.05), (-0.05, 0.25)),
}


def t_score_classes(t: np.ndarray) -> np.ndarray:
    """0 normal (T >= -1), 1 osteopenia (-2.5 < T < -1), 2 osteoporosis (T <= -2.5)."""
    t = np.asarray(t, dtype=float)
    c = CLASSIFICATION
    return np.where(t <= c.osteoporosis_t_score, 2, np.where(t < c.osteopenia_t_score, 1, 0))


def make_subjects(n: int, seed: int = 0, model: CohortModel | str = CohortModel()) -> pd.DataFrame:
    """The subject table of an ``n``-subject cohort (one row per subject). ``model``: a
    :class:`CohortModel` or the name of a preset (``"published"``, ``"null"``, ``"strong"``).
    ``health`` is the latent score behind the T-score; ``bone_health`` the one behind the
    rendered bone (the same but under ``"null"``)."""
    if isinstance(model, str):
        model = CohortModel.preset(model)
    if n < 1:
        raise ValueError(f"a cohort needs at least one subject, got {n}")
    rng = np.random.default_rng([seed, 2024])
    m = model
    male = rng.uniform(size=n) >= m.female_fraction
    age = np.clip(rng.normal(m.age_mean + 2.0 * male, m.age_sd, n), *m.age_range)
    height = np.where(male, rng.normal(175.0, 7.0, n), rng.normal(161.0, 6.5, n))
    height -= 0.12 * np.clip(age - 60.0, 0, None)
    bmi = np.clip(rng.normal(m.bmi_mean, m.bmi_sd, n), 17.0, 45.0)
    weight = bmi * (height / 100.0) ** 2
    raw = (-m.h_age * (age - m.age_mean) + m.h_male * male + m.h_bmi * (bmi - m.bmi_mean)
           + rng.normal(0, m.h_individual_sd, n))
    h = (raw - raw.mean()) / raw.std() if n > 1 else raw * 0.0
    hb = h  # the bone's latent score
    if m.association == "null":  # the label's score: independent of covariates and images
        z = np.random.default_rng([seed, 2025]).normal(0, 1, n)
        h = (z - z.mean()) / z.std() if n > 1 else z * 0.0
    t_fn = np.clip(m.t0 + m.t1 * h + rng.normal(0, m.t_sd, n), -5.0, 3.0).round(2)  # as reported
    t_ls = m.t0 + 0.7 * m.t1 * h + rng.normal(0, 0.9, n) + 0.3  # spine: degenerative artefacts
    t_th = m.t0 + 0.9 * m.t1 * h + rng.normal(0, 0.45, n) + 0.3
    cls = t_score_classes(t_fn)
    df = pd.DataFrame({
        "subject_id": [f"sub-{i + 1:04d}" for i in range(n)],
        "seed": (seed * 100_003 + np.arange(n) * 7_919 + 11) % (2**31 - 1),
        "sex": np.where(male, "M", "F"),
        "age": age.round(1),
        "height_cm": height.round(1),
        "weight_kg": weight.round(1),
        "bmi": bmi.round(2),
        "health": h,
        "bone_health": hb,
        "cohort_model": m.association,
        "t_score_fn": t_fn.round(2),
        "bmd_fn_g_cm2": (0.858 + 0.12 * t_fn).round(3),  # NHANES III young-female reference
        "t_score_ls": t_ls.round(2),
        "t_score_th": t_th.round(2),
        "osteoporosis": (cls == 2).astype(int),
        "bmd_class": pd.Categorical.from_codes(cls, ["normal", "osteopenia", "osteoporosis"]),
    })
    # functional, biological and history variables
    df["grip_strength_kg"] = (np.where(male, 36.0, 22.5) + 3.0 * hb - 0.25 * (age - 68)
                              + rng.normal(0, 4.0, n)).clip(5).round(1)
    df["gait_speed_m_s"] = (1.05 + 0.08 * hb - 0.012 * (age - 68) + rng.normal(0, 0.15, n)).clip(0.3).round(2)
    df["chair_rise_s"] = (11.5 - 1.0 * hb + 0.12 * (age - 68) + rng.normal(0, 2.0, n)).clip(5).round(1)
    df["vitamin_d_ng_ml"] = (26 + 3.0 * hb + rng.normal(0, 9, n)).clip(4).round(1)
    df["ctx_ng_ml"] = np.exp(np.log(0.42) - 0.18 * hb + rng.normal(0, 0.3, n)).round(3)
    df["p1np_ng_ml"] = np.exp(np.log(48) - 0.1 * hb + rng.normal(0, 0.35, n)).round(1)

    def bern(logit):
        return (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(int)

    df["prior_fracture"] = bern(-1.4 - 0.7 * hb + 0.03 * (age - 68))
    df["parental_hip_fracture"] = bern(-2.0 - 0.3 * hb)
    df["glucocorticoids"] = bern(-2.6 - 0.4 * hb)
    df["current_smoker"] = bern(-1.9 - 0.25 * hb)
    df["falls_last_year"] = bern(-1.2 - 0.3 * hb + 0.04 * (age - 68))
    df["motion"] = np.where(rng.uniform(size=n) < m.motion_fraction, rng.uniform(0.2, 0.8, n), 0.0).round(2)
    df["side"] = np.where(rng.uniform(size=n) < 0.8, "left", "right")
    # the anatomy each scan is rendered from, and its standard HR-pQCT parameters
    anat = [anatomy_for(row, rng_seed=int(row.seed), model=m) for row in df.itertuples()]
    for f in ("tibia_radius_mm", "tibia_ct_th_mm", "ct_porosity", "tb_bvtv", "tb_spacing_mm",
              "fibula_radius_mm", "fibula_ct_th_mm", "cortical_hu", "trabecular_hu", "muscle_hu",
              "fat_infiltration", "subcut_fat_mm"):
        df[f"anat_{f}"] = [getattr(a, f) for a in anat]
    df["hrpqct_tt_ar_mm2"] = (np.pi * df["anat_tibia_radius_mm"] ** 2).round(1)
    # the design's trabecular number and thickness (relative to the base; docs/phantom.md)
    df["anat_tb_n_rel"] = [a.extra.get("tb_n_rel", np.nan) for a in anat]
    df["anat_tb_th_rel"] = [a.extra.get("tb_th_rel", np.nan) for a in anat]
    return df


def anatomy_for(row, rng_seed: int | None = None, model: CohortModel | None = None) -> Anatomy:
    """The :class:`Anatomy` of one subject row (attributes: seed, sex, age, height_cm, bmi,
    health, motion, side; optional bone_health and cohort_model, the preset's name, used when
    ``model`` is not given)."""
    if model is None:
        name = getattr(row, "cohort_model", "published")
        if not isinstance(name, str):  # pandas reads the text "null" of a CSV back as NaN
            name = "null"
        model = CohortModel.preset(name)
    m = model
    seed = int(rng_seed if rng_seed is not None else row.seed)
    rng = np.random.default_rng([seed, 77])
    hb = float(getattr(row, "bone_health", row.health))
    h = 0.0 if m.loadings_off() else hb  # null: the rendered bone follows no score at all
    male = row.sex == "M"
    decade = (row.age - 68.0) / 10.0
    size = (row.height_cm / 165.0) * (1.08 if male else 1.0)
    age_exp = 1.0 + 0.004 * (row.age - 68)  # periosteal expansion with age

    def jit(sd):
        return float(rng.normal(0, sd))

    def draw(e: Effect) -> float:
        lam = 0.0 if m.loadings_off() else e.loading
        z = lam * h + np.sqrt(1.0 - lam * lam) * float(rng.normal())
        return float(e.base * np.exp(e.cv * z) * (1.0 + e.male * male))

    geometry = dict(
        rotation_deg=jit(6.0),
        tibia_radius_mm=15.0 * size * age_exp * (1 + jit(0.05)),
        tibia_aspect=1.12 + jit(0.05),
        tibia_ct_th_variation=float(np.clip(0.35 + jit(0.06), 0.1, 0.6)),
        fibula_radius_mm=6.3 * size * (1 + jit(0.06)),
        fibula_gap_mm=float(np.clip(2.2 + jit(0.6), 0.8, 4.0)),
        fibula_angle_deg=38.0 + jit(6.0),
    )
    tb_n = draw(m.tb_n) / m.tb_n.base
    tb_th = draw(m.tb_th)
    ct_th = draw(m.ct_th)
    spacing = float(np.clip(1.0 / (m.tb_n.base * tb_n), 0.45, 1.6))
    bvtv = float(np.clip(m.tb_bvtv_base * tb_n * tb_th, 0.05, 0.42))
    ct_po = float(np.clip(draw(m.ct_po), 0.005, 0.3))
    pore_corr = float(np.clip(m.pore_corr_mm * (ct_po / m.ct_po.base) ** m.pore_size_exponent, 0.08, 0.35))
    zr = m.endo_roughness_per_sd * (0.0 if m.loadings_off() else h)
    coupling = 0.0 if m.loadings_off() else m.muscle_coupling * h
    muscle = (m.muscle_hu + m.muscle_hu_per_decade * decade + m.muscle_hu_male * male
              + m.muscle_hu_per_bmi * (row.bmi - 26.5) + m.muscle_hu_sd * (coupling + float(rng.normal())))
    fat_inf = m.fat_infiltration * np.exp(
        m.fat_infiltration_per_bmi * (row.bmi - 26.5) + m.fat_infiltration_per_decade * decade
        - 0.3 * coupling + m.fat_infiltration_sd * float(rng.normal()))
    return Anatomy(
        seed=seed,
        side=str(getattr(row, "side", "left")),
        **geometry,
        tibia_ct_th_mm=float(np.clip(ct_th, 0.4, 2.4)),
        fibula_ct_th_mm=float(np.clip(ct_th * 0.9 * (1 + jit(0.1)), 0.4, 2.0)),
        ct_porosity=ct_po,
        tb_bvtv=bvtv,
        tb_spacing_mm=spacing,
        cortical_hu=draw(m.ct_mineral),
        trabecular_hu=draw(m.tb_mineral),
        marrow_hu=m.marrow_hu + m.marrow_hu_per_decade * decade + jit(15.0),
        soft_depth_scale=float(np.clip(size * (1 + 0.012 * (row.bmi - 26.5)) + jit(0.04), 0.75, 1.35)),
        subcut_fat_mm=float(np.clip(4.5 + 0.45 * (row.bmi - 26.5) + (1.2 if not male else -0.8) + jit(0.8), 1.2, 14.0)),
        muscle_hu=float(muscle),
        fat_infiltration=float(np.clip(fat_inf, 0.01, 0.3)),
        tendon_hu=330.0 + jit(25.0),
        fat_hu=-330.0 + jit(15.0),
        cast_gap_mm=float(np.clip(2.5 + jit(0.8), 0.8, 5.0)),
        motion=float(getattr(row, "motion", 0.0)),
        pore_corr_mm=pore_corr,
        pore_endo_weight=m.pore_endo_weight,
        pore_margin=m.pore_margin,
        tb_z_gradient=m.tb_z_gradient,
        tb_radial_gradient=m.tb_radial_gradient,
        endo_roughness=float(np.clip(m.endo_roughness * np.exp(zr), 0.05, 0.6)),
        scanner=m.scanner,
        extra={"tb_n_rel": tb_n, "tb_th_rel": tb_th / (1.0 + m.tb_th.male * male)},
    )


def cohort_phantoms(n: int, sizes=(768,), slices: int = 2, seed: int = 0,
                    association: str = "published", scanner: str = "legacy"):
    """Render ``n`` subjects of the cohort preset ``association`` with images ``scanner``, one
    at a time (a generator of :class:`hrpqct.phantom.scan.Phantom`); subject ``i`` on a grid of
    ``sizes[i % len(sizes)]`` px and ``slices`` slices."""
    from .render import Grid
    from .scan import generate

    model = CohortModel.preset(association, scanner=scanner)
    for i, row in enumerate(make_subjects(n, seed=seed, model=model).itertuples()):
        yield generate(anatomy_for(row, model=model),
                       Grid(size=sizes[i % len(sizes)], n_slices=slices))


def effect_table(df: pd.DataFrame, columns=None) -> pd.DataFrame:
    """Per column of a subject table: Pearson r with the T-score and the relative difference of
    the means, osteoporotic (T <= -2.5) vs normal (T >= -1) women (as :data:`TARGETS`)."""
    women = df[df["sex"] == "F"]
    normal, op = women[women["t_score_fn"] >= -1.0], women[women["t_score_fn"] <= -2.5]
    rows = []
    for c in (columns or list(TARGETS)):
        r = float(np.corrcoef(df[c].astype(float), df["t_score_fn"].astype(float))[0, 1])
        d = float(op[c].mean() / normal[c].mean() - 1.0)
        rows.append({"column": c, "r_t_score": r, "op_vs_normal": d})
    return pd.DataFrame(rows).set_index("column")


def anatomy_fields() -> list[str]:
    return [f.name for f in fields(Anatomy)]


def describe(anat: Anatomy) -> dict:
    d = asdict(anat)
    d.pop("extra", None)
    return d
