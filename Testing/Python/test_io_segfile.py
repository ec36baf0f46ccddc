"""Slicer .seg.nrrd: written with names, ids, colours, labels and terminology; read and remapped."""

from __future__ import annotations

import shutil
from importlib.resources import files

import numpy as np
import pytest

from hrpqct.errors import InputError
from hrpqct.io import read_labelmap, read_pair, write_image, write_labelmap, write_segmentation
from hrpqct.regions import MODEL_CLASSES, REGIONS
from hrpqct.volume import Volume

SPACING = (0.0607, 0.0607, 0.1)
ORIGIN = (3.0, -4.0, 5.5)
TH = 0.2
ROT = np.array([[1.0, 0.0, 0.0], [0.0, np.cos(TH), -np.sin(TH)], [0.0, np.sin(TH), np.cos(TH)]])


@pytest.fixture()
def labels() -> Volume:
    a = np.zeros((4, 10, 12), np.uint8)
    for r in REGIONS:  # region r fills one column block; region 4 (FT) left empty on purpose
        if r.code != "FT":
            a[:, 1:9, r.label] = r.label
    return Volume(a, spacing=SPACING, origin=ORIGIN, direction=ROT.ravel(), unit="label")


def _slicer_data(name: str) -> str:
    return str(files("slicerio") / "data" / name)


def test_written_file_reads_back_in_slicerio(tmp_path, labels):
    import slicerio

    p = write_segmentation(labels, tmp_path / "regions.seg.nrrd")
    assert [f.name for f in tmp_path.iterdir()] == ["regions.seg.nrrd"]
    seg = slicerio.read_segmentation(str(p))
    assert len(seg["segments"]) == len(REGIONS)
    for s, r in zip(seg["segments"], REGIONS):
        assert s["id"] == r.code
        assert s["name"] == r.name
        assert s["labelValue"] == r.label and s["layer"] == 0
        np.testing.assert_allclose(s["color"], np.array(r.color) / 255.0, atol=1e-6)
        t = s["terminology"]
        assert t["category"][:2] == [r.category.scheme, r.category.value]
        assert t["type"][:2] == [r.type.scheme, r.type.value]
        assert t["anatomicRegion"][:2] == [r.anatomic_region.scheme, r.anatomic_region.value]
    np.testing.assert_array_equal(seg["voxels"].transpose(2, 1, 0), labels.array)
    expected = np.eye(4)
    expected[:3, :3] = ROT @ np.diag(SPACING)
    expected[:3, 3] = ORIGIN
    np.testing.assert_allclose(seg["ijkToLPS"], expected, atol=1e-9)
    np.testing.assert_array_equal(slicerio.segment_mask(seg, "Skin").transpose(2, 1, 0),
                                  labels.array == 5)


def test_written_file_reads_back_in_slicer_mrml(tmp_path, labels):
    slicer = pytest.importorskip("slicer")
    import vtk
    from vtk.util.numpy_support import vtk_to_numpy

    p = write_segmentation(labels, tmp_path / "regions.seg.nrrd")
    scene = slicer.vtkMRMLScene()
    logic = slicer.vtkSlicerSegmentationsModuleLogic()
    logic.SetMRMLScene(scene)
    node = scene.AddNewNodeByClass("vtkMRMLSegmentationNode")
    storage = scene.AddNewNodeByClass("vtkMRMLSegmentationStorageNode")
    storage.SetFileName(str(p))
    assert storage.ReadData(node) == 1
    seg = node.GetSegmentation()
    assert seg.GetNumberOfSegments() == len(REGIONS)
    for i, r in enumerate(REGIONS):
        sid = seg.GetNthSegmentID(i)
        s = seg.GetSegment(sid)
        assert sid == r.code and s.GetName() == r.name and s.GetLabelValue() == r.label
        np.testing.assert_allclose(s.GetColor(), r.color_float, atol=1e-5)
        tag = vtk.reference("")
        assert s.GetTag("TerminologyEntry", tag)
        assert f"{r.type.scheme}^{r.type.value}^" in str(tag)
    assert seg.GetConversionParameter("Reference image geometry").endswith(";0;11;0;9;0;3;")
    out = scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode")
    assert logic.ExportAllSegmentsToLabelmapNode(
        node, out, slicer.vtkSegmentation.EXTENT_REFERENCE_GEOMETRY)
    img = out.GetImageData()
    dims = img.GetDimensions()
    arr = vtk_to_numpy(img.GetPointData().GetScalars()).reshape(dims[::-1])
    np.testing.assert_array_equal(arr, labels.array)
    # Slicer works in RAS: x and y flip sign
    np.testing.assert_allclose(out.GetOrigin(), (-ORIGIN[0], -ORIGIN[1], ORIGIN[2]), atol=1e-6)
    np.testing.assert_allclose(out.GetSpacing(), SPACING, rtol=1e-9)


