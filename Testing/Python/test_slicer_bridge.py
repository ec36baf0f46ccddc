"""The MRML bridge against the real MRML library (slicer-core): round trips with exact values."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

slicer = pytest.importorskip("slicer", reason="slicer-core (the MRML library) is not installed")
if not hasattr(slicer, "vtkMRMLScene"):
    pytest.skip("the 'slicer' module has no vtkMRMLScene (not slicer-core)",
                allow_module_level=True)

import vtk  # noqa: E402

import hrpqct_slicer as B  # noqa: E402
from hrpqct import regions as R  # noqa: E402
from hrpqct.errors import GeometryError, InputError  # noqa: E402
from hrpqct.terminology import terminology_entry  # noqa: E402
from hrpqct.volume import Calibration, Volume  # noqa: E402


def _rotation(ax: float, az: float) -> np.ndarray:
    cx, sx, cz, sz = np.cos(ax), np.sin(ax), np.cos(az), np.sin(az)
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return rz @ rx


SHAPE = (6, 24, 32)  # z, y, x
SPACING = (0.0607, 0.0607, 0.082)  # x, y, z (mm): anisotropic on purpose
ORIGIN = (-12.5, 40.25, 103.0)  # LPS, mm
DIRECTION = tuple(_rotation(np.deg2rad(12.0), np.deg2rad(30.0)).ravel())


@pytest.fixture()
def scene():
    return slicer.vtkMRMLScene()


@pytest.fixture()
def logic(scene):
    return B.segmentations_logic(scene)


@pytest.fixture()
def image():
    rng = np.random.default_rng(7)
    values = rng.integers(-1000, 4000, SHAPE).astype(np.int16)
    return Volume(values, SPACING, ORIGIN, DIRECTION, unit="HU",
                  calibration=Calibration(0.2409, 8192.0, 1603.51904, -391.209015))


def _regions_labels() -> np.ndarray:
    """All 7 regions, plus a slice with only bone: exact, known voxel counts per label."""
    lab = np.zeros(SHAPE, np.uint8)
    lab[:, 2:20, 2:30] = 5  # skin band
    lab[:, 3:19, 3:29] = 7  # fat
    lab[:, 5:17, 5:27] = 6  # muscle
    lab[:, 7:14, 7:16] = 1  # tibia cortex
    lab[:, 8:13, 8:15] = 2  # tibia trabecular
    lab[:, 10:15, 19:25] = 3  # fibula cortex
    lab[:, 11:14, 20:24] = 4  # fibula trabecular
    lab[5] = 0
    lab[5, 8:13, 8:15] = 2
    return lab


def _names(seg_node) -> dict[str, str]:
    s = seg_node.GetSegmentation()
    return {s.GetNthSegmentID(i): s.GetNthSegment(i).GetName()
            for i in range(s.GetNumberOfSegments())}


def _seg(scene, logic, image, lab, ref=None, **kwargs):
    """labelmap_to_segmentation of ``lab`` on ``image``'s grid."""
    labels = image.with_array(lab, unit="label")
    return B.labelmap_to_segmentation(scene, logic, labels, reference=ref, **kwargs)


# --- volumes ------------------------------------------------------------------------------------

def test_volume_round_trip_exact_geometry(scene, image):
    node = B.volume_to_node(scene, image, name="scan")
    assert node.IsA("vtkMRMLScalarVolumeNode") and not node.IsA("vtkMRMLLabelMapVolumeNode")
    back = B.node_to_volume(node)
    assert back.array.dtype == np.int16 and np.array_equal(back.array, image.array)
    assert np.allclose(back.spacing, SPACING, atol=1e-12)
    assert np.allclose(back.origin, ORIGIN, atol=1e-9)
    assert np.allclose(back.direction, DIRECTION, atol=1e-12)
    assert back.unit == "HU" and back.calibration == image.calibration
    assert node.GetVoxelValueUnits().GetCodeValue() == "[hnsf'U]"


