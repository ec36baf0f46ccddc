"""Packaging: every package under src/ is listed in pyproject.toml (the list is explicit because of
the Resources/ mapping), the core never imports slicer, and the resources are importable."""

from __future__ import annotations

import ast
import importlib.resources
import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]


def test_every_package_is_listed():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(ROOT / "src").parts) for p in (ROOT / "src").rglob("__init__.py")}
    assert found | {"hrpqct.resources"} == listed


def test_core_has_no_slicer_imports():
    offenders = []
    for path in (ROOT / "src" / "hrpqct").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            offenders += [f"{path.relative_to(ROOT)}: {n}" for n in names
                          if n.split(".")[0] in ("slicer", "qt", "ctk", "vtk", "hrpqct_slicer")]
    assert offenders == []


def test_resources_importable():
    files = {p.name for p in importlib.resources.files("hrpqct.resources").iterdir()}
    assert {"HRpQCT.term.json", "radiomics-paper.yaml"} <= files


def _text_io_without_encoding(source: str) -> list[int]:
    """Lines calling read_text/write_text, or open() in a text mode, without ``encoding=``."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call) or any(k.arg == "encoding" for k in node.keywords):
            continue
        f = node.func
        name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", None)
        if name in ("read_text", "write_text"):
            lines.append(node.lineno)
        elif name == "open" and not (isinstance(f, ast.Attribute) and getattr(f.value, "id", "") != "io"):
            modes = [a.value for a in node.args[1:2] if isinstance(a, ast.Constant)]
            modes += [k.value.value for k in node.keywords if k.arg == "mode" and isinstance(k.value, ast.Constant)]
            if not any("b" in str(m) for m in modes):
                lines.append(node.lineno)
    return lines


def test_text_files_are_read_and_written_as_utf8():
    # CI and many clinical workstations run in an ASCII or cp1252 locale: text I/O must not
    # depend on it (a '±' in a table once broke CI)
    assert _text_io_without_encoding("Path('a').read_text()\nopen(p, 'w')\nopen(p, 'rb')\n"
                                     "open(p, encoding='utf-8')\nos.open(p, 1)\n") == [1, 2]
    offenders = []
    for folder in ("src", "HRpQCTSeg", "HRpQCTRadiomics", "HRpQCTClassify", "bench", "Testing"):
        for path in (ROOT / folder).rglob("*.py"):
            offenders += [f"{path.relative_to(ROOT)}:{n}"
                          for n in _text_io_without_encoding(path.read_text(encoding="utf-8"))]
    assert offenders == []
