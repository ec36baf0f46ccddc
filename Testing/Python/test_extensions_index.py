"""The ExtensionsIndex entry (ExtensionsIndex/HRpQCT.json) against the index's schema and rules.

The schema is Slicer's catalog-entry schema (copied into ExtensionsIndex/, see its README); the
rules are those of the index's checker (scripts/check_description_files.py of
github.com/Slicer/ExtensionsIndex, commit 07f1d1b278), written again here (no code copied)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

jsonschema = pytest.importorskip("jsonschema", reason="jsonschema is in the dev extra")

ROOT = Path(__file__).resolve().parents[2]
ENTRY = ROOT / "ExtensionsIndex" / "HRpQCT.json"
# entries of the index (ExtensionsIndex commit 07f1d1b278, branch main) this one depends on
INDEX_ENTRIES = {"PyTorch", "SlicerRadiomics", "NNUNet", "TotalSegmentator", "MONAIAuto3DSeg"}
# a few of the checker's ACCEPTED_EXTENSION_CATEGORIES
ACCEPTED_CATEGORIES = {"Quantification", "Segmentation", "Informatics", "Analysis", "Utilities"}


def _entry() -> dict:
    return json.loads(ENTRY.read_text(encoding="utf-8"))


def _schema_for(entry: dict) -> dict:
    name = entry["$schema"].split("#")[0].rsplit("/", 1)[1]
    return json.loads((ROOT / "ExtensionsIndex" / name).read_text(encoding="utf-8"))


def _cmake() -> str:
    return (ROOT / "CMakeLists.txt").read_text(encoding="utf-8")


def _cmake_set(name: str) -> str:
    m = re.search(rf'set\s*\({name}\s*"([^"]*)"\s*\)', _cmake())
    assert m, f"no literal set({name} \"...\") in CMakeLists.txt"
    return m.group(1)


def test_entry_validates_against_the_schema():
    entry = _entry()
    schema = _schema_for(entry)
    jsonschema.Draft7Validator.check_schema(schema)
    jsonschema.validate(entry, schema)
    # the validation can fail: an unknown key, a missing scm_url, a tier out of range
    for bad in ({**entry, "icon": "x.png"}, {k: v for k, v in entry.items() if k != "scm_url"},
                {**entry, "tier": 9}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, schema)


def test_entry_follows_the_index_checkers_rules():
    entry = _entry()
    name = ENTRY.stem
    project = re.search(r"project\s*\(\s*([^\s)]+)", _cmake()).group(1)
    assert name == project and not name.lower().startswith("slicer")
    assert entry["category"] in ACCEPTED_CATEGORIES
    assert entry["category"] == re.search(r'set\(EXTENSION_CATEGORY "([^"]+)"\)', _cmake()).group(1)
    url = entry["scm_url"]
    assert url.startswith("https://") and Path(url.removesuffix(".git")).name.startswith("Slicer")
    homepage = re.search(r'set\(EXTENSION_HOMEPAGE "([^"]+)"\)', _cmake()).group(1)
    assert url.removesuffix(".git") == homepage
    depends = re.search(r'set\(EXTENSION_DEPENDS "([^"]+)"\)', _cmake()).group(1).split()
    assert entry["build_dependencies"] == depends and set(depends) <= INDEX_ENTRIES
    raw = ENTRY.read_bytes()
    assert b"\r" not in raw  # LF only


def test_cmake_icon_and_screenshot_urls_are_literal_and_committed():
    # the checker reads them from CMakeLists.txt with a regular expression: no ${variables}
    icon = _cmake_set("EXTENSION_ICONURL")
    shots = _cmake_set("EXTENSION_SCREENSHOTURLS").split()
    assert shots and "${" not in icon and not any("${" in s for s in shots)
    tracked = set(subprocess.run(["git", "-C", str(ROOT), "ls-files"], capture_output=True,
                                 text=True, check=True).stdout.split())
    prefix = "https://raw.githubusercontent.com/hrpqct/SlicerHRpQCT/main/"
    for u in [icon, *shots]:
        assert u.startswith(prefix) and u.endswith(".png"), u
        assert u.removeprefix(prefix) in tracked, u


def test_licence_file_and_repository_size():
    assert (ROOT / "LICENSE").is_file()
    files = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z"], capture_output=True,
                           check=True).stdout.split(b"\0")
    size = sum((ROOT / f.decode()).stat().st_size for f in files if f and (ROOT / f.decode()).is_file())
    assert size < 100 * 1024 * 1024, f"{size / 2**20:.1f} MB"
