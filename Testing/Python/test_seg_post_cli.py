"""`hrpqct refine` end to end: files in, files out, same answer as the library call."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hrpqct.cli import main
from hrpqct.io import read_labelmap, write_image, write_labelmap, write_segmentation
from hrpqct.regions import MODEL_CLASSES, model_class, region
from hrpqct.seg.postprocess import postprocess
from hrpqct.seg.refine import refine
from hrpqct.seg.softtissue import split_soft_tissue
from hrpqct.volume import Volume

TC, TT, ST = (model_class(c).label for c in ("TC", "TT", "ST"))
MT, AT = region("MT").label, region("AT").label
SPACING = (0.1, 0.1, 0.2)


def run(*args: str) -> int:
    """Run the CLI as from the shell; return its exit status."""
    try:
        main(["refine", *args])
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def leg(n=160, slices=3):
    yy, xx = np.mgrid[:n, :n]
    r = np.hypot(yy - n / 2, xx - n / 2)
    lab = np.zeros((n, n), np.uint8)
    lab[r <= 0.47 * n] = ST
    lab[r <= 30] = TC
    lab[r <= 23] = TT
    hu = np.where(xx < n / 2, 60.0, -110.0)
    hu[(xx < n / 2) & (np.abs(yy - n / 2) < 15)] = 300.0
    hu[(xx > n * 0.7) & (np.abs(yy - n / 2) < 15)] = -400.0
    hu[lab == TC] = 1200.0
    hu[lab == TT] = 250.0
    lab5 = np.repeat(lab[None], slices, axis=0)
    lab5[1, 5:8, 80:83] = TT  # a stray fragment on one slice
    return lab5, np.repeat(hu[None], slices, axis=0).astype(np.float32), r


@pytest.fixture()
def files(tmp_path):
    lab5, hu, r = leg()
    img = Volume(hu, spacing=SPACING, origin=(1.0, 2.0, 3.0), unit="HU")
    image_path = write_image(img, tmp_path / "scan.nrrd")
    seven = split_soft_tissue(postprocess(lab5, SPACING), hu, SPACING)
    edited = seven.copy()
    edited[:, 70:74, 120:124] = MT  # a hand-painted tendon in the fat
    edited[:, (r > 30) & (r < 34)] = TT  # a leak outside the cortex...
    edited[:, (r > 30) & (r < 34)] = 0  # ...erased
    seg_path = write_segmentation(img.with_array(edited, unit="label"), tmp_path / "case.seg.nrrd")
    five_path = write_labelmap(img.with_array(lab5, unit="label"), tmp_path / "case5.nrrd")
    return dict(image=image_path, seg=seg_path, five=five_path, edited=edited, lab5=lab5, hu=hu,
                out=tmp_path / "out")


def test_refine_seg_nrrd_writes_the_library_result(files, capsys):
    assert run(str(files["seg"]), str(files["image"]), "--out", str(files["out"]), "-q") == 0
    expect = refine(files["edited"], files["hu"], SPACING)
    got = read_labelmap(files["out"] / "case_refined.seg.nrrd")
    assert (got.array == expect).all()
    assert got.spacing == pytest.approx(SPACING) and got.origin == pytest.approx((1.0, 2.0, 3.0))
    assert (read_labelmap(files["out"] / "case_refined.nrrd").array == expect).all()
    assert (got.array[:, 70:74, 120:124] == MT).all()  # the hand edit survived
    regions = pd.read_csv(files["out"] / "case_refined_regions.csv").set_index("code")
    assert regions.loc["MT", "voxels"] == int((expect == MT).sum())
    slices = pd.read_csv(files["out"] / "case_refined_slices.csv")
    assert len(slices) == 3
    text = capsys.readouterr().out
    assert "fat fraction" in text and "voxels changed" in text


def test_refine_five_class_label_map_only_topology(files):
    assert run(str(files["five"]), str(files["image"]), "--out", str(files["out"]),
               "--only", "topology", "--name", "topo", "-q") == 0
    got = read_labelmap(files["out"] / "topo.seg.nrrd", table=MODEL_CLASSES)
    assert (got.array == postprocess(files["lab5"], SPACING)).all()
    assert (got.array[1, 5:8, 80:83] == ST).all()  # the stray fragment in the soft tissue is gone
    assert not (files["out"] / "topo_regions.csv").exists()  # no 7-region summary for 5 classes


def test_refine_resplit_all(files):
    assert run(str(files["seg"]), str(files["image"]), "--out", str(files["out"]),
               "--resplit-all", "-q") == 0
    got = read_labelmap(files["out"] / "case_refined.seg.nrrd").array
    assert (got[:, 70:74, 120:124] == AT).all()  # recomputed from the HU


def test_refine_errors_name_the_problem(files, capsys, tmp_path):
    assert run(str(files["seg"]), str(files["image"]), "--out", str(files["out"]),
               "--only", "bones") == 2
    assert "--only" in capsys.readouterr().err
    other = write_image(Volume(np.zeros((3, 20, 20), np.float32), spacing=SPACING, unit="HU"),
                        tmp_path / "small.nrrd")
    assert run(str(files["seg"]), str(other), "--out", str(files["out"]), "-q") == 2
    err = capsys.readouterr().err
    assert "small.nrrd" in err and "case.seg.nrrd" in err
