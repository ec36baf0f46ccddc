"""Synthetic cohorts: subjects with a latent bone-and-muscle health score, clinical covariates,
DXA T-scores, osteoporosis labels, and the anatomy from which their scans are rendered.

The generative model (every coefficient is a named default below, chosen to give the prevalence
and correlations reported for post-menopausal osteoporosis cohorts, not fitted to any data):

* sex (70 % women), age, height and BMI are drawn first; height shrinks after 60;
* a latent health score ``h`` (standard normal in the cohort) depends on age (-), male sex (+),
  BMI (+) and an individual part; it drives cortical thickness (+), cortical porosity (-),
  trabecular BV/TV (+), tissue mineralisation (+), muscle density (+) and intramuscular fat (-);
* femoral-neck T-score = a + b h + noise; osteoporosis: T <= -2.5; three classes:
  normal T >= -1, osteopenia -2.5 < T < -1, osteoporosis T <= -2.5 (hrpqct.method.CLASSIFICATION);
* other clinical variables (lumbar-spine and total-hip T-scores, grip strength, gait speed, chair
  rise time, vitamin D, bone turnover markers, prior fracture, glucocorticoids, smoking,
  parental hip fracture, falls) are correlated with ``h``, age and sex as in clinical data;
* the standard HR-pQCT parameters of each subject (Ct.Th, Ct.Po, Tb.BV/TV, Tt.Ar...) are those
  of its anatomy, so that "non-radiomics" models have the same kind of inputs as the paper's.

Everything is seeded: the same ``seed`` gives the same table and the same scans, bit for bit.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import numpy as np
import pandas as pd

from ..method import CLASSIFICATION
from .anatomy import Anatomy

__all__ = ["CohortModel", "make_subjects", "anatomy_for", "t_score_classes", "SUBJECT_COLUMNS"]


@dataclass(frozen=True)
class CohortModel:
    """Coefficients of the generative cohort model (see the module docstring)."""

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


SUBJECT_COLUMNS = (
    "subject_id", "seed", "sex", "age", "height_cm", "weight_kg", "bmi", "health",
    "t_score_fn", "bmd_fn_g_cm2", "t_score_ls", "t_score_th", "osteoporosis", "bmd_class",
)


def t_score_classes(t: np.ndarray) -> np.ndarray:
    """0 normal (T >= -1), 1 osteopenia (-2.5 < T < -1), 2 osteoporosis (T <= -2.5)."""
    t = np.asarray(t, dtype=float)
    c = CLASSIFICATION
    return np.where(t <= c.osteoporosis_t_score, 2, np.where(t < c.osteopenia_t_score, 1, 0))


def make_subjects(n: int, seed: int = 0, model: CohortModel = CohortModel()) -> pd.DataFrame:
    """The subject table of an ``n``-subject cohort (one row per subject)."""
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
        "t_score_fn": t_fn.round(2),
        "bmd_fn_g_cm2": (0.858 + 0.12 * t_fn).round(3),  # NHANES III young-female reference
        "t_score_ls": t_ls.round(2),
        "t_score_th": t_th.round(2),
        "osteoporosis": (cls == 2).astype(int),
        "bmd_class": pd.Categorical.from_codes(cls, ["normal", "osteopenia", "osteoporosis"]),
    })
    # functional, biological and history variables
    df["grip_strength_kg"] = (np.where(male, 36.0, 22.5) + 3.0 * h - 0.25 * (age - 68)
                              + rng.normal(0, 4.0, n)).clip(5).round(1)
    df["gait_speed_m_s"] = (1.05 + 0.08 * h - 0.012 * (age - 68) + rng.normal(0, 0.15, n)).clip(0.3).round(2)
    df["chair_rise_s"] = (11.5 - 1.0 * h + 0.12 * (age - 68) + rng.normal(0, 2.0, n)).clip(5).round(1)
    df["vitamin_d_ng_ml"] = (26 + 3.0 * h + rng.normal(0, 9, n)).clip(4).round(1)
    df["ctx_ng_ml"] = np.exp(np.log(0.42) - 0.18 * h + rng.normal(0, 0.3, n)).round(3)
    df["p1np_ng_ml"] = np.exp(np.log(48) - 0.1 * h + rng.normal(0, 0.35, n)).round(1)

    def bern(logit):
        return (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(int)

    df["prior_fracture"] = bern(-1.4 - 0.7 * h + 0.03 * (age - 68))
    df["parental_hip_fracture"] = bern(-2.0 - 0.3 * h)
    df["glucocorticoids"] = bern(-2.6 - 0.4 * h)
    df["current_smoker"] = bern(-1.9 - 0.25 * h)
    df["falls_last_year"] = bern(-1.2 - 0.3 * h + 0.04 * (age - 68))
    df["motion"] = np.where(rng.uniform(size=n) < m.motion_fraction, rng.uniform(0.2, 0.8, n), 0.0).round(2)
    df["side"] = np.where(rng.uniform(size=n) < 0.8, "left", "right")
    # the anatomy each scan is rendered from, and its standard HR-pQCT parameters
    anat = [anatomy_for(row, rng_seed=int(row.seed)) for row in df.itertuples()]
    for f in ("tibia_radius_mm", "tibia_ct_th_mm", "ct_porosity", "tb_bvtv", "tb_spacing_mm",
              "fibula_radius_mm", "fibula_ct_th_mm", "cortical_hu", "muscle_hu", "fat_infiltration",
              "subcut_fat_mm"):
        df[f"anat_{f}"] = [getattr(a, f) for a in anat]
    df["hrpqct_tt_ar_mm2"] = (np.pi * df["anat_tibia_radius_mm"] ** 2).round(1)
    return df


def anatomy_for(row, rng_seed: int | None = None) -> Anatomy:
    """The :class:`Anatomy` of one subject row (attributes: seed, sex, age, height_cm, bmi,
    health, motion, side)."""
    seed = int(rng_seed if rng_seed is not None else row.seed)
    rng = np.random.default_rng([seed, 77])
    h = float(row.health)
    male = row.sex == "M"
    size = (row.height_cm / 165.0) * (1.08 if male else 1.0)
    age_exp = 1.0 + 0.004 * (row.age - 68)  # periosteal expansion with age

    def jit(sd):
        return float(rng.normal(0, sd))

    return Anatomy(
        seed=seed,
        side=str(getattr(row, "side", "left")),
        rotation_deg=jit(6.0),
        tibia_radius_mm=15.0 * size * age_exp * (1 + jit(0.05)),
        tibia_aspect=1.12 + jit(0.05),
        tibia_ct_th_mm=float(np.clip(1.15 * (1 + 0.17 * h + jit(0.12)), 0.45, 2.2)),
        tibia_ct_th_variation=float(np.clip(0.35 + jit(0.06), 0.1, 0.6)),
        fibula_radius_mm=6.3 * size * (1 + jit(0.06)),
        fibula_ct_th_mm=float(np.clip(1.05 * (1 + 0.12 * h + jit(0.12)), 0.45, 1.9)),
        fibula_gap_mm=float(np.clip(2.2 + jit(0.6), 0.8, 4.0)),
        fibula_angle_deg=38.0 + jit(6.0),
        ct_porosity=float(np.clip(0.05 * np.exp(-0.45 * h + jit(0.3)), 0.01, 0.25)),
        tb_bvtv=float(np.clip(0.22 * (1 + 0.2 * h + jit(0.13)), 0.06, 0.4)),
        tb_spacing_mm=float(np.clip(1.0 * (1 - 0.08 * h + jit(0.05)), 0.7, 1.5)),
        cortical_hu=2650.0 + 90.0 * h + jit(40.0),
        trabecular_hu=2350.0 + 70.0 * h + jit(40.0),
        marrow_hu=-150.0 - 25.0 * max(0.0, (row.age - 60) / 10) + jit(15.0),
        soft_depth_scale=float(np.clip(size * (1 + 0.012 * (row.bmi - 26.5)) + jit(0.04), 0.75, 1.35)),
        subcut_fat_mm=float(np.clip(4.5 + 0.45 * (row.bmi - 26.5) + (1.2 if not male else -0.8) + jit(0.8), 1.2, 14.0)),
        muscle_hu=125.0 + 12.0 * h - 0.5 * (row.age - 68) + jit(12.0),
        fat_infiltration=float(np.clip(0.06 * np.exp(-0.35 * h + 0.02 * (row.age - 68) + jit(0.1)), 0.01, 0.3)),
        tendon_hu=330.0 + jit(25.0),
        fat_hu=-330.0 + jit(15.0),
        cast_gap_mm=float(np.clip(2.5 + jit(0.8), 0.8, 5.0)),
        motion=float(getattr(row, "motion", 0.0)),
    )


def anatomy_fields() -> list[str]:
    return [f.name for f in fields(Anatomy)]


def describe(anat: Anatomy) -> dict:
    d = asdict(anat)
    d.pop("extra", None)
    return d
