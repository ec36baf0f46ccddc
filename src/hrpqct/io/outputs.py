"""Outputs that lose nothing and fail loudly: the checks every command makes before and while writing.

* :func:`prepare_folder` / :func:`prepare_file`: check an output location *before* the work
  starts (an existing file where a folder is asked for, a folder that cannot be created, a
  read-only file system, a full disk) and clean this program's own stale temporaries there.
* :func:`refuse_inputs`: no command writes to a path that is one of its inputs.
* :func:`keep_previous`: before a user's ``.seg.nrrd`` is replaced, the old one is kept as
  ``<name>.previous-<YYYYmmdd-HHMMSS>.seg.nrrd``.
* :func:`verify_file`: a written file is read back (header and length) before
  :func:`hrpqct.io.atomic.atomic_path` renames it into place; writers such as ITK's gzip NRRD
  and NIfTI writers can lose their last block on a full disk without reporting it.
* :func:`temporary_name` / :func:`clean_temporaries`: temporaries carry the host and process
  that made them, so the next run removes those whose process is gone.
* :func:`output_error`: an ``OSError`` on writing becomes one :class:`OutputError` line naming
  the path and the problem (disk full, read-only file system, permission denied...).
"""

from __future__ import annotations

import errno
import gzip
import hashlib
import json
import os
import re
import secrets
import shutil
import socket
import struct
import time
import zlib
from pathlib import Path
from typing import Iterable

from ..errors import OutputError

__all__ = [
    "output_error",
    "describe_os_error",
    "prepare_folder",
    "prepare_file",
    "refuse_inputs",
    "keep_previous",
    "verify_file",
    "temporary_name",
    "clean_temporaries",
    "same_path",
    "MIN_FREE_BYTES",
]

#: Free space below which an output location is refused before any work (bytes).
MIN_FREE_BYTES = 1 << 20

_ERRNO_TEXT = {
    errno.ENOSPC: "the disk is full (no space left on device)",
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.EEXIST: "a file with that name is in the way",
    errno.ENOTDIR: "a file is in the way where a folder is needed",
    errno.EISDIR: "a folder has that name",
    errno.ENAMETOOLONG: "the file name is too long",
    errno.EIO: "input/output error on the device",
}
if hasattr(errno, "EDQUOT"):
    _ERRNO_TEXT[errno.EDQUOT] = "the disk quota is exceeded"


def describe_os_error(exc: BaseException) -> str:
    """A short description of an OS error (``"read-only file system"``, ``"the disk is full..."``)."""
    code = getattr(exc, "errno", None)
    if code in _ERRNO_TEXT:
        return _ERRNO_TEXT[code]
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return text[0].lower() + text[1:] if text else type(exc).__name__


def output_error(path: str | os.PathLike, exc: BaseException, doing: str = "cannot write") -> OutputError:
    """The one-line :class:`OutputError` for an ``OSError`` raised while writing ``path``."""
    return OutputError(f"{path}: {doing}: {describe_os_error(exc)}")


# --- temporaries ---------------------------------------------------------------------------------
_HOST = hashlib.sha1(socket.gethostname().encode("utf-8", "replace")).hexdigest()[:6]
# .<stem>.tmp-<host>-<pid>-<hex><suffix>
_TMP_RE = re.compile(r"^\..+\.tmp-(?P<host>[0-9a-f]{6})-(?P<pid>\d+)-[0-9a-f]{8}")
# names used before this module: .<name>.tmp-<hex or pid>..., .<name>.tmp.png, .<name>.tmp
_LEGACY_RE = re.compile(r"^\..+\.tmp(-[0-9a-f]+)?(\.[A-Za-z.]+)?$")
_PROBE_PREFIX = ".hrpqct-probe-"
#: Age after which a temporary of another host (or of an older version) counts as stale (s).
OTHER_HOST_STALE_S = 24 * 3600.0
LEGACY_STALE_S = 60.0


