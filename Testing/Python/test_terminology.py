"""Terminology: generated files never drift from regions.py, codes are DICOM's, Slicer reads it."""

from __future__ import annotations

import json

import pytest

from hrpqct import regions as R
from hrpqct import terminology as T
from hrpqct.errors import InputError

ALL = [*R.REGIONS, R.model_class("ST")]


def _load(name: str) -> dict:
    return json.loads((T.resources_dir() / name).read_text(encoding="utf-8"))


def test_committed_files_equal_generated():
    files = T.generated_files()
    assert set(files) == {"HRpQCT.term.json", "HRpQCT-AnatomicRegions.term.json"}
    for name, text in files.items():
        committed = (T.resources_dir() / name).read_text(encoding="utf-8")
        assert committed == text, f"Resources/{name} is stale: run `python -m hrpqct.terminology`"


def test_write_is_deterministic(tmp_path):
    written = T.write_terminology_files(tmp_path)
    assert sorted(p.name for p in written) == sorted(T.generated_files())
    for p in written:
        committed = (T.resources_dir() / p.name).read_text(encoding="utf-8")
        assert p.read_text(encoding="utf-8") == committed
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp files left
    with pytest.raises(InputError, match="not a folder"):
        T.write_terminology_files(tmp_path / "missing")


def test_types_names_colours_match_regions():
    term = _load(T.TERMINOLOGY_FILE)
    assert term["SegmentationCategoryTypeContextName"] == T.TERMINOLOGY_CONTEXT
    (category,) = term["SegmentationCodes"]["Category"]
    assert (category["CodingSchemeDesignator"], category["CodeValue"], category["CodeMeaning"]) == (
        "SCT", "85756007", "Tissue")
    types = {(t["CodingSchemeDesignator"], t["CodeValue"]): t for t in category["Type"]}
    assert len(types) == len(category["Type"]) == 6  # cortical, cancellous, skin, muscle, fat, soft
    first_user: dict = {}
    for r in ALL:
        assert r.category == R.REGIONS[0].category
        t = types[(r.type.scheme, r.type.value)]
        assert t["CodeMeaning"] == r.type.meaning
        first_user.setdefault((r.type.scheme, r.type.value), r)
    for key, t in types.items():
        r = first_user[key]
        assert tuple(t["recommendedDisplayRGBValue"]) == r.color
        assert t["3dSlicerLabel"] == r.type.meaning.lower()
    # label order: the first type is the one of label 1 (TC), the last the model's soft tissue
    assert category["Type"][0]["CodeMeaning"] == R.region(1).type.meaning
    assert category["Type"][-1]["CodeValue"] == R.model_class("ST").type.value


def test_anatomic_context_has_what_slicer_lacks():
    anat = _load(T.ANATOMIC_FILE)
    assert anat["AnatomicContextName"] == T.ANATOMIC_CONTEXT
    codes = [(a["CodingSchemeDesignator"], a["CodeValue"], a["CodeMeaning"])
             for a in anat["AnatomicCodes"]["AnatomicRegion"]]
    assert codes == [("SCT", "12611008", "Tibia"), ("SCT", "87342007", "Fibula")]
    assert T.anatomic_context_for(R.region("SK").anatomic_region) == T.SLICER_ANATOMIC_CONTEXT
    assert T.anatomic_context_for(R.region("TC").anatomic_region) == T.ANATOMIC_CONTEXT


# Keys allowed by dcmqi doc/schemas/segment-context-common-schema.json
# (additionalProperties: false).
_CODE = {"CodeValue", "CodeMeaning", "CodingSchemeDesignator", "cid", "contextGroupName",
         "UMLSConceptUID", "SNOMEDCTConceptID", "recommendedDisplayRGBValue"}
_CATEGORY = _CODE | {"3dSlicerLabel", "showAnatomy", "Type"}
_TYPE = _CODE | {"3dSlicerLabel", "Modifier"}


def test_files_follow_dcmqi_schemas():
    term = _load(T.TERMINOLOGY_FILE)
    assert set(term) == {"SegmentationCategoryTypeContextName", "@schema", "SegmentationCodes"}
    for cat in term["SegmentationCodes"]["Category"]:
        assert set(cat) <= _CATEGORY and isinstance(cat["showAnatomy"], bool)
        for t in cat["Type"]:
            assert set(t) <= _TYPE
            rgb = t["recommendedDisplayRGBValue"]
            assert len(rgb) == 3 and all(isinstance(c, int) and 0 <= c <= 255 for c in rgb)
    anat = _load(T.ANATOMIC_FILE)
    assert set(anat) == {"AnatomicContextName", "@schema", "AnatomicCodes"}
    for a in anat["AnatomicCodes"]["AnatomicRegion"]:
        assert set(a) <= _CODE | {"Modifier"}
    categories = term["SegmentationCodes"]["Category"]
    for item in [*categories, *categories[0]["Type"], *anat["AnatomicCodes"]["AnatomicRegion"]]:
        assert len(item["CodeValue"]) <= 16 and len(item["CodingSchemeDesignator"]) <= 16  # SH
        assert len(item["CodeMeaning"]) <= 64  # LO


def _used_codes():
    codes = {R._ANATOMY}
    for r in ALL:
        codes |= {r.category, r.type, r.anatomic_region}
    return codes


