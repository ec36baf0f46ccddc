"""Small helpers shared by test files (import them: ``from helpers import cli, tmpfs``)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hrpqct.cli import main


def cli(*args: str) -> int:
    """Run ``hrpqct ARGS`` in this process; its exit code."""
    try:
        main(list(args))
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


@contextlib.contextmanager
def tmpfs(mnt: Path, options: str):
    """A real tmpfs mounted at ``mnt`` with mount ``options`` (e.g. ``size=2m,ro``); skips the
    test where mounting is not allowed (not root, not Linux)."""
    mnt.mkdir()
    if sys.platform != "linux" or os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root on Linux")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(mnt)],
                       capture_output=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.decode().strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)
