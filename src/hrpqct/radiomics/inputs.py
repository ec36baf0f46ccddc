"""Checks of what researchers hand the radiomics engine directly (issue 16, part 5).

The engine's Python API (:class:`~hrpqct.radiomics.engine.MultiRegionExtractor`,
:func:`~hrpqct.radiomics.engine.pyradiomics_execute`, :func:`~hrpqct.radiomics.tables.extract_scan`)
takes:

* an **image**: a numpy array ``[y, x]`` / ``[z, y, x]`` with ``spacing``, a ``SimpleITK.Image``
  (its spacing is used; a ``spacing`` given as well must agree) or a :class:`hrpqct.volume.Volume`;
* **region masks**: a dict ``name -> mask``, each a boolean array (or 0/1, or 0/k with one label)
  of the image's shape, or a ``SimpleITK.Image`` on the image's grid.

Refused with one clear :class:`~hrpqct.errors.InputError` each: a list or other non-array, a
numpy image without spacing, spacing of the wrong length or not positive, spacing that looks like
``(z, y, x)`` order (the rule below), a single array where a dict of masks is expected, an integer
label map with several labels passed as one region's mask (it would merge the regions), a
probability map (fractional values; it would be taken as "every non-zero voxel"), masks of
another shape or another grid.

**Spacing order rule.** Spacing is ITK order ``(x, y[, z])`` in mm, the reverse of the array's
``[z, y, x]``. For a 3D image, spacing ``(a, b, c)`` with in-plane pixels that are not square
(``a`` and ``b`` differ by more than 1 %) but with ``c == b`` (within 1 %) is what ``(z, y, x)``
order of square-pixel voxels looks like (HR-pQCT pixels are square): it is refused, naming the
order to use; pass ``check_spacing=False`` for a truly non-square scan. In 2D, and for isotropic
or square-pixel spacings, the order cannot be told (and a swap there changes nothing).
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from ..errors import GeometryError, InputError

__all__ = ["image_and_spacing", "region_masks_checked", "check_spacing_order", "label_array"]

_TOL = 0.01


def _is_sitk(obj: Any) -> bool:
    return type(obj).__name__ == "Image" and type(obj).__module__.startswith("SimpleITK")


def _not_an_array(obj: Any, what: str) -> InputError:
    kind = type(obj).__name__
    hint = " (np.asarray(...) it if the nesting is [z][y][x])" if isinstance(obj, (list, tuple)) else ""
    return InputError(f"{what} must be a numpy array, a SimpleITK image or an hrpqct Volume, not a "
                      f"{kind}{hint}")


def _spacing_tuple(spacing: Any, ndim: int, what: str) -> tuple[float, ...]:
    if isinstance(spacing, (str, bytes)) or not hasattr(spacing, "__len__"):
        raise InputError(f"spacing of the {what} must be {ndim} numbers in mm, (x, y{', z' if ndim == 3 else ''})"
                         f" order; got {spacing!r}")
    try:
        sp = tuple(float(s) for s in spacing)
    except (TypeError, ValueError):
        raise InputError(f"spacing of the {what} must be numbers in mm; got {spacing!r}") from None
    if len(sp) != ndim:
        raise InputError(f"spacing {sp} has {len(sp)} values but the {what} is {ndim}D; give "
                         f"(x, y{', z' if ndim == 3 else ''}) in mm")
    if not all(np.isfinite(s) and s > 0 for s in sp):
        raise InputError(f"spacing {sp} of the {what} must be positive, finite mm")
    return sp


def check_spacing_order(spacing: tuple[float, ...], what: str = "image") -> None:
    """Refuse a 3D spacing that looks like ``(z, y, x)`` order (module docstring)."""
    if len(spacing) != 3:
        return
    a, b, c = spacing
    if abs(a - b) > _TOL * min(a, b) and abs(c - b) <= _TOL * min(b, c):
        raise InputError(
            f"spacing {spacing} of the {what} looks like (z, y, x) order: read as (x, y, z) the "
            f"pixels would be {a:g} x {b:g} mm (not square); spacing is (x, y, z), i.e. "
            f"{(c, b, a)} if these are (z, y, x); pass check_spacing=False if the pixels really "
            "are not square")


def image_and_spacing(image: Any, spacing: Any = None, *, what: str = "image",
                      check_spacing: bool = True) -> tuple[np.ndarray, tuple[float, ...], Any]:
    """``(array [z, y, x] or [y, x], spacing (x, y[, z]) mm, geometry)`` of any accepted image.

    ``geometry``: ``(spacing, origin, direction)`` of a SimpleITK image or Volume, else None.
    """
    geometry = None
    if _is_sitk(image):
        import SimpleITK as sitk

        if image.GetNumberOfComponentsPerPixel() != 1:
            raise InputError(f"the {what} has {image.GetNumberOfComponentsPerPixel()} components "
                             "per pixel; radiomics needs a scalar image")
        own = tuple(float(s) for s in image.GetSpacing())
        geometry = (own, tuple(image.GetOrigin()), tuple(image.GetDirection()))
        array = sitk.GetArrayViewFromImage(image)
    elif hasattr(image, "array") and hasattr(image, "spacing") and hasattr(image, "origin"):
        own = tuple(float(s) for s in image.spacing)
        geometry = (own, tuple(image.origin), tuple(image.direction))
        array = np.asarray(image.array)
        own = own[: array.ndim]
    elif isinstance(image, np.ndarray):
        array, own = image, None
    else:
        raise _not_an_array(image, f"the {what}")
    if array.ndim not in (2, 3):
        raise InputError(f"radiomics needs a 2D or 3D {what}, got shape {array.shape}")
    if own is not None:
        if spacing is not None:
            given = _spacing_tuple(spacing, array.ndim, what)
            if not np.allclose(given, own, rtol=1e-6, atol=1e-9):
                raise InputError(f"spacing {given} disagrees with the {what}'s own spacing {own} "
                                 "(x, y[, z] mm); leave spacing out to use the image's")
        sp = own
    else:
        if spacing is None:
            raise InputError(f"spacing is missing: a numpy {what} carries no pixel size; pass "
                             f"spacing=(x, y{', z' if array.ndim == 3 else ''}) in mm, or a "
                             "SimpleITK image, which carries it")
        sp = _spacing_tuple(spacing, array.ndim, what)
    sp = _spacing_tuple(sp, array.ndim, what)
    if check_spacing:
        check_spacing_order(sp, what)
    return array, sp, geometry


def _grid_array(obj: Any, geometry, where: str, what: str, view: bool = True) -> np.ndarray:
    """The array of a numpy array, SimpleITK image (checked against the image's ``geometry``:
    spacing, origin, direction; a view of its buffer, or a copy with ``view=False``) or Volume;
    ``where``/``what`` name it in the errors."""
    if _is_sitk(obj):
        import SimpleITK as sitk

        if geometry is not None:
            g = (tuple(obj.GetSpacing()), tuple(obj.GetOrigin()), tuple(obj.GetDirection()))
            if not all(np.allclose(x, y, atol=1e-4) for x, y in zip(g, geometry)):
                raise GeometryError(f"{where} is not on the image's grid (spacing, origin or "
                                    "direction differ)")
        return sitk.GetArrayViewFromImage(obj) if view else sitk.GetArrayFromImage(obj)
    if isinstance(obj, np.ndarray):
        return obj
    if hasattr(obj, "array") and hasattr(obj, "spacing"):
        return np.asarray(obj.array)
    raise _not_an_array(obj, what)


def _mask_array(name: str, mask: Any, shape: tuple, geometry) -> np.ndarray:
    where = f"mask of region {name!r}"
    arr = _grid_array(mask, geometry, where, f"the {where}")
    if arr.shape != tuple(shape):
        raise InputError(f"{where} has shape {arr.shape}, image {tuple(shape)}")
    if arr.dtype == bool:
        return arr
    if arr.dtype.kind == "f":
        finite = arr[np.isfinite(arr)]
        frac = finite[(finite != np.round(finite))]
        if frac.size:
            raise InputError(f"{where} holds fractional values ({float(frac.min()):g} to "
                             f"{float(frac.max()):g}): a probability map? Pass a boolean mask, "
                             "e.g. probability > 0.5")
        if finite.size != arr.size:
            raise InputError(f"{where} holds NaN or infinite values")
    elif arr.dtype.kind not in "iu":
        raise InputError(f"{where} must be boolean or integer, got {arr.dtype}")
    values = np.unique(arr)
    nonzero = values[values != 0]
    if nonzero.size > 1:
        shown = ", ".join(f"{v:g}" for v in nonzero[:8]) + (" ..." if nonzero.size > 8 else "")
        raise InputError(f"{where} holds several labels ({shown}): an integer label map would "
                         f"merge them into one region; pass one boolean mask per region, e.g. "
                         f"{{'TC': labels == 1, 'TT': labels == 2}}")
    if nonzero.size and nonzero[0] < 0:
        raise InputError(f"{where} holds negative values")
    return arr != 0


def region_masks_checked(masks: Any, shape: tuple, geometry=None) -> dict[str, np.ndarray]:
    """Boolean masks from a dict ``name -> mask`` (module docstring for what is refused)."""
    if isinstance(masks, np.ndarray) or _is_sitk(masks):
        raise InputError("masks must be a dict region name -> mask, not a single image; wrap it: "
                         "{'region': mask} (one boolean mask per region)")
    if not isinstance(masks, Mapping):
        raise InputError(f"masks must be a dict region name -> boolean mask, not a "
                         f"{type(masks).__name__}")
    if not masks:
        raise InputError("masks is empty: give at least one region")
    return {str(name): _mask_array(str(name), m, shape, geometry) for name, m in masks.items()}


def label_array(labels: Any, shape: tuple, geometry=None, what: str = "label map") -> np.ndarray:
    """An integer label map (numpy, SimpleITK or Volume) on the image's grid, as an array."""
    arr = _grid_array(labels, geometry, f"the {what}", f"the {what}", view=False)
    if arr.shape != tuple(shape):
        raise InputError(f"image {tuple(shape)} and {what} {arr.shape} must be the same shape")
    return arr
