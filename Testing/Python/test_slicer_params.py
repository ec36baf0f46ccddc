"""Module parameters <-> MRML parameter node, and the first-use dependency installer."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

slicer = pytest.importorskip("slicer", reason="slicer-core (the MRML library) is not installed")
if not hasattr(slicer, "vtkMRMLScene"):
    pytest.skip("the 'slicer' module has no vtkMRMLScene (not slicer-core)",
                allow_module_level=True)

from hrpqct.method import RADIOMICS  # noqa: E402
from hrpqct.regions import RADIOMICS_REGIONS  # noqa: E402
from hrpqct_slicer import deps as D  # noqa: E402
from hrpqct_slicer import params as P  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


# --- parameters ---------------------------------------------------------------------------------
def test_defaults_come_from_method_and_regions():
    r = P.RadiomicsParameters()
    assert r.preset == RADIOMICS.preset == "paper"
    assert r.regions == RADIOMICS_REGIONS == ("TC", "TT", "FC", "FT", "MT", "AT")
    assert r.stats == ("mean",) and r.band_distances_mm == ()
    s = P.SegmentationParameters()
    assert (s.device, s.fast_cpu, s.batch_size, s.assume_unit) == ("auto", True, 0, "HU")
    assert s.input_volume is None and s.output_segmentation is None


def test_parameter_node_is_a_singleton_per_module():
    scene = slicer.vtkMRMLScene()
    a = P.parameter_node(scene, "HRpQCTSeg")
    assert a is P.parameter_node(scene, "HRpQCTSeg")
    b = P.parameter_node(scene, "HRpQCTRadiomics")
    assert b.GetID() != a.GetID()
    assert a.GetAttribute("ModuleName") == "HRpQCTSeg" and a.GetSingletonTag() == "HRpQCTSeg"
    assert scene.GetNumberOfNodesByClass("vtkMRMLScriptedModuleNode") == 2


def test_round_trip_through_node_and_saved_scene(tmp_path):
    scene = slicer.vtkMRMLScene()
    vol = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "scan")
    seg = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "regions")
    node = P.parameter_node(scene, "HRpQCTRadiomics")
    p = P.RadiomicsParameters(input_volume=vol, input_segmentation=seg, preset="file",
                              preset_file="/x/params.yaml", regions=("MT", "AT"),
                              band_distances_mm=(2.0, 10.0), stats=("mean", "sd"),
                              output_file="/x/f.parquet", slices="0:10:2")
    P.write_parameters(p, node)
    assert node.GetParameter("regions") == '["MT", "AT"]'
    assert node.GetParameter("band_distances_mm") == "[2.0, 10.0]"
    assert node.GetNodeReferenceID("input_volume") == vol.GetID()
    back = P.read_parameters(P.RadiomicsParameters, node)
    assert back == p
    # saved with the scene and read back: values and node references survive
    scene.SetURL(str(tmp_path / "scene.mrml"))
    assert scene.Commit()
    scene2 = slicer.vtkMRMLScene()
    scene2.SetURL(str(tmp_path / "scene.mrml"))
    assert scene2.Connect()
    node2 = P.parameter_node(scene2, "HRpQCTRadiomics")
    back2 = P.read_parameters(P.RadiomicsParameters, node2)
    assert back2.input_volume.GetName() == "scan"
    assert back2.input_segmentation.GetName() == "regions"
    assert (back2.regions, back2.band_distances_mm, back2.stats, back2.slices) == (
        ("MT", "AT"), (2.0, 10.0), ("mean", "sd"), "0:10:2")
    assert scene2.GetNumberOfNodesByClass("vtkMRMLScriptedModuleNode") == 1


def test_removed_node_and_bad_values_fall_back(caplog):
    scene = slicer.vtkMRMLScene()
    vol = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "scan")
    node = P.parameter_node(scene, "HRpQCTSeg")
    P.write_parameters(P.SegmentationParameters(input_volume=vol, batch_size=4, fast_cpu=False),
                       node)
    node.SetParameter("batch_size", "four")
    node.SetParameter("fast_cpu", "maybe")
    scene.RemoveNode(vol)
    back = P.read_parameters(P.SegmentationParameters, node)
    assert back.input_volume is None
    assert back.batch_size == 0 and back.fast_cpu is True  # defaults, with a warning each
    assert sum("unreadable" in r.message for r in caplog.records) == 2
    assert P.read_parameters(P.SegmentationParameters, None) == P.SegmentationParameters()


# --- dependencies -------------------------------------------------------------------------------
class FakePython:
    """A Python whose packages are a set; ``install`` adds what pip would install."""

    def __init__(self, have):
        self.have = set(have)
        self.calls: list[list[str]] = []

    def find(self, module):
        return object() if module in self.have else None

    def install(self, args):
        self.calls.append(list(args))
        names = {"scipy": "scipy", "pandas": "pandas", "scikit-image": "skimage",
                 "torch": "torch", "transformers": "transformers", "safetensors": "safetensors",
                 "pyradiomics": "radiomics", "PyWavelets": "pywt", "pyarrow": "pyarrow",
                 "setuptools": "setuptools", "wheel": "wheel", "versioneer": "versioneer"}
        for a in args:
            key = re.split(r"[<>=]", a)[0]
            if key in names:
                self.have.add(names[key])


SLICER_HAS = {"numpy", "SimpleITK", "nrrd", "slicerio", "matplotlib", "typer", "rich", "yaml",
              "setuptools", "wheel"}


def test_nothing_missing_means_no_question_and_no_install():
    py = FakePython({r.module for r in D.REQUIREMENTS})
    asked = []
    assert D.ensure_packages(D.GROUPS, confirm=asked.append, install=py.install,
                             find=py.find) == []
    assert asked == [] and py.calls == []


def test_cpu_machine_gets_cpu_torch_after_confirmation():
    py = FakePython(SLICER_HAS)
    asked = []
    steps = D.ensure_packages(("core", "seg"), confirm=lambda t: asked.append(t) or True,
                              install=py.install, find=py.find, system="Linux", gpu=False,
                              index_url="")
    assert py.calls == [
        ["scipy>=1.11", "scikit-image>=0.22", "pandas>=2.1"],
        [f"torch=={D.TORCH_VERSION}+cpu", "--extra-index-url", D.TORCH_CPU_INDEX],
        ["transformers>=4.40", "safetensors>=0.4"],
    ]
    assert [s.args for s in steps] == [tuple(c) for c in py.calls]
    text = asked[0]
    assert "CPU build" in text and "pip install scipy>=1.11" in text and "torch" in text
    assert D.missing_packages(("core", "seg"), py.find) == []


def test_declined_installs_nothing():
    py = FakePython(SLICER_HAS)
    with pytest.raises(D.MissingDependencies, match="declined"):
        D.ensure_packages(("core",), confirm=lambda t: False, install=py.install, find=py.find)
    assert py.calls == []


def test_torch_choice_per_machine():
    missing = [r for r in D.REQUIREMENTS if r.module == "torch"]
    pin = f"torch=={D.TORCH_VERSION}"
    cases = {("Linux", True): (pin,), ("Darwin", False): (pin,), ("Darwin", True): (pin,),
             ("Linux", False): (pin + "+cpu", "--extra-index-url", D.TORCH_CPU_INDEX),
             ("Windows", False): (pin + "+cpu", "--extra-index-url", D.TORCH_CPU_INDEX),
             ("Windows", True): (pin + "+cpu", "--extra-index-url", D.TORCH_CPU_INDEX)}
    for (system, gpu), args in cases.items():
        steps, note = D.install_plan(missing, system=system, gpu=gpu, index_url="")
        assert [s.args for s in steps] == [args], (system, gpu)
        assert note
    steps, note = D.install_plan(missing, system="Windows", gpu=True, index_url="")
    assert "PyTorch Utils" in note  # says how to get the GPU build
    steps, _ = D.install_plan(missing, system="Windows", gpu=True,
                              index_url="https://download.pytorch.org/whl/cu126")
    assert steps[0].args == (pin, "--index-url", "https://download.pytorch.org/whl/cu126")


def test_pyradiomics_built_without_isolation_after_build_tools():
    py = FakePython(SLICER_HAS - {"wheel"} | {"scipy", "skimage", "pandas"})
    D.ensure_packages(("radiomics",), confirm=lambda t: True, install=py.install, find=py.find)
    assert py.calls == [["PyWavelets>=1.4", "pyarrow>=14"], ["wheel", "versioneer"],
                        ["--no-build-isolation", "pyradiomics>=3.0.1a1"]]


def test_failed_or_ineffective_install_and_old_python_raise():
    py = FakePython(SLICER_HAS)

    def broken(args):
        raise subprocess.CalledProcessError(1, ["pip", *args])

    with pytest.raises(D.MissingDependencies, match="failed"):
        D.ensure_packages(("core",), confirm=lambda t: True, install=broken, find=py.find)
    with pytest.raises(D.MissingDependencies, match="still missing"):
        D.ensure_packages(("core",), confirm=lambda t: True, install=lambda a: None,
                          find=py.find)
    with pytest.raises(D.MissingDependencies, match="Python 3.10"):
        D.ensure_packages(("core",), confirm=lambda t: True, install=py.install, find=py.find,
                          python=(3, 9))
    with pytest.raises(ValueError, match="unknown dependency groups"):
        D.missing_packages(("gui",))


def test_gpu_detection_reads_nvidia_smi():
    ok = subprocess.CompletedProcess([], 0, stdout="GPU 0: NVIDIA A100 (UUID: GPU-1)\n")
    none = subprocess.CompletedProcess([], 9, stdout="NVIDIA-SMI has failed\n")
    assert D.detect_nvidia_gpu(run=lambda *a, **k: ok, which=lambda n: "/usr/bin/nvidia-smi")
    assert not D.detect_nvidia_gpu(run=lambda *a, **k: none, which=lambda n: "/x")
    assert not D.detect_nvidia_gpu(run=lambda *a, **k: ok, which=lambda n: None)


def test_requirements_match_pyproject_and_lock():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    declared = set(meta["dependencies"])
    for extra in ("seg", "radiomics"):
        declared |= set(meta["optional-dependencies"][extra])
    for req in D.REQUIREMENTS:
        if req.module == "torch":
            continue
        assert req.requirement in declared, req
    lock = (ROOT / "requirements" / "lock.txt").read_text(encoding="utf-8").split()
    assert f"torch=={D.TORCH_VERSION}" in lock
    assert f"{D.MIN_PYTHON[0]}.{D.MIN_PYTHON[1]}" in meta["requires-python"]
    # this environment (the test suite's) has every package the modules ask for
    assert D.missing_packages() == []


def test_checking_imports_nothing_heavy():
    code = ("import sys; import hrpqct_slicer.deps as d; d.missing_packages(); "
            "import hrpqct_slicer.params, hrpqct_slicer.jobs, hrpqct_slicer.worker; "
            "print(sorted(m for m in ('torch', 'pandas', 'slicer', 'vtk', 'radiomics', 'scipy') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
