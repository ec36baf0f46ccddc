"""The study manifest (hrpqct.study.manifest) and the segmentation plan's decisions."""

from __future__ import annotations

import json

import pytest

from hrpqct.errors import InputError
from hrpqct.study.manifest import read_study_manifest
from hrpqct.study.plan import Layout, plan_segment


def _write(tmp_path, text):
    p = tmp_path / "m.csv"
    p.write_text(text, encoding="utf-8")
    return p


def test_manifest_defaults_and_paths(tmp_path):
    m = read_study_manifest(_write(tmp_path, "subject_id,scan,segmentation,corrected,age\n"
                                             "a,s/a.nrrd,,yes,70\nb,s/b.nrrd,g/b.nrrd,0,61\n"))
    assert m["scan_id"].tolist() == ["a", "b"]
    assert m["scan"].tolist() == [str(tmp_path / "s/a.nrrd"), str(tmp_path / "s/b.nrrd")]
    assert m["segmentation"].tolist() == ["", str(tmp_path / "g/b.nrrd")]
    assert m["corrected"].tolist() == [True, False]
    assert m["age"].tolist() == [70, 61]


@pytest.mark.parametrize("text, words", [
    ("subject_id,seg\na,x\n", "lacks column"),
    ("subject_id,scan\na,x\na,y\n", "unique"),
    ("subject_id,scan\na b,x\n", "file names"),
    ("subject_id,scan\na,\n", "empty 'scan'"),
    ("subject_id,scan,corrected\na,x,maybe\n", "corrected"),
])
def test_manifest_errors(tmp_path, text, words):
    with pytest.raises(InputError, match=words):
        read_study_manifest(_write(tmp_path, text))


def test_segment_decisions(tmp_path):
    from hrpqct.io.provenance import fingerprint

    scan = tmp_path / "a.nrrd"
    scan.write_bytes(b"scan")
    L = Layout(tmp_path / "out")
    L.seg.mkdir(parents=True)
    row = {"scan_id": "a", "scan": str(scan), "segmentation": "", "corrected": False}
    model = {"name": "m", "digest": "d1"}
    assert plan_segment(L, row, model).state == "missing"
    seg = L.seg_file("a")
    seg.write_bytes(b"labels")
    assert plan_segment(L, row, model).state == "corrected"  # not made by the study
    L.seg_record("a").write_text(json.dumps({"status": "running"}), encoding="utf-8")
    assert plan_segment(L, row, model).state == "stale"  # a run stopped while segmenting
    rec = {"status": "done", "scan": fingerprint(scan), "model": "m", "model_digest": "d1",
           "output": fingerprint(seg)}
    L.seg_record("a").write_text(json.dumps(rec), encoding="utf-8")
    assert plan_segment(L, row, model).state == "done"
    d = plan_segment(L, row, {"name": "m2", "digest": "d2"})
    assert d.state == "stale" and "another model" in d.why
    assert plan_segment(L, {**row, "corrected": True}, {"name": "m2", "digest": "d2"}).state == "corrected"
    assert plan_segment(L, {**row, "segmentation": str(scan)}, model).state == "given"
    seg.write_bytes(b"labels, corrected")
    assert plan_segment(L, row, {"name": "m2", "digest": "d2"}).state == "corrected"
