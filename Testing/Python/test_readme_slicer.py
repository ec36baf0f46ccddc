"""The Python-console examples of README.md's "3D Slicer" section, run as written.

They run in one namespace, in order, inside the fake Slicer of conftest.py (the real MRML
library from slicer-core, ``slicer.mrmlScene`` a real scene), with the module files importable
by name as in Slicer. Each ``print(...)`` line is followed in the README by its output as
``# ...`` comment lines; the output must match them."""

from __future__ import annotations

import contextlib
import io
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def slicer_examples() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## 3D Slicer\n"):]
    section = section[:section.index("\n## ", 3)]
    return re.findall(r"```python\n(.*?)```", section, re.S)


def expected_output(block: str) -> list[str]:
    out, lines = [], block.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("print("):
            for follow in lines[i + 1:]:
                if not follow.startswith("# "):
                    break
                out.append(follow[2:])
    return out


def test_readme_has_console_examples_for_the_modules():
    blocks = slicer_examples()
    assert len(blocks) >= 3
    joined = "\n".join(blocks)
    assert "HRpQCTSeg.HRpQCTSegLogic()" in joined and "HRpQCTRadiomics.HRpQCTRadiomicsLogic()" in joined
    assert "HRpQCTClassify.HRpQCTClassifyLogic()" in joined
    assert all(expected_output(b) for b in blocks)


def test_readme_console_examples_run(fake_slicer, monkeypatch, tmp_path):
    for name in ("HRpQCTSeg", "HRpQCTRadiomics", "HRpQCTClassify"):
        monkeypatch.syspath_prepend(str(ROOT / name))
        monkeypatch.delitem(sys.modules, name, raising=False)
    monkeypatch.chdir(tmp_path)  # the radiomics example writes its tables here
    namespace: dict = {}
    try:
        for block in slicer_examples():
            buf = io.StringIO()
            with contextlib.redirect_stdout(buf):
                exec(compile(block, "README.md", "exec"), namespace)  # noqa: S102
            assert buf.getvalue().splitlines() == expected_output(block), block
    finally:
        for name in ("HRpQCTSeg", "HRpQCTRadiomics", "HRpQCTClassify"):
            sys.modules.pop(name, None)
    assert namespace["segmentation"].IsA("vtkMRMLSegmentationNode")
    assert fake_slicer.scene.IsNodePresent(namespace["segmentation"])
    results = namespace["results"]  # the classify example: the table node holds the prediction
    assert results.table.IsA("vtkMRMLTableNode") and fake_slicer.scene.IsNodePresent(results.table)
    assert 0.0 <= results.prediction.probability <= 1.0