def test_ijk_to_ras_matches_itk_physical_points(scene, image):
    """Independent check: SimpleITK's index->LPS point, flipped to RAS, is the node's IJK->RAS."""
    pytest.importorskip("SimpleITK")
    itk_image = image.to_sitk()
    node = B.volume_to_node(scene, image)
    m = vtk.vtkMatrix4x4()
    node.GetIJKToRASMatrix(m)
    for ijk in [(0, 0, 0), (31, 0, 0), (0, 23, 5), (17, 9, 3)]:
        lps = np.array(itk_image.TransformIndexToPhysicalPoint(ijk))
        ras = np.array(m.MultiplyPoint((*map(float, ijk), 1.0))[:3])
        assert np.allclose(ras, lps * [-1, -1, 1], atol=1e-9), (ijk, ras, lps)
    assert np.isclose(image.array[3, 9, 17], B.node_to_volume(node).array[3, 9, 17])


def test_float_and_label_volumes(scene):
    values = np.linspace(-1, 1, 60, dtype=np.float32).reshape(3, 4, 5)
    f = Volume(values, (0.5, 0.6, 0.7), unit="mgHA/ccm")
    back = B.node_to_volume(B.volume_to_node(scene, f))
    assert back.array.dtype == np.float32 and np.array_equal(back.array, f.array)
    assert back.unit == "mgHA/ccm"
    lab = f.with_array((f.array > 0).astype(np.uint8), unit="label")
    node = B.volume_to_node(scene, lab)
    assert node.IsA("vtkMRMLLabelMapVolumeNode")
    assert B.node_to_volume(node).unit == "label"
    node.SetAttribute("HRpQCT.unit", None)
    assert B.node_to_volume(node).unit == "label"  # label map node without our attribute


def test_transformed_node_refused(scene, image):
    node = B.volume_to_node(scene, image)
    transform = scene.AddNewNodeByClass("vtkMRMLLinearTransformNode")
    node.SetAndObserveTransformNodeID(transform.GetID())
    with pytest.raises(InputError, match="transform"):
        B.node_to_volume(node)


# --- label map -> segmentation -> label map ----------------------------------------------------

def test_labelmap_to_segmentation_segments(scene, logic, image):
    lab = _regions_labels()
    lab[lab == 4] = 3  # no fibula trabecular region in this map
    ref = B.volume_to_node(scene, image, name="scan")
    seg = _seg(scene, logic, image, lab, ref)
    s = seg.GetSegmentation()
    ids = [s.GetNthSegmentID(i) for i in range(s.GetNumberOfSegments())]
    assert ids == ["TC", "TT", "FC", "SK", "MT", "AT"]
    for sid in ["TC", "TT", "FC", "SK", "MT", "AT"]:
        r, segment = R.region(sid), s.GetSegment(sid)
        assert segment.GetName() == r.name
        assert np.allclose(segment.GetColor(), r.color_float, atol=1e-9)
        tag = vtk.reference("")
        assert segment.GetTerminologyEntryTagName() == "TerminologyEntry"
        assert segment.GetTag("TerminologyEntry", tag) and str(tag) == terminology_entry(r)
        assert segment.GetLabelValue() == r.label
        assert not segment.GetNameAutoGenerated() and not segment.GetColorAutoGenerated()
    assert seg.GetNodeReferenceID("referenceImageGeometryRef") == ref.GetID()
    # no temporary nodes left behind
    names = [scene.GetNthNode(i).GetName() for i in range(scene.GetNumberOfNodes())]
    assert not [n for n in names if "import" in n or "temporary" in n]


def test_round_trip_exact_7_regions(scene, logic, image):
    lab = _regions_labels()
    ref = B.volume_to_node(scene, image)
    seg = _seg(scene, logic, image, lab, ref)
    back = B.segmentation_to_labelmap(scene, logic, seg, ref)
    assert back.array.dtype == np.uint8 and np.array_equal(back.array, lab)
    assert back.unit == "label" and back.same_geometry(image)
    counts = np.bincount(back.array.ravel(), minlength=8)
    assert counts.tolist() == np.bincount(lab.ravel(), minlength=8).tolist()


def test_round_trip_model_classes(scene, logic, image):
    lab = np.zeros(SHAPE, np.uint8)
    lab[:, 2:20, 2:30] = 5
    lab[:, 7:14, 7:16] = 1
    lab[:, 8:13, 8:15] = 2
    ref = B.volume_to_node(scene, image)
    seg = _seg(scene, logic, image, lab, ref, table="model")
    assert _names(seg) == {"TC": "Tibia cortical", "TT": "Tibia trabecular", "ST": "Soft tissue"}
    st = seg.GetSegmentation().GetSegment("ST")
    assert st.GetTerminology() == terminology_entry(R.model_class("ST")) and st.GetLabelValue() == 5
    back = B.segmentation_to_labelmap(scene, logic, seg, ref, table="model")
    assert np.array_equal(back.array, lab)


