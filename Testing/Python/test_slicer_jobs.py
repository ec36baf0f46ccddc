"""Background runs below the HRpQCTSeg / HRpQCTRadiomics widgets, on the real MRML library.

* BackgroundJob with small stand-in worker scripts: progress, outputs moved only on success,
  failure messages, cancel (terminate, then kill), timeout.
* A real ``hrpqct segment`` subprocess (tiny SegFormer saved in the test, small phantom):
  progress parsed in order, results loaded into a vtkMRMLScene, cancel mid-run leaves nothing.
* Refine and export for training through the bridge on an edited segmentation node.
* The radiomics worker in a background process, checked against the in-process extraction.
"""

from __future__ import annotations

import json
import os
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

slicer = pytest.importorskip("slicer", reason="slicer-core (the MRML library) is not installed")
if not hasattr(slicer, "vtkMRMLScene"):
    pytest.skip("the 'slicer' module has no vtkMRMLScene (not slicer-core)",
                allow_module_level=True)

from vtk.util import numpy_support  # noqa: E402

import hrpqct_slicer as B  # noqa: E402
from hrpqct.errors import Cancelled, InputError  # noqa: E402
from hrpqct.export import read_manifest, training_labels  # noqa: E402
from hrpqct.io import read_labelmap, write_image  # noqa: E402
from hrpqct.regions import REGIONS  # noqa: E402
from hrpqct_slicer import jobs as J  # noqa: E402
from hrpqct_slicer import seg_logic as S  # noqa: E402

N_SLICES = 6


# --- stand-in workers ---------------------------------------------------------------------------
WORKER = textwrap.dedent("""
    import json, os, signal, sys, time
    staging, progress, mode = sys.argv[1], sys.argv[2], sys.argv[3]
    if mode == "stubborn":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    def emit(stage, done, total):
        with open(progress, "a", encoding="utf-8") as f:
            f.write(json.dumps({"stage": stage, "label": stage.title(), "done": done,
                                "total": total}) + "\\n")
    emit("read", 0, None)
    for k in range(4):
        emit("segment", k + 1, 4)
    with open(os.path.join(staging, "result.txt"), "w", encoding="utf-8") as f:
        f.write("partial" if mode != "ok" else "done")
    if mode == "fail":
        print("some output", flush=True)
        print("error: scan.nrrd: values are 'native'", file=sys.stderr, flush=True)
        sys.exit(2)
    if mode == "crash":
        print("Traceback (most recent call last):", flush=True)
        print("MemoryError", flush=True)
        sys.exit(1)
    if mode in ("hang", "stubborn"):
        emit("split", 1, 4)
        while True:
            time.sleep(0.1)
    emit("write", 0, None)
""")


def _job(tmp_path, mode, **kw):
    def argv(staging, progress):
        return [sys.executable, "-c", WORKER, str(staging), str(progress), mode]

    return J.BackgroundJob(argv, tmp_path / "out", env=J.child_environment(), **kw)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_read_progress_complete_lines_only(tmp_path):
    p = tmp_path / "p.jsonl"
    assert J.read_progress(p) == ([], 0)
    p.write_bytes(b'{"stage": "read", "label": "Reading", "done": 0, "total": null}\n'
                  b'not json\n{"stage": "segment", "done": 3, "total": 10}\n{"stage": "seg')
    events, off = J.read_progress(p)
    assert events == [J.Progress("read", "Reading", 0, None),
                      J.Progress("segment", "segment", 3, 10)]
    assert off == p.read_bytes().rfind(b"\n") + 1
    with open(p, "ab") as fh:
        fh.write(b'ment", "done": 4, "total": 10}\n')
    events, off2 = J.read_progress(p, off)
    assert events == [J.Progress("segment", "segment", 4, 10)] and off2 == p.stat().st_size


