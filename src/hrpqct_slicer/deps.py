"""Python packages the modules need inside Slicer: check, ask, install (on first use only).

Slicer's Python ships numpy and SimpleITK but not most of what the core needs (pandas, scipy,
scikit-image, PyTorch, transformers, PyRadiomics...). As in SlicerTotalSegmentator, the module
checks what is missing when the user first presses Apply, shows what it will install and where
from, and installs only after the user agrees (``slicer.util.pip_install`` in Slicer). Nothing
happens at import time, and nothing is ever downloaded without that confirmation.

PyTorch is chosen for the machine (``install_plan``):

* no NVIDIA GPU, Linux or Windows: the CPU build from PyTorch's CPU index
  (``torch==<pin>+cpu``, about 200 MB instead of several GB of CUDA libraries);
* NVIDIA GPU on Linux: PyPI's ``torch==<pin>`` (a CUDA build);
* NVIDIA GPU on Windows: PyPI only has CPU builds for Windows, and the right CUDA index depends on
  the driver. The plan installs the CPU build and says how to get the GPU build (the SlicerPyTorch
  extension's "PyTorch Utils" module picks the CUDA version; or set ``HRPQCT_TORCH_INDEX_URL``);
* macOS: PyPI's ``torch==<pin>`` (CPU and Apple MPS).

``HRPQCT_TORCH_INDEX_URL`` (an index such as ``https://download.pytorch.org/whl/cu126``) makes the
plan install ``torch==<pin>`` from that index instead. A PyTorch that is already installed (by
the SlicerPyTorch extension, for example) is never replaced.

PyRadiomics has only a source release for current Pythons; it is built with
``--no-build-isolation`` after ``setuptools``, ``wheel`` and ``versioneer`` (ENGINEERING notes).
Version ranges are those of the project's ``pyproject.toml``; the torch pin is the one in
``requirements/lock.txt`` (a test keeps them in step).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import platform
import shutil
import subprocess
import sys
from dataclasses import dataclass
from typing import Callable, Iterable, Optional, Sequence

from hrpqct.errors import HRpQCTError

__all__ = [
    "Requirement",
    "REQUIREMENTS",
    "GROUPS",
    "TORCH_VERSION",
    "TORCH_CPU_INDEX",
    "InstallStep",
    "MissingDependencies",
    "missing_packages",
    "detect_nvidia_gpu",
    "install_plan",
    "confirmation_text",
    "ensure_packages",
]

TORCH_VERSION = "2.13.0"  # requirements/lock.txt
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
MIN_PYTHON = (3, 10)  # pyproject.toml requires-python


@dataclass(frozen=True)
class Requirement:
    """A package: the module to import, the pip requirement, and what needs it."""

    module: str
    requirement: str
    groups: tuple[str, ...]


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
    Requirement("torch", f"torch=={TORCH_VERSION}", ("seg",)),
    Requirement("transformers", "transformers>=4.40", ("seg",)),
    Requirement("safetensors", "safetensors>=0.4", ("seg",)),
    Requirement("pywt", "PyWavelets>=1.4", ("radiomics",)),
    Requirement("pyarrow", "pyarrow>=14", ("radiomics",)),
    Requirement("radiomics", "pyradiomics>=3.0.1a1", ("radiomics",)),
)
GROUPS = ("core", "seg", "radiomics")
_BUILD_TOOLS = (("setuptools", "setuptools"), ("wheel", "wheel"), ("versioneer", "versioneer"))


class MissingDependencies(HRpQCTError):
    """Packages are missing and were not installed (declined, failed, or wrong Python)."""


@dataclass(frozen=True)
class InstallStep:
    """One ``pip install`` call: its arguments (as for ``slicer.util.pip_install``) and why."""

    args: tuple[str, ...]
    description: str

    def command(self) -> str:
        return "pip install " + " ".join(self.args)


Finder = Callable[[str], object]


def missing_packages(groups: Iterable[str] = GROUPS, find: Finder = importlib.util.find_spec
                     ) -> list[Requirement]:
    """The requirements of ``groups`` whose module cannot be found (in REQUIREMENTS order)."""
    groups = set(groups)
    unknown = groups - set(GROUPS)
    if unknown:
        raise ValueError(f"unknown dependency groups {sorted(unknown)}; use {GROUPS}")
    out = []
    for req in REQUIREMENTS:
        if groups & set(req.groups):
            try:
                found = find(req.module) is not None
            except (ImportError, ValueError):
                found = False
            if not found:
                out.append(req)
    return out


def detect_nvidia_gpu(run: Callable[..., subprocess.CompletedProcess] = subprocess.run,
                      which: Callable[[str], Optional[str]] = shutil.which) -> bool:
    """True if ``nvidia-smi -L`` lists a GPU (the NVIDIA driver is installed and sees one)."""
    exe = which("nvidia-smi")
    if not exe:
        return False
    try:
        proc = run([exe, "-L"], capture_output=True, text=True, timeout=15)
    except (OSError, subprocess.SubprocessError):
        return False
    return proc.returncode == 0 and any(
        line.strip().startswith("GPU ") for line in (proc.stdout or "").splitlines())


def _torch_step(system: str, gpu: bool, index_url: Optional[str]) -> tuple[InstallStep, str]:
    """The torch install step and a sentence for the user saying what was chosen and why."""
    if index_url:
        return (InstallStep(("torch==" + TORCH_VERSION, "--index-url", index_url),
                            f"PyTorch {TORCH_VERSION} from {index_url}"),
                f"PyTorch {TORCH_VERSION} from {index_url} (HRPQCT_TORCH_INDEX_URL).")
    if system == "Darwin":
        return (InstallStep((f"torch=={TORCH_VERSION}",), f"PyTorch {TORCH_VERSION} (macOS)"),
                f"PyTorch {TORCH_VERSION} for macOS (CPU and Apple GPU).")
    if gpu and system == "Linux":
        return (InstallStep((f"torch=={TORCH_VERSION}",), f"PyTorch {TORCH_VERSION} (CUDA)"),
                f"PyTorch {TORCH_VERSION} with CUDA for the NVIDIA GPU found (a download of "
                "several GB).")
    cpu = InstallStep((f"torch=={TORCH_VERSION}+cpu", "--extra-index-url", TORCH_CPU_INDEX),
                      f"PyTorch {TORCH_VERSION}, CPU build")
    if gpu:
        return cpu, (f"PyTorch {TORCH_VERSION}, CPU build (about 200 MB). An NVIDIA GPU was found,"
                     " but the CUDA build for Windows depends on the driver: to use the GPU, "
                     "install PyTorch with the SlicerPyTorch extension (module 'PyTorch Utils') "
                     "or set HRPQCT_TORCH_INDEX_URL, then apply again.")
    return cpu, (f"PyTorch {TORCH_VERSION}, CPU build (about 200 MB; no NVIDIA GPU found, so "
                 "the several-GB CUDA build is not needed).")


def install_plan(missing: Sequence[Requirement], *, system: Optional[str] = None,
                 gpu: Optional[bool] = None, index_url: Optional[str] = None,
                 find: Finder = importlib.util.find_spec) -> tuple[list[InstallStep], str]:
    """The ``pip install`` steps for ``missing`` and a note on the PyTorch choice ("" if none).

    Order: the plain packages in one step; PyTorch alone (its own index); transformers and
    safetensors; PyRadiomics' build tools, then PyRadiomics without build isolation.
    ``system``/``gpu`` default to this machine (``platform.system()``, :func:`detect_nvidia_gpu`).
    """
    system = system or platform.system()
    index_url = index_url if index_url is not None else os.environ.get("HRPQCT_TORCH_INDEX_URL")
    names = {r.module for r in missing}
    steps: list[InstallStep] = []
    note = ""
    plain = [r.requirement for r in missing
             if r.module not in ("torch", "transformers", "safetensors", "radiomics")]
    if plain:
        steps.append(InstallStep(tuple(plain), "packages the HRpQCT core needs"))
    if "torch" in names:
        if gpu is None:
            gpu = detect_nvidia_gpu()
        step, note = _torch_step(system, gpu, index_url or None)
        steps.append(step)
    seg_rest = [r.requirement for r in missing if r.module in ("transformers", "safetensors")]
    if seg_rest:
        steps.append(InstallStep(tuple(seg_rest), "SegFormer model code (transformers)"))
    if "radiomics" in names:
        tools = [pip for mod, pip in _BUILD_TOOLS if _absent(mod, find)]
        if tools:
            steps.append(InstallStep(tuple(tools), "build tools for PyRadiomics"))
        rad = next(r for r in missing if r.module == "radiomics")
        steps.append(InstallStep(("--no-build-isolation", rad.requirement),
                                 "PyRadiomics (built from source)"))
    return steps, note


def _absent(module: str, find: Finder) -> bool:
    try:
        return find(module) is None
    except (ImportError, ValueError):
        return True


def confirmation_text(missing: Sequence[Requirement], steps: Sequence[InstallStep],
                      note: str) -> str:
    """What the confirmation dialog says: the packages, the PyTorch choice, the pip commands."""
    lines = ["HRpQCT needs Python packages that this Slicer does not have yet:", "",
             ", ".join(r.requirement for r in missing), ""]
    if note:
        lines += [note, ""]
    lines += ["They will be installed into Slicer's Python with:"]
    lines += [f"  {s.command()}" for s in steps]
    lines += ["", "This downloads from the Python Package Index (and PyTorch's server for "
              "PyTorch) and can take several minutes. Slicer may need a restart afterwards. "
              "Install now?"]
    return "\n".join(lines)


def ensure_packages(groups: Iterable[str], *, confirm: Callable[[str], bool],
                    install: Callable[[list[str]], object],
                    find: Finder = importlib.util.find_spec, system: Optional[str] = None,
                    gpu: Optional[bool] = None, index_url: Optional[str] = None,
                    python: tuple[int, int] = tuple(sys.version_info[:2])) -> list[InstallStep]:
    """Make the packages of ``groups`` importable: nothing to do, or ask, then install.

    ``confirm(text) -> bool`` asks the user (``slicer.util.confirmOkCancelDisplay`` in Slicer);
    ``install(args)`` runs one pip install (``slicer.util.pip_install``). Returns the steps run
    (empty when nothing was missing). Raises :class:`MissingDependencies` when the user declines,
    an install step fails, something is still missing afterwards, or Python is too old.
    """
    groups = tuple(groups)
    missing = missing_packages(groups, find)
    if not missing:
        return []
    if tuple(python) < MIN_PYTHON:
        raise MissingDependencies(
            f"HRpQCT needs Python {MIN_PYTHON[0]}.{MIN_PYTHON[1]} or newer; this Slicer has "
            f"Python {python[0]}.{python[1]}. Use a Slicer release with a newer Python.")
    steps, note = install_plan(missing, system=system, gpu=gpu, index_url=index_url, find=find)
    if not confirm(confirmation_text(missing, steps, note)):
        raise MissingDependencies(
            "not installed (declined): " + ", ".join(r.requirement for r in missing))
    for step in steps:
        try:
            install(list(step.args))
        except Exception as exc:  # noqa: BLE001  pip failures come as several types
            raise MissingDependencies(f"installing {step.description} failed "
                                      f"({step.command()}): {exc}") from exc
    importlib.invalidate_caches()
    still = missing_packages(groups, find)
    if still:
        raise MissingDependencies(
            "still missing after installation: " + ", ".join(r.requirement for r in still)
            + " (restart Slicer and try again; see the Python console for pip's output)")
    return steps
