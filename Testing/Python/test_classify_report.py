"""The HTML study report: tables carry the statistics module's numbers, the file is
self-contained, and it renders in a real headless Chromium (skipped with a reason without one)."""

from __future__ import annotations

import base64
import io
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hrpqct.classify import stats as S
from hrpqct.classify.report import study_tables, write_study_report
from hrpqct.errors import InputError

from synthetic_study import make_study


@pytest.fixture(scope="module")
def study():
    return make_study(seed=3, slices=6)


@pytest.fixture(scope="module")
def report(study, tmp_path_factory):
    path = tmp_path_factory.mktemp("report") / "study.html"
    out = write_study_report(study, path, roc_band_resamples=100)
    return out, out.read_text(encoding="utf-8")


def test_study_tables_carry_the_statistics(study):
    t = study_tables(study)
    img = [m for m in study.models if m.level == "image"]
    assert len(t["II"]) == len(img) == 36 and len(t["III"]) == 36
    m = next(mm for mm in img if mm.feature_group == "MT" and mm.classifier == "logreg")
    row = t["II"].set_index("model").loc[m.name]
    ref = S.metrics_table(m, seed=study.seed).set_index("metric")  # same bootstrap seed (F1)
    for k in ("accuracy", "sensitivity", "specificity", "ppv", "npv", "f1", "auroc"):
        assert row[k] == pytest.approx(ref.loc[k, "value"])
        assert row[f"{k}_low"] == pytest.approx(ref.loc[k, "ci_low"])
    v = m.patient_view()
    row3 = t["III"].set_index("model").loc[v.name]
    assert row3["auroc"] == pytest.approx(S.auroc_ci(v.y_true, v.y_prob[:, 1])[0])
    assert row3["n_patients"] == row3["n_rows"] == study.n_patients_test
    t5 = t["V"].set_index("model")
    assert study.oracle.name in t5.index and len(t5) == 6
    pm = study.model("patient / radiomics soft tissue (MT+AT) / logreg")
    hl = S.hosmer_lemeshow(pm.train_y_true, pm.train_y_prob[:, 1])
    assert t5.loc[pm.name, "hl_p"] == pytest.approx(hl.p_value) and t5.loc[pm.name,
                                                                          "hl_on"] == "training"
    dl = t["V_delong"]
    assert len(dl) == len(study.comparisons)
    ref = S.compare_models(study.model(study.comparisons[0][0]),
                           study.model(study.comparisons[0][1]))
    assert dl.iloc[0]["p_value"] == pytest.approx(ref["p_value"])
    t4 = t["IV"]
    assert set(t4["model"]) == {m.name for m in study.models
                                if m.logistic_table is not None}
    mc = t["multiclass"]
    assert set(mc["class"]) == {"all", "macro", "normal", "osteopenia", "osteoporosis"}


def test_report_is_self_contained_and_complete(study, report):
    path, html = report
    assert html.startswith("<!DOCTYPE html>")
    for title in ("Table II. Image-level models", "Table III. Patient view",
                  "Table IV. Logistic regression", "Table V. Patient-level models",
                  "Three-class models", "ROC curves", "Calibration", "Decision curves",
                  "Confusion matrices", "Selected features", "Paired DeLong tests",
                  "Correlation of the selected features"):
        assert title in html, title
    assert "NOT clinical models" in html  # the study says it is synthetic
    for m in study.models:
        if m.level == "patient":
            assert m.name.replace("&", "&amp;") in html
    # no external resource: every src / href is inline data or an in-page anchor
    refs = re.findall(r'(?:src|href)="([^"]*)"', html)
    assert refs and all(r.startswith(("data:", "#")) for r in refs)
    assert "<script" not in html and "<link" not in html
    imgs = re.findall(r'src="data:image/png;base64,([^"]+)"', html)
    assert len(imgs) >= 15
    for b64 in imgs:
        im = Image.open(io.BytesIO(base64.b64decode(b64)))
        assert im.format == "PNG" and im.width > 100
    # the oracle's AUROC is printed with three decimals
    o = study.oracle
    assert f"{S.delong_auc(o.y_true, o.y_prob[:, 1])[0]:.3f}" in html
    # atomic write: no temporary file left beside the report
    assert [p.name for p in path.parent.iterdir()] == ["study.html"]


def test_report_options_and_errors(study, tmp_path):
    clinical = make_study(seed=3, slices=2, synthetic=False, regions=("MT", "AT"),
                          classifiers=("logreg", "xgboost"))
    clinical.oracle = None
    out = write_study_report(clinical, tmp_path / "svg.html", figure_format="svg",
                             roc_band_resamples=0)
    html = out.read_text(encoding="utf-8")
    assert "NOT clinical models" not in html and "oracle" not in html.lower()
    assert html.count("<svg") >= 12 and "<img" not in html
    with pytest.raises(InputError, match="does not exist"):
        write_study_report(study, tmp_path / "missing" / "r.html")
    with pytest.raises(InputError, match="figure_format"):
        write_study_report(study, tmp_path / "r.html", figure_format="gif")
    bad = clinical
    bad.comparisons = [("patient / radscore / logreg", "no such model")]
    with pytest.raises(InputError, match="no such model"):
        write_study_report(bad, tmp_path / "r.html")
    assert not (tmp_path / "r.html").exists()