def test_job_success_moves_outputs_and_reports_progress(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "result.txt").write_text("old", encoding="utf-8")
    job = _job(tmp_path, "ok")
    seen = []
    status = job.wait(interval=0.02, progress=lambda s: seen.append((s.stage, s.done,
                                                                     round(s.fraction, 3))))
    assert status.state == "succeeded" and status.returncode == 0 and status.fraction == 1.0
    assert (tmp_path / "out" / "result.txt").read_text(encoding="utf-8") == "done"  # replaced on success
    assert status.outputs == [tmp_path / "out" / "result.txt"]
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["result.txt"]  # staging gone
    assert not job.work_dir.exists()
    fractions = [f for _, _, f in seen]  # poll() reports the latest line it finds
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert seen[-1][0] == "write"


def test_job_failure_keeps_old_outputs_and_reports_the_error(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "result.txt").write_text("old", encoding="utf-8")
    status = _job(tmp_path, "fail").wait(interval=0.02)
    assert status.state == "failed" and status.returncode == 2
    assert status.message == "scan.nrrd: values are 'native'"
    assert (tmp_path / "out" / "result.txt").read_text(encoding="utf-8") == "old"
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["result.txt"]
    job = _job(tmp_path, "crash")
    status = job.wait(interval=0.02)
    assert status.state == "failed" and "exited with status 1" in status.message
    assert "MemoryError" in status.message and "MemoryError" in job.log_text


def test_cancel_terminates_and_discards(tmp_path):
    job = _job(tmp_path, "hang")
    job.start()
    deadline = time.monotonic() + 30
    while job.poll().stage != "split":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert job.status.fraction == pytest.approx(0.05 + 0.70 + 0.10 + 0.10 / 4)
    pid = job.pid
    status = job.cancel()
    assert status.state == "cancelled" and status.message == "cancelled by the user"
    assert not _alive(pid)
    assert list((tmp_path / "out").iterdir()) == []  # the partial result.txt went with staging
    assert not job.work_dir.exists()
    assert job.cancel().state == "cancelled"  # again: no effect


def test_cancel_kills_a_worker_that_ignores_terminate(tmp_path):
    job = _job(tmp_path, "stubborn", terminate_timeout_s=0.5)
    job.start()
    while job.poll().stage != "split":
        time.sleep(0.02)
    t0 = time.monotonic()
    status = job.cancel()
    assert status.state == "cancelled" and status.returncode == -9
    assert time.monotonic() - t0 < 5
    assert list((tmp_path / "out").iterdir()) == []


def test_timeout_cancels_and_unstartable_fails(tmp_path):
    status = _job(tmp_path, "hang").wait(timeout=1.0, interval=0.05)
    assert status.state == "cancelled" and "timed out" in status.message
    bad = J.BackgroundJob(lambda s, p: [str(tmp_path / "no-such-python")], tmp_path / "o2")
    assert bad.start().state == "failed" and "could not start" in bad.status.message
    early = _job(tmp_path, "ok")
    assert early.cancel().state == "cancelled"  # before start: nothing runs
    assert early.start().state == "cancelled"


def test_child_environment_puts_the_packages_on_the_path():
    import hrpqct
    import hrpqct_slicer

    env = J.child_environment({"X": "1"})
    paths = env["PYTHONPATH"].split(os.pathsep)
    assert str(Path(hrpqct.__file__).resolve().parents[1]) in paths
    assert str(Path(hrpqct_slicer.__file__).resolve().parents[1]) in paths
    assert env["X"] == "1" and env["PYTHONUNBUFFERED"] == "1"


# --- the real `hrpqct segment` ------------------------------------------------------------------
@pytest.fixture(scope="module")
def case(tmp_path_factory):
    from hrpqct.phantom.anatomy import Anatomy
    from hrpqct.phantom.render import Grid
    from hrpqct.phantom.scan import generate
    from hrpqct.seg.model import ModelCard, build_model, save_model
    from hrpqct.seg.preprocess import InputSpec

    root = tmp_path_factory.mktemp("seg-case")
    ph = generate(Anatomy(seed=11), Grid(size=160, n_slices=N_SLICES))
    model = save_model(build_model("tiny", seed=0), root / "tiny-model",
                       ModelCard(name="tiny-test", variant="tiny",
                                 preprocessing=InputSpec(input_px=128).to_dict()))
    scan = write_image(ph.image, root / "leg.nrrd")
    return {"root": root, "phantom": ph, "model": model, "scan": scan}