def test_standard_codes_are_dicom_ps3_16():
    """Every SCT code and meaning is DICOM's (pydicom ships PS3.16's concept tables)."""
    concepts = pytest.importorskip("pydicom.sr._concepts_dict").concepts
    cid_concepts = pytest.importorskip("pydicom.sr._cid_dict").cid_concepts
    by_code: dict[str, set[str]] = {}
    keywords: dict[str, set[str]] = {}
    for keyword, entries in concepts["SCT"].items():
        for value, (meaning, _cids) in entries.items():
            by_code.setdefault(value, set()).add(meaning)
            keywords.setdefault(value, set()).add(keyword)
    standard = [c for c in _used_codes() if c.scheme == "SCT"]
    assert len(standard) == 9
    for code in standard:
        assert code.meaning in by_code.get(code.value, set()), (code, by_code.get(code.value))
    for (scheme, value), (cid, _name) in T.DICOM_CONTEXT_GROUPS.items():
        assert keywords[value] & set(cid_concepts[int(cid)]["SCT"]), (value, cid)
    # the codes an earlier version used are not what they claimed to be
    assert "Cell" in by_code["4421005"] and "Cancellous bone" not in by_code["4421005"]
    assert "6553002" not in by_code


def test_private_codes_are_marked_private():
    private = [c for c in _used_codes() if c.scheme != "SCT"]
    assert {c.meaning for c in private} == {"Cortical bone", "Cancellous bone"}
    assert all(c.scheme.startswith("99") for c in private)  # DICOM / HL7: "99" = private scheme


def test_entry_strings_round_trip_and_identify_regions():
    for table in (R.REGIONS, R.MODEL_CLASSES):
        for r in table:
            entry = T.terminology_entry(r)
            fields = entry.split("~")
            assert len(fields) == 7 and fields[0] == T.TERMINOLOGY_CONTEXT
            assert fields[1] == r.category.slicer_string() and fields[2] == r.type.slicer_string()
            assert fields[3] == "^^" and fields[6] == "^^"
            assert fields[4] == T.anatomic_context_for(r.anatomic_region)
            assert fields[5] == r.anatomic_region.slicer_string()
            parsed = T.parse_terminology_entry(entry)
            assert parsed["type"] == r.type and parsed["type_modifier"] is None
            assert T.region_for_terminology_entry(entry, table) is r
    # same tissue, other bone: the anatomic region tells TC from FC
    assert T.region_for_terminology_entry(T.terminology_entry(R.region("FC"))).code == "FC"
    assert T.region_for_terminology_entry("garbage") is None
    with pytest.raises(InputError, match="7"):
        T.parse_terminology_entry("a~b")


# --- the real Slicer terminology logic (slicer-core) ------------------------------------------

# "Lower leg" exactly as in Slicer's Modules/Loadable/Terminologies/Resources/
# AnatomicRegionAndModifier-DICOM-Master.json (cid 4031, Common Anatomic Regions).
_SLICER_LOWER_LEG = {
    "AnatomicContextName": T.SLICER_ANATOMIC_CONTEXT,
    "@schema": T.ANATOMIC_CONTEXT_SCHEMA,
    "AnatomicCodes": {"AnatomicRegion": [{
        "CodeValue": "30021000", "cid": "4031", "UMLSConceptUID": "C1140621",
        "CodeMeaning": "Lower leg", "contextGroupName": "Common Anatomic Regions",
        "CodingSchemeDesignator": "SCT", "SNOMEDCTConceptID": "30021000"}]},
}


def test_slicer_terminology_logic_reads_files_and_entries(tmp_path):
    slicer = pytest.importorskip("slicer", reason="slicer-core (MRML library) is not installed")
    logic = slicer.vtkSlicerTerminologiesModuleLogic()
    d = T.resources_dir()
    assert logic.LoadTerminologyFromFile(str(d / T.TERMINOLOGY_FILE)) == T.TERMINOLOGY_CONTEXT
    assert logic.LoadRegionContextFromFile(str(d / T.ANATOMIC_FILE)) == T.ANATOMIC_CONTEXT
    stand_in = tmp_path / "slicer-dicom-anatomy.json"
    stand_in.write_text(json.dumps(_SLICER_LOWER_LEG), encoding="utf-8")
    assert logic.LoadRegionContextFromFile(str(stand_in)) == T.SLICER_ANATOMIC_CONTEXT

    category = slicer.vtkSlicerTerminologyCategory()
    assert logic.GetNthCategoryInTerminology(T.TERMINOLOGY_CONTEXT, 0, category)
    assert logic.GetNumberOfTypesInTerminologyCategory(T.TERMINOLOGY_CONTEXT, category) == 6

    for r in ALL:
        entry = T.terminology_entry(r)
        e = slicer.vtkSlicerTerminologyEntry()
        assert logic.DeserializeTerminologyEntry(entry, e)
        assert logic.SerializeTerminologyEntry(e) == entry  # our format is Slicer's format
        assert logic.UpdateEntryFromLoadedTerminologies(
            e, [T.TERMINOLOGY_CONTEXT], [T.anatomic_context_for(r.anatomic_region)])
        assert e.GetTypeObject().GetCodeValue() == r.type.value
        assert e.GetRegionObject().GetCodeMeaning() == r.anatomic_region.meaning
        if r.code in ("TC", "TT", "SK", "MT", "AT", "ST"):  # first user of its type
            assert tuple(e.GetTypeObject().GetRecommendedDisplayRGBValue()) == r.color
