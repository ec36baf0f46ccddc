"""Module parameters <-> MRML parameter node (the dependency installer: test_slicer_deps.py)."""

from __future__ import annotations

import typing
from dataclasses import fields
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


def test_round_trip_through_the_wrapper_and_a_saved_scene(fake_slicer, tmp_path):
    scene = slicer.vtkMRMLScene()
    vol = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "scan")
    seg = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "regions")
    wrapper = P.parameter_node_class(P.RadiomicsParameters)
    assert wrapper.__name__ == "RadiomicsParameterNode"
    assert set(wrapper.allParameters) == {f.name for f in fields(P.RadiomicsParameters)}
    node = P.parameter_node(scene, "HRpQCTRadiomics")
    p = P.RadiomicsParameters(input_volume=vol, input_segmentation=seg, preset="file",
                              preset_file="/x/params.yaml", regions=("MT", "AT"),
                              band_distances_mm=(2.0, 10.0), stats=("mean", "sd"),
                              output_file="/x/f.parquet", slices="0:10:2")
    P.from_dataclass(p, wrapper(node))
    assert node.GetNodeReferenceID("input_volume") == vol.GetID()
    w = wrapper(node)  # typed attributes: lists (the wrapper's type for a tuple field), nodes
    assert w.regions == ["MT", "AT"] and w.band_distances_mm == [2.0, 10.0]
    assert w.input_volume is vol and w.preset == "file"
    assert P.to_dataclass(P.RadiomicsParameters, w) == p  # and back to tuples
    # saved with the scene and read back: values and node references survive
    scene.SetURL(str(tmp_path / "scene.mrml"))
    assert scene.Commit()
    scene2 = slicer.vtkMRMLScene()
    scene2.SetURL(str(tmp_path / "scene.mrml"))
    assert scene2.Connect()
    back2 = P.to_dataclass(P.RadiomicsParameters,
                           wrapper(P.parameter_node(scene2, "HRpQCTRadiomics")))
    assert back2.input_volume.GetName() == "scan"
    assert back2.input_segmentation.GetName() == "regions"
    assert (back2.regions, back2.band_distances_mm, back2.stats, back2.slices) == (
        ("MT", "AT"), (2.0, 10.0), ("mean", "sd"), "0:10:2")
    assert scene2.GetNumberOfNodesByClass("vtkMRMLScriptedModuleNode") == 1


def test_wrapper_defaults_and_removed_node(fake_slicer):
    scene = slicer.vtkMRMLScene()
    vol = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "scan")
    w = P.parameter_node_class(P.SegmentationParameters)(P.parameter_node(scene, "HRpQCTSeg"))
    assert P.to_dataclass(P.SegmentationParameters, w) == P.SegmentationParameters()
    w.input_volume = vol
    scene.RemoveNode(vol)
    assert w.input_volume is None


def test_choices_ranges_and_node_types_are_enforced(fake_slicer):
    # the annotations made from the field metadata (Choice, WithinRange, the node class)
    scene = slicer.vtkMRMLScene()
    w = P.parameter_node_class(P.SegmentationParameters)(P.parameter_node(scene, "HRpQCTSeg"))
    with pytest.raises(ValueError, match="choices"):
        w.device = "gpu"
    with pytest.raises(ValueError):
        w.batch_size = 65
    with pytest.raises(TypeError, match="vtkMRMLScalarVolumeNode"):
        w.input_volume = scene.AddNewNodeByClass("vtkMRMLTableNode")
    with pytest.raises(TypeError, match="str"):  # as the real StringSerializer: no Path
        w.output_folder = ROOT
    w.device, w.batch_size, w.refine_only = "cpu", 64, "split"
    assert (w.device, w.batch_size, w.refine_only) == ("cpu", 64, "split")


