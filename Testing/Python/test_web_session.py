"""The browser app's work below the page (hrpqct_web.session), headless on slicer-core: opening
scans and segmentations (bad input changes nothing), saving without losing earlier versions,
the review order, export, and the serve command's address rules."""

from __future__ import annotations

import datetime as dt
import hashlib
import shutil

import numpy as np
import pytest

pytest.importorskip("slicer")

from hrpqct.errors import GeometryError, InputError  # noqa: E402
from hrpqct.regions import REGIONS  # noqa: E402


def _sha(p):
    return hashlib.sha256(p.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def phantom_dir(tmp_path_factory):
    from hrpqct.phantom.anatomy import Anatomy
    from hrpqct.phantom.files import write_phantom
    from hrpqct.phantom.render import Grid
    from hrpqct.phantom.scan import generate

    d = tmp_path_factory.mktemp("phantom")
    ph = generate(Anatomy(seed=3), Grid(size=96, n_slices=3))
    write_phantom(ph, d, overview=False)
    return d


@pytest.fixture()
def data(phantom_dir, tmp_path):
    shutil.copy(phantom_dir / "image.nrrd", tmp_path / "leg.nrrd")
    shutil.copy(phantom_dir / "regions.seg.nrrd", tmp_path / "leg.seg.nrrd")
    (tmp_path / "junk.nrrd").write_bytes(b"not a scan at all\n")
    (tmp_path / "leg_confidence.csv").write_text(
        "slice,mean_max_prob\n0,0.97\n1,0.91\n2,0.95\n", encoding="utf-8")
    return tmp_path


@pytest.fixture()
def session(data):
    import slicer

    from hrpqct_slicer import segmentations_logic
    from hrpqct_web.session import CorrectionSession

    scene = slicer.vtkMRMLScene()
    return CorrectionSession(scene, segmentations_logic(scene), data)


def _segment_ids(node):
    seg = node.GetSegmentation()
    return [seg.GetNthSegmentID(i) for i in range(seg.GetNumberOfSegments())]


def test_lists_scans_only(session, data):
    (data / "leg.previous-20260101T000000000000Z.seg.nrrd").write_bytes(b"x")
    shutil.copy(data / "leg.nrrd", data / "labels7.nrrd")
    assert session.list_scans() == ["junk.nrrd", "leg.nrrd"]


def test_open_scan_loads_its_segmentation_and_review_order(session, phantom_dir):
    from hrpqct.io import read_labelmap

    session.open_scan("leg.nrrd")
    assert _segment_ids(session.seg_node) == [r.segment_id for r in REGIONS]
    labels, kind = session.labels()
    assert kind == "regions"
    assert np.array_equal(labels.array, read_labelmap(phantom_dir / "labels7.nrrd").array)
    assert session.review_order == [1, 2, 0]
    import slicer

    slicer.vtkMRMLSliceNode.AddDefaultSliceOrientationPresets(session.scene, True)
    red = session.scene.AddNewNodeByClass("vtkMRMLSliceNode")
    red.SetOrientation("Axial")
    assert [session.next_review_slice()[:2] for _ in range(4)] == [(1, 1), (2, 2), (0, 3), (1, 1)]
    summary = session.summary()
    assert list(summary["code"]) == [r.code for r in REGIONS]
    assert int(summary["voxels"].sum()) == int(np.count_nonzero(labels.array))


def test_bad_input_changes_nothing(session, data):
    from hrpqct.io import write_segmentation
    from hrpqct.volume import Volume

    session.open_scan("leg.nrrd")
    node, before = session.seg_node, session.labels()[0].array.copy()
    saved = _sha(data / "leg.seg.nrrd")
    with pytest.raises(InputError, match="junk.nrrd"):
        session.open_scan("junk.nrrd")
    assert session.scan_path.name == "leg.nrrd" and session.seg_node is node
    other = np.zeros((2, 40, 50), dtype=np.uint8)
    other[:, 10:20, 10:30] = 1
    write_segmentation(Volume(other, spacing=(0.5, 0.5, 0.5), unit="label"), data / "o.seg.nrrd")
    with pytest.raises(GeometryError, match="o.seg.nrrd"):
        session.open_segmentation("o.seg.nrrd")
    assert session.seg_node is node
    assert np.array_equal(session.labels()[0].array, before)
    assert _sha(data / "leg.seg.nrrd") == saved


def test_save_keeps_every_earlier_version(session, data, monkeypatch):
    from hrpqct.io import read_segmentation_file
    import hrpqct_slicer

    session.open_scan("leg.nrrd")
    original = _sha(data / "leg.seg.nrrd")
    labels = session.labels()[0]
    edited = labels.array.copy()
    edited[1, :5, :5] = 4  # 25 voxels of fibula trabecular bone in a corner
    session._set_labels(labels.with_array(edited, unit="label"))
    t1 = dt.datetime(2026, 12, 3, 10, 0, 0, tzinfo=dt.timezone.utc)
    out = session.save(now=t1)
    assert out.previous.name == "leg.previous-20261203T100000000000Z.seg.nrrd"
    assert _sha(out.previous) == original
    back = read_segmentation_file(out.segmentation).array
    assert int(np.count_nonzero(back != labels.array)) == int(np.count_nonzero(edited != labels.array))
    assert out.confidence.name == "leg_confidence.csv"

    # a failing write leaves the last saved file in place (and the copy made before it)
    last = _sha(out.segmentation)

    def broken(*_a, **_k):
        raise InputError("disk full")

    monkeypatch.setattr(hrpqct_slicer, "save_segmentation", broken)
    with pytest.raises(InputError, match="disk full"):
        session.save(now=t1 + dt.timedelta(seconds=1))
    assert _sha(out.segmentation) == last
    kept = sorted(p.name for p in data.glob("leg.previous-*.seg.nrrd"))
    assert kept == ["leg.previous-20261203T100000000000Z.seg.nrrd",
                    "leg.previous-20261203T100001000000Z.seg.nrrd"]


def test_missing_regions_get_empty_segments_and_export(session, data):
    from hrpqct.export import read_manifest

    session.open_scan("leg.nrrd")
    labels = session.labels()[0]
    arr = labels.array.copy()
    arr[arr == 4] = 3  # no fibula trabecular voxel left
    session._set_labels(labels.with_array(arr, unit="label"))
    assert _segment_ids(session.seg_node) == [r.segment_id for r in REGIONS]
    case = session.export("training", "case-1")
    assert case.segmentation7.is_file()
    assert list(read_manifest(data / "training")["case_id"]) == ["case-1"]


def test_refine_split_after_an_edit(session):
    session.open_scan("leg.nrrd")
    result = session.refine("split")
    assert result.kind == "regions" and result.changed_voxels >= 0
    assert _segment_ids(session.seg_node) == [r.segment_id for r in REGIONS]


def test_serve_address_rules(tmp_path):
    from typer.testing import CliRunner

    from hrpqct._cli import app
    from hrpqct_web.commands import is_loopback

    assert is_loopback("127.0.0.1") and is_loopback("127.4.5.6") and is_loopback("::1")
    assert is_loopback("localhost") and not is_loopback("0.0.0.0")
    assert not is_loopback("192.168.1.5")
    import hrpqct.cli  # noqa: F401  registers the commands

    res = CliRunner().invoke(app, ["serve", "--host", "0.0.0.0", "--data", str(tmp_path)])
    assert res.exit_code != 0
    assert "--allow-remote" in str(res.exception) + res.output
