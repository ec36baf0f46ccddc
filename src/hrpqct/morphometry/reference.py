"""Published reference values and directions of the standard parameters at the distal tibia,
XtremeCT II (second-generation HR-pQCT), for docs/morphometry.md, docs/phantom.md and the
phantom-cohort tests.

**Status of the numbers (checked 4 December 2026).** ``NORMATIVE`` holds, per parameter, a range
(low, high) of the typical adult means and its source key. **None of these ranges is verified
against a published table.** They were first written from memory of W2020 and WA2022 (below). A
search of the stored public material available to the project (abstracts and full texts of
PubMed Central, publishers' and indexing pages) found:

* WA2022: the abstract only (research.tue.nl, ouci.dntb.gov.ua): 867 females and 317 males,
  White adults aged 18-80 from the US Midwest, XtremeCT II, distal tibia at 7.3 % of tibial
  length (not the fixed 22.5 mm offset), LMS centile curves and Excel calculators. The abstract
  gives no means; the tables and calculators were not available, so no value is verified.
* W2020 (JBMR, Whittier, Burt, Hanley, Boyd): not found in the stored material at all; the
  journal, volume and pages below are as previously written and are themselves unverified.

``VERIFIED`` therefore says, per parameter, ``False`` with the reason; ``STATUS`` is the one-line
statement the tables print. Take age- and sex-specific values and centiles from the sources
themselves before comparing a patient, and never use these ranges for a diagnosis.

The only numbers read from a source (their abstracts) are in ``FINDINGS``: effect sizes that the
phantom cohort model (docs/phantom.md) uses as targets. They are **not** XtremeCT II distal-tibia
normative values: most are first-generation (82 um) or radius data, and each says so.

Sources (keys):

* W2020: Whittier DE, Burt LA, Hanley DA, Boyd SK. Sex- and site-specific reference data for
  bone microarchitecture in adults measured using second-generation HR-pQCT. J Bone Miner Res
  2020 (volume/pages unverified). Not found in the stored material.
* WA2022: Warden SJ, Liu Z, Fuchs RK, van Rietbergen B, Moe SM. Reference data and calculators
  for second-generation HR-pQCT measures of the radius and tibia at anatomically standardized
  regions in White adults. Osteoporos Int 2022;33:791-806, doi:10.1007/s00198-021-06164-2 (the
  paper's reference [45]). Abstract read; values not.
* G2020: Whittier DE, Boyd SK, Burghardt AJ et al. Guidelines for the assessment of bone density
  and microarchitecture in vivo using HR-pQCT. Osteoporos Int 2020;31:1607-1627 (the paper's
  reference [38]; definitions and standard evaluation).

``DIRECTION``: +1 when the parameter is higher in healthier bone, -1 when lower. These directions
are supported by the abstracts in ``FINDINGS`` (lower BV/TV and Tb.N, higher Tb.Sp with age in
women; higher cortical porosity and lower BV/TV in fracture cases) and are stated in G2020.
Parameters of bone size (Tt.Ar, perimeters) have no consistent direction and are left out.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["NORMATIVE", "DIRECTION", "SOURCES", "VERIFIED", "STATUS", "FINDINGS", "Finding"]

SOURCES = {
    "W2020": "Whittier, Burt, Hanley, Boyd 2020, J Bone Miner Res (XtremeCT II reference data; "
             "not found, unverified)",
    "WA2022": "Warden, Liu, Fuchs, van Rietbergen, Moe 2022, Osteoporos Int 33:791-806 "
              "(XtremeCT II reference data; abstract read, values unverified)",
    "G2020": "Whittier et al. 2020, Osteoporos Int 31:1607-1627 (guideline)",
}

STATUS = ("unverified: recalled ranges, not read from the tables of W2020/WA2022 "
          "(see hrpqct.morphometry.reference)")

NORMATIVE: dict[str, tuple[float, float, str]] = {
    "Tt.Ar_mm2": (600.0, 900.0, "W2020, WA2022 (unverified)"),
    "Ct.Ar_mm2": (100.0, 170.0, "W2020, WA2022 (unverified)"),
    "Tb.Ar_mm2": (450.0, 750.0, "W2020, WA2022 (unverified)"),
    "Tt.BMD_mgHA_ccm": (220.0, 330.0, "W2020, WA2022 (unverified)"),
    "Ct.BMD_mgHA_ccm": (780.0, 920.0, "W2020, WA2022 (unverified)"),
    "Tb.BMD_mgHA_ccm": (130.0, 200.0, "W2020, WA2022 (unverified)"),
    "Ct.Th_mm": (1.0, 1.6, "W2020, WA2022 (unverified)"),
    "Ct.Po_pct": (2.0, 8.0, "W2020, WA2022 (unverified)"),
    "Tb.BV_TV": (0.20, 0.32, "W2020, WA2022 (unverified)"),
    "Tb.N_1_mm": (1.1, 1.5, "W2020, WA2022 (unverified)"),
    "Tb.Th_mm": (0.22, 0.30, "W2020, WA2022 (unverified)"),
    "Tb.Sp_mm": (0.65, 0.95, "W2020, WA2022 (unverified)"),
}

VERIFIED: dict[str, tuple[bool, str]] = {
    c: (False, "no table of W2020 or WA2022 was available; range recalled, not read")
    for c in NORMATIVE
}

DIRECTION: dict[str, int] = {
    "Tt.BMD_mgHA_ccm": +1, "Ct.BMD_mgHA_ccm": +1, "Tb.BMD_mgHA_ccm": +1,
    "Ct.Ar_mm2": +1, "Ct.Th_mm": +1, "Ct.Th.annular_mm": +1, "Ct.Po_pct": -1,
    "Tb.BV_TV": +1, "Tb.N_1_mm": +1, "Tb.Th_mm": +1, "Tb.Sp_mm": -1,
}


@dataclass(frozen=True)
class Finding:
    """One published effect read from a source's abstract (``where`` says which page)."""
    key: str
    source: str
    where: str
    scanner_site: str
    statement: str


