"""Garbage in, refused or flagged (issue 16, part 4): each case gets a clear error, or a warning seen
in the CLI, in the summary table (``<stem>_scan.csv`` rows ``warning``, ``<out>.warnings.txt``)
and in the Slicer logic's result objects. The rule is in docs/input-checks.md."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from hrpqct.checks import check_model_output, check_scan, read_warnings, settle
from hrpqct.errors import InputError, ModelError
from hrpqct.io import read_labelmap, write_image, write_labelmap
from hrpqct.phantom.anatomy import Anatomy
from hrpqct.phantom.render import Grid
from hrpqct.phantom.scan import generate
from hrpqct.regions import region
from hrpqct.seg.model import ModelCard, build_model, save_model
from hrpqct.seg.preprocess import InputSpec
from hrpqct.volume import Volume

from test_seg_post_cli import files  # noqa: F401  (scan.nrrd + edited case.seg.nrrd)
from helpers import cli


def _err(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return " ".join(err.split())


@pytest.fixture(scope="module")
def phantom():
    return generate(Anatomy(seed=11), Grid(size=160, n_slices=3))


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    return save_model(build_model("tiny", seed=0), tmp_path_factory.mktemp("m") / "model",
                      ModelCard(name="tiny-test", variant="tiny",
                                preprocessing=InputSpec(input_px=128).to_dict()))


@pytest.fixture()
def no_inference(monkeypatch):
    import hrpqct.seg.inference as inference

    def boom(*a, **k):
        raise AssertionError("inference ran on garbage")

    monkeypatch.setattr(inference, "segment_volume", boom)


def _segment(scan, out, model):
    return cli("segment", str(scan), "--out", str(out), "--model", str(model), "--device", "cpu",
               "-q")


# --- scans that are not scans: errors before the inference --------------------------------------
@pytest.mark.parametrize("case,array,message", [
    ("zeros", np.zeros((3, 160, 160), np.int16), "every voxel is 0 HU: a blank image, not a scan"),
    ("1e9", np.full((3, 160, 160), 1e9, np.float32),
     "every voxel is 1e+09 HU: a blank image, not a scan"),
    ("uint8", np.random.default_rng(0).integers(0, 255, (3, 160, 160)).astype(np.uint8),
     "8-bit voxels (uint8) cannot hold HU"),
    ("int8", np.random.default_rng(0).integers(-128, 127, (3, 160, 160)).astype(np.int8),
     "8-bit voxels (int8) cannot hold HU"),
    ("mask", (np.random.default_rng(0).random((3, 160, 160)) > 0.5).astype(np.int16),
     "holds only the values 0, 1: a mask or label map, not a scan"),
    ("tiny", np.random.default_rng(0).normal(0, 300, (3, 16, 16)).astype(np.float32),
     "the field of view is 16 x 16 px (1.6 x 1.6 mm), too small to hold a distal tibia"),
    ("not-hu", np.random.default_rng(0).normal(30000, 3000, (3, 160, 160)).astype(np.float32),
     "(1st to 99th percentile) are not HU (air is -1000"),
])
def test_garbage_scans_are_refused_before_inference(case, array, message, tmp_path, tiny_model,
                                                    capsys, no_inference):
    scan = write_image(Volume(array, spacing=(0.1, 0.1, 0.1), unit="HU"), tmp_path / f"{case}.nrrd")
    assert _segment(scan, tmp_path / "out", tiny_model) == 2
    err = _err(capsys)
    assert f"error: {scan}: " in err and message in err
    assert not list((tmp_path / "out").glob("*.seg.nrrd"))


@pytest.mark.parametrize("spacing,warning", [
    ((0.875, 1.5, 0.875), "pixels are not square (0.875 x 1.5 mm)"),
    ((0.875, 0.875, 4.0), "slices are 4 mm apart, 4.6 times the pixel size (0.875 mm)"),
])
def test_doubtful_geometry_is_a_warning_in_cli_and_summary(spacing, warning, phantom, tmp_path,
                                                           tiny_model, capsys):
    scan = write_image(replace(phantom.image, spacing=spacing), tmp_path / "leg.nrrd")
    assert _segment(scan, tmp_path / "out", tiny_model) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert f"warning: {scan}: {warning}" in out
    table = pd.read_csv(tmp_path / "out" / "leg_scan.csv")
    rows = table.loc[table.quantity == "warning", "value"].tolist()
    assert any(warning in r for r in rows)
    from hrpqct_slicer.seg_logic import segmentation_warnings

    assert segmentation_warnings(tmp_path / "out", "leg") == rows


def test_clean_scan_has_no_warning(phantom, tmp_path, tiny_model, capsys, monkeypatch):
    # the tiny model is random: its bones are noise, so the checks of what it segmented
    # (hrpqct.seg.ood, test_seg_ood.py) are off here; this is about the input
    from hrpqct.seg import ood

    monkeypatch.setattr(ood, "check_anatomy", lambda *a, **k: [])
    monkeypatch.setattr(ood, "check_flip", lambda *a, **k: [])
    scan = write_image(phantom.image, tmp_path / "leg.nrrd")
    assert _segment(scan, tmp_path / "out", tiny_model) == 0
    table = pd.read_csv(tmp_path / "out" / "leg_scan.csv")
    assert "warning" not in set(table.quantity) and "warning:" not in capsys.readouterr().out
    # segmenting again into the same folder keeps the (perhaps hand-edited) .seg.nrrd
    first = (tmp_path / "out" / "leg.seg.nrrd").read_bytes()
    assert _segment(scan, tmp_path / "out", tiny_model) == 0
    kept = list((tmp_path / "out").glob("leg.previous-*.seg.nrrd"))
    assert len(kept) == 1 and kept[0].read_bytes() == first
    assert f"the previous segmentation is kept as {kept[0]}" in capsys.readouterr().out


# --- a broken model ------------------------------------------------------------------------------
def test_model_weights_of_random_bytes(tmp_path, phantom, capsys, no_inference):
    from safetensors.numpy import load_file, save_file

    folder = save_model(build_model("tiny", seed=0), tmp_path / "model",
                        ModelCard(name="tiny-test", variant="tiny",
                                  preprocessing=InputSpec(input_px=128).to_dict()))
    weights = next(folder.glob("*.safetensors"))
    rng = np.random.default_rng(0)
    tensors = {k: np.frombuffer(rng.bytes(v.nbytes), dtype=v.dtype).reshape(v.shape).copy()
               for k, v in load_file(weights).items()}
    save_file(tensors, weights)
    scan = write_image(phantom.image, tmp_path / "leg.nrrd")
    assert _segment(scan, tmp_path / "out", folder) == 2
    assert f"error: {folder}: " in (e := _err(capsys)) and "weights are NaN or infinite: the " \
        "weights file is damaged" in e


def test_network_output_nan_is_an_error():
    conf = pd.DataFrame({"mean_max_prob": [0.9, np.nan, np.nan]})
    with pytest.raises(ModelError, match=r"m: the network's output is NaN on 2 of 3 slices"):
        settle(check_model_output(conf, "m"), model=True)
    assert settle(check_model_output(pd.DataFrame({"mean_max_prob": [0.9]}), "m"),
                  model=True) == []


# --- refine: deleted segment, empty mask, padded mask -------------------------------------------
def _delete_segment(path, code):
    import slicerio

    seg = slicerio.read_segmentation(str(path))
    gone = [s for s in seg["segments"] if s["id"] == code][0]
    seg["segments"] = [s for s in seg["segments"] if s["id"] != code]
    seg["voxels"][seg["voxels"] == gone["labelValue"]] = 0  # as Slicer's "delete segment"
    slicerio.write_segmentation(str(path), seg)


def test_refine_after_a_deleted_segment(files, tmp_path, capsys):  # noqa: F811
    _delete_segment(files["seg"], "TC")
    assert cli("refine", str(files["seg"]), str(files["image"]), "--out", str(tmp_path / "o"),
               "-q") == 2
    assert (f"error: {files['seg']}: the segment(s) Tibia cortical (TC) are missing (deleted?); "
            "refine would relabel their voxels as soft tissue") in _err(capsys).replace(
                region("TC").name, "Tibia cortical")
    assert not (tmp_path / "o" / "case_refined.seg.nrrd").exists()


def test_empty_mask_to_refine_and_radiomics(files, tmp_path, capsys):  # noqa: F811
    img = read_labelmap(files["five"])
    empty = write_labelmap(img.with_array(np.zeros_like(img.array)), tmp_path / "empty.nrrd")
    assert cli("refine", str(empty), str(files["image"]), "--out", str(tmp_path / "o"), "-q") == 2
    assert f"error: {empty}: the segmentation is empty (no labelled voxel)" in _err(capsys)
    assert cli("radiomics", str(files["image"]), str(empty), "--out",
               str(tmp_path / "f.parquet"), "-q") == 2
    assert f"error: {empty}: the segmentation is empty (no labelled voxel)" in _err(capsys)
    assert not (tmp_path / "f.parquet").exists()


def _padded_mask(files, tmp_path):
    lab = read_labelmap(files["seg"])
    sub = Volume(lab.array[1:], spacing=lab.spacing,
                 origin=tuple(np.add(lab.origin, (0.0, 0.0, lab.spacing[2]))),
                 direction=lab.direction, unit="label")
    return write_labelmap(sub, tmp_path / "sub.nrrd")


def test_mask_of_another_shape_is_a_warning(files, tmp_path, capsys):  # noqa: F811
    sub = _padded_mask(files, tmp_path)
    note = (f"{sub}: the segmentation (2 x 160 x 160 voxels) is smaller than the scan "
            "(3 x 160 x 160); it was placed at voxel (1, 0, 0) (z, y, x) and padded with background")
    assert cli("refine", str(sub), str(files["image"]), "--out", str(tmp_path / "o"), "--name",
               "r", "-q") == 0
    assert f"warning: {note}" in " ".join(capsys.readouterr().out.split())
    scan_csv = pd.read_csv(tmp_path / "o" / "r_scan.csv")
    assert note in scan_csv.loc[scan_csv.quantity == "warning", "value"].tolist()
    out = tmp_path / "f.parquet"
    assert cli("radiomics", str(files["image"]), str(sub), "--out", str(out), "-q", "-r",
               "TC") == 0
    assert f"warning: {note}" in _err(capsys)
    assert note in read_warnings(tmp_path / "f.warnings.txt")


def test_radiomics_region_without_voxels(files, tmp_path, capsys):  # noqa: F811
    out = tmp_path / "f.csv"
    assert cli("radiomics", str(files["image"]), str(files["seg"]), "--out", str(out), "-q",
               "-r", "TC,FC") == 0
    note = f"{files['seg']}: region(s) FC have no voxel; their rows are empty"
    assert f"warning: {note}" in _err(capsys)
    assert note in read_warnings(tmp_path / "f.warnings.txt")
    assert cli("radiomics", str(files["image"]), str(files["seg"]), "--out", str(out), "-q",
               "-r", "FC,FT") == 2
    assert "none of the regions FC, FT has a voxel: nothing to measure" in _err(capsys)
    # a run without that problem rewrites the warnings file (here: only the small field of view)
    assert cli("radiomics", str(files["image"]), str(files["seg"]), "--out", str(out), "-q",
               "-r", "TC") == 0
    assert note not in read_warnings(tmp_path / "f.warnings.txt")


def test_scan_rules_are_not_fooled_by_real_scans(phantom):
    assert settle(check_scan(phantom.image, "leg")) == []
    with pytest.raises(InputError, match="leg: every voxel is -1000 HU"):
        settle(check_scan(phantom.image.with_array(np.full(phantom.image.shape, -1000.0)), "leg"))
