"""The engine on PyRadiomics' own test images (brain1, brain2; ../shared/data/pyradiomics, see its
README) gives PyRadiomics' own ``execute`` values, 2D (``paper``) and 3D (``3d``) presets."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("radiomics")

from hrpqct.radiomics.engine import MultiRegionExtractor, pyradiomics_execute  # noqa: E402

from test_radiomics_engine import assert_parity  # noqa: E402

DATA = Path(os.environ.get("HRPQCT_PYRADIOMICS_DATA",
                           Path(__file__).resolve().parents[2].parent / "shared" / "data"
                           / "pyradiomics"))
pytestmark = pytest.mark.skipif(not (DATA / "brain1_image.nrrd").is_file(),
                                reason=f"no PyRadiomics test images in {DATA}")


def _case(name):
    import SimpleITK as sitk

    img = sitk.ReadImage(str(DATA / f"{name}_image.nrrd"))
    lab = sitk.ReadImage(str(DATA / f"{name}_label.nrrd"))
    return sitk.GetArrayFromImage(img), sitk.GetArrayFromImage(lab) == 1, img.GetSpacing()


@pytest.mark.parametrize("name", ["brain1", "brain2"])
def test_paper_preset_on_pyradiomics_slices(name):
    image, label, spacing = _case(name)  # int16 MR, as stored: the engine sees that dtype
    z = int(np.argmax(label.sum(axis=(1, 2))))
    rows = np.flatnonzero(label[z].any(axis=1))
    half = (rows[0] + rows[-1]) // 2
    top = label[z].copy()
    top[half:] = False  # a second, overlapping region: the tumour's upper half
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
