"""Nothing lost (issue 16, part 1): no output over an input, previous .seg.nrrd kept, every written
file checked before the rename, stale temporaries cleaned, the first error never hidden.

Disk-full and read-only cases run twice: on a small tmpfs when this machine lets us mount one
(root on Linux), and always with a fake writer (truncating, or raising ENOSPC / EROFS)."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hrpqct.errors import OutputError
from hrpqct.io import atomic_path, read_labelmap, write_image, write_labelmap, write_segmentation
from hrpqct.io import outputs as O
from hrpqct.volume import Volume

from test_seg_post_cli import files, run  # noqa: F401  (the refine fixture: scan + edited seg)
from helpers import tmpfs


def _labels(shape=(4, 30, 40), seed=0):
    rng = np.random.default_rng(seed)
    return Volume(rng.integers(0, 8, shape).astype(np.uint8), spacing=(0.1, 0.1, 0.2), unit="label")


def _no_temporaries(folder: Path) -> bool:
    return not [p for p in folder.iterdir() if ".tmp" in p.name]


# --- no output over an input --------------------------------------------------------------------
def test_refine_refuses_to_overwrite_the_scan(files, capsys):  # noqa: F811
    scan = files["image"]
    before = scan.read_bytes()
    seg_before = files["seg"].read_bytes()
    # --out = the scan's folder, --name = the scan's stem: today this wrote scan.nrrd over the scan
    assert run(str(files["seg"]), str(scan), "--out", str(scan.parent), "--name", "scan", "-q") == 2
    err = capsys.readouterr().err
    assert f"{scan}: would overwrite the input {scan}" in " ".join(err.split())
    assert scan.read_bytes() == before and files["seg"].read_bytes() == seg_before
    # the edited segmentation's own stem: would write case.seg.nrrd over itself
    assert run(str(files["seg"]), str(scan), "--out", str(scan.parent), "--name", "case", "-q") == 2
    assert "would overwrite the input" in capsys.readouterr().err
    assert files["seg"].read_bytes() == seg_before


def test_refuse_inputs_sees_links_and_relative_paths(tmp_path, monkeypatch):
    scan = tmp_path / "scan.nrrd"
    scan.write_bytes(b"x")
    os.link(scan, tmp_path / "alias.nrrd")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(OutputError, match="would overwrite the input"):
        O.refuse_inputs([Path("alias.nrrd")], [scan])
    with pytest.raises(OutputError, match="would overwrite the input"):
        O.refuse_inputs([tmp_path / "sub" / ".." / "scan.nrrd"], [Path("scan.nrrd")])
    O.refuse_inputs([tmp_path / "other.nrrd"], [scan, None])  # no error


def test_refine_keeps_the_previous_segmentation(files, tmp_path, capsys):  # noqa: F811
    out = tmp_path / "out"
    assert run(str(files["seg"]), str(files["image"]), "--out", str(out), "--name", "r", "-q") == 0
    first = read_labelmap(out / "r.seg.nrrd").array.copy()
    # the user edits r.seg.nrrd in Slicer, then refines the original again into the same name
    edited = read_labelmap(out / "r.seg.nrrd")
    edited.array[:, 75:85, 75:85] = 0  # a hole painted in the tibia
    write_segmentation(edited, out / "r.seg.nrrd")
    hand = (out / "r.seg.nrrd").read_bytes()
    capsys.readouterr()
    assert run(str(files["seg"]), str(files["image"]), "--out", str(out), "--name", "r", "-q") == 0
    kept = sorted(out.glob("r.previous-*.seg.nrrd"))
    assert len(kept) == 1 and kept[0].read_bytes() == hand
    assert "previous segmentation is kept as" in capsys.readouterr().out
    np.testing.assert_array_equal(read_labelmap(out / "r.seg.nrrd").array, first)
    assert not np.array_equal(read_labelmap(kept[0]).array, first)


def test_keep_previous_never_overwrites_an_older_copy(tmp_path):
    p = tmp_path / "a.seg.nrrd"
    p.write_bytes(b"one")
    k1 = O.keep_previous(p)
    assert k1.name.startswith("a.previous-") and k1.name.endswith(".seg.nrrd")
    p.unlink()
    p.write_bytes(b"two")
    os.utime(p, (k1.stat().st_mtime, k1.stat().st_mtime))  # same second: a numbered name
    k2 = O.keep_previous(p)
    assert k2 != k1 and k1.read_bytes() == b"one" and k2.read_bytes() == b"two"
    assert O.keep_previous(p) == k2  # unchanged file: not kept twice
    assert O.keep_previous(tmp_path / "none.seg.nrrd") is None


# --- verify before the rename: a fake truncating writer (always) -------------------------------
def _truncate_after(monkeypatch, module, name, keep=0.5):
    real = getattr(module, name)

    def writer(*args, **kwargs):
        real(*args, **kwargs)
        path = str(args[1] if len(args) > 1 else kwargs.get("fileName"))
        if isinstance(args[0], str):  # slicerio.write_segmentation(path, seg)
            path = args[0]
        size = os.path.getsize(path)
        with open(path, "rb+") as fh:
            fh.truncate(int(size * keep))

    monkeypatch.setattr(module, name, writer)


@pytest.mark.parametrize("suffix", [".nrrd", ".nii.gz", ".nii", ".mha"])
def test_truncated_image_is_never_renamed_into_place(tmp_path, monkeypatch, suffix):
    import SimpleITK as sitk

    target = tmp_path / f"labels{suffix}"
    write_labelmap(_labels(seed=1), target)
    good = target.read_bytes()
    _truncate_after(monkeypatch, sitk, "WriteImage")
    with pytest.raises(OutputError, match=rf"labels{suffix.replace('.', '[.]')}: the written file "
                                          r"is incomplete .*nothing was replaced"):
        write_labelmap(_labels(seed=2), target)
    assert target.read_bytes() == good and _no_temporaries(tmp_path)


def test_truncated_segmentation_is_never_renamed_into_place(tmp_path, monkeypatch):
    import slicerio

    target = tmp_path / "s.seg.nrrd"
    write_segmentation(_labels(seed=1), target)
    good = target.read_bytes()
    _truncate_after(monkeypatch, slicerio, "write_segmentation", keep=0.97)  # the last block
    with pytest.raises(OutputError, match="s.seg.nrrd: the written file is incomplete"):
        write_segmentation(_labels(seed=2), target)
    assert target.read_bytes() == good and _no_temporaries(tmp_path)


@pytest.mark.parametrize("suffix,write", [
    (".parquet", lambda tmp: pd.DataFrame({"a": range(1000)}).to_parquet(tmp)),
    (".png", lambda tmp: __import__("matplotlib.pyplot").pyplot.imsave(tmp, np.eye(50))),
    (".csv", lambda tmp: pd.DataFrame({"a": range(1000)}).to_csv(tmp)),
    (".json", lambda tmp: tmp.write_text('{"a": [1, 2, 3, 4, 5, 6]}', encoding="utf-8")),
])
def test_truncated_tables_and_pictures_are_refused(tmp_path, suffix, write):
    import matplotlib

    matplotlib.use("Agg")
    target = tmp_path / f"t{suffix}"
    with atomic_path(target) as tmp:  # a complete file passes
        write(tmp)
    good = target.read_bytes()
    with pytest.raises(OutputError, match="incomplete"):
        with atomic_path(target) as tmp:
            write(tmp)
            with open(tmp, "rb+") as fh:
                fh.truncate(os.path.getsize(tmp) - 3)
    assert target.read_bytes() == good and _no_temporaries(tmp_path)


def test_verify_checks_the_expected_shape(tmp_path):
    import SimpleITK as sitk

    p = tmp_path / "x.nrrd"
    sitk.WriteImage(sitk.GetImageFromArray(np.zeros((2, 3, 4), np.uint8)), str(p), True)
    O.verify_file(p, expect={"shape_xyz": [4, 3, 2]})
    with pytest.raises(OutputError, match=r"sizes \[4, 3, 2\] instead of \[4, 3, 5\]"):
        O.verify_file(p, expect={"shape_xyz": [4, 3, 5]})


# --- full disk / read-only: fake writers (always) ----------------------------------------------
def test_full_disk_is_one_line_and_cleanup_error_does_not_hide_it(tmp_path, monkeypatch):
    target = tmp_path / "t.csv"
    real_unlink = Path.unlink

    def unlink(self, *a, **k):  # removing the temporary fails too (read-only file system)
        if ".tmp-" in self.name:
            raise OSError(errno.EROFS, "Read-only file system", str(self))
        return real_unlink(self, *a, **k)

    monkeypatch.setattr(Path, "unlink", unlink)
    with pytest.raises(OutputError) as info:
        with atomic_path(target) as tmp:
            tmp.write_text("a,b\n", encoding="utf-8")
            raise OSError(errno.ENOSPC, "No space left on device")
    assert str(info.value) == f"{target}: cannot write: the disk is full (no space left on device)"
    monkeypatch.setattr(Path, "unlink", real_unlink)
    assert not target.exists()


def test_prepare_folder_refuses_file_readonly_and_full(tmp_path, monkeypatch):
    f = tmp_path / "afile"
    f.write_text("x", encoding="utf-8")
    with pytest.raises(OutputError, match=rf"{f}: --out must be a folder, but it is an existing file"):
        O.prepare_folder(f)
    with pytest.raises(OutputError, match=rf"{f / 'sub'}: cannot create the folder: {f} is a file"):
        O.prepare_folder(f / "sub")

    def probe(folder):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(O, "_probe", probe)
    with pytest.raises(OutputError, match=rf"{tmp_path}: cannot write into the folder: read-only "
                                          "file system"):
        O.prepare_folder(tmp_path)
    monkeypatch.undo()
    with pytest.raises(OutputError, match=r"the disk is full \(.* MB free, about 1000000000.0 MB needed\)"):
        O.prepare_folder(tmp_path, need_bytes=10**15)
    with pytest.raises(OutputError, match=r"--out must be a file name, but it is an existing folder"):
        O.prepare_file(tmp_path)


# --- stale temporaries --------------------------------------------------------------------------
def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_clean_temporaries_removes_only_stale_ones(tmp_path):
    host = O._HOST
    stale = tmp_path / f".a.tmp-{host}-{_dead_pid()}-0123abcd.seg.nrrd"
    live = O.temporary_name(tmp_path / "b.nrrd")  # this process: still running
    other = tmp_path / ".c.tmp-ffffff-1-0123abcd.nrrd"  # another host, recent: left alone
    legacy = [tmp_path / ".d.png.tmp.png", tmp_path / ".e.tmp-1a2b3c4d.nii.gz",
              tmp_path / ".f_regions.csv.tmp-12345"]
    user = tmp_path / "notes.tmp.txt"
    for p in (stale, live, other, user, *legacy):
        p.write_bytes(b"x" * 100)
    old = os.path.getmtime(user) - 3600
    for p in legacy:
        os.utime(p, (old, old))
    removed = O.clean_temporaries(tmp_path)
    assert sorted(removed) == sorted([stale, *legacy])
    assert live.exists() and other.exists() and user.exists()


def test_refine_cleans_stale_temporaries_of_a_killed_run(files, tmp_path):  # noqa: F811
    out = tmp_path / "out"
    out.mkdir()
    stale = out / f".r.tmp-{O._HOST}-{_dead_pid()}-0123abcd.seg.nrrd"
    stale.write_bytes(b"\0" * 1000)
    old_png = out / ".r_overlay.png.tmp.png"
    old_png.write_bytes(b"\0" * 1000)
    t = os.path.getmtime(old_png) - 600
    os.utime(old_png, (t, t))
    assert run(str(files["seg"]), str(files["image"]), "--out", str(out), "--name", "r", "-q") == 0
    assert not stale.exists() and not old_png.exists() and _no_temporaries(out)


def test_failed_picture_leaves_no_temporary(tmp_path, monkeypatch):
    from hrpqct.viz import save_overview

    import matplotlib.figure

    def boom(self, *a, **k):
        Path(a[0]).write_bytes(b"\x89PNG partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", boom)
    with pytest.raises(OutputError, match=r"o\.png: cannot write: the disk is full"):
        save_overview(tmp_path / "o.png", np.zeros((20, 20)), np.zeros((20, 20), np.uint8))
    assert list(tmp_path.iterdir()) == []


# --- a real small tmpfs (when this machine lets us mount one) ------------------------------------
@pytest.fixture()
def tiny_disk(tmp_path):
    with tmpfs(tmp_path / "tiny", "size=2m") as mnt:
        yield mnt


def _noise(shape=(80, 200, 200)):  # 3.2 MB that gzip cannot shrink
    rng = np.random.default_rng(0)
    return Volume(rng.integers(0, 256, shape).astype(np.uint8), unit="HU")


@pytest.mark.parametrize("suffix", [".nii.gz", ".nrrd", ".mha"])
def test_full_tmpfs_leaves_the_old_file_and_no_temporary(tiny_disk, suffix):
    target = tiny_disk / f"scan{suffix}"
    write_image(Volume(np.zeros((2, 3, 4), np.int16), unit="HU"), target)
    good = target.read_bytes()
    # ITK's NIfTI writer truncates .nii.gz silently on a full disk: the check catches it
    with pytest.raises(OutputError, match=rf"scan{suffix.replace('.', '[.]')}: .*(disk is full|incomplete)"):
        write_image(_noise(), target)
    assert target.read_bytes() == good and _no_temporaries(tiny_disk)


def test_full_tmpfs_segmentation_and_table(tiny_disk):
    with pytest.raises(OutputError, match=r"s\.seg\.nrrd: cannot write: the disk is full"):
        write_segmentation(Volume(np.random.default_rng(0).integers(0, 8, (60, 300, 300))
                                  .astype(np.uint8), unit="label"), tiny_disk / "s.seg.nrrd")
    with pytest.raises(OutputError, match=r"t\.parquet: cannot write: the disk is full"):
        with atomic_path(tiny_disk / "t.parquet") as tmp:
            pd.DataFrame(np.random.default_rng(0).random((400, 1000))).rename(columns=str) \
                .to_parquet(tmp)
    assert list(tiny_disk.iterdir()) == []


def test_readonly_tmpfs_is_refused_before_the_work(tiny_disk, files, capsys):  # noqa: F811
    subprocess.run(["mount", "-o", "remount,ro", str(tiny_disk)], check=True)
    with pytest.raises(OutputError, match=rf"{tiny_disk}: cannot write into the folder: read-only "
                                          "file system"):
        O.prepare_folder(tiny_disk)
    with pytest.raises(OutputError, match="read-only file system"):
        with atomic_path(tiny_disk / "x.csv") as tmp:
            tmp.write_text("a\n", encoding="utf-8")
    assert run(str(files["seg"]), str(files["image"]), "--out", str(tiny_disk / "o"), "-q") == 2
    err = " ".join(capsys.readouterr().err.split())
    assert f"{tiny_disk / 'o'}: cannot create the folder: read-only file system" in err