def test_bad_label_maps(scene, logic, image):
    ref = B.volume_to_node(scene, image)
    lab = np.zeros(SHAPE, np.uint8)
    lab[0, 0, 0] = 9
    with pytest.raises(InputError, match=r"\[9\]"):
        B.labelmap_to_segmentation(scene, logic, image.with_array(lab, unit="label"), ref)
    lab[0, 0, 0] = 6
    with pytest.raises(InputError, match=r"\[6\]"):  # 6 is not a model class
        _seg(scene, logic, image, lab, ref, table="model")
    shifted = Volume(lab, SPACING, (ORIGIN[0] + 1.0, *ORIGIN[1:]), DIRECTION, unit="label")
    with pytest.raises(GeometryError, match="differs from reference"):
        B.labelmap_to_segmentation(scene, logic, shifted, ref)
    with pytest.raises(InputError, match="integers"):
        B.labelmap_to_segmentation(scene, logic, image.with_array(lab.astype(np.float32)), ref)


def _add_segment_from_mask(scene, logic, seg_node, mask: np.ndarray, grid: Volume, segment_id: str,
                           name: str, terminology: str | None = None) -> None:
    """What an annotator does: a new segment (own id, own name) painted on the same grid."""
    other = _seg(scene, logic, grid, mask.astype(np.uint8), table=(R.region(1),), name="scratch")
    segment = other.GetSegmentation().GetSegment("TC")
    segment.SetName(name)
    segment.RemoveTag(segment.GetTerminologyEntryTagName())
    if terminology:
        segment.SetTerminology(terminology)
    assert seg_node.GetSegmentation().AddSegment(segment, segment_id)
    scene.RemoveNode(other)


def test_corrected_segmentation_comes_back(scene, logic, image):
    """Rename, reorder, recolour, delete and add segments: still our label values."""
    lab = _regions_labels()
    ref = B.volume_to_node(scene, image)
    seg = _seg(scene, logic, image, lab, ref)
    s = seg.GetSegmentation()
    s.GetSegment("MT").SetName("muscle (checked)")  # renamed: id still says MT
    s.GetSegment("AT").SetColor(0.1, 0.2, 0.3)
    s.SetSegmentIndex("AT", 0)  # reordered
    s.RemoveSegment("FT")  # deleted -> absent
    s.RemoveSegment("SK")
    skin = lab == 5
    _add_segment_from_mask(scene, logic, seg, skin, image, "Segment_1", "skin")  # by name
    expected = lab.copy()
    expected[expected == 4] = 0
    assert B.match_segments(seg)["Segment_1"].code == "SK"
    assert B.match_segments(seg)["MT"].code == "MT"
    back = B.segmentation_to_labelmap(scene, logic, seg, ref)
    assert np.array_equal(back.array, expected)


def test_segment_found_by_terminology(scene, logic, image):
    lab = _regions_labels()
    ref = B.volume_to_node(scene, image)
    seg = _seg(scene, logic, image, lab, ref)
    seg.GetSegmentation().RemoveSegment("FC")
    _add_segment_from_mask(scene, logic, seg, lab == 3, image, "Segment_7", "outer shell",
                           terminology=terminology_entry(R.region("FC")))
    assert B.match_segments(seg)["Segment_7"].code == "FC"
    assert np.array_equal(B.segmentation_to_labelmap(scene, logic, seg, ref).array, lab)


def test_unknown_and_duplicate_segments_are_reported(scene, logic, image):
    lab = _regions_labels()
    ref = B.volume_to_node(scene, image)
    seg = _seg(scene, logic, image, lab, ref)
    _add_segment_from_mask(scene, logic, seg, lab == 6, image, "Segment_9", "my notes")
    with pytest.raises(InputError, match=r"'my notes' \(id 'Segment_9'\) match no region"):
        B.segmentation_to_labelmap(scene, logic, seg, ref)
    seg.GetSegmentation().GetSegment("Segment_9").SetName("Tibia cortical")
    with pytest.raises(InputError, match=r"TC <- 'TC', 'Segment_9'"):
        B.match_segments(seg)