def temporary_name(target: str | os.PathLike) -> Path:
    """A temporary path next to ``target`` that keeps its format suffix and records this host
    and process, so that :func:`clean_temporaries` knows when it is stale."""
    from .atomic import full_suffix

    target = Path(target)
    suffix = full_suffix(target)
    stem = target.name[: len(target.name) - len(suffix)] if suffix else target.name
    return target.parent / f".{stem}.tmp-{_HOST}-{os.getpid()}-{secrets.token_hex(4)}{suffix}"


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def _is_stale(p: Path, now: float) -> bool:
    try:
        age = now - p.lstat().st_mtime
    except OSError:
        return False
    m = _TMP_RE.match(p.name)
    if m:
        if m.group("host") == _HOST:
            return not _pid_alive(int(m.group("pid")))
        return age > OTHER_HOST_STALE_S
    if p.name.startswith(_PROBE_PREFIX):
        return age > LEGACY_STALE_S
    # names of earlier versions: no current writer makes them, so they are left-overs
    return bool(_LEGACY_RE.match(p.name))


def clean_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Remove this program's stale temporaries in ``folder`` (not recursive); returns them.

    Stale: made on this host by a process that no longer runs (killed, crashed), or older than
    a day when made elsewhere; names of earlier versions (``.x.tmp-*``, ``.x.png.tmp.png``,
    no longer made by any writer). A temporary of a run still going is never touched. Errors are ignored
    (a read-only folder is reported by the write itself).
    """
    folder = Path(folder)
    removed: list[Path] = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    now = time.time()
    for entry in entries:
        name = entry.name
        if not name.startswith(".") or (".tmp" not in name and not name.startswith(_PROBE_PREFIX)):
            continue
        p = Path(entry.path)
        if not _is_stale(p, now):
            continue
        try:
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(p)
            else:
                p.unlink()
            removed.append(p)
        except OSError:
            pass
    return removed


# --- before the work ---------------------------------------------------------------------------
def same_path(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """True if ``a`` and ``b`` name the same file (same resolved path, or same inode)."""
    a, b = Path(a), Path(b)
    try:
        if a.resolve() == b.resolve():
            return True
    except OSError:
        pass
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def refuse_inputs(outputs: Iterable[str | os.PathLike], inputs: Iterable[str | os.PathLike | None],
                  hint: str = "choose another --out folder or --name") -> None:
    """Raise :class:`OutputError` if an output path is one of the inputs (or a file inside an
    input folder with the same name as one of its files)."""
    ins = [Path(p) for p in inputs if p is not None]
    for out in outputs:
        out = Path(out)
        for inp in ins:
            if same_path(out, inp):
                raise OutputError(f"{out}: would overwrite the input {inp}; {hint}")


def _probe(folder: Path) -> None:
    """Create, write, flush and delete a small file in ``folder``; OSError on failure."""
    probe = folder / f"{_PROBE_PREFIX}{os.getpid()}-{secrets.token_hex(4)}"
    try:
        with open(probe, "wb") as fh:
            fh.write(b"\0" * 4096)
            fh.flush()
            os.fsync(fh.fileno())
    finally:
        try:
            probe.unlink()
        except OSError:
            pass


def prepare_folder(folder: str | os.PathLike, *, option: str = "--out", need_bytes: int = 0,
                   clean: bool = True) -> Path:
    """Check (and create) an output folder before any work: refuse an existing file of that
    name, a folder that cannot be created or written (read-only, permission), and less free
    space than ``max(need_bytes, MIN_FREE_BYTES)``; then clean stale temporaries there.
    Returns the folder. Raises :class:`OutputError` (one line naming the folder)."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"{folder}: {option} must be a folder, but it is an existing file")
    for parent in folder.parents:
        if parent.exists():
            if not parent.is_dir():
                raise OutputError(f"{folder}: cannot create the folder: {parent} is a file")
            break
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise output_error(folder, exc, "cannot create the folder") from None
    try:
        _probe(folder)
    except OSError as exc:
        raise output_error(folder, exc, "cannot write into the folder") from None
    need = max(int(need_bytes), MIN_FREE_BYTES)
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        free = None
    if free is not None and free < need:
        raise OutputError(f"{folder}: the disk is full ({free / 1e6:.1f} MB free, about "
                          f"{need / 1e6:.1f} MB needed)")
    if clean:
        clean_temporaries(folder)
    return folder


