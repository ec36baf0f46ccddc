"""The engine on PyRadiomics' own test image (brain1, from its repository's ``data/``, BSD-3; a
crop kept in ``Testing/Data/pyradiomics``, see the README there) gives PyRadiomics' own
``execute`` values: 2D slices with the ``paper`` preset, the volume with the ``3d`` preset, and
the settings of PyRadiomics' own baseline (``data/baseline``), whose published values it also
matches as PyRadiomics' own test does (within 3 %).

``HRPQCT_PYRADIOMICS_DATA`` may point at a full PyRadiomics ``data/`` folder instead (then brain2
is tested too)."""

from __future__ import annotations

import ast
import csv
import os
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("radiomics")

from hrpqct.radiomics.engine import MultiRegionExtractor, pyradiomics_execute  # noqa: E402

from test_radiomics_engine import assert_parity  # noqa: E402

HERE = Path(__file__).resolve().parents[1] / "Data" / "pyradiomics"
DATA = Path(os.environ.get("HRPQCT_PYRADIOMICS_DATA", HERE))
CASES = [n for n in ("brain1", "brain2") if (DATA / f"{n}_image.nrrd").is_file()]


def test_data_present():
    assert (HERE / "brain1_image.nrrd").is_file() and (HERE / "LICENSE.txt").is_file()
    assert "brain1" in CASES


def _case(name, folder=DATA):
    import SimpleITK as sitk

    img = sitk.ReadImage(str(folder / f"{name}_image.nrrd"))
    lab = sitk.ReadImage(str(folder / f"{name}_label.nrrd"))
    return sitk.GetArrayFromImage(img), sitk.GetArrayFromImage(lab) == 1, img.GetSpacing()


@pytest.mark.parametrize("name", CASES)
def test_paper_preset_on_pyradiomics_slices(name):
    """2D, as the engine runs on HR-pQCT: the slice with the largest tumour section, the tumour
    and an overlapping second region (its upper half), one engine call for both."""
    image, label, spacing = _case(name)  # int16 MR, as stored: the engine sees that dtype
    z = int(np.argmax(label.sum(axis=(1, 2))))
    rows = np.flatnonzero(label[z].any(axis=1))
    half = (rows[0] + rows[-1]) // 2
    top = label[z].copy()
    top[half:] = False
    masks = {"tumour": label[z], "upper": top}
    ours = MultiRegionExtractor("paper").execute(image[z], masks, spacing[:2])
    ref = pyradiomics_execute(image[z], masks, spacing[:2], "paper")
    assert assert_parity(ours, ref, expect_ok=list(masks)) == 2 * 939


def test_3d_preset_on_brain1():
    image, label, spacing = _case("brain1")
    idx = np.nonzero(label)
    box = tuple(slice(max(i.min() - 6, 0), i.max() + 7) for i in idx)  # crop: keeps it quick
    image, label = image[box].astype(np.float32), label[box]
    ours = MultiRegionExtractor("3d").execute(image, {"tumour": label}, spacing)
    ref = pyradiomics_execute(image, {"tumour": label}, spacing, "3d")
    assert assert_parity(ours, ref, expect_ok=["tumour"]) == 1409


def _baseline():
    with open(HERE / "brain1_baseline.csv", encoding="utf-8", newline="") as f:
        rows = {r["featureName"]: r["brain1"] for r in csv.DictReader(f)}
    settings = ast.literal_eval(rows.pop("diagnostics_Configuration_Settings"))
    return settings, {k: float(v) for k, v in rows.items()}


def test_pyradiomics_baseline_brain1():
    """PyRadiomics' baseline settings (3D, original image, bin width 25 ...): the engine equals
    ``execute`` and both match PyRadiomics' published brain1 values as its own test requires."""
    settings, baseline = _baseline()
    settings.pop("additionalInfo")
    params = {"setting": settings, "imageType": {"Original": {}},
              "featureClass": {c: None for c in ("shape", "firstorder", "glcm", "glrlm",
                                                 "glszm", "gldm", "ngtdm")}}
    image, label, spacing = _case("brain1", HERE)
    ours = MultiRegionExtractor(params).execute(image, {"tumour": label}, spacing)
    ref = pyradiomics_execute(image, {"tumour": label}, spacing, params)
    assert assert_parity(ours, ref, expect_ok=["tumour"]) > 100
    feats = ours["tumour"].features
    common = [k for k in baseline if k in feats]
    assert len(common) >= 90, sorted(set(baseline) - set(feats))
    for k in common:
        b, v = baseline[k], float(feats[k])
        diff = (0.0 if v == b else 1.0) if b == 0.0 else abs(1.0 - v / b)
        assert diff < 0.03, (k, v, b)