def test_overlapping_segments_are_refused(scene, logic, image):
    lab = _regions_labels()
    ref = B.volume_to_node(scene, image)
    seg = _seg(scene, logic, image, lab, ref)
    seg.GetSegmentation().RemoveSegment("SK")
    overlap = (lab == 5) | (lab == 7)  # skin drawn over the fat as well
    _add_segment_from_mask(scene, logic, seg, overlap, image, "SK", "Skin")
    assert seg.GetSegmentation().GetNumberOfLayers() > 1
    n = int(np.count_nonzero(lab == 7))
    with pytest.raises(InputError, match=rf"SK/AT: {n} voxels"):
        B.segmentation_to_labelmap(scene, logic, seg, ref)


def test_color_table_node_has_names_colours_terminology(scene):
    node = B.color_table_node(scene, "regions")
    assert node.GetNumberOfColors() == 8
    rgba = [0.0] * 4
    for r in R.REGIONS:
        assert node.GetColorName(r.label) == r.name
        node.GetColor(r.label, rgba)
        assert np.allclose(rgba[:3], r.color_float)
        for coded, code in ((node.GetTerminologyCategory(r.label), r.category),
                            (node.GetTerminologyType(r.label), r.type),
                            (node.GetTerminologyRegion(r.label), r.anatomic_region)):
            got = (coded.GetCodingSchemeDesignator(), coded.GetCodeValue(), coded.GetCodeMeaning())
            assert got == (code.scheme, code.value, code.meaning)


# --- tables --------------------------------------------------------------------------------------

def test_summary_table_round_trip(scene):
    df = pd.DataFrame(
        {
            "name": [r.name for r in R.REGIONS],
            "area_mm2": np.array([12.5, 30.25, 2.0, 1.5, 50.0, 210.0, 90.125]),
            "voxels": np.array([1, 2, 3, 4, 5, 6, 2**40], dtype=np.int64),
            "slices": np.arange(7, dtype=np.int32),
            "radiomics": [r.code in R.RADIOMICS_REGIONS for r in R.REGIONS],
            "mean_hu": np.array([1200.5, 300.0, np.nan, 250.0, -20.0, 60.0, -100.0],
                                dtype=np.float32),
        },
        index=pd.Index(R.codes(), name="region"),
    )
    node = B.dataframe_to_table_node(scene, df, name="Regions")
    table = node.GetTable()
    assert table.GetNumberOfRows() == 7 and table.GetNumberOfColumns() == 7  # index + 6
    assert table.GetColumnByName("region").GetValue(5) == "MT"
    assert isinstance(table.GetColumnByName("voxels"), vtk.vtkDataArray)
    back = B.table_node_to_dataframe(node)
    pd.testing.assert_frame_equal(back, df)
    # a plain RangeIndex stays plain; an unnamed custom index comes back unnamed
    plain = df.reset_index()
    def round_trip(frame):
        return B.table_node_to_dataframe(B.dataframe_to_table_node(scene, frame))

    pd.testing.assert_frame_equal(round_trip(plain), plain)
    unnamed = df.rename_axis(None)
    pd.testing.assert_frame_equal(round_trip(unnamed), unnamed)


def test_table_made_in_slicer_is_read(scene):
    node = scene.AddNewNodeByClass("vtkMRMLTableNode", "typed by hand")
    table = vtk.vtkTable()
    a = vtk.vtkDoubleArray()
    a.SetName("x")
    for v in (1.5, 2.5):
        a.InsertNextValue(v)
    b = vtk.vtkStringArray()
    b.SetName("label")
    for v in ("TC", "MT"):
        b.InsertNextValue(v)
    table.AddColumn(a)
    table.AddColumn(b)
    node.SetAndObserveTable(table)
    df = B.table_node_to_dataframe(node)
    assert df["x"].tolist() == [1.5, 2.5] and df["label"].tolist() == ["TC", "MT"]


def test_table_refuses_what_it_cannot_store(scene):
    with pytest.raises(InputError, match="missing values in a text column"):
        B.dataframe_to_table_node(scene, pd.DataFrame({"s": ["a", None]}))
    with pytest.raises(InputError, match="duplicate column"):
        B.dataframe_to_table_node(scene, pd.DataFrame([[1, 2]], columns=["a", "a"]))


# --- confidence plot -----------------------------------------------------------------------------