@pytest.fixture(scope="module")
def scene_and_run(case):
    scene = slicer.vtkMRMLScene()
    logic = B.segmentations_logic(scene)
    node = B.volume_to_node(scene, case["phantom"].image, name="leg scan")
    out = case["root"] / "run-out"
    task = S.SegmentationTask(node, model=str(case["model"]), device="cpu", out_dir=out)
    seen = []
    status = task.wait(timeout=300, progress=lambda s: seen.append(
        (s.state, s.stage, s.done, s.total, s.fraction)))
    return {"scene": scene, "logic": logic, "node": node, "task": task, "status": status,
            "seen": seen, "out": out}


def test_progress_json_option_of_the_cli(case, tmp_path):
    from hrpqct.cli import main

    p = tmp_path / "progress.jsonl"
    try:
        main(["segment", str(case["scan"]), "--out", str(tmp_path / "o"), "--model",
              str(case["model"]), "--device", "cpu", "-q", "--progress-json", str(p)])
    except SystemExit as exc:
        assert not exc.code
    lines = [json.loads(x) for x in p.read_text(encoding="utf-8").splitlines()]
    stages = list(dict.fromkeys(d["stage"] for d in lines))
    assert stages == ["read", "segment", "topology", "split", "write"]
    for stage in ("segment", "topology", "split"):
        counts = [d["done"] for d in lines if d["stage"] == stage]
        assert counts[0] == 0 and counts[-1] == N_SLICES and counts == sorted(counts)
        assert {d["total"] for d in lines if d["stage"] == stage} == {N_SLICES}
    assert (tmp_path / "o" / "leg.seg.nrrd").is_file()


def test_segment_runs_in_background_with_progress(scene_and_run):
    r = scene_and_run
    status = r["status"]
    assert status.state == "succeeded", r["task"].job.log_text
    events = r["task"].job.events  # every progress line, in the order written
    assert list(dict.fromkeys(e.stage for e in events)) == [
        "read", "segment", "topology", "split", "write"]
    done = [e.done for e in events if e.stage == "segment"]
    assert done[0] == 0 and done[-1] == N_SLICES and done == sorted(done)
    assert {e.total for e in events if e.stage == "segment"} == {N_SLICES}
    fractions = [s[4] for s in r["seen"]]  # what a progress bar saw: never going back
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert any(s[0] == "running" and s[1] for s in r["seen"])
    names = sorted(p.name for p in r["out"].iterdir())
    assert names == sorted(p.name for p in status.outputs)
    assert {"leg_scan.seg.nrrd", "leg_scan_labels.nrrd", "leg_scan_confidence.csv",
            "leg_scan_regions.csv", "leg_scan_overlay.png"} <= set(names)
    assert not any(n.startswith(".") for n in names)  # no staging or temporary files
    assert not r["task"].job.work_dir.exists()


