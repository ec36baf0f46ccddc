"""Progress reporting and cancellation shared by every long-running step.

A progress callback is any ``callable(done: int, total: int) -> bool | None``. Returning
``False`` asks the caller to stop; the step then raises :class:`hrpqct.errors.Cancelled` after
leaving every file it already wrote complete. The CLI passes a rich progress bar, the Slicer
modules pass a function that updates a ``QProgressBar`` and checks a Cancel button.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Callable, Iterator, Optional

from .errors import Cancelled

ProgressCallback = Callable[[int, int], Optional[bool]]

__all__ = ["ProgressCallback", "CancelToken", "report", "cli_progress"]


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
