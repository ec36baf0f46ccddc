"""``hrpqct info``: geometry, unit, range, calibration and labels, as a table or JSON."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import hrpqct.io.commands  # noqa: F401  registers the command
from hrpqct._cli import app
from hrpqct.errors import InputError
from hrpqct.io import describe_file, write_image, write_labelmap, write_segmentation
from hrpqct.regions import REGIONS
from hrpqct.volume import Calibration, Volume

DATA = Path(os.environ.get("HRPQCT_SCANCO_DATA",
                           Path(__file__).resolve().parents[2].parent / "shared" / "data" / "scanco"))


def run_info(*args: str):
    """Invoke ``info`` whether or not other sub-commands are registered on the app."""
    from typer.main import get_command

    prefix = ("info",) if hasattr(get_command(app), "commands") else ()
    return CliRunner().invoke(app, [*prefix, *args])


@pytest.fixture()
def labelmap(tmp_path) -> tuple[Path, np.ndarray]:
    a = np.zeros((3, 6, 8), np.uint8)
    a[:, :2, :] = 1
    a[:, 2:3, :4] = 6
    a[1, 5, 7] = 7
    v = Volume(a, spacing=(0.1, 0.1, 0.2), origin=(1.0, 2.0, 3.0), unit="label")
    return write_labelmap(v, tmp_path / "regions.nii.gz"), a


def test_json_for_a_label_map(labelmap):
    path, a = labelmap
    res = run_info(str(path), "--json")
    assert res.exit_code == 0, res.output
    d = json.loads(res.output)
    assert d["shape_zyx"] == [3, 6, 8]
    np.testing.assert_allclose(d["spacing_mm"], [0.1, 0.1, 0.2], rtol=1e-6)
    np.testing.assert_allclose(d["origin_mm"], [1.0, 2.0, 3.0], atol=1e-6)
    assert d["direction"] == [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
    assert d["unit"] == "label" and d["dtype"] == "uint8" and d["format"] == "nifti"
    rows = {r["label"]: r for r in d["labels"]}
    counts = np.bincount(a.ravel())
    assert sorted(rows) == [0, 1, 6, 7]
    for value in (1, 6, 7):
        assert rows[value]["voxels"] == counts[value]
        assert rows[value]["code"] == REGIONS[value - 1].code
        assert rows[value]["name"] == REGIONS[value - 1].name
    assert rows[6]["volume_mm3"] == pytest.approx(counts[6] * 0.1 * 0.1 * 0.2, rel=1e-5)


def test_table_for_a_segmentation(tmp_path, labelmap):
    _, a = labelmap
    p = write_segmentation(Volume(a, unit="label"), tmp_path / "r.seg.nrrd")
    res = run_info(str(p))
    assert res.exit_code == 0, res.output
    assert "Tibia cortical" in res.output and "Myotendinous tissue" in res.output
    assert f"{int((a == 1).sum()):,}" in res.output
    assert "8 x 6 x 3 voxels" in res.output


def test_image_with_calibration(tmp_path):
    cal = Calibration(mu_water=0.2464, mu_scaling=8192.0, density_slope=1441.13599,
                      density_intercept=-356.445007)
    v = Volume(np.linspace(-1000, 3000, 2 * 3 * 400).reshape(2, 3, 400).astype(np.float32),
               unit="HU", calibration=cal)
    p = write_image(v, tmp_path / "scan.mha")
    d = describe_file(p)
    assert d["unit"] == "HU" and d["unit_source"] == "file" and d["labels"] is None
    assert d["range"] == [-1000.0, 3000.0]
    assert d["calibration"]["mu_water"] == pytest.approx(0.2464)
    assert d["calibration"]["density_slope"] == pytest.approx(1441.13599)
    assert d["range_mgha_ccm"][0] == pytest.approx(float(cal.hu_to_density(np.float32(-1000.0))), abs=1e-3)
    res = run_info(str(p))
    assert "mu_water 0.2464" in res.output and "HU" in res.output


def test_labels_flag_and_model_table(labelmap):
    path, _ = labelmap
    d = json.loads(run_info(str(path), "--json", "--no-labels").output)
    assert d["labels"] is None
    d = json.loads(run_info(str(path), "--json", "--table", "model").output)
    assert {r["label"]: r["code"] for r in d["labels"]}[1] == "TC"


def test_missing_file_is_a_clear_error(tmp_path):
    res = run_info(str(tmp_path / "absent.aim"))
    assert res.exit_code != 0
    assert isinstance(res.exception, InputError) and "absent.aim" in str(res.exception)


@pytest.mark.scanco
@pytest.mark.skipif(not (DATA / "aluminum.aim").is_file(), reason=f"no Scanco sample files in {DATA}")
def test_scanco_calibration_in_json():
    res = run_info(str(DATA / "aluminum.aim"), "--json", "--header")
    assert res.exit_code == 0, res.output
    d = json.loads(res.output)
    assert d["format"] == "scanco" and d["unit"] == "native" and d["dtype"] == "int16"
    assert d["shape_zyx"] == [100, 130, 130]
    assert d["range"] == [-2134.0, 10544.0]
    assert d["calibration"] == {
        "mu_water": pytest.approx(0.2464), "mu_scaling": 8192.0,
        "density_slope": pytest.approx(1441.13599), "density_intercept": pytest.approx(-356.445007),
        "density_unit": "mg HA/ccm",
    }
    assert d["range_hu"] == pytest.approx([-2057.216, 4223.658], abs=2e-3)
    assert d["header"]["ScannerType"] == 9
    mask = json.loads(run_info(str(DATA / "XT2_RADIUS_82_SEG.AIM"), "--json").output)
    assert [(r["label"], r["voxels"]) for r in mask["labels"]][1] == (127, 3032038)


# --- issue 14: what `info` says about masks and compressed AIMs ----------------------------------
def test_a_zero_one_volume_is_not_named_as_this_projects_label_map(tmp_path):
    mask = (np.arange(2 * 5 * 6).reshape(2, 5, 6) % 3 == 0).astype(np.int16)
    p = write_image(Volume(mask, unit="HU"), tmp_path / "mask.nrrd")
    d = describe_file(p)
    rows = {r["label"]: r for r in d["labels"]}
    assert sorted(rows) == [0, 1] and rows[1]["voxels"] == int(mask.sum())
    assert rows[1]["code"] == "" and rows[1]["name"] == "" and d["labels_named"] is False
    assert "not named" in d["notes"][0]
    res = run_info(str(p))
    assert res.exit_code == 0 and "Tibia cortical" not in res.output
    named = describe_file(p, labels=True)  # asked for: named with the table
    assert {r["label"]: r["name"] for r in named["labels"]}[1] == REGIONS[0].name


@pytest.mark.skipif(not (DATA / "test_aim.AIM").is_file(), reason="real Scanco files absent")
def test_real_binary_aim_is_counted_not_named():
    d = describe_file(DATA / "test_aim.AIM")
    rows = {r["label"]: r for r in d["labels"]}
    assert rows[1]["voxels"] == 81 and rows[1]["name"] == "" and rows[1]["code"] == ""


@pytest.mark.skipif(not (DATA / "test_aim.AIM").is_file(), reason="real Scanco files absent")
def test_compressed_aim_says_the_compression_is_not_supported(tmp_path):
    from hrpqct.io.scanco import aim_data_type

    raw = bytearray((DATA / "test_aim.AIM").read_bytes())
    assert aim_data_type(DATA / "test_aim.AIM") == 0x00020002  # short, uncompressed
    raw[40:44] = (0x00150001).to_bytes(4, "little")  # the struct's type: run-length binary
    p = tmp_path / "compressed.aim"
    p.write_bytes(bytes(raw))
    assert aim_data_type(p) == 0x00150001
    res = run_info(str(p))
    assert res.exit_code != 0 and isinstance(res.exception, InputError)
    msg = str(res.exception)
    assert "compressed (run-length compressed binary" in msg and "does not support" in msg
    assert "truncated" not in msg and "bytes are missing" not in msg