def prepare_file(path: str | os.PathLike, *, option: str = "--out", need_bytes: int = 0,
                 suffixes: tuple[str, ...] | None = None) -> Path:
    """Check an output file's location before any work (see :func:`prepare_folder`): refuse
    an existing folder of that name and, with ``suffixes``, another extension. The file itself
    may exist (it is replaced atomically at the end)."""
    from .atomic import full_suffix

    path = Path(path)
    if path.is_dir():
        raise OutputError(f"{path}: {option} must be a file name, but it is an existing folder")
    if suffixes is not None and full_suffix(path) not in suffixes:
        raise OutputError(f"{path}: {option} must end with {' or '.join(suffixes)}")
    prepare_folder(path.parent, option=f"the folder of {option}", need_bytes=need_bytes)
    return path


def keep_previous(path: str | os.PathLike) -> Path | None:
    """If ``path`` exists, keep it as ``<stem>.previous-<YYYYmmdd-HHMMSS>[-n]<suffix>`` before it
    is replaced (a hard link where possible, else a copy) and return that path; else None."""
    from .atomic import full_suffix

    path = Path(path)
    if not path.is_file():
        return None
    suffix = full_suffix(path)
    stem = path.name[: len(path.name) - len(suffix)] if suffix else path.name
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(path.stat().st_mtime))
    n = 0
    while True:
        keep = path.with_name(f"{stem}.previous-{stamp}{'' if n == 0 else f'-{n}'}{suffix}")
        if not keep.exists():
            break
        if same_path(keep, path) or _same_content(keep, path):
            return keep  # already kept
        n += 1
    try:
        os.link(path, keep)
    except OSError:
        try:
            shutil.copy2(path, keep)
        except OSError as exc:
            raise output_error(keep, exc, "cannot keep the previous version") from None
    return keep


def _same_content(a: Path, b: Path) -> bool:
    try:
        if a.stat().st_size != b.stat().st_size:
            return False
        with open(a, "rb") as fa, open(b, "rb") as fb:
            while True:
                x, y = fa.read(1 << 20), fb.read(1 << 20)
                if x != y:
                    return False
                if not x:
                    return True
    except OSError:
        return False


# --- after writing, before the rename -------------------------------------------------------------
class _Incomplete(Exception):
    pass


_NRRD_TYPES = {
    1: ("signed char", "int8", "int8_t", "uchar", "unsigned char", "uint8", "uint8_t"),
    2: ("short", "short int", "signed short", "signed short int", "int16", "int16_t", "ushort",
        "unsigned short", "unsigned short int", "uint16", "uint16_t"),
    4: ("int", "signed int", "int32", "int32_t", "uint", "unsigned int", "uint32", "uint32_t",
        "float"),
    8: ("longlong", "long long", "long long int", "signed long long", "signed long long int",
        "int64", "int64_t", "ulonglong", "unsigned long long", "unsigned long long int", "uint64",
        "uint64_t", "double"),
}
_NRRD_SIZE = {name: size for size, names in _NRRD_TYPES.items() for name in names}
_META_SIZE = {"MET_CHAR": 1, "MET_UCHAR": 1, "MET_SHORT": 2, "MET_USHORT": 2, "MET_INT": 4,
              "MET_UINT": 4, "MET_LONG": 4, "MET_ULONG": 4, "MET_LONG_LONG": 8,
              "MET_ULONG_LONG": 8, "MET_FLOAT": 4, "MET_DOUBLE": 8}
_NIFTI_BITS = {2: 8, 4: 16, 8: 32, 16: 32, 64: 64, 256: 8, 512: 16, 768: 32, 1024: 64, 1280: 64}


def _gzip_isize(fh, start: int, end: int) -> int:
    """The ISIZE field (uncompressed length mod 2**32) of a gzip stream at ``start:end``."""
    if end - start < 18:
        raise _Incomplete("the compressed data is cut short")
    fh.seek(start)
    if fh.read(2) != b"\x1f\x8b":
        raise _Incomplete("the compressed data does not start with a gzip header")
    fh.seek(end - 4)
    return struct.unpack("<I", fh.read(4))[0]


