"""Module parameters <-> MRML parameter node (the dependency installer: test_slicer_deps.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

slicer = pytest.importorskip("slicer", reason="slicer-core (the MRML library) is not installed")
if not hasattr(slicer, "vtkMRMLScene"):
    pytest.skip("the 'slicer' module has no vtkMRMLScene (not slicer-core)",
                allow_module_level=True)

from hrpqct.method import RADIOMICS  # noqa: E402
from hrpqct.regions import RADIOMICS_REGIONS  # noqa: E402
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