# ------------------------------------------------------------------------ real browser render
_CHECK = """<script>
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images);
  var ok = imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length;
  document.body.setAttribute('data-images-ok', ok);
  document.body.setAttribute('data-images-bad', imgs.length - ok);
  document.body.setAttribute('data-tables', document.querySelectorAll('table').length);
});
</script></body>"""


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        exe = shutil.which(name)
        if exe:
            return exe
    return None


def _run(exe, *args, timeout=120):
    cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
           "--hide-scrollbars", "--no-first-run", "--disable-extensions", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


@pytest.mark.skipif(_chromium() is None, reason="no headless Chromium on this machine "
                    "(Debian package 'chromium'; scripts/setup-browser.sh installs it as root)")
def test_report_renders_in_headless_chromium(report, tmp_path):
    exe = _chromium()
    path, html = report
    probe = tmp_path / "probe.html"  # the report plus a load check (the report has no JS)
    probe.write_text(html.replace("</body>", _CHECK), encoding="utf-8")
    r = _run(exe, "--virtual-time-budget=20000", "--dump-dom", probe.as_uri())
    assert r.returncode == 0, r.stderr[-2000:]
    dom = r.stdout
    n_img = len(re.findall(r"<img ", html))
    m = re.search(r'data-images-ok="(\d+)"', dom)
    assert m, "the page's load handler did not run"
    assert int(m.group(1)) == n_img and 'data-images-bad="0"' in dom
    assert int(re.search(r'data-tables="(\d+)"', dom).group(1)) == html.count("<table")
    assert "Table II. Image-level models" in dom and "Table V. Patient-level models" in dom
    # a screenshot of the top of the page is not blank and shows the coloured headings
    shot = tmp_path / "shot.png"
    r = _run(exe, "--window-size=1280,1600", f"--screenshot={shot}", path.as_uri())
    assert r.returncode == 0 and shot.exists(), r.stderr[-2000:]
    a = np.asarray(Image.open(shot).convert("RGB"), dtype=int)
    assert a.shape[:2] == (1600, 1280)
    assert (a.sum(axis=2) < 600).mean() > 0.01  # dark text drawn
    blue = (a[..., 2] > a[..., 0] + 60)  # headings / bands in the accent blue
    assert blue.mean() > 0.001
    assert a.std() > 20


def test_report_of_partial_studies(tmp_path):
    """Image-only, patient-only (no training predictions, traces or Table IV) and three-class-only
    studies each give a report with just their sections."""
    import dataclasses

    from hrpqct.classify.results import SelectionTrace

    base = make_study(seed=5, slices=2, regions=("MT",), classifiers=("logreg",))
    img = dataclasses.replace(base, models=[m for m in base.models if m.level == "image"],
                              comparisons=[], oracle=None)
    def h2(html):
        return " | ".join(re.findall(r"<h2 [^>]*>([^<]*)</h2>", html))

    html = write_study_report(img, tmp_path / "a.html", roc_band_resamples=20).read_text(
        encoding="utf-8")
    assert "Table II." in h2(html) and "Table V." not in h2(html)
    assert "Decision curves" not in h2(html)
    pat = [dataclasses.replace(m, train_y_true=None, train_y_prob=None, threshold=None,
                               selection=SelectionTrace(), logistic_table=None)
           for m in base.models if m.level == "patient"]
    html = write_study_report(dataclasses.replace(base, models=pat, comparisons=[]),
                              tmp_path / "b.html", roc_band_resamples=20).read_text(
                                  encoding="utf-8")
    assert "Table V." in h2(html) and "Table II." not in h2(html) and "Table IV." not in h2(html)
    assert "(test)" in html  # HL falls back to the test set and says so
    assert "Paired DeLong tests" in html  # default comparisons: each vs non-radiomics
    three = dataclasses.replace(base, models=[m for m in base.models if not m.binary],
                                comparisons=[], oracle=None)
    html = write_study_report(three, tmp_path / "c.html", roc_band_resamples=20).read_text(
        encoding="utf-8")
    assert "Three-class models" in h2(html) and "osteopenia" in html
    assert "Table II." not in h2(html) and "Table V." not in h2(html)
    with pytest.raises(InputError, match="no models"):
        write_study_report(dataclasses.replace(base, models=[]), tmp_path / "d.html")
