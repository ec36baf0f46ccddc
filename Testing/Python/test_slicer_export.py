"""hrpqct.export: corrected masks -> a training folder that hrpqct.seg.dataset reads."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from hrpqct.errors import GeometryError, InputError
from hrpqct.export import MANIFEST, MANIFEST_COLUMNS, export_case, read_manifest, training_labels
from hrpqct.io import read_labelmap, read_scan
from hrpqct.seg.dataset import load_case, read_cases, split_by_patient
from hrpqct.volume import Calibration, Volume

SHAPE = (3, 20, 24)
SPACING = (0.0607, 0.0607, 0.0607)


def _image(seed: int = 0) -> Volume:
    rng = np.random.default_rng(seed)
    return Volume(rng.integers(-1000, 3000, SHAPE).astype(np.int16), SPACING, (1.0, -2.0, 30.0),
                  unit="HU", calibration=Calibration(0.2409, 8192.0, 1603.51904, -391.209015))


def _labels7() -> np.ndarray:
    lab = np.zeros(SHAPE, np.uint8)
    lab[:, 2:18, 2:22] = 5  # skin
    lab[:, 3:17, 3:21] = 7  # fat
    lab[:, 5:15, 5:19] = 6  # muscle
    lab[:, 6:12, 6:12] = 1
    lab[:, 7:11, 7:11] = 2
    lab[:, 8:12, 14:18] = 3
    lab[:, 9:11, 15:17] = 4
    return lab


def _when(minute: int) -> dt.datetime:
    return dt.datetime(2026, 11, 20, 10, minute, tzinfo=dt.timezone.utc)


def test_training_labels_merges_soft_tissue():
    lab = _labels7()
    out = training_labels(lab, "regions")
    assert out.dtype == np.uint8
    assert set(np.unique(out)) == {0, 1, 2, 3, 4, 5}
    assert np.array_equal(out == 5, np.isin(lab, (5, 6, 7)))
    assert np.array_equal(out[lab <= 4], lab[lab <= 4])  # bone and background unchanged
    five = np.minimum(lab, 5)
    assert np.array_equal(training_labels(five, "model"), five)
    with pytest.raises(InputError, match=r"\[8\]"):
        training_labels(np.full(SHAPE, 8, np.uint8), "regions")
    with pytest.raises(InputError, match=r"\[6\]"):
        training_labels(np.full(SHAPE, 6, np.uint8), "model")
    with pytest.raises(InputError, match="integers"):
        training_labels(lab.astype(float), "regions")


def test_export_writes_case_and_manifest_that_training_reads(tmp_path):
    image = _image()
    lab = _labels7()
    res = export_case(image, image.with_array(lab, unit="label"), tmp_path / "train", "case01",
                      subject_id="patient-A", annotator="ann", source="unit test",
                      model="demo-synthetic", now=_when(0))
    folder = tmp_path / "train"
    assert res.folder == folder / "case01"
    assert sorted(p.name for p in res.folder.iterdir()) == ["image.nrrd", "labels5.nrrd",
                                                            "labels7.nrrd"]
    assert sorted(p.name for p in folder.iterdir()) == ["case01", MANIFEST]  # no leftovers
    df = pd.read_csv(folder / MANIFEST, dtype=str, keep_default_na=False)
    assert list(df.columns) == list(MANIFEST_COLUMNS)
    assert df.to_dict("records") == [{
        "case_id": "case01", "subject_id": "patient-A", "scan": "case01/image.nrrd",
        "segmentation5": "case01/labels5.nrrd", "segmentation7": "case01/labels7.nrrd",
        "annotator": "ann", "exported_at": "2026-11-20T10:00:00+00:00", "source": "unit test",
        "model": "demo-synthetic", "hrpqct_version": res.row["hrpqct_version"]}]
    # files: the image exactly, in HU with its calibration; both label maps on its grid
    back = read_scan(res.scan)
    assert back.unit == "HU" and np.array_equal(back.array, image.array)
    assert back.calibration == image.calibration
    np.testing.assert_allclose(back.origin, image.origin)
    l7 = read_labelmap(res.segmentation7)
    assert np.array_equal(l7.array, lab)
    l5 = read_labelmap(res.segmentation5)
    assert np.array_equal(l5.array, training_labels(lab))
    # what `hrpqct train-seg` reads: the folder (manifest), the patient from subject_id
    cases = read_cases(folder)
    assert len(cases) == 1 and cases[0].patient == "patient-A"
    img, lab5 = load_case(cases[0])
    assert img.unit == "HU" and np.array_equal(img.array, image.array)
    assert np.array_equal(lab5, training_labels(lab))


def test_reexport_replaces_case_and_row(tmp_path):
    folder = tmp_path / "train"
    image = _image()
    lab = _labels7()
    export_case(image, image.with_array(lab, unit="label"), folder, "case01", annotator="a",
                now=_when(0))
    export_case(_image(1), _image(1).with_array(lab, unit="label"), folder, "case02",
                subject_id="case01", annotator="a", now=_when(1))
    edited = lab.copy()
    edited[:, 9:11, 15:17] = 3  # the annotator fills the fibula marrow with cortex
    res = export_case(image, image.with_array(edited, unit="label"), folder, "case01",
                      annotator="b", source="second pass", now=_when(2))
    df = read_manifest(folder)
    assert list(df["case_id"]) == ["case01", "case02"]  # one row per case, sorted
    row = df.set_index("case_id").loc["case01"]
    assert (row["annotator"], row["source"], row["exported_at"]) == (
        "b", "second pass", "2026-11-20T10:02:00+00:00")
    assert np.array_equal(read_labelmap(res.segmentation7).array, edited)
    assert not (read_labelmap(res.segmentation5).array == 4).any()
    leftovers = [p.name for p in folder.iterdir() if p.name.startswith(".")]
    assert leftovers == []
    cases = read_cases(folder)
    assert [c.patient for c in cases] == ["case01", "case01"]  # same subject: kept together
    split = split_by_patient([c.patient for c in cases])
    assert sum(len(v) for v in split.values()) == 1


def test_export_of_model_classes_and_extra_columns_kept(tmp_path):
    folder = tmp_path / "train"
    folder.mkdir()
    pd.DataFrame([{"case_id": "old", "subject_id": "old", "scan": "old/image.nrrd",
                   "segmentation5": "old/labels5.nrrd", "site": "tibia"}]).to_csv(
        folder / MANIFEST, index=False)
    image = _image()
    five = np.minimum(_labels7(), 5)
    res = export_case(image, image.with_array(five, unit="label"), folder, "new", kind="model",
                      annotator="a", now=_when(3))
    assert res.segmentation7 is None and not (res.folder / "labels7.nrrd").exists()
    df = read_manifest(folder)
    assert list(df["case_id"]) == ["new", "old"]
    assert "site" in df.columns and df.set_index("case_id").loc["old", "site"] == "tibia"
    assert df.set_index("case_id").loc["new", "segmentation7"] == ""


def test_bad_exports_are_refused_and_write_nothing(tmp_path):
    folder = tmp_path / "train"
    image = _image()
    lab = image.with_array(_labels7(), unit="label")
    with pytest.raises(InputError, match="case id"):
        export_case(image, lab, folder, "../escape")
    with pytest.raises(InputError, match="case id"):
        export_case(image, lab, folder, "a b")
    with pytest.raises(InputError, match="HU"):
        export_case(image.with_array(image.array, unit="native"), lab, folder, "c1")
    other = Volume(lab.array, (0.1, 0.1, 0.1), lab.origin, unit="label")
    with pytest.raises(GeometryError, match="grid"):
        export_case(image, other, folder, "c1")
    with pytest.raises(InputError, match="empty"):
        export_case(image, image.with_array(np.zeros(SHAPE, np.uint8), unit="label"), folder,
                    "c1")
    assert not folder.exists() or list(folder.iterdir()) == []
    folder.mkdir(exist_ok=True)
    (folder / MANIFEST).write_text("scan,labels5\na.nrrd,b.nrrd\n", encoding="utf-8")  # someone else's manifest
    with pytest.raises(InputError, match="not an export manifest"):
        export_case(image, lab, folder, "c1")
    assert sorted(p.name for p in folder.iterdir()) == [MANIFEST]


def test_stale_lock_is_taken_over_and_live_lock_times_out(tmp_path, monkeypatch):
    import os
    import time

    import hrpqct.export as E

    folder = tmp_path / "train"
    folder.mkdir()
    lock = folder / ".manifest.lock"
    lock.write_text("123", encoding="utf-8")
    old = time.time() - 3600
    os.utime(lock, (old, old))
    image = _image()
    export_case(image, image.with_array(_labels7(), unit="label"), folder, "c1", annotator="a")
    assert not lock.exists() and len(read_manifest(folder)) == 1
    lock.write_text("456", encoding="utf-8")  # a live lock: another export is writing the manifest
    with pytest.raises(InputError, match="lock"):
        with E._manifest_lock(folder, timeout_s=0.2):
            pass
    assert lock.exists()