def _check_nrrd(path: Path, size: int, expect: dict) -> None:
    with open(path, "rb") as fh:
        head = fh.read(min(size, 65536))
        if not head.startswith(b"NRRD"):
            raise _Incomplete("no NRRD magic")
        cut = head.find(b"\n\n")
        if cut < 0:
            raise _Incomplete("the header is cut short")
        fields = {}
        for line in head[:cut].decode("latin-1").splitlines()[1:]:
            if line.startswith("#") or ":" not in line or ":=" in line:
                continue
            k, v = line.split(":", 1)
            fields[k.strip().lower()] = v.strip()
        if "data file" in fields or "datafile" in fields:
            return  # detached data: nothing more to check here
        try:
            sizes = [int(v) for v in fields["sizes"].split()]
            item = _NRRD_SIZE[fields["type"].lower()]
        except (KeyError, ValueError):
            raise _Incomplete("the header lacks sizes or type") from None
        nbytes = item
        for s in sizes:
            nbytes *= s
        start = cut + 2
        enc = fields.get("encoding", "raw").lower()
        if enc == "raw":
            if size - start != nbytes:
                raise _Incomplete(f"{size - start} data bytes instead of {nbytes}")
        elif enc in ("gzip", "gz"):
            if _gzip_isize(fh, start, size) != nbytes % (1 << 32):
                raise _Incomplete("the compressed data is cut short")
        _check_shape(sizes, expect)


def _check_shape(sizes_xyz: list[int], expect: dict) -> None:
    want = expect.get("shape_xyz")
    if want is not None and list(sizes_xyz)[-len(want):] != list(want):
        raise _Incomplete(f"sizes {sizes_xyz} instead of {list(want)}")


def _check_nifti(path: Path, size: int, expect: dict, compressed: bool) -> None:
    if compressed:
        with open(path, "rb") as raw:
            isize = _gzip_isize(raw, 0, size)
        try:
            with gzip.open(path, "rb") as fh:
                hdr = fh.read(352)
        except (OSError, EOFError, zlib.error):
            raise _Incomplete("the compressed header is unreadable") from None
    else:
        with open(path, "rb") as fh:
            hdr = fh.read(352)
    if len(hdr) < 348:
        raise _Incomplete("the header is cut short")
    endian = "<" if struct.unpack("<i", hdr[:4])[0] == 348 else ">"
    dims = struct.unpack(endian + "8h", hdr[40:56])
    bitpix = struct.unpack(endian + "h", hdr[72:74])[0]
    vox_offset = int(struct.unpack(endian + "f", hdr[108:112])[0])
    ndim = max(1, min(int(dims[0]), 7))
    nbytes = bitpix // 8
    for d in dims[1:1 + ndim]:
        nbytes *= int(d)
    total = vox_offset + nbytes
    if compressed:
        if isize != total % (1 << 32):
            raise _Incomplete("the compressed data is cut short")
    elif size < total:
        raise _Incomplete(f"{size} bytes instead of {total}")
    _check_shape([int(d) for d in dims[1:1 + ndim]], expect)


def _check_mha(path: Path, size: int, expect: dict) -> None:
    with open(path, "rb") as fh:
        head = fh.read(min(size, 65536))
    marker = re.search(rb"ElementDataFile\s*=\s*(\S+)\r?\n", head)
    if marker is None:
        raise _Incomplete("the header is cut short")
    if marker.group(1) != b"LOCAL":
        return
    start = marker.end()
    fields = {}
    for line in head[:start].decode("latin-1").splitlines():
        if "=" in line:
            k, v = line.split("=", 1)
            fields[k.strip()] = v.strip()
    try:
        dims = [int(v) for v in fields["DimSize"].split()]
        item = _META_SIZE[fields["ElementType"]] * int(fields.get("ElementNumberOfChannels", 1))
    except (KeyError, ValueError):
        raise _Incomplete("the header lacks DimSize or ElementType") from None
    if fields.get("CompressedData", "False").lower() == "true":
        want = int(fields.get("CompressedDataSize", -1))
        if want >= 0 and size - start != want:
            raise _Incomplete(f"{size - start} compressed bytes instead of {want}")
    else:
        nbytes = item
        for d in dims:
            nbytes *= d
        if size - start != nbytes:
            raise _Incomplete(f"{size - start} data bytes instead of {nbytes}")
    _check_shape(dims, expect)


