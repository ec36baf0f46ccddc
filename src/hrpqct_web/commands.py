"""CLI: ``hrpqct serve`` (the browser app for correcting the seven regions).

Only typer here; the app (trame-slicer, slicer-core, VTK) is imported when the command runs.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
from pathlib import Path
from typing import Optional

import typer

from hrpqct._cli import app
from hrpqct.errors import InputError

__all__ = ["serve_cmd", "is_loopback"]


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and addresses in 127.0.0.0/8 or ``::1``."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@app.command("serve")
def serve_cmd(
    port: int = typer.Option(8080, "--port", "-p", help="Port to listen on (0: any free port)."),
    data: Path = typer.Option(Path("."), "--data", "-d",
                              help="Folder whose scans the page lists; segmentations are saved "
                                   "next to the scans."),
    host: str = typer.Option("127.0.0.1", "--host",
                             help="Address to listen on. Anything but loopback also needs "
                                  "--allow-remote."),
    allow_remote: bool = typer.Option(False, "--allow-remote",
                                      help="Allow a non-loopback --host; the page then needs the "
                                           "printed token (?secret=...)."),
    token: Optional[str] = typer.Option(None, "--token",
                                        help="Token the page must present (?secret=...); default with --allow-remote: a "
                                             "random one, printed."),
    model: Optional[str] = typer.Option(None, help="Model folder or catalogue id "
                                                   "(default: the bundled demo model)."),
    device: str = typer.Option("cpu", help="auto, cuda, mps or cpu (for the segmentation)."),
    classifier: Optional[str] = typer.Option(
        None, "--classifier",
        help="Classifier folder (`hrpqct classify train`) or catalogue id for 'Radiomics + "
             "classify' (default: the bundled demo classifier, synthetic phantoms only)."),
    demo: bool = typer.Option(False, "--demo",
                              help="Write a small synthetic scan (phantom) into --data first."),
    check_only: bool = typer.Option(False, "--check", help="Check OpenGL and exit."),
) -> None:
    """Serve the correction app: open a scan of DATA, segment it in the background, correct the
    seven regions with Slicer's segment editor effects, re-apply the topology rules and the
    soft-tissue split, review the least confident slices, save the .seg.nrrd next to the scan
    (earlier versions kept), export training cases, and compute the radiomics and a classifier's
    prediction of the open scan. Listens on 127.0.0.1 unless told."""
    from .rendering import HOW_TO_INSTALL, opengl_check

    if not is_loopback(host) and not allow_remote:
        raise InputError(f"--host {host}: not a loopback address; add --allow-remote to listen "
                         "there (the page then needs a token)")
    data = data.expanduser().resolve()
    if not data.is_dir():
        raise InputError(f"--data {data}: no such folder")
    if classifier is not None:
        from .results import resolve_classifier

        classifier = str(resolve_classifier(classifier))  # a wrong folder or id: now, not later
    ok, what = opengl_check()
    if not ok:
        raise InputError(f"no OpenGL for the views: {what}; {HOW_TO_INSTALL}")
    typer.echo(f"OpenGL: {what}")
    window = what.split(":", 1)[0]
    if not os.environ.get("DISPLAY") and window in ("vtkEGLRenderWindow", "vtkOSOpenGLRenderWindow"):
        # headless: go straight to the window class that works instead of trying X first
        os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", window)
    if check_only:
        return
    if demo:
        from .demo import write_demo_scan

        typer.echo(f"demo scan: {write_demo_scan(data)}")
    secret = token  # on loopback too when given
    if not is_loopback(host) and not secret:
        secret = secrets.token_urlsafe(24)
    from .app import serve

    shown = "localhost" if is_loopback(host) else host
    url = f"http://{shown}:{port}/" + (f"?secret={secret}" if secret else "")
    typer.echo(f"hrpqct serve: data {data}; open {url}  (Ctrl-C stops)")
    serve(data, host=host, port=port, token=secret, model=model, device=device,
          classifier=classifier)
