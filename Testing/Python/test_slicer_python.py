"""The core, the bridge and the module files against the Python of current Slicer (3.12).

Slicer 5.10 and 5.12 bundle Python 3.12.10 (docs/slicer-extension.md, read from their
SuperBuild files); this project's venv is 3.11. So:

* every file is byte-compiled by a real Python 3.12 with warnings as errors (3.12 turned invalid
  escape sequences such as ``"\\d"`` into a SyntaxWarning, and removed ``distutils``, ``imp``,
  ``asynchat``, ``asyncore``, ``smtpd`` and ``configparser.SafeConfigParser``);
* every module of ``hrpqct`` and ``hrpqct_slicer`` is imported by that Python with only its
  standard library: an import may stop only at a third-party package (numpy, ...), which that
  bare interpreter lacks; anything else (a removed stdlib module, a syntax or name error at
  import time) fails;
* the syntax of every file is within the declared floor (``requires-python``), parsed with
  ``ast.parse(feature_version=...)``, which needs no other interpreter.

The 3.12 interpreter: ``$HRPQCT_SLICER_PYTHON``, else ``python3.12`` on the PATH, else a pyenv
3.12 (``~/.pyenv/versions/3.12.*``). Without one, the first two tests are skipped with that
reason (CI must provide it: the set-up's job).
"""

from __future__ import annotations

import ast
import glob
import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SLICER_PYTHON = (3, 12)  # Slicer 5.10.0 and 5.12.3: Python 3.12.10
FILES = sorted([*(ROOT / "src" / "hrpqct").rglob("*.py"), *(ROOT / "src" / "hrpqct_slicer").rglob(
    "*.py"), *(ROOT / m / f"{m}.py" for m in ("HRpQCTSeg", "HRpQCTRadiomics", "HRpQCTClassify")),
    *(ROOT / "Resources").glob("*.py")])
REMOVED_IN_312 = {"distutils", "imp", "asynchat", "asyncore", "smtpd"}


def _slicer_python() -> str | None:
    candidates = [os.environ.get("HRPQCT_SLICER_PYTHON"), shutil.which("python3.12"),
                  *sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.12.*/bin/python3.12")),
                          reverse=True)]
    for exe in candidates:
        if not exe:
            continue
        try:
            out = subprocess.run([exe, "-c", "import sys; print(sys.version_info[:2])"],
                                 capture_output=True, text=True, timeout=30)
        except OSError:
            continue
        if out.returncode == 0 and out.stdout.strip() == str(SLICER_PYTHON):
            return exe
    return None


@pytest.fixture(scope="module")
def py312():
    exe = _slicer_python()
    if exe is None:
        pytest.skip("no Python 3.12 found (set HRPQCT_SLICER_PYTHON, or install python3.12)")
    return exe


_COMPILE = r"""
import json, sys, warnings, py_compile, tempfile, os
warnings.simplefilter("error")
bad = []
out = tempfile.mkdtemp()
for i, f in enumerate(json.loads(sys.stdin.read())):
    try:
        py_compile.compile(f, cfile=os.path.join(out, f"{i}.pyc"), doraise=True)
    except BaseException as exc:
        bad.append(f"{f}: {type(exc).__name__}: {exc}")
print(json.dumps({"version": list(sys.version_info[:3]), "bad": bad}))
"""


def test_every_file_compiles_with_slicers_python(py312, tmp_path):
    # the probe can fail: an invalid escape sequence, a warning in 3.12, is refused
    bad = tmp_path / "bad.py"
    bad.write_text('x = "\\d"\n', encoding="utf-8")
    probe = subprocess.run([py312, "-I", "-c", _COMPILE], input=json.dumps([str(bad)]),
                           capture_output=True, text=True, timeout=60)
    assert "invalid escape sequence" in json.loads(probe.stdout)["bad"][0]
    proc = subprocess.run([py312, "-I", "-c", _COMPILE], input=json.dumps([str(f) for f in FILES]),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["version"][:2] == list(SLICER_PYTHON)
    assert out["bad"] == []
    assert len(FILES) > 60


_IMPORT = r"""
import importlib, json, sys, traceback
sys.path[:0] = sys.argv[1:]
stdlib = set(sys.stdlib_module_names)
removed = %r
result = {}
for name in json.loads(sys.stdin.read()):
    try:
        importlib.import_module(name)
        result[name] = "ok"
    except ModuleNotFoundError as exc:
        top = (exc.name or "").split(".")[0]
        if top in removed or top in stdlib or top.startswith("hrpqct"):
            result[name] = f"error: {exc!r}"
        else:
            result[name] = f"needs {top}"
    except BaseException as exc:
        result[name] = "error: " + "".join(traceback.format_exception_only(exc)).strip()
print(json.dumps(result))
""" % (sorted(REMOVED_IN_312),)


def _module_names() -> list[str]:
    names = []
    for f in FILES:
        rel = f.relative_to(ROOT / "src") if f.is_relative_to(ROOT / "src") else None
        if rel is None:
            continue
        parts = list(rel.with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names.append(".".join(parts))
    return names


def test_core_and_bridge_import_with_slicers_python(py312):
    # -I: no user site, no PYTHONPATH; -S: not even this venv's packages
    proc = subprocess.run([py312, "-I", "-S", "-c", _IMPORT, str(ROOT / "src")],
                          input=json.dumps(_module_names()), capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    errors = {k: v for k, v in result.items() if v.startswith("error")}
    assert errors == {}
    # the stdlib-only parts import completely (errors, method, regions, terminology, deps, ...)
    ok = {k for k, v in result.items() if v == "ok"}
    assert {"hrpqct.errors", "hrpqct_slicer", "hrpqct_slicer.deps",
            "hrpqct_slicer.jobs"} <= ok, sorted(ok)
    needs = {v.split()[1] for v in result.values() if v.startswith("needs")}
    assert needs <= {"numpy", "scipy", "pandas", "SimpleITK", "vtk", "slicer", "yaml", "typer",
                     "rich", "torch", "matplotlib", "nrrd", "skimage", "slicerio", "pydicom",
                     "itk", "radiomics", "pyarrow", "sklearn", "safetensors", "transformers",
                     "tqdm", "numba", "packaging", "PIL", "dask", "distributed", "onnxruntime",
                     "statsmodels", "skops", "xgboost"}, needs


def test_syntax_is_within_the_declared_python_floor():
    spec = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"][
        "requires-python"]
    floor = tuple(int(x) for x in spec.removeprefix(">=").split("."))
    bad = []
    for f in FILES:
        try:
            ast.parse(f.read_text(encoding="utf-8"), filename=str(f), feature_version=floor)
        except SyntaxError as exc:
            bad.append(f"{f.relative_to(ROOT)}:{exc.lineno}: {exc.msg}")
    assert bad == []
    # the check can fail: a 3.11-only construct is refused at the 3.10 floor
    with pytest.raises(SyntaxError):
        ast.parse("try:\n    pass\nexcept* ValueError:\n    pass\n", feature_version=(3, 10))
    assert sys.version_info[:2] >= floor
