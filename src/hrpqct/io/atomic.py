"""Atomic file writes: write to a temporary file in the target folder, then ``os.replace``.

An interrupted run (crash, Ctrl-C, full disk) therefore leaves either the old file or no file,
never a half-written one. The temporary name keeps the target's extension because writers such
as SimpleITK choose the format from it.
"""

from __future__ import annotations

import os
import secrets
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from ..errors import InputError

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


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success move it onto ``path`` atomically.

    The caller writes the whole file to the yielded path. If the block raises, the temporary
    file is removed and ``path`` is left untouched. The parent folder must exist.
    """
    target = Path(path)
    folder = target.parent
    if not folder.is_dir():
        raise InputError(f"{target}: cannot write, folder {folder} does not exist")
    suffix = full_suffix(target)
    stem = target.name[: len(target.name) - len(suffix)] if suffix else target.name
    tmp = folder / f".{stem}.tmp-{secrets.token_hex(4)}{suffix}"
    try:
        yield tmp
        if not tmp.exists():
            raise InputError(f"{target}: the writer produced no file")
        with open(tmp, "rb+") as fh:  # flush to disk before the rename makes it visible
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        try:
            tmp.unlink()
        except FileNotFoundError:
            pass
        raise