def test_the_wrapper_stand_in_refuses_misuse(fake_slicer):
    # what the real slicer.parameterNodeWrapper refuses, the stand-in refuses too
    from fakes.slicer_env import child_widget_variables, load_ui
    from slicer.parameterNodeWrapper import Choice, parameterNodeWrapper

    with pytest.raises(ImportError):
        exec("from slicer.parameterNodeWrapper import parameterNodeDataclass", {})
    with pytest.raises(Exception, match="serializer"):
        @parameterNodeWrapper
        class NoTuples:  # the real wrapper has no serializer for tuple[str, ...]
            names: tuple[str, ...] = ("a",)

    @parameterNodeWrapper
    class Paths:
        output_folder: str = ""
        device: str = "auto"

    scene = slicer.vtkMRMLScene()
    node = scene.AddNewNodeByClass("vtkMRMLScriptedModuleNode")
    ui = child_widget_variables(load_ui(ROOT / "HRpQCTSeg" / "Resources" / "UI" / "HRpQCTSeg.ui"))
    ui.outputFolderEdit.setProperty("SlicerParameterName", "output_folder")
    with pytest.raises(ValueError, match="input_volume"):  # the .ui names parameters Paths lacks
        Paths(node).connectGui(ui)
    for name, child in vars(ui).items():
        if child.property("SlicerParameterName") not in (None, "output_folder"):
            child.setProperty("SlicerParameterName", None)
    with pytest.raises(RuntimeError, match="ctkPathLineEdit"):  # no connector for a str path
        Paths(node).connectGui(ui)
    ui.outputFolderEdit.setProperty("SlicerParameterName", None)
    ui.deviceComboBox.setProperty("SlicerParameterName", "device")
    with pytest.raises(RuntimeError, match="Choice"):  # a combo box needs the Choice annotation
        Paths(node).connectGui(ui)

    Device = parameterNodeWrapper(type("Device", (), {  # (this file's annotations are strings)
        "__annotations__": {"device": typing.Annotated[str, Choice(["auto", "cpu"])]},
        "device": "auto"}))
    d = Device(node)
    tag = d.connectGui(ui)
    assert [ui.deviceComboBox.itemText(i) for i in range(ui.deviceComboBox.count)] == [
        "auto", "cpu"]
    ui.deviceComboBox.currentIndex = 1
    assert d.device == "cpu"
    d.device = "auto"
    assert ui.deviceComboBox.currentIndex == 0
    d.disconnectGui(tag)
    ui.deviceComboBox.currentIndex = 1
    assert d.device == "auto"


def test_the_stand_in_implements_only_names_the_real_wrapper_has(monkeypatch):
    # its names are checked against slicer_api.json at import: one missing name fails it
    import importlib
    import json as _json

    from fakes import qt as fq

    data = _json.loads(fq.API_FILE.read_text(encoding="utf-8"))
    data["releases"]["v5.10.0"]["parameterNodeWrapper"]["exports"].remove("WithinRange")
    monkeypatch.setattr(fq, "_api", lambda: data)
    import fakes.parameter_node_wrapper as fpnw

    with pytest.raises(fq.UnknownSlicerName, match="WithinRange"):
        importlib.reload(fpnw)
    monkeypatch.undo()
    importlib.reload(fpnw)


@pytest.mark.parametrize("module, cls", [("HRpQCTSeg", "SegmentationParameters"),
                                         ("HRpQCTRadiomics", "RadiomicsParameters"),
                                         ("HRpQCTClassify", "ClassifyParameters")])
def test_ui_parameter_names_are_fields_of_the_modules_parameters(module, cls):
    import xml.etree.ElementTree as ET

    root = ET.parse(ROOT / module / "Resources" / "UI" / f"{module}.ui").getroot()
    names = [p.findtext("string") for p in root.iter("property")
             if p.get("name") == "SlicerParameterName"]
    assert names and all(p.get("stdset") == "0" for p in root.iter("property")
                         if p.get("name") == "SlicerParameterName")
    assert set(names) <= {f.name for f in fields(getattr(P, cls))}
    assert len(names) == len(set(names))
