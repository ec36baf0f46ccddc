"""Segmentation training: losses, patient split, slice cache, augmentation, a tiny training run
(loss falls, Dice rises), resume after an interruption (bit-identical), the train-seg CLI."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from hrpqct.errors import Cancelled, InputError
from hrpqct.seg import losses as L
from hrpqct.seg.dataset import (Augment, Case, SliceDataset, augment_pair, build_cache, read_cases,
                                split_by_patient)
from hrpqct.seg.train import TrainConfig, load_checkpoint_state, train_segmentation

# A few-hundred-kparam SegFormer (the "tiny" variant widened) at a 64-pixel input.
ARCH = {"hidden_sizes": [16, 32, 64, 128], "decoder_hidden_size": 64, "num_attention_heads": [1, 1, 2, 4],
        "depths": [1, 1, 2, 1], "mlp_ratios": [4, 4, 4, 4]}


def tiny_config(**kw) -> TrainConfig:
    base = dict(name="tiny-test", variant="tiny", arch=ARCH, input_px=64, epochs=2, lr=3e-3, seed=1,
                threads=1, augment=Augment(enabled=False))
    base.update(kw)
    return TrainConfig(**base)


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    """Six tiny synthetic subjects (128 px, 1.09 mm pixels, 3 slices) as case folders with
    image.nrrd and labels5.nrrd (the layout read_cases accepts without a manifest)."""
    from hrpqct.io import write_image, write_labelmap
    from hrpqct.phantom.cohort import anatomy_for, make_subjects
    from hrpqct.phantom.render import Grid
    from hrpqct.phantom.scan import iter_slices
    from hrpqct.volume import Volume

    out = tmp_path_factory.mktemp("cohort")
    grid = Grid(size=128, n_slices=3)
    subjects = make_subjects(12, seed=5)
    for row in subjects[subjects.motion == 0].head(6).itertuples():  # motion blur is slow to render
        sl = list(iter_slices(anatomy_for(row), grid))
        geom = dict(spacing=(grid.pixel_mm,) * 3)
        (out / row.subject_id).mkdir()
        write_image(Volume(np.stack([s[1] for s in sl]), unit="HU", **geom), out / row.subject_id / "image.nrrd")
        write_labelmap(Volume(np.stack([s[2] for s in sl]), unit="label", **geom),
                       out / row.subject_id / "labels5.nrrd")
    return out


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


# --- losses ---------------------------------------------------------------------------------------
def test_soft_dice_hand_computed():
    # one image, 2 classes, 2 pixels; logits make softmax exactly (0.5, 0.5) and (1, 0) nearly
    logits = torch.tensor([[[[0.0, 50.0]], [[0.0, -50.0]]]])  # [1, 2, 1, 2]
    target = torch.tensor([[[0, 1]]])
    p0 = torch.tensor([0.5, 1.0])  # probability of class 0 at the two pixels
    d0 = (2 * 0.5 + 0) / (p0.sum() + 1)  # class 0 present at pixel 0 only
    d1 = (2 * 0.0) / ((1 - p0).sum() + 1)
    expected = 1 - (d0 + d1) / 2
    assert float(L.soft_dice_loss(logits, target, eps=0.0)) == pytest.approx(float(expected), abs=1e-6)


def test_perfect_prediction_scores_and_absent_class_is_one():
    target = torch.tensor([[[0, 1], [2, 2]]])
    logits = torch.nn.functional.one_hot(target, 4).permute(0, 3, 1, 2).float() * 100
    # class 3 is in neither map: Dice (0 + eps) / (0 + eps) = 1, so the loss is 0
    assert float(L.soft_dice_loss(logits, target)) == pytest.approx(0.0, abs=1e-5)
    total, ce, dl = L.ce_dice_loss(logits, target)
    assert float(ce) < 1e-6 and float(total) == pytest.approx(float(ce) + float(dl))


def test_logits_are_upsampled_to_the_labels():
    logits = torch.zeros(1, 6, 4, 4, requires_grad=True)
    target = torch.zeros(1, 16, 16, dtype=torch.long)
    total, ce, _ = L.ce_dice_loss(logits, target)
    assert ce.item() == pytest.approx(math.log(6), rel=1e-6)
    total.backward()
    assert logits.grad.shape == (1, 6, 4, 4)


def test_hard_dice():
    pred = np.array([[[1, 1, 0, 0]], [[2, 2, 2, 2]]])
    truth = np.array([[[1, 0, 0, 0]], [[2, 2, 0, 0]]])
    d = L.hard_dice(pred, truth, [1, 2])
    assert d[0, 0] == pytest.approx(2 / 3)  # 2*1 / (2 + 1)
    assert np.isnan(d[0, 1])  # class 2 in neither map of image 0
    assert np.isnan(d[1, 0]) and d[1, 1] == pytest.approx(2 * 2 / (4 + 2))


# --- split, cases, cache, augmentation ----------------------------------------------------------
def test_split_by_patient_is_seeded_disjoint_and_60_20_20():
    pts = [f"p{i:02d}" for i in range(50)] * 2  # two scans per patient
    s = split_by_patient(pts, seed=3)
    assert [len(s[k]) for k in ("train", "val", "test")] == [30, 10, 10]
    assert not (set(s["train"]) & set(s["val"])) and not (set(s["val"]) & set(s["test"]))
    assert set(s["train"]) | set(s["val"]) | set(s["test"]) == set(pts)
    assert s == split_by_patient(list(reversed(pts)), seed=3)  # order of the input does not matter
    assert s != split_by_patient(pts, seed=4)
    small = split_by_patient(["a", "b", "c"], seed=0)
    assert [len(small[k]) for k in ("train", "val", "test")] == [1, 1, 1]


def test_read_cases_from_cohort_and_errors(cohort, tmp_path):
    cases = read_cases(cohort)
    assert len(cases) == 6 and cases[0].patient == "sub-0001"
    assert cases[0].mask.endswith("labels5.nrrd")
    # a phantom-cohort manifest: subject ids repeat across cohorts, so the subject seed is added
    (tmp_path / "c.csv").write_text("subject_id,scan,segmentation5,seed\n"
                                    f"sub-0001,{cases[0].scan},{cases[0].mask},77\n", encoding="utf-8")
    assert read_cases(tmp_path / "c.csv")[0].patient == "sub-0001-seed77"
    with pytest.raises(InputError, match="no mask column"):
        (tmp_path / "m.csv").write_text("scan\nx.nrrd\n", encoding="utf-8")
        read_cases(tmp_path / "m.csv")
    with pytest.raises(InputError, match="not found"):
        (tmp_path / "m2.csv").write_text("scan,mask\nx.nrrd,y.nrrd\n", encoding="utf-8")
        read_cases(tmp_path / "m2.csv")


def test_cache_matches_inference_preprocessing_and_is_reused(cohort, cache_dir):
    from hrpqct.seg.dataset import load_case
    from hrpqct.seg.preprocess import InputSpec, labels_to_input, plan_crop, preprocess_slices

    cases = read_cases(cohort)[:2]
    spec = InputSpec(input_px=64)
    c1 = build_cache(cases, cache_dir, spec)
    assert len(c1) == 6 and c1.images.dtype == np.float16 and c1.images.shape[1:] == (64, 64)
    image, labels = load_case(cases[1])
    box, _ = plan_crop(image.array, image.spacing, spec)
    x = preprocess_slices(image.array[2:3].astype(np.float32), box, spec)[0, 0].numpy()
    np.testing.assert_allclose(c1.images[5].astype(np.float32), x, atol=1e-3)
    np.testing.assert_array_equal(c1.labels[5], labels_to_input(labels[2:3], box, spec)[0])
    assert set(np.unique(c1.labels)) <= {0, 1, 2, 3, 4, 5} and (c1.labels == 4).any()
    c2 = build_cache(cases, cache_dir, spec)
    assert c2.folder == c1.folder  # same key: reused, not rebuilt
    assert build_cache(cases, cache_dir, InputSpec(input_px=32)).folder != c1.folder


def test_augmentation_is_seeded_and_label_preserving():
    img = torch.zeros(1, 32, 32)
    lab = torch.zeros(32, 32, dtype=torch.long)
    lab[8:24, 4:12] = 2
    img[0][lab == 2] = 1.0
    aug = Augment(enabled=True, flip_prob=1.0, rotate_deg=0.0, intensity_scale=0.0, intensity_shift=0.0)
    i2, l2 = augment_pair(img, lab, aug, torch.Generator().manual_seed(0))
    assert torch.equal(l2, lab.flip(-1)) and torch.equal(i2, img.flip(-1))
    rot = Augment(enabled=True, flip_prob=0.0, rotate_deg=10.0, intensity_scale=0.1, intensity_shift=0.05)
    a = augment_pair(img, lab, rot, torch.Generator().manual_seed(7))
    b = augment_pair(img, lab, rot, torch.Generator().manual_seed(7))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert set(a[1].unique().tolist()) <= {0, 2} and abs(int((a[1] == 2).sum()) - 128) < 20
    off = augment_pair(img, lab, Augment(enabled=False), torch.Generator().manual_seed(7))
    assert torch.equal(off[0], img) and torch.equal(off[1], lab)


def test_dataset_patches_and_epochs(cohort, cache_dir):
    from hrpqct.seg.preprocess import InputSpec

    cache = build_cache(read_cases(cohort)[:2], cache_dir, InputSpec(input_px=64))
    ds = SliceDataset(cache, Augment(enabled=True), seed=0, patch_px=32)
    x, y = ds[0]
    assert x.shape == (1, 32, 32) and y.shape == (32, 32) and y.dtype == torch.int64
    assert (y > 0).any()  # patches are centred on the limb
    x2, _ = ds[0]
    assert torch.equal(x, x2)
    ds.set_epoch(1)
    assert not torch.equal(ds[0][0], x)


# --- training ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def trained(cohort, cache_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    cfg = tiny_config(epochs=8)
    res = train_segmentation(read_cases(cohort), out, cfg, cache_dir=cache_dir)
    return out, cfg, res


def test_tiny_training_loss_falls_and_dice_rises(trained):
    out, cfg, res = trained
    n_params = sum(p.numel() for p in __import__("hrpqct.seg.model", fromlist=["x"]).build_model(
        "tiny", **ARCH).parameters())
    assert 1e5 < n_params < 1e6  # a few hundred thousand parameters
    h = res.history
    assert len(h) == 8 and [r["epoch"] for r in h] == list(range(1, 9))
    assert h[-1]["train_loss"] < 0.75 * h[0]["train_loss"]
    assert max(r["val_dice"] for r in h[-3:]) > h[0]["val_dice"] + 0.1
    assert res.best_val_dice == max(r["val_dice"] for r in h)
    log = (out / "log.csv").read_text(encoding="utf-8").splitlines()
    assert len(log) == 9 and log[0].startswith("epoch,lr,train_loss")
    split = json.loads((out / "split.json").read_text(encoding="utf-8"))
    assert [len(split["patients"][k]) for k in ("train", "val", "test")] == [4, 1, 1]
    # the best epoch was saved with a card recording the preprocessing
    from hrpqct.seg.model import load_model

    m = load_model(out / "model")
    assert m.input_spec.input_px == 64 and m.card.metrics["best_epoch"] == res.best_epoch
    assert m.card.training["config"]["lr"] == cfg.lr
    assert "test_dice" in res.test


def test_resume_continues_identically(cohort, cache_dir, tmp_path, trained):
    """Interrupted mid-epoch, then at an epoch's end: resumed runs end bit-identical to an
    uninterrupted one (weights, Adam state, RNG) with the same epoch counter and log."""
    ref_out, _, ref = trained
    cfg = tiny_config(epochs=3)
    full = tmp_path / "full"
    train_segmentation(read_cases(cohort), full, cfg, cache_dir=cache_dir)
    steps = math.ceil(4 * 3 / cfg.batch_size)  # 4 training patients x 3 slices per step of 2
    for stop_at in (steps + 2, 2 * steps):
        out = tmp_path / f"stop{stop_at}"
        with pytest.raises(Cancelled):
            train_segmentation(read_cases(cohort), out, cfg, cache_dir=cache_dir,
                               progress=lambda d, t: d < stop_at)
        st = load_checkpoint_state(out)
        assert st["global_step"] == stop_at
        assert (st["epoch"], st["step_in_epoch"]) == ((1, 2) if stop_at == steps + 2 else (2, 0))
        res = train_segmentation(read_cases(cohort), out, cfg, cache_dir=cache_dir)
        assert res.epochs_done == 3
        for f in ("model.safetensors", "training_state.safetensors"):
            a, b = load_file(full / "checkpoint" / f), load_file(out / "checkpoint" / f)
            assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), f
        drop = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa: E731
        assert drop(res.history) == drop(load_checkpoint_state(full)["history"])
    # the first 3 epochs of the 8-epoch run match the 3-epoch run too (epochs are independent of
    # the total), and a finished run can be extended by asking for more epochs
    assert [r["train_loss"] for r in ref.history[:3]] == [r["train_loss"] for r in
                                                          load_checkpoint_state(full)["history"]]
    more = train_segmentation(read_cases(cohort), full, tiny_config(epochs=4), cache_dir=cache_dir)
    assert more.epochs_done == 4 and more.history[3]["train_loss"] == ref.history[3]["train_loss"]


def test_fine_tune_from_own_model_keeps_its_weights(cohort, cache_dir, trained, tmp_path):
    from hrpqct.seg.model import load_model

    src_dir = trained[0] / "model"
    cfg = tiny_config(epochs=1, init=str(src_dir), lr=1e-12)
    res = train_segmentation(read_cases(cohort), tmp_path / "ft", cfg, cache_dir=cache_dir)
    a, b = load_model(src_dir).model.state_dict(), load_model(res.model_dir).model.state_dict()
    # lr ~ 0: every trained weight (classifier included) carries over; only BN running stats move
    moved = [k for k in a if not torch.allclose(a[k].float(), b[k].float(), atol=1e-6)]
    assert moved and all("batch_norm" in k for k in moved)
    # it starts where the source model is, not from scratch: not worse than the source by more
    # than the epoch-to-epoch noise of this tiny model (BN statistics move on the CPU's kernels;
    # 0.28 -> 0.34 seen on one machine), and clearly above the from-scratch first epoch
    first = res.history[0]["val_dice"]
    assert first >= trained[2].best_val_dice - 0.05
    assert first > trained[2].history[0]["val_dice"] + 0.05


def test_resume_refuses_another_configuration(cohort, cache_dir, trained):
    out, _, _ = trained
    with pytest.raises(InputError, match="another configuration"):
        train_segmentation(read_cases(cohort), out, tiny_config(epochs=8, lr=1e-3), cache_dir=cache_dir)


def test_too_few_patients(cohort, tmp_path):
    with pytest.raises(InputError, match="too few patients"):
        train_segmentation(read_cases(cohort)[:1], tmp_path, tiny_config())


def test_train_seg_cli(cohort, cache_dir, tmp_path):
    from typer.testing import CliRunner

    from hrpqct._cli import app
    import hrpqct.cli  # noqa: F401 - registers the commands

    out = tmp_path / "cli"
    r = CliRunner().invoke(app, [
        "train-seg", "--data", str(cohort), "--out", str(out), "--variant", "tiny", "--arch", json.dumps(ARCH),
        "--input-size", "64", "--epochs", "1", "--lr", "0.003", "--no-augment", "--cache", str(cache_dir),
        "--threads", "1",
        "--no-progress", "--name", "cli-test"])
    assert r.exit_code == 0, r.output
    assert "val Dice" in r.output and (out / "model" / "model.safetensors").is_file()
    card = json.loads((out / "model" / "model_card.json").read_text(encoding="utf-8"))
    assert card["name"] == "cli-test" and card["preprocessing"]["input_px"] == 64
    assert "6 scans of 6 patients" in card["training_data"]
