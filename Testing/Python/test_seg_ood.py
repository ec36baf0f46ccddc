"""Out-of-distribution warnings (issue 14, ``hrpqct.seg.ood``): each on a constructed input, and
how they reach the CLI, the summary table and the Slicer logic's results."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hrpqct.method import OOD
from hrpqct.phantom.anatomy import Anatomy
from hrpqct.phantom.render import Grid
from hrpqct.phantom.scan import generate
from hrpqct.regions import SOFT_TISSUE_CLASS, region
from hrpqct.seg import ood
from hrpqct.volume import Volume

SCANCO = Path(__file__).resolve().parents[3] / "shared" / "data" / "scanco"
BUNDLED = Path(__file__).resolve().parents[2] / "Resources" / "models" / "demo-synthetic"
TC, TT, FC, FT = (region(c).label for c in ("TC", "TT", "FC", "FT"))
ST = SOFT_TISSUE_CLASS


def codes(findings) -> list[str]:
    return [f.code for f in findings]


@pytest.fixture(scope="module")
def phantom():
    return generate(Anatomy(seed=11), Grid(size=160, n_slices=2))


@pytest.fixture(scope="module")
def reference(phantom):
    other = generate(Anatomy(seed=12), Grid(size=160, n_slices=2))
    return ood.reference_from_volumes([phantom.image, other.image], spacing_mm=(0.5, 0.9))


def _disk(shape, centre, radius, spacing=0.5):
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    return np.hypot((yy - centre[0]) * spacing, (xx - centre[1]) * spacing) <= radius


# --- before the network --------------------------------------------------------------------------
def test_phantom_like_the_training_data_has_no_warning(phantom, reference):
    assert ood.scan_checks(phantom.image, reference, where="p") == []
    assert ood.check_anatomy(phantom.labels5.array, phantom.image.spacing, "p") == []


def test_wrong_spacing(phantom, reference):
    coarse = replace(phantom.image, spacing=(2.0, 2.0, 2.0))
    found = ood.check_spacing(coarse, reference, where="c")
    assert codes(found) == ["ood.spacing"]
    assert "pixels of 2 mm are far coarser than the 0.5-0.9 mm" in found[0].message
    assert codes(ood.check_spacing(replace(phantom.image, spacing=(0.2, 0.2, 0.2)),
                                   reference, where="f")) == ["ood.spacing"]
    assert ood.check_spacing(replace(phantom.image, spacing=(1.7, 1.7, 1.7)), reference) == []


def test_bundled_model_reference_flags_pqct_and_clinical_ct_pixels():
    ref = ood.load_reference(BUNDLED)
    assert ref is not None and ref["spacing_mm"] == [0.0607, 0.182]
    assert len(ref["limb_hu_percentiles"]) == 99 and ref["max_distance_hu"] > 0
    vol = Volume(np.zeros((1, 64, 64), np.float32), spacing=(0.0607, 0.0607, 0.0607))
    assert ood.check_spacing(vol, ref) == []  # XtremeCT II
    for px in (0.4, 0.84):  # pQCT, clinical CT
        assert codes(ood.check_spacing(replace(vol, spacing=(px, px, px)), ref)) == ["ood.spacing"]


def test_inverted_intensities(phantom, reference):
    inverted = replace(phantom.image, array=-phantom.image.array.astype(np.float32))
    found = ood.check_intensity(inverted, reference, where="inv")
    assert codes(found) == ["ood.intensity"]
    assert "unlike the model's training data" in found[0].message


def test_fat_and_muscle_moved_by_another_calibration(phantom, reference):
    arr = phantom.image.array.astype(np.float32).copy()
    limb = arr > -500
    arr[limb] += 180.0  # a calibration offset: every tissue 180 HU brighter
    found = ood.check_intensity(replace(phantom.image, array=arr), reference, where="cal")
    assert codes(found) == ["ood.intensity"]
    assert "fat peak" in found[0].message and "muscle peak" in found[0].message


def _volume(arr, spacing=0.5):
    return Volume(arr.astype(np.float32), spacing=(spacing, spacing, spacing), unit="HU")


def test_two_legs():
    arr = np.full((2, 240, 400), -1000.0)
    for c in ((120, 100), (120, 300)):
        leg = _disk((240, 400), c, 45.0)
        arr[:, leg] = 40.0
        arr[:, _disk((240, 400), c, 12.0)] = 1500.0
    found = ood.check_limbs(_volume(arr), "two")
    assert codes(found) == ["ood.two_limbs"]
    one = arr.copy()
    one[:, :, 200:] = -1000.0
    assert ood.check_limbs(_volume(one), "one") == []


def test_no_limb():
    arr = np.random.default_rng(0).normal(-1000, 20, (2, 200, 200))
    arr[:, _disk((200, 200), (100, 100), 8.0)] = 30.0  # 200 mm2: a tube, not a leg
    found = ood.check_limbs(_volume(arr), "air")
    assert codes(found) == ["ood.no_limb"]
    assert "no limb found" in found[0].message


def test_foam_like_scan_is_no_limb_of_soft_tissue():
    rng = np.random.default_rng(1)
    arr = np.full((2, 200, 200), -1000.0)
    block = np.zeros((200, 200), bool)
    block[20:180, 20:180] = True
    struts = block & (rng.random((200, 200)) > 0.4)
    from scipy import ndimage

    struts = ndimage.binary_dilation(struts, iterations=1) & block
    arr[:, struts] = 2600.0  # aluminium
    found = ood.check_limbs(_volume(arr), "foam")
    assert codes(found) == ["ood.no_soft_tissue"]


@pytest.mark.skipif(not (SCANCO / "aluminum.aim").is_file(), reason="real Scanco files absent")
def test_real_aluminium_foam_scan():
    from hrpqct.io import read_scan

    vol = read_scan(SCANCO / "aluminum.aim", unit="HU")
    found = codes(ood.scan_checks(vol, ood.load_reference(BUNDLED), where="al"))
    assert found == ["ood.no_limb", "ood.intensity"]  # 10.7 mm of metal foam, no soft tissue


# --- after the topology rules --------------------------------------------------------------------
def _leg_labels(tibia_r=16.0, cortex=1.3, fibula_r=7.0, fibula=True, spacing=0.25, n=320):
    lab = np.zeros((2, n, n), np.uint8)
    c = (n // 2, n // 2 - 20)
    lab[:, _disk((n, n), c, tibia_r + 20, spacing)] = ST
    lab[:, _disk((n, n), c, tibia_r, spacing)] = TC
    lab[:, _disk((n, n), c, tibia_r - cortex, spacing)] = TT
    if fibula:
        f = (n // 2 + 40, n // 2 + 70)
        lab[:, _disk((n, n), f, fibula_r, spacing)] = FC
        lab[:, _disk((n, n), f, fibula_r - 1.0, spacing)] = FT
    return lab, (spacing, spacing, spacing)


def test_plausible_leg_labels_have_no_warning():
    lab, sp = _leg_labels()
    assert ood.check_anatomy(lab, sp, "leg") == []


def test_no_bone():
    lab, sp = _leg_labels()
    lab[np.isin(lab, (TC, TT, FC, FT))] = ST
    found = ood.check_anatomy(lab, sp, "nb")
    assert codes(found) == ["ood.no_bone"]


def test_no_tibia_when_the_tibia_became_soft_tissue():
    lab, sp = _leg_labels()
    lab[np.isin(lab, (TC, TT))] = ST  # the issue's real scan: tibia labelled soft tissue
    found = ood.check_anatomy(lab, sp, "nt")
    assert codes(found) == ["ood.no_tibia"]
    assert "no tibia found on 2 of 2 slices" in found[0].message


def test_radius_like_shape_one_bone():
    lab, sp = _leg_labels(tibia_r=10.0, cortex=1.0, fibula=False)
    assert codes(ood.check_anatomy(lab, sp, "radius")) == ["ood.one_bone"]


def test_areas_and_cortex_far_outside_the_ranges():
    lab, sp = _leg_labels(tibia_r=7.0, cortex=0.1, fibula_r=6.5)
    found = codes(ood.check_anatomy(lab, sp, "small"))
    assert "ood.tibia_area" in found and "ood.tibia_cortex" in found
    assert "ood.fibula_larger" in found  # 154 mm2 vs 133 mm2
    lab, sp = _leg_labels(cortex=7.0)
    assert "ood.tibia_cortex" in codes(ood.check_anatomy(lab, sp, "thick"))


# --- test-time augmentation ----------------------------------------------------------------------
class _Predictor:
    """Logits [b, 6, h/4, w/4] from the input: bone where bright; ``lopsided`` labels only the
    left half's bone as tibia and the right half's as fibula (not mirror-equivariant)."""

    def __init__(self, lopsided: bool) -> None:
        self.lopsided = lopsided

    def __call__(self, x):
        import torch
        import torch.nn.functional as F

        y = F.avg_pool2d(x, 4)
        b, _, h, w = y.shape
        logits = torch.zeros(b, 6, h, w)
        bright = y[:, 0] > 0.5
        logits[:, 5] = 1.0
        left = torch.zeros(h, w, dtype=torch.bool)
        left[:, : w // 2] = True
        if self.lopsided:
            logits[:, TC] = (bright & left).float() * 5
            logits[:, FC] = (bright & ~left).float() * 5
        else:
            logits[:, TC] = bright.float() * 5
        return logits


def test_flip_agreement_flags_a_network_that_is_not_mirror_consistent(phantom):
    from hrpqct.seg.preprocess import InputSpec, plan_crop

    spec = InputSpec(input_px=128)
    box, _ = plan_crop(phantom.image.array, phantom.image.spacing, spec)
    good = ood.flip_agreement(phantom.image, _Predictor(False), box, spec, [0, 1])
    assert set(good) == {0, 1} and min(good.values()) > 0.95
    assert ood.check_flip(good, "p") == []
    bad = ood.flip_agreement(phantom.image, _Predictor(True), box, spec, [0, 1])
    assert max(bad.values()) < OOD.min_flip_agreement
    found = ood.check_flip(bad, "p")
    assert codes(found) == ["ood.flip"] and "labels the bones differently" in found[0].message
    assert ood.check_flip({0: float("nan")}, "p") == []


# --- where the user sees them --------------------------------------------------------------------
def test_warnings_reach_cli_summary_and_slicer_results(phantom, tmp_path, capsys):
    from hrpqct.io import write_image
    from hrpqct.seg.model import ModelCard, build_model, save_model
    from hrpqct.seg.preprocess import InputSpec
    from hrpqct_slicer.seg_logic import segmentation_warnings

    from helpers import cli

    model = save_model(build_model("tiny", seed=0), tmp_path / "model",
                       ModelCard(name="tiny-test", variant="tiny",
                                 preprocessing=InputSpec(input_px=128).to_dict()))
    inverted = replace(phantom.image, array=-phantom.image.array.astype(np.float32))
    import json

    ref = ood.reference_from_volumes([phantom.image], spacing_mm=(0.5, 0.9))
    (model / ood.REFERENCE_FILE).write_text(json.dumps(ref), encoding="utf-8")
    scan = write_image(inverted, tmp_path / "inv.nrrd")
    assert cli("segment", str(scan), "--out", str(tmp_path / "o"), "--model", str(model),
               "--device", "cpu", "-q", "--flip-check", "2") == 0
    out = " ".join(capsys.readouterr().out.split())
    assert f"warning: {scan}: the limb's intensities are unlike the model's training data" in out
    table = pd.read_csv(tmp_path / "o" / "inv_scan.csv")
    rows = table.loc[table.quantity == "warning", "value"].tolist()
    assert any("unlike the model's training data" in r for r in rows)
    assert segmentation_warnings(tmp_path / "o", "inv") == rows
    assert "flip_agreement" in pd.read_csv(tmp_path / "o" / "inv_confidence.csv").columns


def test_segment_volume_runs_the_flip_check_on_the_asked_slices(phantom):
    from hrpqct.seg.inference import segment_volume
    from hrpqct.seg.model import build_model
    from hrpqct.seg.preprocess import InputSpec

    res = segment_volume(phantom.image, build_model("tiny", seed=0), device="cpu",
                         input_spec=InputSpec(input_px=64), flip_check=2)
    assert sorted(res.flip_agreement) == [0, 1]
    assert list(res.confidence.columns)[-1] == "flip_agreement"
    off = segment_volume(phantom.image, build_model("tiny", seed=0), device="cpu",
                         input_spec=InputSpec(input_px=64))
    assert off.flip_agreement == {} and "flip_agreement" not in off.confidence.columns


def test_slicer_refine_result_carries_the_anatomy_warnings(phantom):
    slicer = pytest.importorskip("slicer", reason="slicer-core (the MRML library) is not installed")
    if not hasattr(slicer, "vtkMRMLScene"):
        pytest.skip("the 'slicer' module has no vtkMRMLScene (not slicer-core)")
    import hrpqct_slicer as B
    from hrpqct_slicer import seg_logic as S

    scene = slicer.vtkMRMLScene()
    logic = B.segmentations_logic(scene)
    node = B.volume_to_node(scene, phantom.image, name="leg scan")
    five = phantom.labels5.array.copy()
    five[np.isin(five, (TC, TT))] = ST  # the issue's failure: the tibia labelled soft tissue
    seg = B.labelmap_to_segmentation(scene, logic, phantom.labels5.with_array(five), reference=node,
                                     table="model")
    result = S.refine_segmentation(scene, logic, seg, node)
    assert any("no tibia found on 2 of 2 slices" in w for w in result.warnings)
