"""The published-reference module keeps its records honest: every range says whether it was read,
a range counts as verified only with a source that says where it was read, and the one XtremeCT II
distal-tibia table read (GA2022, astronauts before spaceflight) is a comparison that sets no range.
Fast: no phantom is rendered."""

from __future__ import annotations

import math

from hrpqct.morphometry import reference as ref


def test_public_names_and_types():
    for name in ref.__all__:
        assert hasattr(ref, name), name
    assert isinstance(ref.STATUS, str) and ref.STATUS
    for column, (lo, hi, src) in ref.NORMATIVE.items():
        assert math.isfinite(lo) and math.isfinite(hi) and lo < hi, column
        assert isinstance(src, str) and src, column
    assert set(ref.VERIFIED) == set(ref.NORMATIVE)
    assert all(d in (-1, 1) for d in ref.DIRECTION.values())


def test_a_verified_range_names_where_it_was_read_and_an_unverified_one_says_so():
    for column, (ok, why) in ref.VERIFIED.items():
        src = ref.NORMATIVE[column][2]
        if ok:
            assert "unverified" not in src, column
            assert "http" in why or "doi" in why.lower(), column
        else:
            assert "unverified" in src and "unverified" in why, column
    assert ref.STATUS.startswith("unverified") == (not any(ok for ok, _ in ref.VERIFIED.values()))


def test_the_comparison_table_is_as_read_and_sets_no_range():
    ga = ref.GA2022_TIBIA_PREFLIGHT
    assert set(ga) <= set(ref.NORMATIVE)
    finding = next(f for f in ref.FINDINGS if f.key == "GA2022")
    for column, legs in ga.items():
        assert set(legs) == {"dominant", "non-dominant"}, column
        for leg, (med, a, b) in legs.items():
            assert a <= med <= b, (column, leg)
            shown = med * 100 if column == "Tb.BV_TV" else med
            assert f"{shown:.2f}".rstrip("0").rstrip(".") in finding.statement, (column, leg)
        # the comparison is named in the reason, never used as the source of the range
        assert "GA2022" in ref.VERIFIED[column][1]
        assert "GA2022" not in ref.NORMATIVE[column][2]
    assert "GA2022" in ref.SOURCES and "GA2022b" in ref.SOURCES
    assert "XtremeCT II" in finding.scanner_site and "distal tibia" in finding.scanner_site
