"""hrpqct_slicer.deps: the first-use installer inside Slicer, against a fake Slicer Python.

The fake is a set of importable modules and a table of installed distributions; its ``pip``
adds what it is asked for, and can be told to upgrade numpy as a careless dependency would. No
network, no real pip (the real constraint resolution is in test_slicer_deps_pip.py when run)."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from hrpqct_slicer import deps as D

ROOT = Path(__file__).resolve().parents[2]
_MODULE_OF = {"scipy": "scipy", "pandas": "pandas", "scikit-image": "skimage",
              "transformers": "transformers", "safetensors": "safetensors",
              "PyWavelets": "pywt", "pyarrow": "pyarrow", "pynrrd": "nrrd", "torch": "torch",
              "PyYAML": "yaml"}
#: what Slicer 5.10.0 bundles (docs/slicer-extension.md), as distribution -> version
SLICER_510 = {"numpy": "2.0.2", "scipy": "1.13.1", "simpleitk": "2.5.2", "vtk": "9.5.2",
              "pydicom": "2.4.4", "pillow": "11.2.1", "requests": "2.32.3", "packaging": "25.0",
              "pip": "25.1.1", "setuptools": "80.9.0", "wheel": "0.45.1"}
SLICER_MODULES = {"numpy", "scipy", "SimpleITK", "vtk", "PyTorchUtils"}


class FakeSlicerPython:
    def __init__(self, modules=SLICER_MODULES, versions=SLICER_510, upgrade_numpy=False):
        self.modules = set(modules)
        self.dists = dict(versions)
        self.calls: list[list[str]] = []
        self.constraints: list[str] = []
        self.torch_calls: list[str] = []
        self.upgrade_numpy = upgrade_numpy

    def find(self, module):
        return object() if module in self.modules else None

    def versions(self):
        return dict(self.dists)

    def install(self, args):
        self.calls.append(list(args))
        i = args.index("-c")
        self.constraints.append(Path(args[i + 1]).read_text(encoding="utf-8"))
        for a in args[:i]:
            name = re.split(r"[<>=]", a)[0]
            self.modules.add(_MODULE_OF.get(name, name))
            self.dists[re.sub(r"[-_.]+", "-", name).lower()] = "99.0"
        if self.upgrade_numpy:
            self.dists["numpy"] = "2.4.6"

    def install_torch(self, version_range):
        self.torch_calls.append(version_range)
        self.modules.add("torch")
        self.dists["torch"] = "2.13.0"


def _ensure(py, groups, confirm=lambda t: True, **kw):
    return D.ensure_packages(groups, confirm=confirm, install=py.install, find=py.find,
                             versions=py.versions, **kw)


def test_nothing_missing_means_no_question_and_no_install():
    py = FakeSlicerPython({r.module for r in D.REQUIREMENTS},
                          {r.name: "99.0" for r in D.REQUIREMENTS})
    asked = []
    assert _ensure(py, D.GROUPS, confirm=asked.append) == []
    assert asked == [] and py.calls == []


def test_installs_with_slicers_packages_pinned_and_torch_from_the_pytorch_extension():
    py = FakeSlicerPython()
    asked = []
    steps = _ensure(py, ("core", "seg"), confirm=lambda t: asked.append(t) or True,
                    torch_installer=py.install_torch)
    assert [c[:c.index("-c")] for c in py.calls] == [
        ["scikit-image>=0.22", "pandas>=2.1", "pynrrd>=1.0", "slicerio>=1.1", "matplotlib>=3.8",
         "typer>=0.12", "rich>=13", "PyYAML>=6"],
        ["transformers>=4.40", "safetensors>=0.4"]]
    assert py.torch_calls == [">=2.2"]  # no torch pin, no pip for torch
    assert [s.kind for s in steps] == ["pip", "pytorch", "pip"]
    # every pip call carries a constraints file with Slicer's own packages at their versions
    first = py.constraints[0].split()
    assert {"numpy==2.0.2", "scipy==1.13.1", "simpleitk==2.5.2", "vtk==9.5.2",
            "pydicom==2.4.4"} <= set(first)
    assert not any(line.startswith(("pip==", "setuptools==", "wheel==")) for line in first)
    assert "torch==2.13.0" in py.constraints[1].split()  # what the previous step added is kept
    assert py.dists["numpy"] == "2.0.2"
    text = asked[0]
    assert "PyTorchUtils" in text and "pip install scikit-image>=0.22" in text
    assert "kept at their versions" in text


def test_a_dependency_that_replaces_numpy_is_an_error():
    py = FakeSlicerPython(upgrade_numpy=True)
    with pytest.raises(D.MissingDependencies, match=r"numpy 2\.0\.2 -> 2\.4\.6"):
        _ensure(py, ("core",))


def test_versions_are_checked_not_only_presence():
    # Slicer 5.8's numpy 1.26.4 passes; a too-old pandas from another extension is reported,
    # not used and not replaced
    py = FakeSlicerPython(SLICER_MODULES | {"pandas"}, {**SLICER_510, "pandas": "1.5.3"})
    with pytest.raises(D.MissingDependencies, match=r"pandas 1\.5\.3 is installed but HRpQCT "
                                                    r"needs pandas>=2\.1.*not replaced"):
        _ensure(py, ("core",))
    assert py.calls == []
    old_torch = FakeSlicerPython(SLICER_MODULES | {"torch"}, {**SLICER_510, "torch": "1.13.1"})
    with pytest.raises(D.MissingDependencies, match="PyTorch Utils"):
        _ensure(old_torch, ("seg",))
    # the installed numpy of Slicer 5.10 satisfies the range, so it is never a candidate
    assert D.wrong_versions(("core",), FakeSlicerPython().find, lambda: SLICER_510) == []


def test_torch_needs_the_pytorch_extension():
    py = FakeSlicerPython(SLICER_MODULES - {"PyTorchUtils"})
    with pytest.raises(D.MissingDependencies, match="PyTorch extension"):
        _ensure(py, ("seg",))
    assert py.calls == []
    assert D.pytorch_extension_installer(py.find) is None
    assert callable(D.pytorch_extension_installer(FakeSlicerPython().find))


def test_pyradiomics_comes_from_slicerradiomics_never_from_a_build_on_python_312():
    # the 3.0.1 sdist cannot build on Python 3.12 (versioneer's SafeConfigParser) and Slicer has
    # no compiler: no pip step is planned, the message names the extension
    py = FakeSlicerPython()
    with pytest.raises(D.MissingDependencies, match="SlicerRadiomics"):
        _ensure(py, ("radiomics",), python=(3, 12))
    assert py.calls == []
    assert all("pyradiomics" not in " ".join(s.args) for s in D.install_plan(
        D.missing_packages(("radiomics",), py.find)))
    # with SlicerRadiomics installed, its radiomics package is found and only the rest is added
    with_ext = FakeSlicerPython(SLICER_MODULES | {"radiomics", "skimage", "pandas", "nrrd",
                                                  "slicerio", "matplotlib", "typer", "rich",
                                                  "yaml"},
                                {**SLICER_510, "pyradiomics": "3.0.1a1"})
    steps = _ensure(with_ext, ("radiomics",), python=(3, 12))
    assert [s.args for s in steps] == [("PyWavelets>=1.4", "pyarrow>=14")]


def test_declined_failed_ineffective_and_old_python():
    py = FakeSlicerPython()
    with pytest.raises(D.MissingDependencies, match="declined"):
        _ensure(py, ("core",), confirm=lambda t: False)
    assert py.calls == []

    def broken(args):
        raise subprocess.CalledProcessError(1, ["pip", *args])

    with pytest.raises(D.MissingDependencies, match="failed"):
        D.ensure_packages(("core",), confirm=lambda t: True, install=broken, find=py.find,
                          versions=py.versions)
    with pytest.raises(D.MissingDependencies, match="still missing"):
        D.ensure_packages(("core",), confirm=lambda t: True, install=lambda a: None,
                          find=py.find, versions=py.versions)
    with pytest.raises(D.MissingDependencies, match="Python 3.10"):
        _ensure(py, ("core",), python=(3, 9))
    with pytest.raises(ValueError, match="unknown dependency groups"):
        D.missing_packages(("gui",))


def test_requirements_match_pyproject():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    declared = set(meta["dependencies"])
    for extra in ("seg", "radiomics"):
        declared |= set(meta["optional-dependencies"][extra])
    for req in D.REQUIREMENTS:
        assert req.requirement in declared, req
    assert D.TORCH_REQUIREMENT in meta["optional-dependencies"]["seg"]
    assert f"{D.MIN_PYTHON[0]}.{D.MIN_PYTHON[1]}" in meta["requires-python"]
    assert set(D.SLICER_PACKAGES) <= {r.name for r in D.REQUIREMENTS} | {"vtk"}
    # this environment (the test suite's) has every package the modules ask for, in range
    assert D.missing_packages() == [] and D.wrong_versions() == []


def test_constraints_pin_this_environment():
    text = D.constraints_text(D.installed_versions())
    import numpy

    assert f"numpy=={numpy.__version__}" in text.split()
    assert not re.search(r"^pip==", text, re.M)


def test_checking_imports_nothing_heavy():
    code = ("import sys; import hrpqct_slicer.deps as d; d.missing_packages(); d.wrong_versions();"
            " import hrpqct_slicer.params, hrpqct_slicer.jobs, hrpqct_slicer.worker; "
            "print(sorted(m for m in ('torch', 'pandas', 'slicer', 'vtk', 'radiomics', 'scipy') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
