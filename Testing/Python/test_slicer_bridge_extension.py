"""The Slicer extension's layout: CMake files (configured against a stub Slicer) and module files.

There is no Slicer SDK here, so ``find_package(Slicer)`` is answered by a stub that defines the
Slicer/CTK macros the project calls and records what each would copy. This checks our CMake
logic (every listed file exists, the core packages and Resources are bundled once, at the paths
Python imports them from), not Slicer's macros themselves.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import types
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]
MODULES = ("HRpQCTSeg", "HRpQCTRadiomics", "HRpQCTClassify")
LIB = "lib/Slicer-5.12/qt-scripted-modules"

_STUB_CONFIG = r"""
set(Slicer_USE_FILE "${CMAKE_CURRENT_LIST_DIR}/UseSlicer.cmake")
set(Slicer_EXTENSION_GENERATE_CONFIG "${CMAKE_CURRENT_LIST_DIR}/GenerateConfig.cmake")
set(Slicer_EXTENSION_CPACK "${CMAKE_CURRENT_LIST_DIR}/CPack.cmake")
set(Slicer_QTSCRIPTEDMODULES_LIB_DIR "@LIB@")
set(Slicer_INSTALL_QTSCRIPTEDMODULES_LIB_DIR "@LIB@")
set(HRPQCT_STUB_MANIFEST "${CMAKE_BINARY_DIR}/manifest.txt")
set(HRPQCT_STUB_INSTALLED "${CMAKE_BINARY_DIR}/installed")
file(WRITE "${HRPQCT_STUB_MANIFEST}" "")
file(REMOVE_RECURSE "${HRPQCT_STUB_INSTALLED}")

function(_stub_require path)
  if(NOT EXISTS "${path}")
    message(FATAL_ERROR "listed file does not exist: ${path}")
  endif()
endfunction()

function(slicerMacroBuildScriptedModule)
  cmake_parse_arguments(MY "WITH_GENERIC_TESTS;WITH_SUBDIR;VERBOSE" "NAME" "SCRIPTS;RESOURCES" ${ARGN})
  if(NOT "${MY_UNPARSED_ARGUMENTS}" STREQUAL "")
    message(FATAL_ERROR "slicerMacroBuildScriptedModule: unknown arguments ${MY_UNPARSED_ARGUMENTS}")
  endif()
  file(APPEND "${HRPQCT_STUB_MANIFEST}" "generic-tests ${MY_NAME} ${MY_WITH_GENERIC_TESTS}\n")
  foreach(f ${MY_SCRIPTS} ${MY_RESOURCES})
    _stub_require("${CMAKE_CURRENT_SOURCE_DIR}/${f}")
    file(APPEND "${HRPQCT_STUB_MANIFEST}" "module ${MY_NAME} ${f}\n")
    # Slicer's macro copies the scripts and resources into the qt-scripted-modules folder and
    # installs them from there, keeping their relative paths
    configure_file("${CMAKE_CURRENT_SOURCE_DIR}/${f}" "${HRPQCT_STUB_INSTALLED}/@LIB@/${f}" COPYONLY)
  endforeach()
endfunction()

function(slicer_add_python_unittest)
  cmake_parse_arguments(MY "" "SCRIPT;TESTNAME_PREFIX" "SLICER_ARGS" ${ARGN})
  _stub_require("${CMAKE_CURRENT_SOURCE_DIR}/${MY_SCRIPT}")
  file(APPEND "${HRPQCT_STUB_MANIFEST}" "unittest ${MY_SCRIPT}\n")
endfunction()

macro(ctkMacroCompilePythonScript)
  cmake_parse_arguments(MY "NO_INSTALL_SUBDIR;GLOBAL_TARGET"
    "TARGET_NAME;SOURCE_DIR;DESTINATION_DIR;INSTALL_DIR" "SCRIPTS;RESOURCES" ${ARGN})
  file(RELATIVE_PATH _rel "${CMAKE_BINARY_DIR}/@LIB@" "${MY_DESTINATION_DIR}")
  foreach(f ${MY_SCRIPTS} ${MY_RESOURCES})
    _stub_require("${MY_SOURCE_DIR}/${f}")
    # CTK's macro copies each listed file to DESTINATION_DIR/<f> and installs the folder with
    # install(DIRECTORY): its content (NO_INSTALL_SUBDIR) or the folder itself into INSTALL_DIR
    if(MY_NO_INSTALL_SUBDIR)
      set(_inst "${HRPQCT_STUB_INSTALLED}/${MY_INSTALL_DIR}")
    else()
      get_filename_component(_leaf "${MY_DESTINATION_DIR}" NAME)
      set(_inst "${HRPQCT_STUB_INSTALLED}/${MY_INSTALL_DIR}/${_leaf}")
    endif()
    configure_file("${MY_SOURCE_DIR}/${f}" "${_inst}/${f}" COPYONLY)
    if(_rel)
      file(APPEND "${HRPQCT_STUB_MANIFEST}" "bundle ${MY_TARGET_NAME} ${_rel}/${f}\n")
    else()
      file(APPEND "${HRPQCT_STUB_MANIFEST}" "bundle ${MY_TARGET_NAME} ${f}\n")
    endif()
  endforeach()
  file(APPEND "${HRPQCT_STUB_MANIFEST}"
    "install ${MY_TARGET_NAME} ${MY_INSTALL_DIR} nosubdir=${MY_NO_INSTALL_SUBDIR}\n")
