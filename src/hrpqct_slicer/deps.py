"""Python packages the modules need inside Slicer: check, ask, install (on first use only).

Slicer's Python ships numpy, scipy, SimpleITK and VTK but not most of what the core needs
(pandas, scikit-image, PyTorch, transformers, PyRadiomics...). As in SlicerTotalSegmentator, the
module checks what is missing when the user first presses Apply, shows what it will install and
how, and installs only after the user agrees. Nothing happens at import time, and nothing is
downloaded without that confirmation.

* **Versions, not only presence.** A package that is installed in a version outside the
  project's range (``pyproject.toml``) is reported, not silently used and not replaced (another
  extension may need it).
* **Slicer's own packages are never replaced.** Every ``pip install`` runs with a constraints
  file (``-c``) pinning each distribution already installed in Slicer's Python to its installed
  version (numpy, scipy, SimpleITK, VTK, pydicom, ... and whatever other extensions added), so a
  dependency that wants a newer numpy makes pip pick an older release of that dependency or
  fail, never upgrade Slicer's numpy. After installing, the versions are compared with those
  before and any change is an error (Slicer 5.10 bundles numpy 2.0.2; see
  docs/slicer-extension.md for the bundled versions).
* **PyTorch** comes from the PyTorch extension (``PyTorchUtils``, a dependency of this extension
  in ``EXTENSION_DEPENDS``), which picks the build for the machine: the CUDA build matching the
  NVIDIA driver, or the CPU build. This extension never pip-installs torch itself (a pinned
  torch has no wheel for some machines, e.g. Intel Macs).
* **PyRadiomics** comes from the SlicerRadiomics extension (also in ``EXTENSION_DEPENDS``),
  which Slicer's extension factory builds, with a compiler, for each platform and Slicer
  release, and which puts its ``radiomics`` package on Slicer's Python path. It cannot be
  pip-installed into Slicer 5.10/5.12 (Python 3.12): PyPI has only source releases, 3.0.1's
  bundled versioneer calls ``configparser.SafeConfigParser`` (removed in Python 3.12), and an
  installed Slicer has no ``Python.h`` or compiler. So a missing ``radiomics`` asks for that
  extension instead of trying a build.

Version ranges are those of the project's ``pyproject.toml`` (a test keeps them equal).
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import os
import re
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Optional, Sequence

from hrpqct.errors import HRpQCTError

__all__ = [
    "Requirement",
    "REQUIREMENTS",
    "GROUPS",
    "TORCH_REQUIREMENT",
    "SLICER_PACKAGES",
    "InstallStep",
    "MissingDependencies",
    "missing_packages",
    "wrong_versions",
    "installed_versions",
    "constraints_text",
    "install_plan",
    "confirmation_text",
    "pytorch_extension_installer",
    "ensure_packages",
]

MIN_PYTHON = (3, 10)  # pyproject.toml requires-python
TORCH_REQUIREMENT = "torch>=2.2"  # pyproject.toml, extra "seg"
#: what Slicer itself bundles and extensions must not replace (docs/slicer-extension.md)
SLICER_PACKAGES = ("numpy", "scipy", "simpleitk", "vtk")
_NOT_CONSTRAINED = ("pip", "setuptools", "wheel")  # pip may need to update its own tools


@dataclass(frozen=True)
class Requirement:
    """A package: the module to import, the pip requirement, and what needs it."""

    module: str
    requirement: str
    groups: tuple[str, ...]

    @property
    def name(self) -> str:
        """The distribution name, normalised as pip does (``scikit-image``, ``pyyaml``)."""
        return _canonical(re.split(r"[<>=!~; \[]", self.requirement, maxsplit=1)[0])

    @property
    def specifier(self) -> str:
        return self.requirement[len(re.split(r"[<>=!~; \[]", self.requirement, maxsplit=1)[0]):]


#: ``core``: reading/writing files, post-processing, tables (every module);
#: ``seg``: the segmentation model; ``radiomics``: PyRadiomics and its table output.
REQUIREMENTS: tuple[Requirement, ...] = (
    Requirement("numpy", "numpy>=1.26", ("core",)),
    Requirement("scipy", "scipy>=1.11", ("core",)),
    Requirement("SimpleITK", "SimpleITK>=2.3", ("core",)),
    Requirement("skimage", "scikit-image>=0.22", ("core",)),
    Requirement("pandas", "pandas>=2.1", ("core",)),
    Requirement("nrrd", "pynrrd>=1.0", ("core",)),
    Requirement("slicerio", "slicerio>=1.1", ("core",)),
    Requirement("matplotlib", "matplotlib>=3.8", ("core",)),
    Requirement("typer", "typer>=0.12", ("core",)),
    Requirement("rich", "rich>=13", ("core",)),
    Requirement("yaml", "PyYAML>=6", ("core",)),
    Requirement("torch", TORCH_REQUIREMENT, ("seg",)),
    Requirement("transformers", "transformers>=4.40", ("seg",)),
    Requirement("safetensors", "safetensors>=0.4", ("seg",)),
    Requirement("pywt", "PyWavelets>=1.4", ("radiomics",)),
    Requirement("pyarrow", "pyarrow>=14", ("radiomics",)),
    Requirement("radiomics", "pyradiomics>=3.0.1a1", ("radiomics",)),
)
GROUPS = ("core", "seg", "radiomics")

PYTORCH_EXTENSION_HINT = (
    "PyTorch comes from Slicer's PyTorch extension: install 'PyTorch' from the Extensions "
    "Manager (it is a dependency of the HRpQCT extension, so the Extensions Manager installs it"
    " with HRpQCT), restart Slicer and apply again.")
RADIOMICS_EXTENSION_HINT = (
    "PyRadiomics comes from Slicer's SlicerRadiomics extension, which ships it compiled for this"
    " Slicer (it cannot be built here: PyPI has no PyRadiomics wheel for Slicer's Python 3.12 "
    "and Slicer has no compiler). Install 'SlicerRadiomics' from the Extensions Manager (a "
    "dependency of the HRpQCT extension), restart Slicer and apply again.")


class MissingDependencies(HRpQCTError):
    """Packages are missing or in the wrong version and were not installed (declined, failed,
    needs another extension, or wrong Python)."""


@dataclass(frozen=True)
class InstallStep:
    """One install: ``pip`` (arguments as for ``slicer.util.pip_install``, without the
    constraints option added at run time) or ``pytorch`` (the PyTorch extension's installer with
    the version range in ``args[0]``)."""

    args: tuple[str, ...]
    description: str
    kind: str = "pip"

    def command(self) -> str:
        if self.kind == "pytorch":
            return (f"PyTorchUtils.PyTorchUtilsLogic().installTorch("
                    f"torchVersionRequirement={self.args[0]!r})")
        return "pip install " + " ".join(self.args) + " -c <Slicer's installed packages>"


Finder = Callable[[str], object]
Versions = Callable[[], dict]


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def installed_versions() -> dict[str, str]:
    """Every distribution installed in this Python: normalised name -> version."""
    out = {}
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"] if dist.metadata else None
        if name:
            out.setdefault(_canonical(name), dist.version)
    return out


def _found(module: str, find: Finder) -> bool:
    try:
        return find(module) is not None
    except (ImportError, ValueError):
        return False


def _selected(groups: Iterable[str]) -> list[Requirement]:
    groups = set(groups)
    unknown = groups - set(GROUPS)
    if unknown:
        raise ValueError(f"unknown dependency groups {sorted(unknown)}; use {GROUPS}")
    return [r for r in REQUIREMENTS if groups & set(r.groups)]


def missing_packages(groups: Iterable[str] = GROUPS, find: Finder = importlib.util.find_spec
                     ) -> list[Requirement]:
    """The requirements of ``groups`` whose module cannot be found (in REQUIREMENTS order)."""
    return [r for r in _selected(groups) if not _found(r.module, find)]


def _satisfies(version: str, specifier: str) -> bool:
    from packaging.specifiers import SpecifierSet
    from packaging.version import InvalidVersion, Version

    try:
        return SpecifierSet(specifier, prereleases=True).contains(Version(version))
    except InvalidVersion:
        return False


def wrong_versions(groups: Iterable[str] = GROUPS, find: Finder = importlib.util.find_spec,
                   versions: Versions = installed_versions) -> list[tuple[Requirement, str]]:
    """The requirements of ``groups`` that are importable in a version outside their range."""
    have = versions()
    out = []
    for r in _selected(groups):
        v = have.get(r.name)
        if v is not None and _found(r.module, find) and not _satisfies(v, r.specifier):
            out.append((r, v))
    return out


def constraints_text(versions: dict[str, str]) -> str:
    """A pip constraints file pinning every installed distribution (except pip's own tools)."""
    lines = [f"{name}=={v}" for name, v in sorted(versions.items())
             if name not in _NOT_CONSTRAINED and re.fullmatch(r"[0-9][0-9A-Za-z.+!-]*", v)]
    return "\n".join(lines) + "\n"


def install_plan(missing: Sequence[Requirement]) -> list[InstallStep]:
    """The install steps for ``missing``: the plain packages in one pip step; PyTorch through
    the PyTorch extension; transformers and safetensors. PyRadiomics is never planned (it comes
    with the SlicerRadiomics extension; :func:`ensure_packages` says so)."""
    names = {r.module for r in missing}
    steps: list[InstallStep] = []
    plain = [r.requirement for r in missing
             if r.module not in ("torch", "transformers", "safetensors", "radiomics")]
    if plain:
        steps.append(InstallStep(tuple(plain), "packages the HRpQCT core needs"))
    if "torch" in names:
        spec = TORCH_REQUIREMENT[len("torch"):]
        steps.append(InstallStep((spec,), f"PyTorch {spec} (PyTorch extension: the CUDA build "
                                 "for an NVIDIA GPU's driver, else the CPU build)", "pytorch"))
    seg_rest = [r.requirement for r in missing if r.module in ("transformers", "safetensors")]
    if seg_rest:
        steps.append(InstallStep(tuple(seg_rest), "SegFormer model code (transformers)"))
    return steps


def confirmation_text(missing: Sequence[Requirement], steps: Sequence[InstallStep]) -> str:
    """What the confirmation dialog says: the packages and how each is installed."""
    lines = ["HRpQCT needs Python packages that this Slicer does not have yet:", "",
             ", ".join(r.requirement for r in missing), "", "They will be installed with:"]
    lines += [f"  {s.command()}" for s in steps]
    lines += ["", "Packages already in Slicer's Python (numpy, SimpleITK, VTK, ...) are kept at "
              "their versions. This downloads from the Python Package Index (and PyTorch's "
              "server for PyTorch) and can take several minutes. Slicer may need a restart "
              "afterwards. Install now?"]
    return "\n".join(lines)


def pytorch_extension_installer(find: Finder = importlib.util.find_spec
                                ) -> Optional[Callable[[str], object]]:
    """``install(version_range)`` through the PyTorch extension's ``PyTorchUtils`` module, or
    None when that extension is not installed."""
    if not _found("PyTorchUtils", find):
        return None

    def install(version_range: str) -> object:
        import PyTorchUtils

        torch = PyTorchUtils.PyTorchUtilsLogic().installTorch(
            askConfirmation=False, torchVersionRequirement=version_range)
        if torch is None:
            raise MissingDependencies("the PyTorch extension did not install PyTorch "
                                      f"{version_range}. " + PYTORCH_EXTENSION_HINT)
        return torch

    return install


def _wrong_text(wrong: Sequence[tuple[Requirement, str]]) -> str:
    parts = [f"{r.name} {v} is installed but HRpQCT needs {r.requirement}" for r, v in wrong]
    hint = (" Update PyTorch with the 'PyTorch Utils' module." if any(
        r.module == "torch" for r, _ in wrong) else "")
    return ("; ".join(parts) + ". It is not replaced automatically (Slicer or another extension"
            " may need this version)." + hint)


def ensure_packages(groups: Iterable[str], *, confirm: Callable[[str], bool],
                    install: Callable[[list[str]], object],
                    find: Finder = importlib.util.find_spec,
                    versions: Versions = installed_versions,
                    torch_installer: Optional[Callable[[str], object]] = None,
                    python: tuple[int, int] = tuple(sys.version_info[:2]),
                    workdir: Optional[str | os.PathLike] = None) -> list[InstallStep]:
    """Make the packages of ``groups`` importable in their versions: nothing to do, or ask, then
    install without replacing anything already installed.

    ``confirm(text) -> bool`` asks the user (``slicer.util.confirmOkCancelDisplay`` in Slicer);
    ``install(args)`` runs one pip install (``slicer.util.pip_install``); ``torch_installer``
    (default :func:`pytorch_extension_installer`) installs PyTorch. Returns the steps run (empty
    when nothing was missing). Raises :class:`MissingDependencies` when a package is installed in
    a version outside its range, PyTorch or PyRadiomics need their extension, the user declines,
    an install step fails, something is still missing or in the wrong version afterwards, an
    installed package changed version, or Python is too old.
    """
    groups = tuple(groups)
    wrong = wrong_versions(groups, find, versions)
    if wrong:
        raise MissingDependencies(_wrong_text(wrong))
    missing = missing_packages(groups, find)
    if not missing:
        return []
    if tuple(python) < MIN_PYTHON:
        raise MissingDependencies(
            f"HRpQCT needs Python {MIN_PYTHON[0]}.{MIN_PYTHON[1]} or newer; this Slicer has "
            f"Python {python[0]}.{python[1]}. Use Slicer 5.10 or newer.")
    names = {r.module for r in missing}
    if "radiomics" in names:
        raise MissingDependencies(RADIOMICS_EXTENSION_HINT)
    if torch_installer is None and "torch" in names:
        torch_installer = pytorch_extension_installer(find)
        if torch_installer is None:
            raise MissingDependencies(PYTORCH_EXTENSION_HINT)
    steps = install_plan(missing)
    if not confirm(confirmation_text(missing, steps)):
        raise MissingDependencies(
            "not installed (declined): " + ", ".join(r.requirement for r in missing))
    before = versions()
    with tempfile.TemporaryDirectory(prefix="hrpqct-pip-", dir=workdir) as tmp:
        constraints = Path(tmp) / "slicer-constraints.txt"
        for step in steps:
            try:
                if step.kind == "pytorch":
                    torch_installer(step.args[0])
                else:
                    # written before each step, so what an earlier step added is kept too
                    constraints.write_text(constraints_text(versions()), encoding="utf-8")
                    install([*step.args, "-c", str(constraints)])
            except MissingDependencies:
                raise
            except Exception as exc:  # noqa: BLE001  pip failures come as several types
                raise MissingDependencies(f"installing {step.description} failed "
                                          f"({step.command()}): {exc}") from exc
    importlib.invalidate_caches()
    after = versions()
    changed = [f"{n} {v} -> {after.get(n, 'removed')}" for n, v in sorted(before.items())
               if after.get(n) != v]
    if changed:
        raise MissingDependencies("installing changed packages that were already installed: "
                                  + ", ".join(changed) + " (restart Slicer; if numpy, SimpleITK"
                                  " or VTK changed, reinstall Slicer)")
    still = missing_packages(groups, find)
    if still:
        raise MissingDependencies(
            "still missing after installation: " + ", ".join(r.requirement for r in still)
            + " (restart Slicer and try again; see the Python console for pip's output)")
    wrong = wrong_versions(groups, find, versions)
    if wrong:
        raise MissingDependencies(_wrong_text(wrong))
    return steps
