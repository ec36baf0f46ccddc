"""Generate a whole synthetic scan: HU image (int16) with exact 5-class and 7-region ground truth."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Iterator

import numpy as np

from ..progress import ProgressCallback, report
from ..volume import Volume
from .anatomy import Anatomy
from .render import Grid, SliceRenderer
from .scanner import add_noise, fbp_scanner, motion_artefact

__all__ = ["Phantom", "generate", "iter_slices"]


@dataclass
class Phantom:
    """A synthetic scan and its ground truth (all on the same grid)."""

    image: Volume  # HU, int16
    labels5: Volume  # model classes 0-5
    labels7: Volume  # final regions 0-7
    anatomy: Anatomy
    grid: Grid

    def describe(self) -> dict:
        return {"anatomy": {k: v for k, v in asdict(self.anatomy).items() if k != "extra"},
                "grid": asdict(self.grid), "spacing_mm": list(self.image.spacing)}


def iter_slices(anat: Anatomy, grid: Grid, start: int = 0, stop: int | None = None
                ) -> Iterator[tuple[int, np.ndarray, np.ndarray, np.ndarray]]:
    """Yield ``(k, hu_int16, labels5, labels7)`` full-size slices, one at a time.

    Every slice depends only on (anatomy, grid, k), so any range can be generated on its own.
    """
    ren = SliceRenderer(anat, grid)
    n = grid.size
    stop = grid.n_slices if stop is None else stop
    for k in range(start, stop):
        hu_r, _, l5_r, l7_r = ren.render(k)
        hu = np.full((n, n), -1000.0, dtype=np.float32)
        hu[ren.r0:ren.r1, ren.c0:ren.c1] = hu_r
        fbp = anat.scanner == "fbp"
        if anat.motion > 0:
            nb = None
            if fbp:  # through-plane motion: the next slice along the limb
                nb = np.full((n, n), -1000.0, dtype=np.float32)
                nb[ren.r0:ren.r1, ren.c0:ren.c1] = ren.render(k + 1)[0]
            hu += motion_artefact(hu, anat.motion, np.random.default_rng([anat.seed, 7]), grid.pixel_mm,
                                  hu_neighbour=nb)
        if fbp:
            hu = fbp_scanner(hu, anat.noise_sd_hu, grid.pixel_mm, grid.z_mm,
                             np.random.default_rng([anat.seed, 8, k]))
        else:
            hu = add_noise(hu, anat.noise_sd_hu, grid.pixel_mm, grid.z_mm,
                           np.random.default_rng([anat.seed, 8, k]))
        l5 = np.zeros((n, n), dtype=np.uint8)
        l7 = np.zeros((n, n), dtype=np.uint8)
        l5[ren.r0:ren.r1, ren.c0:ren.c1] = l5_r
        l7[ren.r0:ren.r1, ren.c0:ren.c1] = l7_r
        yield k, np.clip(np.rint(hu), -32768, 32767).astype(np.int16), l5, l7


def generate(anat: Anatomy | None = None, grid: Grid | None = None,
             progress: ProgressCallback | None = None) -> Phantom:
    """Render every slice of ``grid`` for subject ``anat``.

    Memory: the int16 image plus two uint8 label maps (about 3.6 GB for a full 168 x 2304 x 2304
    scan); each slice is rendered on its own.
    """
    anat = anat or Anatomy()
    grid = grid or Grid()
    n, nz = grid.size, grid.n_slices
    img = np.empty((nz, n, n), dtype=np.int16)
    l5 = np.empty((nz, n, n), dtype=np.uint8)
    l7 = np.empty((nz, n, n), dtype=np.uint8)
    report(progress, 0, nz)
    for k, hu, a, b in iter_slices(anat, grid):
        img[k], l5[k], l7[k] = hu, a, b
        report(progress, k + 1, nz)
    px, dz = grid.pixel_mm, grid.z_mm
    geom = dict(spacing=(px, px, dz), origin=(-(n - 1) / 2 * px, -(n - 1) / 2 * px, 0.0))
    meta = {"phantom_seed": anat.seed, "synthetic": True}
    return Phantom(
        image=Volume(img, unit="HU", meta=meta, **geom),
        labels5=Volume(l5, unit="label", meta={**meta, "label_map": "model5"}, **geom),
        labels7=Volume(l7, unit="label", meta={**meta, "label_map": "regions7"}, **geom),
        anatomy=anat,
        grid=grid,
    )
