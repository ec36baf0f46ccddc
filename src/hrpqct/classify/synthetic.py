"""Synthetic radiomics tables for tests and benchmarks of the classification study.

Running the real pipeline (phantom -> segmentation -> radiomics) for a cohort of hundreds of
patients takes hours, so the tests and ``bench/bench_classify.py`` use this generator instead. It
does **not** render images: it writes tables with exactly the layout that ``hrpqct cohort``
writes (slice-level rows ``subject_id, scan_id, slice, region, reason, measures, features`` with
PyRadiomics feature names of the paper preset), whose values are driven by the subjects' latent
health score ``h`` of :func:`hrpqct.phantom.cohort.make_subjects` (the same score that drives the
T-score and so the labels). The demo model is built from the real pipeline instead
(``scripts/build_demo_classifier.py``).

Generative model of feature ``j`` of region ``r`` on slice ``s`` of subject ``i``::

    z = a_rj * h_i + b_j * u_ij + c_j * e_ijs          (u: patient effect, e: slice noise, N(0,1))
    value = loc_j + scale_j * g_j(z + small independent noise)

* a fraction ``informative`` of the features carries the signal, with loading
  ``signal[r]`` (soft tissue strongest, fibula weakest, as in the paper's Table II);
  the rest has ``a = 0``: pure patient and slice noise;
* features come in blocks of ``block`` near-copies (Pearson r ~ 0.97), so the correlation filter
  has work to do;
* a fraction ``skewed`` is log-normal (``g = exp``): after min-max scaling most values sit near 0,
  so the variance filter (0.02) removes many of them, as it removes about half of the real ones;
* ``absent`` of the fibula slices have the region "absent" (``reason`` set, features NaN), as on
  real slices where a region is missing.

With ``health=False`` the subjects' health is not used (every ``a = 0``): a cohort without signal.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["SIGNAL", "synthetic_cohort_tables", "synthetic_region_matrix", "feature_subset"]

SIGNAL = {"TC": 0.55, "TT": 0.55, "FC": 0.3, "FT": 0.3, "MT": 0.8, "AT": 0.7}
_MEASURES = {"n_pixels": 0, "area_mm2": 0, "volume_mm3": 0, "mean_HU": 0, "sd_HU": 0,
             "mean_mgHA_ccm": 0}


def feature_subset(n_features: int) -> list[str]:
    """``n_features`` names of the paper preset, spread over image types and feature classes."""
    from ..radiomics.presets import load_preset

    names = load_preset("paper").feature_names()
    if n_features >= len(names):
        return list(names)
    idx = np.unique(np.linspace(0, len(names) - 1, n_features).round().astype(int))
    return [names[i] for i in idx]


def _feature_params(rng, n, informative, block, skewed):
    """Per-feature loadings: (informative mask, patient sd, slice sd, loc, scale, skewed mask, base)."""
    n_base = int(np.ceil(n / block))
    base = np.repeat(np.arange(n_base), block)[:n]  # which latent base each feature copies
    inf_base = rng.uniform(size=n_base) < informative
    inf_base[0] = True  # at least one informative block
    sk = rng.uniform(size=n) < skewed
    loc = rng.normal(0, 1, n) * 10.0 ** rng.uniform(-1, 3, n)
    scale = 10.0 ** rng.uniform(-2, 3, n)
    b = rng.uniform(0.3, 0.6, n_base)  # patient noise
    c = rng.uniform(0.5, 1.2, n_base)  # slice noise
    sign = np.where(rng.uniform(size=n_base) < 0.5, -1.0, 1.0)
    return inf_base, b, c, loc, scale, sk, base, sign


def synthetic_region_matrix(h: np.ndarray, n_slices: int, features: list[str], region: str,
                            seed: int = 0, signal: float | None = None, informative: float = 0.1,
                            block: int = 3, skewed: float = 0.4, dtype=np.float64) -> np.ndarray:
    """Feature matrix ``(len(h) * n_slices, len(features))`` of one region, rows patient-major
    (patient 0's slices first). See the module docstring for the model."""
    rng = np.random.default_rng([seed, sum(map(ord, region)), 4242])
    a_r = SIGNAL.get(region, 0.5) if signal is None else signal
    n, m = len(h), len(features)
    inf_base, b, c, loc, scale, sk, base, sign = _feature_params(rng, m, informative, block, skewed)
    n_base = len(inf_base)
    u = rng.standard_normal((n, n_base))
    a = np.where(inf_base, a_r, 0.0) * sign
    out = np.empty((n * n_slices, m), dtype=dtype)
    for i in range(n):
        e = rng.standard_normal((n_slices, n_base))
        z = a * h[i] + b * u[i] + c * e  # (slices, n_base)
        zf = z[:, base] + 0.12 * rng.standard_normal((n_slices, m))
        zf = np.where(sk, np.exp(1.2 * zf), zf)
        out[i * n_slices:(i + 1) * n_slices] = loc + scale * zf
    return out


def synthetic_cohort_tables(
    n_subjects: int = 200,
    n_slices: int = 8,
    n_features: int = 60,
    regions: tuple[str, ...] = ("TC", "TT", "FC", "FT", "MT", "AT"),
    seed: int = 0,
    health: bool = True,
    absent: float = 0.03,
    informative: float = 0.1,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(subjects, slices)``: a subject table as ``hrpqct phantom-cohort`` writes it
    (:func:`hrpqct.phantom.cohort.make_subjects`) and a slice-level radiomics table as
    ``hrpqct cohort`` writes it (module docstring)."""
    from ..phantom.cohort import make_subjects

    subjects = make_subjects(n_subjects, seed=seed)
    h = subjects["health"].to_numpy() if health else np.zeros(n_subjects)
    feats = feature_subset(n_features)
    rng = np.random.default_rng([seed, 99])
    parts = []
    sid = np.repeat(subjects["subject_id"].to_numpy(), n_slices)
    z = np.tile(np.arange(n_slices), n_subjects)
    for k, r in enumerate(regions):
        X = synthetic_region_matrix(h, n_slices, feats, r, seed=seed, informative=informative)
        reason = np.full(len(X), None, dtype=object)
        if absent and r in ("FC", "FT"):
            gone = rng.uniform(size=len(X)) < absent
            reason[gone] = "absent"
            X[gone] = np.nan
        npx = rng.integers(2000, 20000, len(X))
        npx = np.where(reason == None, npx, 0)  # noqa: E711
        head = pd.DataFrame({
            "subject_id": sid, "scan_id": sid, "slice": z, "region": r, "reason": reason,
            "n_pixels": npx.astype("int64"), "area_mm2": npx * 0.0607 ** 2,
            "volume_mm3": npx * 0.0607 ** 3,
            "mean_HU": np.where(npx > 0, rng.normal(500, 50, len(X)), np.nan),
            "sd_HU": np.where(npx > 0, rng.uniform(50, 200, len(X)), np.nan),
            "mean_mgHA_ccm": np.nan,
        })
        parts.append((k, pd.concat([head, pd.DataFrame(X, columns=feats)], axis=1)))
    slices = pd.concat([p for _, p in parts], ignore_index=True)
    # hrpqct cohort's order: per scan, slice by slice, regions in order
    order = {r: i for i, r in enumerate(regions)}
    slices["_r"] = slices["region"].map(order)
    slices = slices.sort_values(["subject_id", "slice", "_r"], kind="stable").drop(columns="_r")
    return subjects, slices.reset_index(drop=True)