endmacro()
""".replace("@LIB@", LIB)

_STUB_USE = r"""
enable_testing()
if(NOT DEFINED EXTENSION_LICENSE_FILE)
  set(EXTENSION_LICENSE_FILE "${CMAKE_CURRENT_LIST_DIR}/Slicer-License.txt")
endif()
if(NOT DEFINED EXTENSION_README_FILE)
  set(EXTENSION_README_FILE "${CMAKE_CURRENT_LIST_DIR}/Slicer-README.txt")
endif()
"""

_STUB_GENERATE = r"""
foreach(v NAME HOMEPAGE CATEGORY CONTRIBUTORS ICONURL DEPENDS STATUS SCREENSHOTURLS LICENSE_FILE
    README_FILE DESCRIPTION)
  file(APPEND "${HRPQCT_STUB_MANIFEST}" "extension ${v}=${EXTENSION_${v}}\n")
endforeach()
"""


@pytest.fixture(scope="module")
def manifest(tmp_path_factory) -> list[str]:
    cmake = shutil.which("cmake")
    if cmake is None:
        pytest.skip("cmake is not installed")
    has_cc = shutil.which("cc") or shutil.which("gcc")
    has_cxx = shutil.which("c++") or shutil.which("g++")
    if not (has_cc and has_cxx):
        pytest.skip("project() needs a C and a C++ compiler, as in any Slicer extension build")
    stub = tmp_path_factory.mktemp("slicer-stub")
    (stub / "SlicerConfig.cmake").write_text(_STUB_CONFIG, encoding="utf-8")
    # as Slicer's UseSlicer.cmake: an extension that sets no licence or read-me gets Slicer's
    (stub / "UseSlicer.cmake").write_text(_STUB_USE, encoding="utf-8")
    (stub / "GenerateConfig.cmake").write_text(_STUB_GENERATE, encoding="utf-8")
    (stub / "CPack.cmake").write_text("", encoding="utf-8")
    build = tmp_path_factory.mktemp("build")
    proc = subprocess.run(
        [cmake, "-S", str(ROOT), "-B", str(build), f"-DSlicer_DIR={stub}", "-DBUILD_TESTING=ON",
         f"-DHRPQCT_TEST_PYTHON={sys.executable}"],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    ctest_file = build / "Testing" / "CTestTestfile.cmake"
    lines = (build / "manifest.txt").read_text(encoding="utf-8").splitlines()
    ctest = [f"ctest {line}" for line in ctest_file.read_text(encoding="utf-8").splitlines() if "add_test" in line]
    return lines + ctest + [f"installed-at {build / 'installed' / LIB}"]


def _installed(manifest) -> Path:
    return Path(next(line.split(" ", 1)[1] for line in manifest if line.startswith("installed-at ")))


def test_extension_description(manifest):
    ext = dict(line.split(" ", 1)[1].split("=", 1)
               for line in manifest if line.startswith("extension "))
    assert ext["NAME"] == "HRpQCT"
    # torch via the PyTorch extension, PyRadiomics via SlicerRadiomics (hrpqct_slicer.deps)
    assert ext["DEPENDS"].split() == ["PyTorch", "SlicerRadiomics"]
    assert ext["CATEGORY"] and ext["CONTRIBUTORS"] and ext["HOMEPAGE"].startswith("https://")
    assert ext["ICONURL"].endswith("Resources/Icons/HRpQCT.png")
    assert (ROOT / "Resources/Icons/HRpQCT.png").is_file()


def _repo_file(url: str, homepage: str) -> Path:
    """The file of this repository a raw.githubusercontent.com URL of the homepage's repo names."""
    owner_repo = homepage.removeprefix("https://github.com/")
    prefix = f"https://raw.githubusercontent.com/{owner_repo}/main/"
    assert url.startswith(prefix), url
    return ROOT / url.removeprefix(prefix)


