"""Atomic file writes: write to a temporary file in the target folder, check it, then ``os.replace``.

An interrupted run (crash, Ctrl-C, full disk) therefore leaves either the old file or no file,
never a half-written one. The temporary name keeps the target's extension because writers such
as SimpleITK choose the format from it, and records the host and process that made it, so a
later run removes it if the process was killed (:func:`hrpqct.io.outputs.clean_temporaries`).
Before the rename the file is read back (:func:`hrpqct.io.outputs.verify_file`: header and
length), because some writers (ITK's gzip NRRD and NIfTI) can lose their last block on a full
disk without an error.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from ..errors import HRpQCTError, OutputError

__all__ = ["atomic_path", "atomic_write_text", "atomic_write_json", "atomic_folder", "swap_folder",
           "full_suffix"]

# Multi-part extensions recognised as one suffix (longest first).
_MULTI_SUFFIXES = (".seg.nrrd", ".nii.gz")


def full_suffix(path: str | os.PathLike) -> str:
    """The file's format extension, lower case, including ``.seg.nrrd`` and ``.nii.gz``."""
    name = Path(path).name.lower()
    for suffix in _MULTI_SUFFIXES:
        if name.endswith(suffix):
            return suffix
    return Path(name).suffix


def _remove_quietly(path: Path) -> None:
    """Remove ``path`` if it exists; a second error (read-only file system...) is swallowed so
    that it never hides the error that made the write fail."""
    try:
        path.unlink()
    except OSError:
        pass


def _fsync_folder(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextmanager
def atomic_path(path: str | os.PathLike, *, verify: bool = True,
                expect: dict | None = None) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success check it and move it onto ``path``.

    The caller writes the whole file to the yielded path. If the block raises, or the written
    file is incomplete (``verify``; ``expect`` as for :func:`hrpqct.io.outputs.verify_file`),
    the temporary file is removed and ``path`` is left untouched. An ``OSError`` (full disk,
    read-only file system...) becomes an :class:`OutputError` naming ``path`` and the problem.
    The parent folder must exist.
    """
    from .outputs import output_error, temporary_name, verify_file

    target = Path(path)
    folder = target.parent
    if not folder.is_dir():
        raise OutputError(f"{target}: cannot write, folder {folder} does not exist")
    if target.is_dir():
        raise OutputError(f"{target}: cannot write, a folder has that name")
    tmp = temporary_name(target)
    try:
        yield tmp
        if not tmp.exists():
            raise OutputError(f"{target}: the writer produced no file")
        with open(tmp, "rb+") as fh:  # flush to disk before the rename makes it visible
            os.fsync(fh.fileno())
        if verify:
            verify_file(tmp, target=target, expect=expect)
        os.replace(tmp, target)
    except BaseException as exc:
        _remove_quietly(tmp)
        if isinstance(exc, OSError) and not isinstance(exc, HRpQCTError):
            raise output_error(target, exc) from exc
        raise
    _fsync_folder(folder)


def atomic_write_text(path: str | os.PathLike, text: str, *, verify: bool = True) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically (:func:`atomic_path`); returns the path."""
    target = Path(path)
    with atomic_path(target, verify=verify) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return target


def atomic_write_json(path: str | os.PathLike, obj, *, indent: int = 2, newline: bool = True,
                      **dumps) -> Path:
    """Write ``obj`` as JSON (``json.dumps(obj, indent=indent, **dumps)``, plus a final line
    break if ``newline``) to ``path`` atomically; returns the path."""
    import json

    return atomic_write_text(path, json.dumps(obj, indent=indent, **dumps) + ("\n" if newline else ""))


def swap_folder(tmp: str | os.PathLike, target: str | os.PathLike, *, replace: bool = True) -> bool:
    """Move the complete folder ``tmp`` into place as ``target``.

    ``replace``: an existing ``target`` is first renamed to ``.<name>.old-<pid>-<ns>``, the new
    folder renamed onto ``target``, and the old one removed only then; if the second rename
    fails, the old folder is put back, so a failure never loses the previous folder. Without
    ``replace`` an existing non-empty ``target`` is kept (another writer was first): ``tmp`` is
    removed and False returned. True when ``tmp`` is now ``target``.
    """
    import shutil
    import time

    tmp, target = Path(tmp), Path(target)
    if not replace:
        try:
            os.replace(tmp, target)
        except OSError:
            if not (target.is_dir() and any(target.iterdir())):
                raise
            shutil.rmtree(tmp, ignore_errors=True)
            return False
        return True
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.old-{os.getpid()}-{time.monotonic_ns()}")
        os.replace(target, old)
    try:
        os.replace(tmp, target)
    except BaseException:
        if old is not None:
            os.replace(old, target)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return True


@contextmanager
def atomic_folder(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a new empty folder beside ``path``; when the block succeeds, :func:`swap_folder` it
    in for ``path`` (the previous folder is kept until the new one is in place). If the block or
    the swap fails, the new folder is removed and the previous one stays. The parent folder is
    created."""
    import shutil
    import tempfile

    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        yield tmp
        swap_folder(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
