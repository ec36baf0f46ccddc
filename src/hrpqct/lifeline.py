"""Worker processes that die with the process that started them.

A worker started by ``hrpqct cohort`` (or any pool of this package) calls :func:`die_with_parent`
first. On Linux the kernel then kills it when its parent ends, however the parent ends (SIGKILL,
SIGTERM, SIGHUP, a crash): ``prctl(PR_SET_PDEATHSIG, SIGKILL)``. On every platform a watchdog
thread also checks once a second that the parent still runs (POSIX: the parent pid is unchanged
and alive; Windows: the parent's process handle is not signalled) and ends the worker if not,
which covers macOS and Windows, and processes whose parent is not their starter (Dask workers
under a nanny watch the main process).
"""

from __future__ import annotations

import os
import sys
import threading

__all__ = ["die_with_parent", "pid_alive"]

_PR_SET_PDEATHSIG = 1
_started = False


def pid_alive(pid: int) -> bool:
    """True while process ``pid`` runs (best effort; True when it cannot be told)."""
    if sys.platform == "win32":
        import ctypes

        kernel32 = ctypes.windll.kernel32  # type: ignore[attr-defined]
        handle = kernel32.OpenProcess(0x00100000, False, int(pid))  # SYNCHRONIZE
        if not handle:
            return False
        try:
            return kernel32.WaitForSingleObject(handle, 0) != 0  # 0: WAIT_OBJECT_0, it ended
        finally:
            kernel32.CloseHandle(handle)
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def _pdeathsig() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes
        import signal

        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def die_with_parent(parent_pid: int, *, direct: bool = True, poll_s: float = 1.0) -> None:
    """Make this process end when process ``parent_pid`` ends.

    ``direct``: ``parent_pid`` is this process's parent (then the Linux parent-death signal is
    set too, and a changed parent pid, i.e. adoption by init, also ends it). Idempotent.
    """
    global _started
    parent_pid = int(parent_pid)
    if direct:
        _pdeathsig()
        if os.name == "posix" and os.getppid() != parent_pid:
            os._exit(1)  # the parent died before the signal was armed
    if _started:
        return
    _started = True

    def watch() -> None:
        stop = threading.Event()
        while not stop.wait(poll_s):
            gone = not pid_alive(parent_pid)
            if direct and os.name == "posix" and os.getppid() != parent_pid:
                gone = True
            if gone:
                os._exit(1)

    threading.Thread(target=watch, name="hrpqct-parent-watchdog", daemon=True).start()