def test_icon_and_screenshot_urls_name_committed_pngs(manifest):
    # the ExtensionsIndex checker and the Extensions Manager need them (there were none)
    from PIL import Image

    ext = dict(line.split(" ", 1)[1].split("=", 1)
               for line in manifest if line.startswith("extension "))
    shots = ext["SCREENSHOTURLS"].split()
    assert len(shots) >= 3
    tracked = set(subprocess.run(["git", "-C", str(ROOT), "ls-files"], capture_output=True,
                                 text=True, check=True).stdout.split())
    for url in [ext["ICONURL"], *shots]:
        path = _repo_file(url, ext["HOMEPAGE"])
        assert str(path.relative_to(ROOT)) in tracked, url
        with Image.open(path) as im:
            assert im.format == "PNG" and min(im.size) >= 100, url


def test_extension_ships_its_own_apache_licence(manifest):
    # without EXTENSION_LICENSE_FILE the package carried Slicer's licence, and the
    # ExtensionsIndex checker wants a LICENSE file at the repository root
    ext = dict(line.split(" ", 1)[1].split("=", 1)
               for line in manifest if line.startswith("extension "))
    assert Path(ext["LICENSE_FILE"]) == ROOT / "LICENSE"
    assert Path(ext["README_FILE"]) == ROOT / "README.md"
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert text.split()[:3] == ["Apache", "License", "Version"] and "2.0, January 2004" in text
    assert "TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION" in text
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["license"] == "Apache-2.0"


def test_each_module_built_with_its_script_and_icon(manifest):
    for name in MODULES:
        assert f"module {name} {name}.py" in manifest
        assert f"module {name} Resources/Icons/{name}.png" in manifest
        assert f"module {name} Resources/UI/{name}.ui" in manifest  # the panel (loadUI)


def test_modules_have_generic_tests_and_register_their_self_test(manifest):
    # Slicer's "Reload and Test", the SelfTests module and the ExtensionsIndex CI need both
    for name in MODULES:
        assert f"generic-tests {name} TRUE" in manifest
        assert f"unittest {name}.py" in manifest


@pytest.mark.parametrize("name", MODULES)
def test_module_files_define_their_test_class(name):
    # ScriptedLoadableModule.runTest looks up <Module>Test in the module file
    tree = ast.parse((ROOT / name / f"{name}.py").read_text(encoding="utf-8"))
    classes = {c.name: c for c in tree.body if isinstance(c, ast.ClassDef)}
    test = classes.get(f"{name}Test")
    assert test is not None, f"{name}.py has no {name}Test class"
    assert [b.id for b in test.bases if isinstance(b, ast.Name)] == ["ScriptedLoadableModuleTest"]
    methods = {f.name for f in test.body if isinstance(f, ast.FunctionDef)}
    assert {"setUp", "runTest"} <= methods and any(m.startswith("test_") for m in methods)


def test_core_and_resources_bundled_once_at_import_paths(manifest):
    bundled = [line.split(" ", 2)[2] for line in manifest if line.startswith("bundle ")]
    assert len(bundled) == len(set(bundled))  # each file copied once, whichever module asked first
    for path in ("hrpqct/__init__.py", "hrpqct/regions.py", "hrpqct/terminology.py",
                 "hrpqct/volume.py", "hrpqct_slicer/__init__.py", "hrpqct_slicer/segmentations.py",
                 "hrpqct/resources/__init__.py", "hrpqct/resources/HRpQCT.term.json",
                 "hrpqct/resources/HRpQCT-AnatomicRegions.term.json", "hrpqct/resources/README.md"):
        assert path in bundled, path
    # every .py of the two packages is bundled (new files are picked up by the glob)
    for package in ("hrpqct", "hrpqct_slicer"):
        for py in (ROOT / "src" / package).rglob("*.py"):
            assert str(py.relative_to(ROOT / "src")) in bundled, py
    installs = [line for line in manifest if line.startswith("install ")]
    assert f"install HRpQCTCore {LIB} nosubdir=TRUE" in installs
    assert f"install HRpQCTResources {LIB}/hrpqct nosubdir=FALSE" in installs