def test_results_load_into_the_scene(scene_and_run, case):
    r = scene_and_run
    scene, logic, node = r["scene"], r["logic"], r["node"]
    res = r["task"].load(scene, logic, review_slices=4)
    labels = read_labelmap(r["out"] / "leg_scan_labels.nrrd")
    back = B.segmentation_to_labelmap(scene, logic, res.segmentation, node)
    assert np.array_equal(back.array, labels.array)  # exact, on the scan's grid
    segmentation = res.segmentation.GetSegmentation()
    present = sorted(set(np.unique(labels.array)) - {0})
    ids = [segmentation.GetNthSegmentID(i) for i in range(segmentation.GetNumberOfSegments())]
    assert ids == [REGIONS[k - 1].code for k in present]
    assert segmentation.GetSegment(ids[0]).GetName() == REGIONS[present[0] - 1].name
    assert res.segmentation.GetAttribute(S.MODEL_ATTRIBUTE) == str(case["model"])
    assert res.segmentation.GetAttribute(S.FOLDER_ATTRIBUTE) == str(r["out"])
    summary = B.table_node_to_dataframe(res.summary)
    pd.testing.assert_frame_equal(summary, pd.read_csv(r["out"] / "leg_scan_regions.csv"))
    conf = pd.read_csv(r["out"] / "leg_scan_confidence.csv")
    assert res.least_confident == list(np.argsort(conf["mean_max_prob"], kind="stable")[:4])
    plot = B.table_node_to_dataframe(res.confidence.table)
    assert list(plot["slice"]) == list(range(N_SLICES))
    # into an existing node: same node, its name kept, segments replaced
    target = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "my edits")
    target.GetSegmentation().AddEmptySegment("junk", "junk")
    res2 = S.load_segmentation_results(scene, logic, r["out"], "leg_scan", node,
                                       segmentation_node=target)
    assert res2.segmentation is target and target.GetName() == "my edits"
    assert target.GetSegmentation().GetSegment("junk") is None
    assert np.array_equal(B.segmentation_to_labelmap(scene, logic, target, node).array,
                          labels.array)
    S.remove_results(scene, res2)
    assert not scene.IsNodePresent(res2.summary) and scene.IsNodePresent(target)
    with pytest.raises(InputError, match="missing"):
        S.load_segmentation_results(scene, logic, r["out"], "other", node)


def test_jump_to_slice_moves_every_slice_view(scene_and_run):
    scene, node = scene_and_run["scene"], scene_and_run["node"]
    views = []
    for name in ("Red", "Yellow"):
        view = slicer.vtkMRMLSliceNode()
        view.SetLayoutName(name)
        scene.AddNode(view)
        views.append(view)
    ras = S.jump_to_slice(scene, node, 4)
    assert ras == pytest.approx(B.slice_center_ras(node, 4))
    for view in views:
        m = view.GetSliceToRAS()
        assert [m.GetElement(i, 3) for i in range(3)] == pytest.approx(list(ras))
    with pytest.raises(InputError, match="outside"):
        S.jump_to_slice(scene, node, N_SLICES)


def test_cancel_mid_run_leaves_no_output(case, tmp_path):
    scene = slicer.vtkMRMLScene()
    node = B.volume_to_node(scene, case["phantom"].image, name="leg scan")
    out = tmp_path / "out"
    out.mkdir()
    (out / "earlier.txt").write_text("kept", encoding="utf-8")
    task = S.SegmentationTask(node, model=str(case["model"]), device="cpu", out_dir=out)
    task.start()
    deadline = time.monotonic() + 120
    while task.poll().stage == "":  # cancel at the first progress line the worker writes
        assert not task.status.finished, task.job.log_text
        assert time.monotonic() < deadline
        time.sleep(0.05)
    pid = task.job.pid
    status = task.cancel()
    assert status.state == "cancelled" and status.returncode is not None
    assert status.returncode < 0  # ended by the signal, not by finishing
    assert not _alive(pid)
    assert [p.name for p in out.iterdir()] == ["earlier.txt"]
    assert not task.job.work_dir.exists()
    with pytest.raises(S.JobFailed, match="cancelled"):
        task.load(scene, B.segmentations_logic(scene))


def test_console_helper_raises_cancelled(case, tmp_path):
    scene = slicer.vtkMRMLScene()
    node = B.volume_to_node(scene, case["phantom"].image, name="leg scan")
    with pytest.raises(Cancelled):
        S.segment_volume_node(scene, B.segmentations_logic(scene), node, model=str(case["model"]),
                              device="cpu", out_dir=tmp_path / "o", progress=lambda s: False)
    assert list((tmp_path / "o").iterdir()) == []


def test_scan_volume_units(case):
    scene = slicer.vtkMRMLScene()
    image = case["phantom"].image
    plain = B.volume_to_node(scene, image.with_array(image.array, unit="native"), name="plain")
    plain.RemoveAttribute("HRpQCT.unit")  # as loaded by Slicer: no unit
    vol = S.scan_volume(plain)
    assert vol.unit == "HU" and np.array_equal(vol.array, image.array)
    with pytest.raises(InputError, match="label map"):
        S.scan_volume(B.volume_to_node(scene, case["phantom"].labels7, name="lab"))


