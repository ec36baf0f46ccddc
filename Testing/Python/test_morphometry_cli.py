"""``hrpqct morphometry`` and the morphometry tables of ``hrpqct cohort``."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from hrpqct import regions as R
from hrpqct.cli import app
from hrpqct.io import write_image, write_labelmap
from hrpqct.volume import Calibration, Volume

CAL = Calibration(0.2402, 8192.0, 1632.71997, -396.135986)
H = 0.1


def _scan(seed: int = 0):
    """A tibia ring (wall 1.0 mm) with a plate-like trabecular network, in HU with a calibration."""
    n = 110
    yy, xx = np.mgrid[0:n, 0:n]
    r = np.hypot((yy - 55) * H, (xx - 50) * H)
    lab = np.zeros((6, n, n), np.uint8)
    lab[:, (r <= 4.5) & (r > 3.5)] = R.region("TC").label
    lab[:, r <= 3.5] = R.region("TT").label
    lab[:, (r > 4.5) & (r <= 5.2)] = R.region("MT").label
    dens = np.where(lab == R.region("TC").label, 1000.0, 0.0)
    plates = (np.arange(n) % (8 + seed)) < 3
    dens[(lab == R.region("TT").label) & plates[None, None, :]] = 1000.0
    return Volume(CAL.density_to_hu(dens), spacing=(H, H, H), unit="HU", calibration=CAL), \
        Volume(lab, spacing=(H, H, H), unit="label")


def test_cli_writes_the_tables(tmp_path):
    img, lab = _scan()
    write_image(img, tmp_path / "s.nrrd")
    write_labelmap(lab, tmp_path / "s-seg.nrrd")
    out = tmp_path / "m.parquet"
    res = CliRunner().invoke(app, ["morphometry", str(tmp_path / "s.nrrd"),
                                   str(tmp_path / "s-seg.nrrd"), "--out", str(out), "-q"])
    assert res.exit_code == 0, res.output
    scan = pd.read_parquet(out)
    assert list(scan["bone"]) == ["tibia", "fibula"] and scan["scan_id"].iloc[0] == "s.nrrd"
    tib = scan.set_index("bone").loc["tibia"]
    assert tib["Ct.BMD_mgHA_ccm"] == pytest.approx(1000.0, abs=0.5)  # calibration from the file
    assert abs(tib["Ct.Th_mm"] - 1.0) <= H / 2
    assert tib["Tb.Th_mm"] == pytest.approx(0.3, rel=0.05)
    sl = pd.read_parquet(tmp_path / "m.slices.parquet")
    assert len(sl) == 6 and (sl["bone"] == "tibia").all()
    meta = json.loads((tmp_path / "m.meta.json").read_text(encoding="utf-8"))
    assert meta["density"] == "scan calibration" and meta["units"]["Ct.Po_pct"] == "%"


def test_cli_hu_only_scan_says_so(tmp_path):
    img, lab = _scan()
    img.calibration = None
    write_image(img, tmp_path / "s.nrrd")
    write_labelmap(lab, tmp_path / "s-seg.nrrd")
    res = CliRunner().invoke(app, ["morphometry", str(tmp_path / "s.nrrd"),
                                   str(tmp_path / "s-seg.nrrd"), "--out", str(tmp_path / "m.csv"),
                                   "--bones", "tibia"])
    assert res.exit_code == 0, res.output
    assert "HU-only" in res.output
    scan = pd.read_csv(tmp_path / "m.csv")
    assert scan["Tt.BMD_mgHA_ccm"].isna().all() and scan["Ct.Th_mm"].notna().all()


def test_cli_bad_output_is_one_line(tmp_path):
    res = CliRunner().invoke(app, ["morphometry", "a.nrrd", "b.nrrd", "--out",
                                   str(tmp_path / "m.xlsx")])
    assert res.exit_code != 0


def test_cohort_writes_morphometry_next_to_radiomics(tmp_path):
    pytest.importorskip("radiomics")
    from hrpqct.radiomics.cohort import run_cohort

    rows = []
    for i in range(2):
        img, lab = _scan(seed=i)
        write_image(img, tmp_path / f"s{i}.nrrd")
        write_labelmap(lab, tmp_path / f"s{i}-seg.nrrd")
        rows.append({"subject_id": f"P{i}", "scan": f"s{i}.nrrd", "segmentation": f"s{i}-seg.nrrd",
                     "osteoporosis": i, "age": 60 + i})
    pd.DataFrame(rows).to_csv(tmp_path / "manifest.csv", index=False)
    out = tmp_path / "out"
    run_cohort(tmp_path / "manifest.csv", out, workers=1, regions="TT", preset="3d")
    for sid in ("P0", "P1"):
        assert (out / "morphometry" / f"{sid}.parquet").exists()
        assert (out / "morphometry" / f"{sid}.slices.parquet").exists()
    table = pd.read_parquet(out / "morphometry.parquet")
    assert list(table["scan_id"]) == ["P0", "P0", "P1", "P1"]
    assert list(table.columns[:5]) == ["subject_id", "scan_id", "osteoporosis", "age", "bone"]
    tib = table[table["bone"] == "tibia"].set_index("scan_id")
    # plates every 8 and 9 voxels (3 thick): Tb.N 1/0.8 and 1/0.9 per mm
    assert tib.loc["P0", "Tb.N_1_mm"] == pytest.approx(1 / 0.8, rel=0.05)
    assert tib.loc["P1", "Tb.N_1_mm"] == pytest.approx(1 / 0.9, rel=0.05)
    assert (out / "morphometry.csv").exists()
