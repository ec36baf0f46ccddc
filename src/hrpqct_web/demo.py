"""A small synthetic scan for trying the app (``hrpqct serve --demo``) and for its tests."""

from __future__ import annotations

import os
from pathlib import Path

from hrpqct.demo import DEMO_SCAN

__all__ = ["write_demo_scan", "DEMO_NAME"]

DEMO_NAME = "demo-phantom.nrrd"


def write_demo_scan(folder: str | os.PathLike, *, size: int = 256, n_slices: int = 3,
                    name: str = DEMO_NAME) -> Path:
    """The bundled demo phantom's anatomy (:data:`hrpqct.demo.DEMO_SCAN`'s seed and side) on a
    small grid (``size`` pixels over the 140 mm field of view, ``n_slices`` slices), written as
    ``folder/name`` (HU). Returns the path; an existing file is left as it is."""
    from hrpqct.io import write_image
    from hrpqct.phantom.anatomy import Anatomy
    from hrpqct.phantom.render import Grid
    from hrpqct.phantom.scan import generate

    path = Path(folder) / name
    if path.exists():
        return path
    d = DEMO_SCAN
    ph = generate(Anatomy(seed=d.seed, side=d.side), Grid(size=size, n_slices=n_slices))
    path.parent.mkdir(parents=True, exist_ok=True)
    write_image(ph.image, path)
    return path