def test_every_resource_file_is_installed(manifest):
    # the files the code reads (catalog.json once was not: HRpQCTSeg's panel then never opened)
    lib = _installed(manifest)
    tracked = subprocess.run(["git", "-C", str(ROOT), "ls-files", "Resources"], capture_output=True,
                             text=True, check=True).stdout.split()
    wanted = {Path(f).relative_to("Resources") for f in tracked
              if not (f.endswith(".py") and Path(f).parent != Path("Resources"))}
    assert Path("models/catalog.json") in wanted
    missing = sorted(str(f) for f in wanted if not (lib / "hrpqct" / "resources" / f).is_file())
    assert missing == []


_INSTALLED_PROBE = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in repr(f)]  # not the source tree
import hrpqct, hrpqct_slicer
from pathlib import Path
assert Path(hrpqct.__file__).is_relative_to(sys.argv[1]), hrpqct.__file__
assert Path(hrpqct_slicer.__file__).is_relative_to(sys.argv[1]), hrpqct_slicer.__file__
from hrpqct.seg.model import catalog
from hrpqct.radiomics.presets import PRESETS, preset_path
from hrpqct.terminology import ANATOMIC_FILE, TERMINOLOGY_FILE, resources_dir
out = {"catalog": [], "presets": {}, "terminology": []}
for e in catalog():
    p = e.path()
    out["catalog"].append([e.id, e.bundled, p is not None and (p / "model.safetensors").is_file()])
for name in PRESETS:
    out["presets"][name] = preset_path(name).is_file()
for f in (TERMINOLOGY_FILE, ANATOMIC_FILE):
    out["terminology"].append(json.loads((resources_dir() / f).read_text(encoding="utf-8")) != {})
print(json.dumps(out))
"""


def test_installed_tree_reads_its_resources(manifest):
    # import the packages from the installed tree (not the source tree) and read what the
    # modules read at set-up: the model catalogue and bundled models, the presets, the terminology
    lib = _installed(manifest)
    proc = subprocess.run([sys.executable, "-c", _INSTALLED_PROBE, str(lib)], capture_output=True,
                          text=True, timeout=300, env={**os.environ, "HRPQCT_MODELS_DIR": ""})
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert ["demo-synthetic", True, True] in out["catalog"]
    assert all(present for _, bundled, present in out["catalog"] if bundled)
    assert out["presets"] and all(out["presets"].values())
    assert out["terminology"] == [True, True]


def test_pytest_files_registered_with_ctest(manifest):
    tests = " ".join(line for line in manifest if line.startswith("ctest "))
    for name in ("test_terminology", "test_slicer_bridge", "test_slicer_bridge_extension"):
        assert f"py_hrpqct_{name}" in tests


# --- module files ------------------------------------------------------------------------------

class _FakeScriptedLoadableModule:
    def __init__(self, parent):
        self.parent = parent


def _load_module(name: str, monkeypatch) -> types.ModuleType:
    fake = types.ModuleType("slicer.ScriptedLoadableModule")
    fake.ScriptedLoadableModule = _FakeScriptedLoadableModule
    fake.ScriptedLoadableModuleTest = type("ScriptedLoadableModuleTest", (), {})
    fake.ScriptedLoadableModuleWidget = type("ScriptedLoadableModuleWidget", (), {})
    fake.ScriptedLoadableModuleLogic = type("ScriptedLoadableModuleLogic", (), {})
    if importlib.util.find_spec("slicer") is None:
        monkeypatch.setitem(sys.modules, "slicer", types.ModuleType("slicer"))
    monkeypatch.setitem(sys.modules, "slicer.ScriptedLoadableModule", fake)
    spec = importlib.util.spec_from_file_location(f"_module_{name}", ROOT / name / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# Every module has its widget (built against stand-ins of Slicer's Qt API in
# test_slicer_modules.py) and its logic.
def test_classify_module_has_its_logic(monkeypatch):
    module = _load_module("HRpQCTClassify", monkeypatch)
    parent = types.SimpleNamespace()
    module.HRpQCTClassify(parent)
    assert parent.title == "HRpQCT Classify" and parent.categories == ["HRpQCT"]
    assert isinstance(parent.dependencies, list) and parent.contributors
    assert "not built yet" not in parent.helpText and "NOT BUILT" not in module.__doc__
    assert "only seen synthetic phantoms" in parent.helpText and "<b>Apply</b>" in parent.helpText
    assert module.GUI_STATUS.startswith("built") and "not yet run in a real Slicer" in \
        module.GUI_STATUS
    assert parent.acknowledgementText
    assert module.logicInstalled()


@pytest.mark.parametrize("name", MODULES)
def test_module_icon_is_a_128px_png(name):
    from PIL import Image

    with Image.open(ROOT / name / "Resources" / "Icons" / f"{name}.png") as im:
        assert im.format == "PNG" and im.size == (128, 128)
