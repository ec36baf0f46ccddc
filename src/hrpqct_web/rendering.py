"""Can this machine render the views? An OpenGL check, run in a child process.

trame-slicer renders every view on the server with VTK and streams images to the page, so the
server needs an OpenGL context. On a machine with a display or a GPU VTK finds one; on a headless
server without a GPU VTK falls back to Mesa's off-screen software renderer (OSMesa, llvmpipe):
Debian/Ubuntu ``libosmesa6`` (plus ``libgl1-mesa-dri``; ``scripts/setup-browser.sh`` installs
them). The check runs in a child process because a failing OpenGL set-up can abort the process.
"""

from __future__ import annotations

import os
import subprocess
import sys

__all__ = ["opengl_check", "HOW_TO_INSTALL"]

HOW_TO_INSTALL = ("install Mesa's software OpenGL: sudo apt-get install libosmesa6 libgl1-mesa-dri "
                  "(Debian/Ubuntu; scripts/setup-browser.sh does it), or run on a machine with a "
                  "display or GPU")

_PROBE = r"""
import vtk
w = vtk.vtkRenderWindow()
w.SetOffScreenRendering(1)
w.SetSize(8, 8)
r = vtk.vtkRenderer()
w.AddRenderer(r)
w.Render()
info = w.ReportCapabilities() or ""
lines = [l.split(":", 1)[1].strip() for l in info.splitlines() if "renderer string" in l]
print(type(w).__name__ + ": " + (lines[0] if lines else "unknown renderer"))
"""


def opengl_check(timeout: float = 60.0) -> tuple[bool, str]:
    """``(True, "vtkOSOpenGLRenderWindow: llvmpipe ...")`` if VTK can render off screen here,
    else ``(False, reason)``."""
    try:
        out = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True,
                             timeout=timeout, env=dict(os.environ), encoding="utf-8",
                             errors="replace")
    except subprocess.TimeoutExpired:
        return False, f"the OpenGL check did not finish in {timeout:.0f} s"
    lines = [ln for ln in out.stdout.splitlines() if ln.strip()]
    if out.returncode == 0 and lines:
        return True, lines[-1]
    err = " ".join(out.stderr.split())[-300:]
    return False, f"VTK could not open an OpenGL context (exit {out.returncode}): {err}"
