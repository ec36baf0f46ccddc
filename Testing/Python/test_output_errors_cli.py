"""Every output failure is one clear line (issue 16, part 2): an existing file as --out, a read-only
file system, a full disk, in segment, refine, radiomics, cohort, phantom, phantom-cohort, eval-seg
and demo; checked before the work starts (segment never runs the model first)."""

from __future__ import annotations

import errno
import shutil
from collections import namedtuple
from pathlib import Path

import pandas as pd
import pytest

from hrpqct.io import outputs as O

from test_seg_post_cli import files  # noqa: F401  (scan.nrrd + case.seg.nrrd)
from helpers import cli, tmpfs


@pytest.fixture()
def inputs(files, tmp_path):  # noqa: F811
    man = tmp_path / "manifest.csv"
    pd.DataFrame({"subject_id": ["P1"], "scan": [str(files["image"])],
                  "segmentation": [str(files["seg"])]}).to_csv(man, index=False)
    return {"scan": str(files["image"]), "seg": str(files["seg"]), "manifest": str(man),
            "data": str(tmp_path)}


# command -> its arguments with OUT standing for the output folder
COMMANDS = {
    "segment": ["segment", "{scan}", "--out", "OUT", "-q"],
    "refine": ["refine", "{seg}", "{scan}", "--out", "OUT", "-q"],
    "radiomics": ["radiomics", "{scan}", "{seg}", "--out", "OUT/f.parquet", "-q"],
    "cohort": ["cohort", "{manifest}", "--out", "OUT", "-q", "-j", "1"],
    "phantom": ["phantom", "--out", "OUT", "--slices", "2", "--size", "64"],
    "phantom-cohort": ["phantom-cohort", "--out", "OUT", "-n", "1", "--slices", "2", "--size", "64"],
    "eval-seg": ["eval-seg", "--out", "OUT", "--data", "{data}"],
    "demo": ["demo", "--out", "OUT", "--no-radiomics"],
}


def _args(name, inputs, out: Path):
    return [a.format(**inputs).replace("OUT", str(out)) for a in COMMANDS[name]]


def _one_line(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    return lines[0]


@pytest.fixture()
def no_work(monkeypatch):
    """Any real work (rendering, inference, radiomics) fails the test: the checks come first."""
    import hrpqct.phantom.scan as scan_mod
    import hrpqct.radiomics.tables as tables
    import hrpqct.seg.inference as inference

    def boom(*a, **k):
        raise AssertionError("the work started before the output location was checked")

    monkeypatch.setattr(inference, "segment_volume", boom)
    monkeypatch.setattr(scan_mod, "generate", boom)
    monkeypatch.setattr(tables, "extract_volume", boom)


@pytest.mark.parametrize("name", list(COMMANDS))
def test_existing_file_as_out(name, inputs, tmp_path, capsys, no_work):
    f = tmp_path / "a-file"
    f.write_text("keep me", encoding="utf-8")
    out = f if name != "radiomics" else f / "x"  # radiomics: --out f/x/f.parquet
    assert cli(*_args(name, inputs, out)) == 2
    line = _one_line(capsys)
    if name == "radiomics":
        assert f"{f / 'x'}: cannot create the folder: {f} is a file" in line
    else:
        assert f"error: {f}: --out must be a folder, but it is an existing file" in line
    assert f.read_text(encoding="utf-8") == "keep me"


def test_radiomics_out_is_an_existing_folder(inputs, tmp_path, capsys, no_work):
    d = tmp_path / "d.parquet"
    d.mkdir()
    assert cli("radiomics", inputs["scan"], inputs["seg"], "--out", str(d), "-q") == 2
    assert f"error: {d}: --out must be a file name, but it is an existing folder" in _one_line(capsys)
    assert cli("radiomics", inputs["scan"], inputs["seg"], "--out", str(tmp_path / "x.xlsx")) == 2
    assert "x.xlsx: --out must end with .parquet or .csv" in _one_line(capsys)


@pytest.mark.parametrize("name", list(COMMANDS))
def test_read_only_folder_fake(name, inputs, tmp_path, capsys, monkeypatch, no_work):
    def probe(folder):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(O, "_probe", probe)
    out = tmp_path / "o"
    assert cli(*_args(name, inputs, out)) == 2
    line = _one_line(capsys)
    assert f"{out}: cannot write into the folder: read-only file system" in line


@pytest.mark.parametrize("name", list(COMMANDS))
def test_full_disk_fake(name, inputs, tmp_path, capsys, monkeypatch, no_work):
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(10**9, 10**9, 20_000))
    out = tmp_path / "o"
    assert cli(*_args(name, inputs, out)) == 2
    assert f"{out}: the disk is full (0.0 MB free, about 1.0 MB needed)" in _one_line(capsys)


