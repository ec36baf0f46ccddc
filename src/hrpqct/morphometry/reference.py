"""Published reference values and directions of the standard parameters at the distal tibia,
XtremeCT II (second-generation HR-pQCT), for docs/morphometry.md, docs/phantom.md and the
phantom-cohort tests.

**Status of the numbers (checked again 4 December 2026).** ``NORMATIVE`` holds, per parameter, a
range (low, high) of the typical adult means and its source key. **None of these ranges is
verified against a published normative table.** They were first written from memory of W2020
and WA2022 (below) and are unchanged: no sex- and age-specific XtremeCT II distal-tibia table
could be read. Two searches of the stored public material available to the project (abstracts
and full texts of PubMed Central, publishers' and indexing pages, GitHub code and issues; the
second on 4 December 2026 with about 50 queries: author names, titles, "XtremeCT II" / "XCT2" /
"second-generation" with tibia, Tb.vBMD, Ct.Po, mgHA/cm3, "reference data", "normative",
"centile", table-shaped queries, and control groups of clinical studies) found:

* WA2022: the abstract only (research.tue.nl, ouci.dntb.gov.ua): 867 females and 317 males,
  White adults aged 18-80 from the US Midwest, XtremeCT II, distal tibia at 7.3 % of tibial
  length (not the fixed 22.5 mm offset), LMS centile curves and Excel calculators. The abstract
  gives no means; the tables and calculators were not available.
* W2020 (JBMR, Whittier, Burt, Hanley, Boyd): not found in the stored material at all, not even
  its abstract; the journal volume and pages are as previously written and unverified.
* Other candidates, abstract or title page only, no distal-tibia values in the part read: the
  Chinese Vertebral Osteoporosis Study (Qi et al., Front Endocrinol 2022;13:891413; obese vs
  normal-weight postmenopausal women), the Hong Kong Normal Reference Study ("Normative
  Standards for HRpQCT Parameters in Chinese Men and Women", aims.cuhk.edu.hk; scanner not
  stated in the part read), Alvarenga et al. 2017 (Osteoporos Int 28:1335, Brazilian women;
  scanner not stated in the part read), the Swiss normative-database protocol NCT03219099
  (XtremeCT II; protocol text, no results). A normative table of the Chinese mainland (JBMR
  2020) was looked for and not found.
* One XtremeCT II distal-tibia table **was** read, of a small healthy group that is *not* a
  reference population: GA2022 (below), 17 astronauts before spaceflight, median (IQR) of both
  legs. It is kept as ``GA2022_TIBIA_PREFLIGHT`` and in ``FINDINGS`` for comparison only; it
  sets no range. Against it the recalled ranges hold for Tt.BMD, Tb.BMD, BV/TV, Tb.N, Tb.Th,
  Tb.Sp, Ct.Th and Ct.Po, and **not for Ct.BMD**: the astronauts' median Ct.BMD, 946 (dominant)
  and 924 (non-dominant) mg/cm3, is above the recalled 780-920. (A fit group aged about 47, 14
  of 17 men, is expected to have a denser cortex than the women aged 50-80 the ranges aim at,
  so this does not show the range wrong, only unconfirmed.) Tt.Ar, Ct.Ar and Tb.Ar are not in
  that table.

``VERIFIED`` therefore says, per parameter, ``False`` with the reason (and the GA2022 value
where there is one); ``STATUS`` is the one-line statement the tables print. Take age- and
sex-specific values and centiles from the sources themselves before comparing a patient, and
never use these ranges for a diagnosis.

The other numbers read from a source (their abstracts) are in ``FINDINGS``: effect sizes that
the phantom cohort model (docs/phantom.md) uses as targets. They are **not** XtremeCT II
distal-tibia normative values: most are first-generation (82 um) or radius data, and each says so.

Sources (keys):

* W2020: Whittier DE, Burt LA, Hanley DA, Boyd SK. Sex- and site-specific reference data for
  bone microarchitecture in adults measured using second-generation HR-pQCT. J Bone Miner Res
  2020 (volume/pages unverified). Not found in the stored material.
* WA2022: Warden SJ, Liu Z, Fuchs RK, van Rietbergen B, Moe SM. Reference data and calculators
  for second-generation HR-pQCT measures of the radius and tibia at anatomically standardized
  regions in White adults. Osteoporos Int 2022;33:791-806, doi:10.1007/s00198-021-06164-2 (the
  paper's reference [45]). Abstract read; values not.
* GA2022: Gabel L, Liphardt AM, Hulme PA, Heer M, Zwart SR, Sibonga JD, Smith SM, Boyd SK.
  Pre-flight exercise and bone metabolism predict unloading-induced bone loss due to
  spaceflight. Br J Sports Med 2022;56(4):196-203, doi:10.1136/bjsports-2020-103602 (open
  access; bjsm.bmj.com/content/56/4/196). Its table "HR-pQCT bone variables at the dominant and
  non-dominant distal tibia and radius, before and after spaceflight" was read at
  https://bjsm-bmj-com.bibliotheek.ehb.be/highwire/markup/126023/expansion (a library proxy of
  the journal's table view). The scanner is not named in the part read; the companion paper on
  the same 17 astronauts (GA2022b) names a 61 um second-generation HR-pQCT, i.e. XtremeCT II.
* GA2022b: Gabel L et al. (same authors). Incomplete recovery of bone strength and trabecular
  microarchitecture at the distal tibia 1 year after return from long duration spaceflight.
  Sci Rep 2022;12:9446, doi:10.1038/s41598-022-13461-1 (abstract read at
  referencecitationanalysis.com: 17 astronauts, 14 males, mean 47 years, HR-pQCT 61 um;
  introduction read at nature.com: "the new second-generation scanner (61 um)").
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

__all__ = ["NORMATIVE", "DIRECTION", "SOURCES", "VERIFIED", "STATUS", "FINDINGS", "Finding",
           "GA2022_TIBIA_PREFLIGHT"]

SOURCES = {
    "W2020": "Whittier, Burt, Hanley, Boyd 2020, J Bone Miner Res (XtremeCT II reference data; "
             "not found, unverified)",
    "WA2022": "Warden, Liu, Fuchs, van Rietbergen, Moe 2022, Osteoporos Int 33:791-806 "
              "(XtremeCT II reference data; abstract read, values unverified)",
    "GA2022": "Gabel, Liphardt, Hulme, Heer, Zwart, Sibonga, Smith, Boyd 2022, Br J Sports Med "
              "56(4):196-203, doi:10.1136/bjsports-2020-103602 (table of 17 astronauts' distal "
              "tibia before spaceflight read; a comparison group, not reference data)",
    "GA2022b": "Gabel et al. 2022, Sci Rep 12:9446, doi:10.1038/s41598-022-13461-1 (same 17 "
               "astronauts; abstract and introduction read: 61 um second-generation HR-pQCT)",
    "G2020": "Whittier et al. 2020, Osteoporos Int 31:1607-1627 (guideline)",
}

STATUS = ("unverified: recalled ranges, not read from the tables of W2020/WA2022 (searched again "
          "2026-12-04, no normative table found; one XtremeCT II tibia group read for "
          "comparison only, GA2022; see hrpqct.morphometry.reference)")

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

#: GA2022, table "HR-pQCT bone variables at the dominant and non-dominant distal tibia and radius,
#: before and after spaceflight", rows "Tibia", columns "Pre-flight": per parameter and leg the
#: median and the two bracketed values as printed, (median, lower, upper). The bracket is most
#: likely the interquartile range; the footnote that says so was not in the part read. Densities
#: are printed as mg/cm3; BV/TV and Ct.Po as %, here BV/TV is converted to a fraction (27.70 % ->
#: 0.2770). 17 astronauts (14 men, mean age 47 years per GA2022b), 61 um second-generation
#: HR-pQCT per GA2022b. A small, fit, mostly male group: for comparison only, never a reference.
GA2022_TIBIA_PREFLIGHT: dict[str, dict[str, tuple[float, float, float]]] = {
    "Tt.BMD_mgHA_ccm": {"dominant": (320.1, 296.5, 357.1), "non-dominant": (324.0, 314.5, 364.1)},
    "Tb.BMD_mgHA_ccm": {"dominant": (189.9, 164.7, 213.7), "non-dominant": (183.3, 178.4, 208.4)},
    "Tb.BV_TV": {"dominant": (0.2770, 0.2465, 0.3052), "non-dominant": (0.2676, 0.2593, 0.2994)},
    "Tb.Th_mm": {"dominant": (0.269, 0.258, 0.291), "non-dominant": (0.261, 0.258, 0.278)},
    "Tb.N_1_mm": {"dominant": (1.39, 1.22, 1.47), "non-dominant": (1.38, 1.21, 1.54)},
    "Tb.Sp_mm": {"dominant": (0.68, 0.63, 0.76), "non-dominant": (0.66, 0.61, 0.76)},
    "Ct.BMD_mgHA_ccm": {"dominant": (946.1, 886.1, 954.3), "non-dominant": (924.3, 869.6, 950.6)},
    "Ct.Th_mm": {"dominant": (1.55, 1.44, 1.69), "non-dominant": (1.60, 1.48, 1.67)},
    "Ct.Po_pct": {"dominant": (2.32, 1.78, 2.93), "non-dominant": (2.67, 1.86, 3.66)},
}

_NO_TABLE = ("unverified: no sex- and age-specific table of W2020 or WA2022 (or any other "
             "XtremeCT II normative study) was available (searched 2026-12-04); range recalled, "
             "not read")


def _why(column: str) -> str:
    ga = GA2022_TIBIA_PREFLIGHT.get(column)
    if ga is None:
        return _NO_TABLE + "; not in the GA2022 comparison table"
    lo, hi, _ = NORMATIVE[column]
    parts = []
    for leg, (med, a, b) in ga.items():
        where = "inside" if lo <= med <= hi else "outside"
        parts.append(f"{leg} {med:g} ({a:g}-{b:g}), median {where} the recalled range")
    return (_NO_TABLE + "; for comparison only, GA2022 astronauts before spaceflight, median "
            "(bracket as printed): " + "; ".join(parts))


VERIFIED: dict[str, tuple[bool, str]] = {c: (False, _why(c)) for c in NORMATIVE}

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
    Finding("GA2022", "Gabel L, Liphardt AM, Hulme PA, Heer M, Zwart SR, Sibonga JD, Smith SM, "
            "Boyd SK. Pre-flight exercise and bone metabolism predict unloading-induced bone "
            "loss due to spaceflight. Br J Sports Med 2022;56(4):196-203, "
            "doi:10.1136/bjsports-2020-103602",
            "table 'HR-pQCT bone variables at the dominant and non-dominant distal tibia and "
            "radius, before and after spaceflight', read at https://bjsm-bmj-com.bibliotheek."
            "ehb.be/highwire/markup/126023/expansion; scanner from the companion paper GA2022b "
            "(Sci Rep 2022;12:9446: 61 um, second-generation)",
            "XtremeCT II (61 um, per GA2022b), distal tibia and radius, 17 astronauts (14 men, "
            "mean age 47 years) before and after 3.5-7 month ISS missions",
            "distal tibia before flight, dominant / non-dominant leg, median (bracket as "
            "printed): Tt.vBMD 320.1 (296.5, 357.1) / 324.0 (314.5, 364.1) mg/cm3; Tb.vBMD "
            "189.9 (164.7, 213.7) / 183.3 (178.4, 208.4); Tb.BV/TV 27.70 (24.65, 30.52) / 26.76 "
            "(25.93, 29.94) %; Tb.Th 0.269 (0.258, 0.291) / 0.261 (0.258, 0.278) mm; Tb.N 1.39 "
            "(1.22, 1.47) / 1.38 (1.21, 1.54) /mm; Tb.Sp 0.68 (0.63, 0.76) / 0.66 (0.61, 0.76) "
            "mm; Ct.vBMD 946.1 (886.1, 954.3) / 924.3 (869.6, 950.6) mg/cm3; Ct.Th 1.55 (1.44, "
            "1.69) / 1.60 (1.48, 1.67) mm; Ct.Po 2.32 (1.78, 2.93) / 2.67 (1.86, 3.66) %; "
            "F.Load 10 643.5 / 10 485.0 N. A fit, mostly male group aged about 47: a "
            "comparison, not normative data"),
)