def _check_parquet(path: Path, size: int, expect: dict) -> None:
    with open(path, "rb") as fh:
        magic = fh.read(4)
        fh.seek(max(0, size - 4))
        tail = fh.read(4)
    if magic != b"PAR1" or tail != b"PAR1":
        raise _Incomplete("not a complete Parquet file")
    import pyarrow.parquet as pq

    try:
        meta = pq.read_metadata(path)
    except Exception as exc:  # noqa: BLE001  pyarrow raises assorted types
        raise _Incomplete(f"unreadable Parquet footer ({exc})") from None
    rows = expect.get("rows")
    if rows is not None and meta.num_rows != rows:
        raise _Incomplete(f"{meta.num_rows} rows instead of {rows}")


def _check_png(path: Path, size: int, expect: dict) -> None:
    with open(path, "rb") as fh:
        magic = fh.read(8)
        fh.seek(max(0, size - 12))
        tail = fh.read(12)
    if magic != b"\x89PNG\r\n\x1a\n" or tail[4:8] != b"IEND":
        raise _Incomplete("not a complete PNG")


def _check_text(path: Path, size: int, expect: dict, kind: str) -> None:
    if size == 0 and not expect.get("empty_ok", False):
        raise _Incomplete("the file is empty")
    if kind == ".json":
        try:
            json.loads(path.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise _Incomplete(f"unreadable JSON ({exc})") from None
    elif kind == ".csv" and size:
        with open(path, "rb") as fh:
            fh.seek(size - 1)
            if fh.read(1) not in (b"\n", b"\r"):
                raise _Incomplete("the last line is cut short")


def verify_file(path: str | os.PathLike, target: str | os.PathLike | None = None,
                expect: dict | None = None) -> None:
    """Read back a just-written file and raise :class:`OutputError` if it is incomplete.

    Checked by format (``target``'s extension): NRRD / ``.seg.nrrd`` (header; raw data length,
    or the gzip trailer's length), NIfTI (header; data length or gzip trailer), MetaImage
    (header; data length), Parquet (magic bytes and footer), PNG (signature and IEND chunk),
    JSON (parses), CSV (ends with a line break), every other file (not empty). ``expect``:
    ``bytes`` (exact size), ``shape_xyz`` (image sizes, x first), ``rows`` (Parquet rows),
    ``empty_ok``. The checks read a few kilobytes, not the whole file.
    """
    from .atomic import full_suffix

    path = Path(path)
    name = Path(target) if target is not None else path
    expect = expect or {}
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise output_error(name, exc, "cannot check the written file") from None
    kind = full_suffix(name)
    try:
        if "bytes" in expect and size != expect["bytes"]:
            raise _Incomplete(f"{size} bytes instead of {expect['bytes']}")
        if size == 0 and not expect.get("empty_ok", False):
            raise _Incomplete("the file is empty")
        if kind in (".nrrd", ".nhdr", ".seg.nrrd"):
            _check_nrrd(path, size, expect)
        elif kind in (".nii", ".nii.gz"):
            _check_nifti(path, size, expect, compressed=kind == ".nii.gz")
        elif kind == ".mha":
            _check_mha(path, size, expect)
        elif kind == ".parquet":
            _check_parquet(path, size, expect)
        elif kind == ".png":
            _check_png(path, size, expect)
        else:
            _check_text(path, size, expect, kind)
    except _Incomplete as exc:
        free = _free_text(path.parent)
        raise OutputError(f"{name}: the written file is incomplete ({exc}){free}; "
                          "nothing was replaced") from None
    except OSError as exc:
        raise output_error(name, exc, "cannot check the written file") from None


def _free_text(folder: Path) -> str:
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return ""
    return "; the disk is full" if free < MIN_FREE_BYTES else ""