def test_confidence_plot(scene, image):
    conf = np.array([0.98, 0.61, 0.97, 0.55, 0.99, 0.61])
    plot = B.confidence_plot(scene, conf, name="Slice confidence")
    df = B.table_node_to_dataframe(plot.table)
    assert df["slice"].tolist() == [0, 1, 2, 3, 4, 5]
    assert np.array_equal(df["confidence"].to_numpy(), conf)
    assert df["rank"].tolist() == [5, 2, 4, 1, 6, 3]  # ties keep slice order
    assert plot.series.GetTableNodeID() == plot.table.GetID()
    assert (plot.series.GetXColumnName(), plot.series.GetYColumnName()) == ("slice", "confidence")
    assert plot.chart.GetPlotSeriesNodeID() == plot.series.GetID()
    assert plot.chart.GetXAxisTitle() == "Slice index"
    assert B.least_confident_slices(conf, 2).tolist() == [3, 1]
    with pytest.raises(InputError, match="NaN"):
        B.least_confident_slices(np.array([0.5, np.nan]))


def test_slice_center_ras(scene, image):
    node = B.volume_to_node(scene, image)
    k = 4
    centre_ijk = np.array([(SHAPE[2] - 1) / 2, (SHAPE[1] - 1) / 2, k])
    d = np.asarray(DIRECTION).reshape(3, 3)
    lps = np.asarray(ORIGIN) + d @ (np.asarray(SPACING) * centre_ijk)
    assert np.allclose(B.slice_center_ras(node, k), lps * [-1, -1, 1], atol=1e-9)
    with pytest.raises(InputError, match="outside"):
        B.slice_center_ras(node, SHAPE[0])


# --- .seg.nrrd -----------------------------------------------------------------------------------

def test_seg_nrrd_save_load_and_slicerio(scene, logic, image, tmp_path):
    lab = _regions_labels()
    lab[lab == 3] = 0  # one region absent
    ref = B.volume_to_node(scene, image)
    seg = _seg(scene, logic, image, lab, ref)
    path = B.save_segmentation(scene, seg, tmp_path / "case01.seg.nrrd")
    assert [p.name for p in tmp_path.iterdir()] == ["case01.seg.nrrd"]  # no temporary file left

    loaded = B.load_segmentation(scene, path)
    assert loaded.GetName() == "case01"
    assert _names(loaded) == _names(seg)
    for sid in _names(seg):
        a, b = seg.GetSegmentation().GetSegment(sid), loaded.GetSegmentation().GetSegment(sid)
        assert np.allclose(a.GetColor(), b.GetColor(), atol=1e-6)
        assert a.GetTerminology() == b.GetTerminology()
    assert np.array_equal(B.segmentation_to_labelmap(scene, logic, loaded, ref).array, lab)

    slicerio = pytest.importorskip("slicerio")
    info = slicerio.read_segmentation(str(path))
    segments = {s["id"]: s for s in info["segments"]}
    assert sorted(segments) == sorted(_names(seg))
    for sid, s in segments.items():
        r = R.region(sid)
        assert s["name"] == r.name and s["labelValue"] == r.label
        assert np.allclose(s["color"], r.color_float, atol=1e-5)
        assert s["terminology"]["type"] == [r.type.scheme, r.type.value, r.type.meaning]
        a = r.anatomic_region
        assert s["terminology"]["anatomicRegion"] == [a.scheme, a.value, a.meaning]
    voxels = np.asarray(info["voxels"])
    assert sorted(np.unique(voxels).tolist()) == [0, 1, 2, 4, 5, 6, 7]


def test_seg_nrrd_errors(scene, logic, image, tmp_path):
    ref = B.volume_to_node(scene, image)
    seg = _seg(scene, logic, image, _regions_labels(), ref)
    with pytest.raises(InputError, match=r"must end in \.seg\.nrrd"):
        B.save_segmentation(scene, seg, tmp_path / "case.nrrd")
    with pytest.raises(InputError, match="does not exist"):
        B.save_segmentation(scene, seg, tmp_path / "nowhere" / "case.seg.nrrd")
    with pytest.raises(InputError, match="no such file"):
        B.load_segmentation(scene, tmp_path / "missing.seg.nrrd")
    junk = tmp_path / "junk.seg.nrrd"
    junk.write_bytes(b"not a nrrd file")
    with pytest.raises(InputError, match="not a readable"):
        B.load_segmentation(scene, junk)
