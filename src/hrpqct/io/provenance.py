"""What an output was made from, so that a resumed run redoes what is stale instead of trusting it.

A *fingerprint* of an input file (or a folder such as a DICOM series) records its resolved path,
size, modification time (ns) and SHA-256. :func:`compare` tells whether a file is still the one
fingerprinted: the same path, size and modification time, or (modification time changed, e.g.
copied back) the same size and SHA-256. Hashing reads the whole file, so it is done once when
the output is made, and again only when the modification time has changed.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

__all__ = ["fingerprint", "compare", "sha256"]


def sha256(path: str | os.PathLike, chunk: int = 1 << 22) -> str:
    """SHA-256 (hex) of a file, or of a folder's files (names, sizes and contents, sorted)."""
    path = Path(path)
    h = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for f in files:
        if path.is_dir():
            h.update(str(f.relative_to(path)).encode("utf-8", "replace") + b"\0")
        with open(f, "rb") as fh:
            while True:
                block = fh.read(chunk)
                if not block:
                    break
                h.update(block)
    return h.hexdigest()


def _stat(path: Path) -> tuple[int, int]:
    """(size, newest mtime in ns) of a file, or summed / newest over a folder's files."""
    if path.is_dir():
        size, mtime = 0, 0
        for f in path.rglob("*"):
            if f.is_file():
                st = f.stat()
                size += st.st_size
                mtime = max(mtime, st.st_mtime_ns)
        return size, mtime
    st = path.stat()
    return st.st_size, st.st_mtime_ns


def fingerprint(path: str | os.PathLike, with_hash: bool = True) -> dict:
    """``{"path", "size", "mtime_ns", "sha256"}`` of a file or folder (``sha256`` None if not
    ``with_hash``)."""
    path = Path(path)
    size, mtime = _stat(path)
    return {"path": str(path.resolve()), "size": int(size), "mtime_ns": int(mtime),
            "sha256": sha256(path) if with_hash else None}


def compare(recorded: dict | None, path: str | os.PathLike) -> str | None:
    """None if ``path`` is still the file ``recorded`` describes, else why not (one phrase)."""
    path = Path(path)
    if not recorded:
        return "no record of its inputs"
    if str(path.resolve()) != recorded.get("path"):
        return f"made from {recorded.get('path')}, not {path}"
    try:
        size, mtime = _stat(path)
    except OSError:
        return f"{path} is missing"
    if size != recorded.get("size"):
        return f"{path} changed since (size {recorded.get('size')} -> {size} bytes)"
    if mtime == recorded.get("mtime_ns"):
        return None
    if recorded.get("sha256") and sha256(path) == recorded["sha256"]:
        return None
    return f"{path} was replaced since (modification time changed)"