# --- refine and export through the bridge -------------------------------------------------------
def _set_segment(seg_node, segment_id, mask, reference):
    """What a Segment Editor paint/erase does: replace one segment's voxels."""
    L = slicer.vtkSlicerSegmentationsModuleLogic
    image = L.CreateOrientedImageDataFromVolumeNode(reference)
    image.GetPointData().SetScalars(numpy_support.numpy_to_vtk(
        np.ascontiguousarray(mask.astype(np.uint8)).ravel(), deep=True))
    assert L.SetBinaryLabelmapToSegment(image, seg_node, segment_id, L.MODE_REPLACE,
                                        image.GetExtent())


def test_refine_and_export_an_edited_segmentation(case, tmp_path):
    from hrpqct.seg.dataset import load_case, read_cases
    from hrpqct.seg.refine import refine

    ph = case["phantom"]
    scene = slicer.vtkMRMLScene()
    logic = B.segmentations_logic(scene)
    node = B.volume_to_node(scene, ph.image, name="leg scan")
    seg = B.labelmap_to_segmentation(scene, logic, ph.labels7, reference=node, name="regions")
    truth = ph.labels7.array
    # annotator: erases a wedge of tibial cortex (a gap) and paints fat inside the muscle
    tc = truth == 1
    ys, xs = np.nonzero(tc[0])
    gap = np.zeros_like(tc)
    gap[:, ys.min():ys.min() + 3, :] = True
    _set_segment(seg, "TC", tc & ~gap, node)
    mt = truth == 6
    zz, yy, xx = np.nonzero(mt)
    blob = np.zeros_like(mt)
    blob[:, int(np.median(yy)) - 1:int(np.median(yy)) + 2,
         int(np.median(xx)) - 1:int(np.median(xx)) + 2] = True
    blob &= mt
    assert blob.sum() > 0
    _set_segment(seg, "MT", mt & ~blob, node)
    _set_segment(seg, "AT", (truth == 7) | blob, node)
    edited = B.segmentation_to_labelmap(scene, logic, seg, node).array
    assert (edited[gap & tc] == 0).all() and (edited[blob] == 7).all()

    expected = refine(edited, ph.image.array, ph.image.spacing, input_kind="regions")
    seen = []
    result = S.refine_segmentation(scene, logic, seg, node,
                                   progress=lambda d, t: seen.append((d, t)))
    refined = B.segmentation_to_labelmap(scene, logic, seg, node).array
    assert np.array_equal(refined, expected)  # the core's refine, through the node
    assert (refined[blob] == 7).all()  # hand-painted fat kept
    assert not (refined[gap & tc] == 0).any()  # the erased gap is no longer background
    assert result.changed_voxels == int(np.count_nonzero(edited != expected)) > 0
    assert seen[-1] == (N_SLICES, N_SLICES)
    assert seg.GetName() == "regions" and scene.IsNodePresent(seg)
    # only the split, and a cancelled refine leaves the node as it was
    before = refined.copy()
    with pytest.raises(Cancelled):
        S.refine_segmentation(scene, logic, seg, node, only="split", progress=lambda d, t: False)
    assert np.array_equal(B.segmentation_to_labelmap(scene, logic, seg, node).array, before)

    folder = tmp_path / "train"
    exported = S.export_for_training(scene, logic, seg, node, folder, "leg01", annotator="me")
    row = read_manifest(folder).set_index("case_id").loc["leg01"]
    assert row["annotator"] == "me" and "regions" in row["source"]
    cases = read_cases(folder)
    image, labels5 = load_case(cases[0])
    assert np.array_equal(image.array, ph.image.array)
    assert np.array_equal(labels5, training_labels(refined))
    assert np.array_equal(read_labelmap(exported.segmentation7).array, refined)
    again = S.export_for_training(scene, logic, seg, node, folder, "leg01", annotator="me")
    assert len(read_manifest(folder)) == 1 and again.folder == exported.folder


