"""Figures of a classification study: they draw the numbers of the statistics module."""

from __future__ import annotations

import io
import re

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from hrpqct.classify import plots as P
from hrpqct.classify import stats as S
from hrpqct.classify.results import SelectionTrace
from hrpqct.errors import InputError

from synthetic_study import make_study


@pytest.fixture(scope="module")
def study():
    return make_study(seed=1, slices=4)


def _png_ok(data: bytes):
    im = Image.open(io.BytesIO(data)).convert("L")
    a = np.asarray(im, dtype=float)
    assert im.width > 200 and im.height > 150
    assert a.std() > 10  # not blank
    return im


def _patient(study):
    return [m for m in study.models if m.level == "patient" and m.binary]


def test_roc_figure_draws_curves_with_delong_auc(study):
    models = _patient(study)[:3]
    fig = P.roc_figure(models, n_boot=100, oracle=study.oracle)
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    for m, lab in zip(models, labels):
        auc, lo, hi = S.auroc_ci(m.y_true, m.y_prob[:, 1])
        assert f"AUROC {auc:.3f} ({lo:.3f}-{hi:.3f})" in lab and m.name in lab
    assert "oracle" in labels[-1]
    fpr, tpr, _ = S.roc_curve_points(models[0].y_true, models[0].y_prob[:, 1])
    x, y = ax.lines[0].get_data()
    np.testing.assert_allclose(x, fpr)
    np.testing.assert_allclose(y, tpr)
    assert len(ax.collections) == 3  # one band per model
    _png_ok(P.to_png(fig))
    # three classes: one one-vs-rest curve per class
    three = [m for m in study.models if not m.binary][0]
    fig3 = P.roc_figure([three], band=False)
    assert len([t for t in fig3.axes[0].get_legend().get_texts()]) == 3


def test_calibration_and_decision_figures(study):
    models = _patient(study)
    fig = P.calibration_figure(models, train=True)
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    m = models[0]
    hl = S.hosmer_lemeshow(m.train_y_true, m.train_y_prob[:, 1])
    assert any(f"HL p = {hl.p_value:.3f}" in lab and m.name in lab for lab in labels)
    _png_ok(P.to_png(fig))
    scores = {mm.name: mm.y_prob[:, 1] for mm in models}
    fig = P.decision_curve_figure(m.y_true, scores)
    nb = S.net_benefit(m.y_true, m.y_prob[:, 1])
    x, y = fig.axes[0].lines[0].get_data()
    np.testing.assert_allclose(x, nb.threshold)
    np.testing.assert_allclose(y, nb.model)
    x, y = fig.axes[0].lines[len(models)].get_data()  # treat all
    np.testing.assert_allclose(y, nb.treat_all)
    _png_ok(P.to_png(fig))


def test_confusion_and_heatmap(study):
    cm = np.array([[5, 1, 0], [2, 3, 1], [0, 2, 6]])
    fig = P.confusion_figure(cm, ["normal", "osteopenia", "osteoporosis"])
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert "5\n83 %" in texts and "6\n75 %" in texts
    _png_ok(P.to_png(fig))
    mat = study.models[0].selection.train_matrix
    fig = P.correlation_heatmap(mat, "TC")
    corr = mat.corr().to_numpy()
    mean_abs = np.abs(corr[~np.eye(len(corr), dtype=bool)]).mean()
    assert f"mean |r| = {mean_abs:.3f}" in fig.axes[0].get_title()
    svg = P.to_svg(fig)
    assert svg.startswith("<svg")
    hrefs = re.findall(r'href="([^"]*)"', svg)
    assert hrefs and all(h.startswith(("data:", "#")) for h in hrefs)  # nothing external
    with pytest.raises(InputError):
        P.correlation_heatmap(None)


def test_feature_kind_and_selection_figure(study):
    assert P.feature_kind("MT_wavelet-H_glcm_Idmn") == ("Wavelet-H", "GLCM")
    assert P.feature_kind("original_firstorder_Mean") == ("Original", "First order")
    assert P.feature_kind("TC_log-sigma-2-0-mm-3D_firstorder_10Percentile") == (
        "LoG", "First order")
    assert P.feature_kind("AT_lbp-2D_gldm_DependenceEntropy") == ("LBP", "GLDM")
    assert P.feature_kind("CtvBMD") == ("non-radiomics", "non-radiomics")
    traces = {m.feature_group: m.selection for m in study.models
              if m.level == "image" and m.classifier == "logreg"}
    fig = P.selection_figure(traces)
    total = sum(len(t.selected) for t in traces.values())
    assert f"(total {total})" in fig.axes[1].get_title()
    # bar heights by feature class add up per class
    counts = pd.Series([P.feature_kind(f)[1] for t in traces.values() for f in t.selected])
    heights = {}
    ax = fig.axes[2]
    labels = [t.get_text() for t in ax.get_xticklabels()]
    for patch in ax.patches:
        cat = labels[int(round(patch.get_x() + patch.get_width() / 2))]
        heights[cat] = heights.get(cat, 0) + patch.get_height()
    assert heights == {k: float(v) for k, v in counts.value_counts().items()}
    steps = fig.axes[0].lines[0].get_data()[1]
    first = next(iter(traces.values()))
    assert list(steps) == [len(f) for _, f in first.steps]
    _png_ok(P.to_png(fig))
    with pytest.raises(InputError):
        P.selection_figure({"x": SelectionTrace()})
    assert re.match(r"^Selected", fig._suptitle.get_text())
