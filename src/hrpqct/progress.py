"""Progress reporting and cancellation shared by every long-running step.

A progress callback is any ``callable(done: int, total: int) -> bool | None``. Returning
``False`` asks the caller to stop; the step then raises :class:`hrpqct.errors.Cancelled` after
leaving every file it already wrote complete. The CLI passes a rich progress bar, the Slicer
modules pass a function that updates a ``QProgressBar`` and checks a Cancel button.
"""

from __future__ import annotations

import json
import os
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, Optional

from .errors import Cancelled

ProgressCallback = Callable[[int, int], Optional[bool]]

__all__ = ["ProgressCallback", "CancelToken", "report", "cli_progress", "json_progress",
           "stage_progress"]


class CancelToken:
    """A thread-safe flag; pass ``token.callback(inner)`` where a progress callback is expected."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def callback(self, inner: ProgressCallback | None = None) -> ProgressCallback:
        def cb(done: int, total: int) -> bool:
            if inner is not None and inner(done, total) is False:
                self.cancel()
            return not self.cancelled

        return cb


def report(callback: ProgressCallback | None, done: int, total: int) -> None:
    """Call ``callback`` and raise :class:`Cancelled` if it returns ``False``."""
    if callback is not None and callback(done, total) is False:
        raise Cancelled(f"cancelled after {done} of {total}")


@contextmanager
def cli_progress(description: str, total: int | None = None, enabled: bool = True) -> Iterator[ProgressCallback]:
    """A rich progress bar for the terminal, yielded as a progress callback."""
    if not enabled:
        yield lambda done, total: None
        return
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                               TimeElapsedColumn, TimeRemainingColumn)

    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        transient=False,
    ) as bar:
        task = bar.add_task(description, total=total)

        def cb(done: int, total_: int) -> None:
            bar.update(task, completed=done, total=total_)

        yield cb


@contextmanager
def json_progress(path: str | os.PathLike, stage: str, label: str,
                  total: Optional[int] = None) -> Iterator[ProgressCallback]:
    """A progress callback that appends ``{"stage", "label", "done", "total"}`` as one JSON line
    to ``path`` per call (flushed, so a reader polling the file sees it at once); read by
    :func:`hrpqct_slicer.jobs.read_progress`."""
    path = Path(path)

    def cb(done: int, total_: Optional[int]) -> None:
        line = json.dumps({"stage": stage, "label": label, "done": int(done),
                           "total": None if total_ is None else int(total_)})
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")

    cb(0, total)
    yield cb


def stage_progress(stage: str, label: str, total: Optional[int] = None, *,
                   json_file: str | os.PathLike | None = None,
                   bars: bool = True):
    """One step's progress: JSON lines to ``json_file`` (:func:`json_progress`) when given,
    else a terminal bar (:func:`cli_progress`; a no-op callback when ``bars`` is false)."""
    if json_file is not None:
        return json_progress(json_file, stage, label, total)
    return cli_progress(label, total, enabled=bars)
