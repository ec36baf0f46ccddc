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

__all__ = ["atomic_path", "full_suffix"]

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