def test_own_file_reads_back_with_geometry(tmp_path, labels):
    back = read_labelmap(write_segmentation(labels, tmp_path / "r.seg.nrrd"))
    assert back.unit == "label" and back.array.dtype == np.uint8
    np.testing.assert_array_equal(back.array, labels.array)
    np.testing.assert_allclose(back.spacing, SPACING, rtol=1e-9)
    np.testing.assert_allclose(back.origin, ORIGIN, atol=1e-9)
    np.testing.assert_allclose(back.direction, ROT.ravel(), atol=1e-9)
    assert [s["name"] for s in back.meta["segments"]] == [r.name for r in REGIONS]
    # write_labelmap with .seg.nrrd goes the same way
    again = read_labelmap(write_labelmap(labels, tmp_path / "again.seg.nrrd"))
    np.testing.assert_array_equal(again.array, labels.array)


def test_segments_mapped_by_name_code_id_and_terminology(tmp_path):
    import slicerio

    shape = (6, 5, 4)  # i, j, k
    seg = slicerio.create_segmentation(shape, np.eye(4))
    masks = [np.zeros(shape, bool) for _ in range(4)]
    for n, m in enumerate(masks):
        m[n, :, :] = True
    slicerio.add_segment(seg, masks[0], {"id": "Segment_1", "name": "tibia TRABECULAR"})
    slicerio.add_segment(seg, masks[1], {"id": "Segment_2", "name": "tc"})
    slicerio.add_segment(seg, masks[2], {"id": "AT", "name": "fat I painted"})
    mt = next(r for r in REGIONS if r.code == "MT")
    slicerio.add_segment(seg, masks[3], {"id": "Segment_4", "name": "calf", "terminology": {
        "contextName": "x", "category": ["SCT", "85756007", "Tissue"],
        "type": [mt.type.scheme, mt.type.value, "Muscle"],
        "anatomicRegion": [mt.anatomic_region.scheme, mt.anatomic_region.value, "Lower leg"]}})
    assert [s["labelValue"] for s in seg["segments"]] == [1, 2, 3, 4]  # file values differ
    p = tmp_path / "painted.seg.nrrd"
    slicerio.write_segmentation(str(p), seg)
    vol = read_labelmap(p)
    a = vol.array.transpose(2, 1, 0)
    assert [int(a[n, 0, 0]) for n in range(4)] == [2, 1, 7, 6]
    assert int(a[4:].max()) == 0


def test_model_class_table(tmp_path):
    import slicerio

    seg = slicerio.create_segmentation((3, 3, 3), np.eye(4))
    m = np.zeros((3, 3, 3), bool)
    m[0] = True
    slicerio.add_segment(seg, m, {"id": "x", "name": "Soft tissue"})
    p = tmp_path / "m.seg.nrrd"
    slicerio.write_segmentation(str(p), seg)
    assert int(read_labelmap(p, table=MODEL_CLASSES).array.max()) == 5
    with pytest.raises(InputError, match="Soft tissue"):
        read_labelmap(p)  # not one of the 7 final regions


def test_foreign_segments_error_keep_drop():
    import slicerio

    path = _slicer_data("Segmentation.seg.nrrd")  # written by Slicer: ribs, lungs, ...
    with pytest.raises(InputError) as err:
        read_labelmap(path)
    assert path in str(err.value) and "ribs" in str(err.value) and "unmatched" in str(err.value)
    kept = read_labelmap(path, unmatched="keep")
    ref = slicerio.read_segmentation(path)["voxels"].transpose(2, 1, 0)
    np.testing.assert_array_equal(kept.array, ref)
    assert kept.meta["segments"][0]["name"] == "ribs"
    assert int(read_labelmap(path, unmatched="drop").array.max()) == 0