def test_five_class_segmentation_refines_to_seven_regions(case):
    ph = case["phantom"]
    scene = slicer.vtkMRMLScene()
    logic = B.segmentations_logic(scene)
    node = B.volume_to_node(scene, ph.image, name="leg scan")
    seg = B.labelmap_to_segmentation(scene, logic, ph.labels5, reference=node, table="model")
    assert S.segmentation_kind(seg)[1] == "model"
    result = S.refine_segmentation(scene, logic, seg, node)
    assert (result.kind, result.output_kind) == ("model", "regions")
    out = B.segmentation_to_labelmap(scene, logic, seg, node).array
    assert set(np.unique(out)) <= set(range(8)) and (out == 6).any() and (out == 7).any()
    assert np.array_equal(training_labels(out), training_labels(ph.labels5.array, "model"))
    junk = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "junk")
    junk.GetSegmentation().AddEmptySegment("X", "Tumour")
    with pytest.raises(InputError, match="Tumour"):
        S.refine_segmentation(scene, logic, junk, node)


# --- radiomics worker ---------------------------------------------------------------------------
def test_radiomics_task_matches_in_process_extraction(case, tmp_path):
    from hrpqct.radiomics.tables import aggregate, extract_volume
    from hrpqct_slicer.radiomics_logic import (RadiomicsTask, features_table_node,
                                               region_names)

    ph = case["phantom"]
    scene = slicer.vtkMRMLScene()
    logic = B.segmentations_logic(scene)
    node = B.volume_to_node(scene, ph.image, name="leg scan")
    seg = B.labelmap_to_segmentation(scene, logic, ph.labels7, reference=node)
    names = region_names(["TC", "MT", "AT"], [10])
    assert names == ["TC", "MT", "AT", "ST10mm"]
    task = RadiomicsTask(scene, logic, node, seg, regions=names, slices="2,3",
                         out_file=tmp_path / "f" / "leg.csv")
    status = task.wait(timeout=300, progress=None)
    assert status.state == "succeeded", task.job.log_text
    res = task.load(scene)
    expected = aggregate(extract_volume(ph.image, ph.labels7, regions=names, slices=[2, 3]))
    got = res.patient.drop(columns="scan_id")
    assert list(got["region"]) == names
    pd.testing.assert_frame_equal(got.reset_index(drop=True),
                                  expected[got.columns].reset_index(drop=True),
                                  check_dtype=False, rtol=1e-12)
    table = B.table_node_to_dataframe(res.table)
    assert list(table.columns) == ["feature", *names]
    assert len(table) == len([c for c in expected.columns if c != "region"])
    row = table.set_index("feature").loc["original_firstorder_Mean"]
    assert row["MT"] == pytest.approx(float(expected.set_index("region").loc[
        "MT", "original_firstorder_Mean"]))
    assert res.patient_file == tmp_path / "f" / "leg.patient.csv" and res.slice_file.is_file()
    # into an existing table node
    again = features_table_node(scene, res.patient, node=res.table)
    assert again is res.table


def test_radiomics_worker_reports_bad_input(case, tmp_path):
    from hrpqct_slicer.worker import main, parse_slices

    assert parse_slices("1:6:2", 10) == [1, 3, 5] and parse_slices("2, 4", 10) == [2, 4]
    assert parse_slices("", 10) is None
    with pytest.raises(InputError):
        parse_slices("a:b", 10)

    def argv(staging, progress):
        return J.radiomics_argv(case["scan"], tmp_path / "missing_labels.nrrd", "f.csv")(
            staging, progress)

    job = J.BackgroundJob(argv, tmp_path / "out", stages=J.RADIOMICS_STAGES)
    status = job.wait(timeout=120, interval=0.05)
    assert status.state == "failed" and status.returncode == 2
    assert "missing_labels.nrrd" in status.message
    assert list((tmp_path / "out").iterdir()) == []
    assert main(["radiomics", str(case["scan"]), str(case["scan"]), "--out",
                 str(tmp_path / "x.txt")]) == 2
