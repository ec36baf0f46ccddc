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