def test_overlapping_layers_refused_with_names():
    path = _slicer_data("SegmentationOverlapping.seg.nrrd")
    with pytest.raises(InputError) as err:
        read_labelmap(path, unmatched="keep")
    msg = str(err.value)
    assert path in msg and "overlapping sphere" in msg and "overlap in" in msg


def test_disjoint_layers_are_merged(tmp_path):
    import slicerio

    voxels = np.zeros((2, 4, 4, 3), np.uint8)
    voxels[0, 0] = 1  # layer 0, label 1
    voxels[1, 2] = 1  # layer 1, label 1, elsewhere
    seg = {"voxels": voxels, "ijkToLPS": np.eye(4), "segments": [
        {"id": "TC", "name": "Tibia cortical", "labelValue": 1, "layer": 0},
        {"id": "FC", "name": "Fibula cortical", "labelValue": 1, "layer": 1},
    ]}
    p = tmp_path / "layers.seg.nrrd"
    slicerio.write_segmentation(str(p), seg)
    a = read_labelmap(p).array.transpose(2, 1, 0)
    assert int(a[0].min()) == 1 and int(a[2].min()) == 3
    assert int((a > 0).sum()) == 2 * 4 * 3


def test_plain_nrrd_from_slicer_is_detected_as_segmentation(tmp_path, labels):
    p = write_segmentation(labels, tmp_path / "r.seg.nrrd")
    plain = tmp_path / "Segmentation.nrrd"
    shutil.copy(p, plain)
    np.testing.assert_array_equal(read_labelmap(plain).array, labels.array)


def test_read_pair_with_segmentation(tmp_path, labels):
    img = labels.with_array(labels.array.astype(np.int16) * 100, unit="HU")
    ip = write_image(img, tmp_path / "scan.nii.gz")
    mp = write_segmentation(labels, tmp_path / "scan.seg.nrrd")
    image, mask = read_pair(ip, mp)
    assert image.unit == "HU" and mask.unit == "label"
    np.testing.assert_array_equal(mask.array, labels.array)


def test_label_counts_in_blocks_equal_bincount():
    from hrpqct.volume import label_counts, present_labels

    a = np.random.default_rng(0).integers(0, 8, (5, 60, 61)).astype(np.uint8)
    for block in (7, 1000, 1 << 24):
        assert np.array_equal(label_counts(a, block=block), np.bincount(a.ravel()))
        assert np.array_equal(label_counts(a, minlength=12, block=block), np.bincount(a.ravel(), minlength=12))
    assert present_labels(np.array([[0, 3], [3, 7]], np.uint8)) == [0, 3, 7]
    with pytest.raises(ValueError):
        label_counts(np.array([-1, 2]))


def test_writing_a_segmentation_needs_little_memory_beyond_the_labels(tmp_path, monkeypatch):
    # a whole scan's label map is 0.9 GB: writing it must not make 64-bit copies (np.bincount
    # on uint8 did: 8x the map); numpy allocations are visible to tracemalloc
    import tracemalloc

    import hrpqct.volume

    monkeypatch.setattr(hrpqct.volume, "LABEL_COUNT_BLOCK", 1 << 14)  # as a whole scan vs 1 << 24
    lab = np.zeros((24, 256, 256), np.uint8)
    for r in REGIONS:
        lab[:, 10 * r.label: 10 * r.label + 8, :] = r.label
    vol = Volume(lab, spacing=(0.06, 0.06, 0.06), unit="label")
    tracemalloc.start()
    try:
        write_segmentation(vol, tmp_path / "x.seg.nrrd")
        write_labelmap(vol, tmp_path / "x.nrrd", table=REGIONS)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2.5 * lab.nbytes, f"peak {peak / lab.nbytes:.1f} x the label map"
    assert np.array_equal(read_labelmap(tmp_path / "x.seg.nrrd").array, lab)
