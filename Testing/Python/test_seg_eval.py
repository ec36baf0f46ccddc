"""Table I metrics on constructed label maps with hand-computed values; empty-class rules; the
summary table, Markdown, files; eval-seg end to end with a tiny model on a tiny phantom."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from hrpqct.errors import GeometryError
from hrpqct.seg import evaluate as E


def _maps():
    """Two 4 x 6 slices. Slice 0: class 1 truth 6 px, predicted 8 px, overlap 4.
    Slice 1: class 1 absent from truth but predicted (2 px); class 2 in truth (3 px), not predicted."""
    truth = np.zeros((2, 4, 6), np.uint8)
    pred = np.zeros((2, 4, 6), np.uint8)
    truth[0, 0:2, 0:3] = 1  # 6 px
    pred[0, 0:2, 1:5] = 1  # 8 px, overlap columns 1-2 -> 4 px
    pred[1, 3, 4:6] = 1
    truth[1, 0, 0:3] = 2
    return pred, truth


def test_confusion_counts():
    pred, truth = _maps()
    c = E.confusion(pred, truth, [1, 2])
    assert c.shape == (2, 2, 3)
    assert c[0, 0].tolist() == [4, 4, 2]  # TP, FP, FN of class 1 on slice 0
    assert c[1, 0].tolist() == [0, 2, 0]
    assert c[1, 1].tolist() == [0, 0, 3]
    assert c[0, 1].tolist() == [0, 0, 0]
    with pytest.raises(GeometryError):
        E.confusion(pred[:, :3], truth, [1])


def test_metrics_hand_computed_and_empty_classes():
    pred, truth = _maps()
    m = E.slice_metrics(E.confusion(pred, truth, [1, 2]))
    assert m["precision"][0, 0] == pytest.approx(4 / 8)
    assert m["recall"][0, 0] == pytest.approx(4 / 6)
    assert m["f1"][0, 0] == pytest.approx(2 * 4 / (2 * 4 + 4 + 2))  # 8/14
    assert m["iou"][0, 0] == pytest.approx(4 / 10)
    # predicted but absent: precision, F1, IoU 0; recall undefined
    assert m["precision"][1, 0] == 0 and m["f1"][1, 0] == 0 and m["iou"][1, 0] == 0
    assert np.isnan(m["recall"][1, 0])
    # present but missed: recall, F1, IoU 0; precision undefined
    assert m["recall"][1, 1] == 0 and m["f1"][1, 1] == 0 and np.isnan(m["precision"][1, 1])
    # absent from both: everything undefined
    assert all(np.isnan(m[k][0, 1]) for k in E.METRICS)
    # F1 is Dice: 2 |P & T| / (|P| + |T|)
    assert m["f1"][0, 0] == pytest.approx(2 * 4 / (8 + 6))


def test_summary_mean_sd_over_slices_and_markdown():
    pred, truth = _maps()
    from hrpqct.regions import MODEL_CLASSES

    frame = E.metrics_frame(pred, truth, case="c", stage="raw")
    assert len(frame) == 2 * len(MODEL_CLASSES)
    t = E.summary_table(frame).set_index("code")
    # class 1 (TC): F1 on slice 0 = 8/14, slice 1 = 0 -> mean 4/14, SD (ddof 1) = (8/14)/sqrt(2)
    assert t.loc["TC", "f1_mean"] == pytest.approx(4 / 14)
    assert t.loc["TC", "f1_sd"] == pytest.approx((8 / 14) / np.sqrt(2))
    assert t.loc["TC", "precision_n"] == 2 and t.loc["TC", "recall_n"] == 1
    assert t.loc["TC", "recall_mean"] == pytest.approx(4 / 6) and np.isnan(t.loc["TC", "recall_sd"])
    assert t.loc["TT", "f1_n"] == 1 and t.loc["TT", "f1_mean"] == 0.0
    assert t.loc["FC", "f1_n"] == 0 and np.isnan(t.loc["FC", "f1_mean"])
    # Mean row: mean of the defined class means (TC 4/14, TT 0)
    assert t.loc["Mean", "f1_mean"] == pytest.approx((4 / 14 + 0) / 2)
    # two scans with the same short name are still two sets of slices (keyed by the scan file)
    two = pd.concat([E.metrics_frame(pred, truth, case="c", scan="a/c"),
                     E.metrics_frame(pred, truth, case="c", scan="b/c")])
    assert E.summary_table(two).set_index("code").loc["Mean", "f1_n"] == 4
    md = E.table_markdown(E.summary_table(frame), "Raw")
    assert "| Tibia cortical (TC) | 25.00 ± 35.36 | 66.67 | 28.57 ± 40.41 | 20.00 ± 28.28 | 2 |" in md
    assert "**Mean**" in md and "n/a" in md


def test_perfect_segmentation_scores_one():
    rng = np.random.default_rng(0)
    lab = rng.integers(0, 6, size=(3, 20, 20)).astype(np.uint8)
    t = E.summary_table(E.metrics_frame(lab, lab, case="x", stage="raw")).set_index("code")
    for k in E.METRICS:
        assert t[f"{k}_mean"].tolist() == pytest.approx([1.0] * 6)


def test_eval_seg_end_to_end_with_a_tiny_model(tmp_path):
    """A tiny untrained model on a tiny phantom: the command runs, writes every table, and its
    per-slice numbers equal metrics recomputed from segment_volume's output."""
    from typer.testing import CliRunner

    import hrpqct.cli  # noqa: F401 - registers the commands
    from hrpqct._cli import app
    from hrpqct.io import write_image, write_labelmap
    from hrpqct.phantom.anatomy import Anatomy
    from hrpqct.phantom.render import Grid
    from hrpqct.phantom.scan import iter_slices
    from hrpqct.seg.inference import segment_volume
    from hrpqct.seg.model import ModelCard, build_model, load_model, save_model
    from hrpqct.seg.preprocess import InputSpec
    from hrpqct.volume import Volume

    grid = Grid(size=96, n_slices=2)
    sl = list(iter_slices(Anatomy(seed=3), grid))
    geom = dict(spacing=(grid.pixel_mm,) * 3)
    case = tmp_path / "data" / "p1"
    case.mkdir(parents=True)
    img = Volume(np.stack([s[1] for s in sl]), unit="HU", **geom)
    lab = np.stack([s[2] for s in sl])
    write_image(img, case / "image.nrrd")
    write_labelmap(Volume(lab, unit="label", **geom), case / "labels5.nrrd")
    model_dir = tmp_path / "m"
    save_model(build_model("tiny", seed=0), model_dir,
               ModelCard(name="tiny-eval", variant="tiny", preprocessing=InputSpec(input_px=64).to_dict()))
    out = tmp_path / "eval"
    r = CliRunner().invoke(app, ["eval-seg", "--model", str(model_dir), "--data", str(tmp_path / "data"),
                                 "--out", str(out), "--no-progress", "--record-in-card", "--title", "t"])
    assert r.exit_code == 0, r.output
    for f in ("table.md", "table_raw.csv", "table_postprocessed.csv", "per_slice.csv", "summary.json"):
        assert (out / f).is_file(), f
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["facts"]["n_slices"] == 2 and set(summary["headline"]) == {"raw", "postprocessed"}

    per = pd.read_csv(out / "per_slice.csv")
    raw = segment_volume(img, load_model(model_dir), device="cpu").labels.array
    ref = E.metrics_frame(raw, lab, case="p1", stage="raw")
    got = per[per.stage == "raw"].reset_index(drop=True)
    assert got.scan.str.endswith("image.nrrd").all()
    np.testing.assert_array_equal(got[["tp", "fp", "fn"]].to_numpy(), ref[["tp", "fp", "fn"]].to_numpy())
    card = json.loads((model_dir / "model_card.json").read_text(encoding="utf-8"))
    assert card["metrics"]["eval:t"]["n_slices"] == 2
