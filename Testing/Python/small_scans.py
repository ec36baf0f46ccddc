"""Small synthetic scans shared by the inference tests (not a test module)."""

from __future__ import annotations

import numpy as np

from hrpqct.volume import Volume


def small_leg(nz: int = 5, unit: str = "HU") -> Volume:
    """``nz`` slices of 120 x 100 px: an elliptic limb (40 + 10 k HU) around a bone (1500 HU),
    0.1 x 0.1 x 0.5 mm, rotated 90 degrees in plane, with a non-zero origin."""
    yy, xx = np.mgrid[:120, :100]
    arr = np.full((nz, 120, 100), -1000.0, dtype=np.float32)
    limb = ((yy - 60) / 45.0) ** 2 + ((xx - 50) / 35.0) ** 2 <= 1
    bone = ((yy - 55) / 15.0) ** 2 + ((xx - 45) / 12.0) ** 2 <= 1
    for k in range(nz):
        arr[k][limb] = 40.0 + 10 * k
        arr[k][bone] = 1500.0
    direction = (0.0, 1.0, 0.0, -1.0, 0.0, 0.0, 0.0, 0.0, 1.0)
    return Volume(arr, spacing=(0.1, 0.1, 0.5), origin=(-3.0, 7.5, 12.0), direction=direction,
                  unit=unit, source=None)
