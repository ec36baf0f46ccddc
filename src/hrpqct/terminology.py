"""Slicer / DICOM terminology generated from :mod:`hrpqct.regions` (no Slicer import).

Two files under ``Resources/`` are *generated* here and committed; a test checks they never drift
from ``regions.py``:

* ``HRpQCT.term.json``: a segmentation category/type context (dcmqi ``segment-context-schema``,
  the format of Slicer's ``SegmentationCategoryTypeModifier-*.json``) with every tissue type the
  5 model classes and 7 regions use;
* ``HRpQCT-AnatomicRegions.term.json``: an anatomic (region) context (dcmqi
  ``anatomic-context-schema``) holding the anatomic regions that Slicer's own
  "Anatomic codes - DICOM master list" lacks (tibia, fibula). Lower leg is in Slicer's list, so
  soft-tissue entries point at Slicer's context.

Each region also has a Slicer *terminology entry string* (the ``TerminologyEntry`` segment tag,
format of ``vtkSlicerTerminologiesModuleLogic::SerializeTerminologyEntry``)::

    context~category~type~typeModifier~anatomicContext~anatomicRegion~anatomicRegionModifier

with each coded item written ``scheme^value^meaning`` and ``^^`` for an empty one.

Regenerate the files after editing ``regions.py`` with ``python -m hrpqct.terminology``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .errors import InputError
from .regions import MODEL_CLASSES, REGIONS, Code, Region

__all__ = [
    "TERMINOLOGY_CONTEXT",
    "ANATOMIC_CONTEXT",
    "SLICER_ANATOMIC_CONTEXT",
    "TERMINOLOGY_FILE",
    "ANATOMIC_FILE",
    "SEGMENT_CONTEXT_SCHEMA",
    "ANATOMIC_CONTEXT_SCHEMA",
    "DICOM_CONTEXT_GROUPS",
    "anatomic_context_for",
    "terminology_entry",
    "parse_terminology_entry",
    "region_for_terminology_entry",
    "build_terminology",
    "build_anatomic_context",
    "render",
    "generated_files",
    "resources_dir",
    "write_terminology_files",
]

TERMINOLOGY_CONTEXT = "Segmentation category and type - HRpQCT distal tibia"
ANATOMIC_CONTEXT = "Anatomic codes - HRpQCT distal tibia"
#: Context names of the lists that ship with Slicer (Modules/Loadable/Terminologies/Resources).
SLICER_ANATOMIC_CONTEXT = "Anatomic codes - DICOM master list"
TERMINOLOGY_FILE = "HRpQCT.term.json"
ANATOMIC_FILE = "HRpQCT-AnatomicRegions.term.json"
SEGMENT_CONTEXT_SCHEMA = (
    "https://raw.githubusercontent.com/qiicr/dcmqi/master/doc/segment-context-schema.json#"
)
ANATOMIC_CONTEXT_SCHEMA = (
    "https://raw.githubusercontent.com/qiicr/dcmqi/master/doc/schemas/anatomic-context-schema.json#"
)

#: Anatomic region codes present in Slicer's "Anatomic codes - DICOM master list"
#: (AnatomicRegionAndModifier-DICOM-Master.json; see Resources/README.md). Tibia and fibula are not.
_IN_SLICER_ANATOMIC_CONTEXT = {("SCT", "30021000")}

#: DICOM PS3.16 context group (CID number, pydicom name) of each standard code we use.
#: Testing/Python/test_terminology.py checks every row against pydicom's copy of PS3.16.
DICOM_CONTEXT_GROUPS: dict[tuple[str, str], tuple[str, str]] = {
    ("SCT", "85756007"): ("7150", "SegmentationPropertyCategory"),  # Tissue (category)
    ("SCT", "87784001"): ("7166", "CommonTissueSegmentationType"),  # Soft tissue
    ("SCT", "39937001"): ("7166", "CommonTissueSegmentationType"),  # Skin
    ("SCT", "91727004"): ("7166", "CommonTissueSegmentationType"),  # Muscle
    ("SCT", "55603005"): ("7166", "CommonTissueSegmentationType"),  # Fat
    ("SCT", "87342007"): ("4031", "CommonAnatomicRegion"),  # Fibula (also CID 4)
    ("SCT", "30021000"): ("4031", "CommonAnatomicRegion"),  # Lower leg (also CID 4)
}

_EMPTY = "^^"


def _code_str(code: Code | None) -> str:
    return code.slicer_string() if code is not None else _EMPTY


def anatomic_context_for(code: Code) -> str:
    """The anatomic context holding ``code``: Slicer's DICOM list if it is there, else ours."""
    if (code.scheme, code.value) in _IN_SLICER_ANATOMIC_CONTEXT:
        return SLICER_ANATOMIC_CONTEXT
    return ANATOMIC_CONTEXT


def terminology_entry(region: Region) -> str:
    """Slicer terminology entry string (segment tag ``TerminologyEntry``) of a region."""
    return "~".join(
        [
            TERMINOLOGY_CONTEXT,
            _code_str(region.category),
            _code_str(region.type),
            _EMPTY,
            anatomic_context_for(region.anatomic_region),
            _code_str(region.anatomic_region),
            _EMPTY,
        ]
    )


def _parse_code(text: str, entry: str) -> Code | None:
    parts = text.split("^")
    if len(parts) != 3:
        raise InputError(
            f"terminology entry {entry!r}: coded item {text!r} is not scheme^value^meaning"
        )
    if not parts[0] and not parts[1]:
        return None
    return Code(parts[0], parts[1], parts[2])


