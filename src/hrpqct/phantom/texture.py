"""Random texture fields for the phantom: 2D fields and their smooth continuation along z.

A :class:`StackField` gives, for any slice position, a 2D zero-mean unit-variance Gaussian field
that changes smoothly along z: independent key fields are drawn every ``key_mm`` along the axis
and interpolated (Catmull-Rom) in between, with the variance renormalised. Thresholding such a
field gives structures that run along the limb: trabecular plates and rods, Haversian canals,
streaks of intramuscular fat. Each key field is seeded from ``(seed, tag, key index)``, so any
slice can be generated on its own and the stack is reproducible bit for bit.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Callable

import numpy as np
from scipy import fft as sfft
from scipy import ndimage as ndi

__all__ = ["bandpass_field", "lowpass_field", "StackField"]


def _normalise(f: np.ndarray) -> np.ndarray:
    f = f - f.mean()
    sd = f.std()
    return (f / sd if sd > 0 else f).astype(np.float32)


def bandpass_field(shape: tuple[int, int], pixel_mm: float, wavelength_mm: float,
                   rng: np.random.Generator, rel_bandwidth: float = 0.35) -> np.ndarray:
    """White noise filtered by a ring around spatial frequency ``1 / wavelength_mm``.

    The zero set of this field is a labyrinth of connected curves about half a wavelength
    apart; ``|field| < thr`` thickens it into a trabecular-like network. Unit variance.
    """
    noise = rng.standard_normal(shape).astype(np.float32)
    spec = sfft.rfft2(noise, workers=-1)
    fy = sfft.fftfreq(shape[0], d=pixel_mm)[:, None]
    fx = sfft.rfftfreq(shape[1], d=pixel_mm)[None, :]
    k = np.sqrt(fx**2 + fy**2)
    k0 = 1.0 / wavelength_mm
    spec *= np.exp(-0.5 * ((k - k0) / (rel_bandwidth * k0)) ** 2)
    return _normalise(sfft.irfft2(spec, s=shape, workers=-1))


def lowpass_field(shape: tuple[int, int], pixel_mm: float, corr_mm: float,
                  rng: np.random.Generator, anisotropy: float = 1.0) -> np.ndarray:
    """Gaussian-filtered white noise with correlation length ``corr_mm`` (x stretched by
    ``anisotropy``). Unit variance."""
    noise = rng.standard_normal(shape).astype(np.float32)
    sig = max(corr_mm / pixel_mm, 0.3)
    return _normalise(ndi.gaussian_filter(noise, (sig, sig * anisotropy), mode="wrap"))


class StackField:
    """A 2D field per slice, smooth along z; see the module docstring."""

    def __init__(self, make_key: Callable[[np.random.Generator], np.ndarray], key_mm: float,
                 seed: int, tag: int, cache: int = 5) -> None:
        self.make_key = make_key
        self.key_mm = float(key_mm)
        self.seed = int(seed)
        self.tag = int(tag)
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()
        self._cache_size = cache

    def _key(self, k: int) -> np.ndarray:
        if k in self._cache:
            self._cache.move_to_end(k)
            return self._cache[k]
        f = self.make_key(np.random.default_rng([self.seed, self.tag, k + 1_000_000]))
        self._cache[k] = f
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return f

    def at(self, z_mm: float, window: tuple[slice, slice] | None = None) -> np.ndarray:
        """The field at height ``z_mm`` (unit variance everywhere along z), optionally only the
        sub-window ``window`` of it."""
        s = z_mm / self.key_mm
        k = int(np.floor(s))
        u = s - k
        w = np.array([
            (-u**3 + 2 * u**2 - u) / 2,
            (3 * u**3 - 5 * u**2 + 2) / 2,
            (-3 * u**3 + 4 * u**2 + u) / 2,
            (u**3 - u**2) / 2,
        ])
        win = window if window is not None else (slice(None), slice(None))
        out = np.zeros_like(self._key(k)[win])
        for i, wi in zip(range(k - 1, k + 3), w):
            if wi != 0.0:
                out += np.float32(wi) * self._key(i)[win]
        return out / np.float32(np.sqrt(np.sum(w**2)))