FINDINGS: tuple[Finding, ...] = (
    Finding("K2006", "Khosla S, Riggs BL, Atkinson EJ et al. Effects of sex and age on bone "
            "microstructure at the ultradistal radius. J Bone Miner Res 2006;21:124-131",
            "abstract, PMC1352156", "XtremeCT I (89 um), ultradistal radius, 324 women and "
            "278 men aged 21-97",
            "between ages 20 and 90: BV/TV -27 % (women) and -26 % (men); women Tb.N -13 % and "
            "Tb.Sp +24 %; men Tb.N +7 %, Tb.Sp -2 %; young men vs young women BV/TV +26 %, "
            "Tb.Th +28 %, Tb.N and Tb.Sp similar"),
    Finding("B2014", "Bala Y, Zebaze R, Ghasem-Zadeh A et al. Cortical porosity identifies women "
            "with osteopenia at increased risk for forearm fractures. J Bone Miner Res "
            "2014;29:1356-1362", "abstract, PMC4156822",
            "XtremeCT I, ultradistal radius, 68 women with forearm fracture vs 70 controls",
            "fracture cases: cortical porosity +0.4 SD, trabecular BV/TV -0.6 SD"),
    Finding("N2012", "Nicks KM, Amin S, Atkinson EJ et al. Relationship of age to bone "
            "microstructure independent of areal bone mineral density. J Bone Miner Res "
            "(p. 637; volume and year unverified)", "abstract, Europe PMC page",
            "XtremeCT I, ultradistal radius, women and men matched for aBMD",
            "older vs younger women at equal aBMD: cortical porosity +91 %, pore volume +77 %, "
            "pore diameter +9 %; no difference in trabecular microstructure"),
    Finding("W2025", "Warden SJ, Liu Z, Fuchs RK et al. Reference data and predictors of "
            "HR-pQCT-derived muscle density and its prediction of physical performance. "
            "J Cachexia Sarcopenia Muscle 2025;16(4):e70029 (the paper's reference [9])",
            "abstract, PubMed 40735822", "XtremeCT II, 30 % tibia (leg), 1662 adults aged 18-80",
            "muscle density predicted by whole-body percent fat, sex and age; leg MusD 0.60 "
            "mgHA/ccm (2.6 %) lower in females and 0.75 mgHA/ccm (3.3 %) lower per decade of age "
            "(the copy read breaks off at 'independent of whole-bod[y ...]'); bone is not "
            "named as a predictor in the part read"),
    Finding("WO2019", "Systematic review and meta-analysis of HR-pQCT normative data in "
            "children, adolescents and young adults (up to 25 years)", "abstract, PMC6910691",
            "mostly XtremeCT I, tibia at 22.5 mm, ages 15-22.6",
            "tibia: BV/TV 0.18, Tb.N 2.02 /mm, Tb.Sp 0.40 mm, Ct.Th 1.32 mm, Ct.Po 3.15 % "
            "(1.1-5.2), Tt.Ar 693 mm2, Tt.vBMD 344, Tb.vBMD 213 (193-233), Ct.vBMD 894 "
            "(858-931) mgHA/ccm (first-generation Tb.N is not comparable with XtremeCT II)"),
    Finding("BU2010", "Burghardt AJ, Kazakia GJ, Ramachandran S, Link TM, Majumdar S. Age- and "
            "gender-related differences in the geometric properties and biomechanical "
            "significance of intracortical porosity in the distal radius and tibia. J Bone "
            "Miner Res 2010;25:983-993", "abstract (moam.info copy)",
            "XtremeCT I, radius and tibia, 151 subjects aged 20-78",
            "Ct.Po = pore volume / (pore + cortical bone volume) (the definition used here); "
            "values not in the part of the abstract read"),
)