def parse_terminology_entry(entry: str) -> dict[str, Any]:
    """Split a Slicer terminology entry string into its context names and :class:`Code` items."""
    fields = entry.split("~")
    if len(fields) != 7:
        raise InputError(
            f"terminology entry {entry!r}: expected 7 '~'-separated fields, got {len(fields)}"
        )
    return {
        "context": fields[0],
        "category": _parse_code(fields[1], entry),
        "type": _parse_code(fields[2], entry),
        "type_modifier": _parse_code(fields[3], entry),
        "anatomic_context": fields[4],
        "anatomic_region": _parse_code(fields[5], entry),
        "anatomic_region_modifier": _parse_code(fields[6], entry),
    }


def _same(a: Code | None, b: Code | None) -> bool:
    """Codes are equal when scheme and value agree (meanings may be spelled differently)."""
    if a is None or b is None:
        return a is b
    return (a.scheme.upper(), a.value) == (b.scheme.upper(), b.value)


def region_for_terminology_entry(entry: str, table: tuple[Region, ...] = REGIONS) -> Region | None:
    """The region of ``table`` whose category, type and anatomic region match ``entry``, if any."""
    try:
        parsed = parse_terminology_entry(entry)
    except InputError:
        return None
    for r in table:
        if (
            _same(parsed["category"], r.category)
            and _same(parsed["type"], r.type)
            and _same(parsed["anatomic_region"], r.anatomic_region)
        ):
            return r
    return None


def _coded(code: Code) -> dict[str, Any]:
    item: dict[str, Any] = {
        "CodeMeaning": code.meaning,
        "CodingSchemeDesignator": code.scheme,
        "CodeValue": code.value,
    }
    if code.scheme == "SCT":
        item["SNOMEDCTConceptID"] = code.value
    group = DICOM_CONTEXT_GROUPS.get((code.scheme, code.value))
    if group is not None:
        item["cid"], item["contextGroupName"] = group
    return item


def _all_regions() -> list[Region]:
    """Final regions first, then the model classes not already listed (soft tissue)."""
    seen = {r.code for r in REGIONS}
    return [*REGIONS, *(r for r in MODEL_CLASSES if r.code not in seen)]


def build_terminology() -> dict[str, Any]:
    """The category/type context (``HRpQCT.term.json``) as a JSON-ready dict.

    One category per distinct category code, one type per distinct type code, in label order.
    A type's recommended colour and ``3dSlicerLabel`` come from the first region using it (for
    cortical / cancellous bone: the tibia); segments created by the bridge carry each region's
    own colour.
    """
    categories: dict[tuple[str, str], dict[str, Any]] = {}
    types_seen: set[tuple[str, str, str, str]] = set()
    for r in _all_regions():
        ckey = (r.category.scheme, r.category.value)
        if ckey not in categories:
            categories[ckey] = {**_coded(r.category), "showAnatomy": True, "Type": []}
        tkey = (*ckey, r.type.scheme, r.type.value)
        if tkey in types_seen:
            continue
        types_seen.add(tkey)
        categories[ckey]["Type"].append(
            {
                **_coded(r.type),
                "recommendedDisplayRGBValue": list(r.color),
                "3dSlicerLabel": r.type.meaning.lower(),
            }
        )
    return {
        "SegmentationCategoryTypeContextName": TERMINOLOGY_CONTEXT,
        "@schema": SEGMENT_CONTEXT_SCHEMA,
        "SegmentationCodes": {"Category": list(categories.values())},
    }


def build_anatomic_context() -> dict[str, Any]:
    """The anatomic context (``HRpQCT-AnatomicRegions.term.json``): regions Slicer's list lacks."""
    regions: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = set()
    for r in _all_regions():
        code = r.anatomic_region
        key = (code.scheme, code.value)
        if key in seen or anatomic_context_for(code) != ANATOMIC_CONTEXT:
            continue
        seen.add(key)
        regions.append(_coded(code))
    return {
        "AnatomicContextName": ANATOMIC_CONTEXT,
        "@schema": ANATOMIC_CONTEXT_SCHEMA,
        "AnatomicCodes": {"AnatomicRegion": regions},
    }


def render(obj: dict[str, Any]) -> str:
    """Deterministic JSON text (2-space indent, trailing newline) for committed files."""
    return json.dumps(obj, indent=2, ensure_ascii=False) + "\n"


def generated_files() -> dict[str, str]:
    """File name -> text of every generated terminology file."""
    return {
        TERMINOLOGY_FILE: render(build_terminology()),
        ANATOMIC_FILE: render(build_anatomic_context()),
    }


def resources_dir() -> Path:
    """The shared ``Resources/`` folder (importable as ``hrpqct.resources``)."""
    from . import resources

    return Path(resources.__file__).resolve().parent


def write_terminology_files(directory: str | os.PathLike[str] | None = None) -> list[Path]:
    """Write the generated files atomically into ``directory`` (default: ``Resources/``)."""
    out = Path(directory) if directory is not None else resources_dir()
    if not out.is_dir():
        raise InputError(f"{out}: not a folder")
    from .io.atomic import atomic_write_text

    written = []
    for name, text in generated_files().items():
        written.append(atomic_write_text(out / name, text))
    return written


if __name__ == "__main__":  # python -m hrpqct.terminology
    for path in write_terminology_files():
        print(path)