def test_refine_full_disk_at_write_time(inputs, tmp_path, capsys, monkeypatch):
    import slicerio

    def full(path, *a, **k):
        Path(path).write_bytes(b"NRRD0005\n")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(slicerio, "write_segmentation", full)
    out = tmp_path / "o"
    assert cli("refine", inputs["seg"], inputs["scan"], "--out", str(out), "--name", "r", "-q") == 2
    assert _one_line(capsys) == (f"error: {out / 'r.seg.nrrd'}: cannot write: the disk is full "
                                 "(no space left on device)")
    assert not [p for p in out.iterdir() if ".tmp" in p.name]


def test_cohort_full_disk_at_write_time_stops_with_one_line(inputs, tmp_path, capsys, monkeypatch):
    import pyarrow.parquet as pq

    real = pq.write_table

    def full(table, path, *a, **k):
        if "scans" in str(path):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(table, path, *a, **k)

    monkeypatch.setattr(pq, "write_table", full)
    out = tmp_path / "c"
    assert cli("cohort", inputs["manifest"], "--out", str(out), "-q", "-j", "1",
               "-r", "TC") == 2
    assert _one_line(capsys) == (f"error: {out / 'scans' / 'P1.parquet'}: cannot write: the disk "
                                 "is full (no space left on device)")
    assert not (out / "errors" / "P1.json").exists()  # not recorded as a bad scan


def test_stray_os_error_is_one_line(capsys, monkeypatch, tmp_path):
    from hrpqct import demo

    def run_demo(*a, **k):
        raise PermissionError(errno.EACCES, "Permission denied", str(tmp_path / "x"))

    monkeypatch.setattr(demo, "run_demo", run_demo)
    assert cli("demo", "--out", str(tmp_path / "d")) == 2
    assert _one_line(capsys) == f"error: {tmp_path / 'x'}: permission denied"


# --- a real read-only tmpfs (when this machine lets us mount one) -----------------------------
@pytest.fixture()
def read_only_disk(tmp_path):
    with tmpfs(tmp_path / "ro", "size=2m,ro") as mnt:
        yield mnt


@pytest.mark.parametrize("name", list(COMMANDS))
def test_read_only_tmpfs(name, inputs, read_only_disk, capsys, no_work):
    out = read_only_disk / "o"
    assert cli(*_args(name, inputs, out)) == 2
    assert f"{out}: cannot create the folder: read-only file system" in _one_line(capsys)
    assert cli(*_args(name, inputs, read_only_disk)) == 2  # the folder exists, read-only
    assert f"{read_only_disk}: cannot write into the folder: read-only file system" in \
        _one_line(capsys)


def test_radiomics_out_inside_a_file(inputs, tmp_path, capsys, no_work):
    f = tmp_path / "a-file"
    f.write_text("keep me", encoding="utf-8")
    assert cli("radiomics", inputs["scan"], inputs["seg"], "--out", str(f / "t.parquet"), "-q") == 2
    assert _one_line(capsys) == f"error: {f / 't.parquet'}: cannot write: {f} is a file, not a folder"
