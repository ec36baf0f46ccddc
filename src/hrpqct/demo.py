"""``hrpqct demo``: the whole pipeline on the bundled synthetic scan.

The bundled scan is a phantom with a fixed seed and a small grid (defined once, here), so the demo
needs no data files and gives the same result on every machine.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import typer
from rich.console import Console

from ._cli import app
from .progress import cli_progress

__all__ = ["DemoScan", "DEMO_SCAN", "demo_phantom"]


@dataclass(frozen=True)
class DemoScan:
    """The bundled synthetic scan: seed and grid."""

    seed: int = 20261121
    size: int = 768  # 0.182 mm pixels over the 140 mm field of view
    n_slices: int = 12
    side: str = "left"


DEMO_SCAN = DemoScan()


def demo_phantom(progress=None):
    """Render the bundled synthetic scan (a :class:`hrpqct.phantom.scan.Phantom`)."""
    from .phantom.anatomy import Anatomy
    from .phantom.render import Grid
    from .phantom.scan import generate

    d = DEMO_SCAN
    return generate(Anatomy(seed=d.seed, side=d.side), Grid(size=d.size, n_slices=d.n_slices),
                    progress=progress)


@app.command("demo")
def demo_cmd(
    out: Path = typer.Option(Path("demo-output"), "--out", "-o", help="Output folder."),
) -> None:
    """Run the pipeline on the bundled synthetic scan and write every result to OUT."""
    from .phantom.files import write_phantom

    console = Console()
    console.rule("[bold]HRpQCT demo")
    with cli_progress("1/1 synthetic scan", DEMO_SCAN.n_slices) as cb:
        ph = demo_phantom(cb)
    paths = write_phantom(ph, out / "scan")
    console.print(f"synthetic scan and ground truth: {out / 'scan'} (overview: {paths['overview']})")
