"""Published reference values and directions of the standard parameters at the distal tibia,
XtremeCT II (second-generation HR-pQCT), for docs/morphometry.md and the phantom-cohort test.

``NORMATIVE``: column -> (low, high) of the typical range of the means reported for adults aged
about 50-80 years (women and men together), rounded, and the source. These ranges are
approximate: they are stated from the reference-data literature below, not typed from its
tables, and must not be used for a diagnosis; take age- and sex-specific values (and the
centile curves) from the sources:

* W2020: Whittier DE, Burt LA, Hanley DA, Boyd SK. Sex- and site-specific reference data for
  bone microarchitecture in adults measured using second-generation HR-pQCT. J Bone Miner Res
  2020;35:2151-2158 (Calgary, XtremeCT II, standard evaluation).
* WA2022: Warden SJ, Liu Z, Fuchs RK, van Rietbergen B, Moe SM. Reference data and calculators
  for second-generation HR-pQCT measures of the radius and tibia at anatomically standardized
  regions in white adults. Osteoporos Int 2022;33:791-806 (the paper's reference [45]).
* G2020: Whittier DE, Boyd SK, Burghardt AJ et al. Guidelines for the assessment of bone density
  and microarchitecture in vivo using HR-pQCT. Osteoporos Int 2020;31:1607-1627 (definitions,
  standard evaluation, scanner-generation differences).

``DIRECTION``: +1 when the parameter is higher in healthier bone (controls vs osteoporosis or
fracture, younger vs older adults), -1 when lower, as reported across the HR-pQCT literature
(G2020 and the reference-data papers: lower densities, thinner and more porous cortices, fewer
and more widely separated trabeculae with age and in osteoporosis). Parameters of bone size
(Tt.Ar, perimeters) have no consistent direction and are left out.
"""

from __future__ import annotations

__all__ = ["NORMATIVE", "DIRECTION", "SOURCES"]

SOURCES = {
    "W2020": "Whittier et al. 2020, J Bone Miner Res 35:2151 (XtremeCT II reference data)",
    "WA2022": "Warden et al. 2022, Osteoporos Int 33:791 (XtremeCT II reference data)",
    "G2020": "Whittier et al. 2020, Osteoporos Int 31:1607 (guideline)",
}

NORMATIVE: dict[str, tuple[float, float, str]] = {
    "Tt.Ar_mm2": (600.0, 900.0, "W2020, WA2022"),
    "Ct.Ar_mm2": (100.0, 170.0, "W2020, WA2022"),
    "Tb.Ar_mm2": (450.0, 750.0, "W2020, WA2022"),
    "Tt.BMD_mgHA_ccm": (220.0, 330.0, "W2020, WA2022"),
    "Ct.BMD_mgHA_ccm": (780.0, 920.0, "W2020, WA2022"),
    "Tb.BMD_mgHA_ccm": (130.0, 200.0, "W2020, WA2022"),
    "Ct.Th_mm": (1.0, 1.6, "W2020, WA2022"),
    "Ct.Po_pct": (2.0, 8.0, "W2020, WA2022"),
    "Tb.BV_TV": (0.20, 0.32, "W2020, WA2022"),
    "Tb.N_1_mm": (1.1, 1.5, "W2020, WA2022"),
    "Tb.Th_mm": (0.22, 0.30, "W2020, WA2022"),
    "Tb.Sp_mm": (0.65, 0.95, "W2020, WA2022"),
}

DIRECTION: dict[str, int] = {
    "Tt.BMD_mgHA_ccm": +1, "Ct.BMD_mgHA_ccm": +1, "Tb.BMD_mgHA_ccm": +1,
    "Ct.Ar_mm2": +1, "Ct.Th_mm": +1, "Ct.Th.annular_mm": +1, "Ct.Po_pct": -1,
    "Tb.BV_TV": +1, "Tb.N_1_mm": +1, "Tb.Th_mm": +1, "Tb.Sp_mm": -1,
}
