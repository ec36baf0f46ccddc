"""The multi-region engine: PyRadiomics' numbers for many regions of one image, without the
repeated work of one ``RadiomicsFeatureExtractor.execute`` call per region.

Per region, ``execute`` loads and checks the mask, recomputes every filtered image (LoG,
wavelet, LBP ...) of the *whole* image, crops it to the region, and re-discretises the crop
once per feature class (six times per image, each time scanning the region with Python's
built-in ``min``/``max``). None of that depends on the region except the crop, so
:class:`MultiRegionExtractor`:

* computes each filtered image once per image and reuses it for all regions;
* finds every region's bounding box with numpy (no ``LabelStatisticsImageFilter`` pass per
  region) and crops each region's mask once;
* discretises each (image, region) crop once, with PyRadiomics' own ``getBinEdges`` fed the
  region's minimum and maximum (the only values it reads), and hands the result to all
  feature classes;
* then runs PyRadiomics' own feature classes (and their C extensions) unchanged.

The feature classes see exactly the arrays they would see inside ``execute``, so the values
are PyRadiomics' values (the parity tests check 1e-9 relative; in practice they are equal).
Filtered images are only shared when they do not depend on the region: with resampling
(``resampledPixelSpacing``) or ``preCrop`` PyRadiomics filters a region-sized crop, and with
``LBP3D`` the filter reads the mask; the engine then filters per region, as ``execute`` does
(and still shares the discretisation across feature classes).

Regions that cannot be computed (absent, a single pixel, too thin, not more than
``minimumROISize`` pixels, emptied by resegmentation) give no features and a reason string,
never an exception. ``diagnostics_*`` entries (``additionalInfo``) are not produced.
"""

from __future__ import annotations

import collections
import logging
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator, Mapping, Sequence

import numpy as np

from ..method import RADIOMICS
from .presets import Preset, load_preset, quiet_pyradiomics

__all__ = [
    "RegionResult", "MultiRegionExtractor", "pyradiomics_execute", "check_region", "blas_threads",
]

log = logging.getLogger(__name__)

#: Image types whose filter reads the mask (so cannot be shared between regions).
_MASK_DEPENDENT_FILTERS = frozenset({"LBP3D"})


@dataclass
class RegionResult:
    """Features of one region (PyRadiomics names -> float), or an empty dict and a reason."""

    features: "collections.OrderedDict[str, float]" = field(default_factory=collections.OrderedDict)
    reason: str | None = None
    n_pixels: int = 0

    @property
    def ok(self) -> bool:
        return self.reason is None


@contextmanager
def blas_threads(n: int | None = 1) -> Iterator[None]:
    """Limit BLAS/LAPACK (OpenBLAS, MKL) threads inside the block; ``None`` leaves them alone.

    PyRadiomics' matrices are small (GLCM MCC takes eigenvalues of Ng x Ng matrices): with
    several BLAS threads on a busy machine, ``numpy.linalg.eigvals`` was measured 15x slower
    than with one. Uses ``threadpoolctl`` when installed, else does nothing.
    """
    if n is None:
        yield
        return
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover
        yield
        return
    with threadpool_limits(limits=n, user_api="blas"):
        yield


# --- image / mask helpers ------------------------------------------------------------------
def _to_sitk(array: np.ndarray, spacing: Sequence[float]):
    import SimpleITK as sitk

    img = sitk.GetImageFromArray(array)
    img.SetSpacing(tuple(float(s) for s in spacing))
    return img


def _bbox(mask: np.ndarray) -> np.ndarray:
    """PyRadiomics' bounding box ``(L_x, U_x, L_y, U_y[, L_z, U_z])`` of a non-empty mask."""
    nd = mask.ndim
    out = np.empty(2 * nd, dtype=np.int64)
    for k, axis in enumerate(range(nd - 1, -1, -1)):  # ITK order: x first = last numpy axis
        other = tuple(a for a in range(nd) if a != axis)
        idx = np.flatnonzero(mask.any(axis=other))
        out[2 * k], out[2 * k + 1] = idx[0], idx[-1]
    return out


def check_region(mask: np.ndarray, settings: Mapping) -> tuple[np.ndarray | None, str | None, int]:
    """PyRadiomics' mask checks (``getMask`` + ``checkMask``) on a boolean array.

    Returns ``(bounding box, None, n_pixels)`` for a usable region or ``(None, reason,
    n_pixels)``; the reasons mirror the ``ValueError`` messages of ``execute``.
    """
    n = int(np.count_nonzero(mask))
    if n == 0:
        return None, "absent", 0
    bb = _bbox(mask)
    ndims = int(np.sum((bb[1::2] - bb[0::2] + 1) > 1))
    min_dims = settings.get("minimumROIDimensions", 2)
    min_size = settings.get("minimumROISize", None)
    if ndims == 0:
        return None, "single pixel", n
    if ndims < min_dims:
        return None, f"too thin: spans {ndims} dimension(s), minimumROIDimensions is {min_dims}", n
    if min_size is not None and n <= min_size:
        return None, f"too small: {n} pixels, minimumROISize is {min_size}", n
    return bb, None, n


def _crop(image, bb: np.ndarray, array: np.ndarray | None = None):
    """``cropToTumorMask`` without padding, for one image: same voxels, spacing, origin.

    Done with numpy slicing (a copy) instead of a SimpleITK filter, which costs thread start-up
    per call; ``array`` is ``GetArrayViewFromImage(image)`` when the caller already has it.
    Returns ``(cropped image, cropped array)``.
    """
    import SimpleITK as sitk

    if array is None:
        array = sitk.GetArrayViewFromImage(image)
    nd = image.GetDimension()
    lower = [int(v) for v in bb[0::2]]
    upper = [int(v) for v in bb[1::2]]
    index = tuple(slice(lower[d], upper[d] + 1) for d in range(nd - 1, -1, -1))  # [z,] y, x
    crop = np.ascontiguousarray(array[index])
    out = sitk.GetImageFromArray(crop)
    out.SetSpacing(image.GetSpacing())
    out.SetDirection(image.GetDirection())
    out.SetOrigin(image.TransformIndexToPhysicalPoint(lower))
    return out, crop


# --- feature classes fed with a shared discretisation ----------------------------------------
class _Discretised:
    """One (image, region) crop discretised once: what ``_applyBinning`` would return."""

    __slots__ = ("binned", "gray_levels", "ng")

    def __init__(self, array: np.ndarray, mask: np.ndarray, settings: Mapping):
        from radiomics import imageoperations

        values = array[mask]
        # getBinEdges reads only the minimum and maximum of the values (fixed bin width) or
        # numpy.histogram's range (fixed bin count): give it just those, same dtype.
        extremes = np.array([values.min(), values.max()], dtype=values.dtype)
        edges = imageoperations.getBinEdges(extremes, **settings)
        binned = np.zeros(array.shape, dtype="int")
        inside = np.digitize(values, edges)
        binned[mask] = inside
        binned.flags.writeable = False  # shared by all feature classes: must not change
        self.binned = binned
        # == np.unique(inside) (sorted, int), by counting: bins are small positive integers
        self.gray_levels = np.flatnonzero(np.bincount(inside)).astype("int")
        self.gray_levels.flags.writeable = False
        self.ng = int(np.max(self.gray_levels))


class _SharedInputs:
    """Mixin for PyRadiomics feature classes: take the mask and discretisation computed once."""

    _shared_mask: np.ndarray
    _shared_bins: _Discretised
    _names_cache: dict = {}

    def _initSegmentBasedCalculation(self):  # noqa: N802 (PyRadiomics' name)
        self.maskArray = self._shared_mask

    def _applyBinning(self, matrix):  # noqa: N802
        d = self._shared_bins
        self.coefficients["grayLevels"] = d.gray_levels
        self.coefficients["Ng"] = d.ng
        return d.binned

    @classmethod
    def getFeatureNames(cls):  # noqa: N802  same dict as PyRadiomics', computed once per class
        names = _SharedInputs._names_cache.get(cls)
        if names is None:
            names = super().getFeatureNames()  # type: ignore[misc]
            _SharedInputs._names_cache[cls] = names
        return names


_SHARED_CLASSES: dict[type, type] = {}


def _shared_class(cls: type) -> type:
    sub = _SHARED_CLASSES.get(cls)
    if sub is None:
        sub = type(f"Shared{cls.__name__}", (_SharedInputs, cls), {"__module__": cls.__module__})
        _SHARED_CLASSES[cls] = sub
    return sub


# --- the engine ------------------------------------------------------------------------------
@dataclass
class _Region:
    name: str
    mask: np.ndarray  # full-size bool
    mask_img: object  # full-size sitk UInt32 (0/1)
    bb: np.ndarray  # bounding box for the texture classes
    shape_bb: np.ndarray
    shape_mask_img: object
    crop_mask_img: object = None  # texture mask cropped to bb
    crop_mask: np.ndarray | None = None  # bool
    result: RegionResult = field(default_factory=RegionResult)


class MultiRegionExtractor:
    """PyRadiomics features of several regions of one image, each filtered image computed once.

    ``preset`` is a shipped preset name (``"paper"``, ``"3d"``), a parameter file path or a
    :class:`~hrpqct.radiomics.presets.Preset`. :meth:`execute` returns, per region, the same
    ``name -> value`` mapping as ``RadiomicsFeatureExtractor(preset).execute(image, mask)``
    (without ``diagnostics_*``), or a reason when the region cannot be computed.
    """

    def __init__(self, preset: str | Preset = RADIOMICS.preset, blas: int | None = 1, *, fast: bool = True):
        self.blas = blas  # BLAS threads during execute (see blas_threads); None: unchanged
        # fast=False keeps every region on the per-region path (PyRadiomics' classes and C
        # matrices with one shared discretisation); used by the tests and the benchmark
        self.fast = fast
        self.preset = load_preset(preset)
        quiet_pyradiomics()
        self._ext = self.preset.extractor()
        self.settings = dict(self._ext.settings)
        self.settings["label"] = 1  # masks are given as booleans, label 1
        self.settings.pop("voxelBased", None)
        self._templates: dict = {}  # feature-class objects to copy (see _fast_object)

    @property
    def feature_names(self) -> list[str]:
        return self.preset.feature_names()

    # --- public -----------------------------------------------------------------------------
    def execute(
        self,
        image,
        masks: Mapping[str, object],
        spacing: Sequence[float] | None = None,
        *,
        check_spacing: bool = True,
    ) -> dict[str, RegionResult]:
        """Features of every region of ``image``.

        ``image``: 2D ``[y, x]`` or 3D ``[z, y, x]`` numpy array (HU for the shipped presets;
        used as given, so pass the dtype PyRadiomics should see), or a ``SimpleITK.Image`` /
        :class:`hrpqct.volume.Volume`, whose spacing is used. ``masks``: region name -> boolean
        mask of the same shape (numpy, or SimpleITK on the image's grid). ``spacing``: pixel
        size in mm, ITK order ``(x, y[, z])``; required for a numpy image. Label maps with
        several labels, probability maps, lists, missing or (z, y, x)-ordered spacing are
        refused with a clear :class:`InputError` (:mod:`hrpqct.radiomics.inputs`).
        """
        from .inputs import image_and_spacing, region_masks_checked

        image, spacing, geometry = image_and_spacing(image, spacing, check_spacing=check_spacing)
        image = np.asarray(image)
        masks = region_masks_checked(masks, image.shape, geometry)
        with warnings.catch_warnings(), blas_threads(self.blas):
            # skimage's LBP warns on float input; PyRadiomics passes floats by design
            warnings.simplefilter("ignore", UserWarning)
            return self._execute(image, masks, spacing)

    # --- internals -----------------------------------------------------------------------------
    def _execute(self, image, masks, spacing) -> dict[str, RegionResult]:
        import SimpleITK as sitk
        from radiomics import imageoperations

        s = self.settings
        out: dict[str, RegionResult] = {}
        image_img = _to_sitk(image, spacing)
        region_dependent = bool(
            (s.get("interpolator") is not None and s.get("resampledPixelSpacing") is not None)
            or s.get("preCrop", False)
        )
        if not region_dependent and s.get("normalize", False):
            image_img = imageoperations.normalizeImage(image_img, **s)

        contexts: list[tuple[object, list[_Region]]] = []
        shared: list[_Region] = []
        for name, m in masks.items():
            m = np.asarray(m).astype(bool, copy=False)
            bb, reason, n = check_region(m, s)
            res = RegionResult(n_pixels=n)
            out[name] = res
            if reason is not None:
                res.reason = reason
                continue
            try:
                mask_img = _to_sitk(m.view(np.uint8), spacing)
                if region_dependent:
                    img_r, mask_r = self._ext.loadImage(image_img, mask_img, None, **s)
                    m_r = sitk.GetArrayFromImage(mask_r) == 1
                    bb, reason, _ = check_region(m_r, s)
                    if reason is not None:
                        res.reason = f"after resampling: {reason}"
                        continue
                    reg = self._prepare_region(name, img_r, m_r, mask_r, bb, res)
                    if reg is not None:
                        contexts.append((img_r, [reg]))
                else:
                    reg = self._prepare_region(name, image_img, m, mask_img, bb, res)
                    if reg is not None:
                        shared.append(reg)
            except Exception as exc:  # pragma: no cover - defensive: never crash a whole slice
                res.reason = f"error: {type(exc).__name__}: {exc}"
        if shared:
            contexts.insert(0, (image_img, shared))

        for k, (img, regions) in enumerate(contexts):
            # only the shared context (filtered images independent of the region) is fast
            self._features(img, regions, fast=bool(shared) and k == 0)
        for res in out.values():
            if res.reason is not None:
                res.features = collections.OrderedDict()
        return out

    def _prepare_region(self, name, image_img, m, mask_img, bb, res) -> _Region | None:
        """Resegmentation, shape features and the cropped mask of one region."""
        import SimpleITK as sitk
        from radiomics import imageoperations

        s = self.settings
        shape_bb, shape_mask_img = bb, mask_img
        tex_mask_img, tex_m = mask_img, m
        if s.get("resegmentRange") is not None:
            try:
                tex_mask_img = imageoperations.resegmentMask(image_img, mask_img, **s)
            except ValueError as exc:
                res.reason = f"resegmentation: {exc}"
                return None
            tex_m = sitk.GetArrayFromImage(tex_mask_img) == 1
            bb, reason, _ = check_region(tex_m, s)
            if reason is not None:
                res.reason = f"after resegmentation: {reason}"
                return None
            shape_bb = bb  # PyRadiomics crops the shape mask to the resegmented box
            if s.get("resegmentShape", False):
                shape_mask_img = tex_mask_img
        res.features.update(self._ext.computeShape(image_img, shape_mask_img, shape_bb, **s))
        reg = _Region(name, tex_m, tex_mask_img, bb, shape_bb, shape_mask_img)
        reg.crop_mask_img, crop = _crop(tex_mask_img, bb)
        reg.crop_mask = crop == 1
        reg.crop_mask.flags.writeable = False
        reg.result = res
        return reg

    def _filtered(self, image_img, regions: list[_Region], local_crop: bool = False):
        """Yield ``(filtered image, image type name, kwargs, regions)`` once per filtered image.

        ``local_crop``: compute LBP-2D of a 2D image (a local filter: each pixel's code reads
        its neighbours within ``lbp2DRadius``) on the regions' common box plus a margin only,
        and return it in a full-size image that is 0 outside that box; every region pixel gets
        PyRadiomics' value, and only region pixels are read.
        """
        from radiomics import imageoperations

        for image_type, custom in self.preset.image_types.items():
            args = dict(self.settings)
            args.update(custom)
            gen = getattr(imageoperations, f"get{image_type}Image")
            if local_crop and image_type == "LBP2D" and image_img.GetDimension() == 2:
                for img, type_name, kw in _lbp2d_on_box(gen, image_img, regions, args):
                    yield img, type_name, kw, regions
            elif image_type in _MASK_DEPENDENT_FILTERS:
                for reg in regions:
                    for img, type_name, kw in gen(image_img, reg.mask_img, **args):
                        yield img, type_name, kw, [reg]
            else:
                for img, type_name, kw in gen(image_img, regions[0].mask_img, **args):
                    yield img, type_name, kw, regions

    def _max_distance(self) -> int:
        """Largest neighbour distance of the preset (``distances``, also per image type)."""
        ds = [int(d) for d in self.settings.get("distances") or [1]]
        for custom in self.preset.image_types.values():
            ds += [int(d) for d in custom.get("distances") or []]
        return max([1, *ds])

    def _fast_enabled(self, enabled) -> bool:
        from . import fast as fastpath

        return (self.fast and fastpath.available()
                and all(c in fastpath.FAST_CLASSES for c, _ in enabled))

    def _features(self, image_img, regions: list[_Region], fast: bool = False) -> None:
        import SimpleITK as sitk
        from radiomics import getFeatureClasses

        from . import fast as fastpath

        classes = getFeatureClasses()
        enabled = [(c, f) for c, f in self.preset.feature_classes.items()
                   if not c.startswith("shape") and c in classes]
        live = [r for r in regions if r.result.reason is None]
        layout = None
        if fast and live and self._fast_enabled(enabled):
            layout = fastpath.Layout(live, sitk.GetArrayViewFromImage(image_img).shape,
                                     pad=self._max_distance())
        kinds = {c for c, _ in enabled}
        for filt_img, type_name, kwargs, regs in self._filtered(image_img, regions,
                                                                local_crop=layout is not None):
            full = sitk.GetArrayViewFromImage(filt_img)
            done: set[int] = set()
            if layout is not None and regs is regions:  # a filter shared by all regions
                standin = _standin(filt_img)
                for layer in layout.layers:
                    fi = fastpath.FastImage(layer, full, kwargs, kinds)
                    for k, reg in enumerate(layer.regions):
                        if reg.result.reason is not None or not fi.ok[k]:
                            continue  # non-finite values: the per-region path below
                        try:
                            self._fast_region(reg, fi, k, type_name, kwargs, enabled, classes,
                                              standin)
                        except Exception as exc:  # PyRadiomics would raise; record, go on
                            reg.result.reason = (
                                f"error in {type_name}: {type(exc).__name__}: {exc}")
                        done.add(id(reg))
            for reg in regs:
                if reg.result.reason is not None or id(reg) in done:
                    continue
                try:
                    crop, crop_arr = _crop(filt_img, reg.bb, full)
                    bins = _Discretised(crop_arr, reg.crop_mask, kwargs)
                    for cls_name, feature_names in enabled:
                        cls = _shared_class(classes[cls_name])
                        obj = cls.__new__(cls)
                        obj._shared_mask = reg.crop_mask
                        obj._shared_bins = bins
                        obj.__init__(crop, reg.crop_mask_img, **kwargs)
                        if feature_names is not None:
                            for f in feature_names:
                                obj.enableFeatureByName(f)
                        for f, v in obj.execute().items():
                            reg.result.features[f"{type_name}_{cls_name}_{f}"] = v
                except Exception as exc:  # PyRadiomics would raise; we record and go on
                    reg.result.reason = f"error in {type_name}: {type(exc).__name__}: {exc}"

    def _fast_region(self, reg, fi, k, type_name, kwargs, enabled, classes, standin) -> None:
        """The feature classes of one region on the fast path (see :mod:`.fast`)."""
        from . import fast as fastpath

        bins = fi.bins[k]
        feats = reg.result.features
        for cls_name, feature_names in enabled:
            cls = fastpath.fast_class(classes[cls_name], cls_name)
            obj = self._fast_object(cls, cls_name, feature_names, type_name, kwargs, standin,
                                    reg, bins)
            obj._shared_raw = fi.raw[k]
            obj._shared_values = fi.values[k]
            obj._shared_extremes = fi.extremes[k]
            for f, v in obj.execute().items():
                feats[f"{type_name}_{cls_name}_{f}"] = v

    def _fast_object(self, cls, cls_name, feature_names, type_name, kwargs, standin, reg, bins):
        """A feature-class object for one region, as ``cls(standin, standin, **kwargs)`` with the
        features enabled would be, without running PyRadiomics' ``__init__`` every time.

        ``__init__`` (PyRadiomics 3.0.1) reads the settings, the feature names, the stand-in
        image's array and spacing, and sets three region-dependent things: the mask, the
        binning coefficients (grey levels, Ng) and the binned array (``imageArray``, for first
        order ``discretizedImageArray``). So ``__init__`` runs once per (class, image type,
        settings, spacing) for a template; each region gets a copy of the template's
        attributes with those three set again as ``__init__`` sets them. The parity tests
        compare every value with PyRadiomics' ``execute``.
        """
        key = (cls, type_name, None if feature_names is None else tuple(feature_names),
               id(standin))
        entry = self._templates.get(key)
        if entry is None or entry[0] != kwargs:
            tpl = cls.__new__(cls)
            tpl._shared_mask = reg.crop_mask
            tpl._shared_bins = bins
            tpl.__init__(standin, standin, **kwargs)
            if feature_names is not None:
                for f in feature_names:
                    tpl.enableFeatureByName(f)
            if not tpl.enabledFeatures:
                tpl.enableAllFeatures()  # what execute() does when none are enabled
            entry = (dict(kwargs), tpl)
            self._templates[key] = entry
        obj = cls.__new__(cls)
        obj.__dict__.update(entry[1].__dict__)
        obj.coefficients = {}
        obj.featureValues = {}
        obj._shared_mask = reg.crop_mask
        obj._shared_bins = bins
        obj.maskArray = reg.crop_mask  # _initSegmentBasedCalculation
        binned = obj._applyBinning(None)  # sets grayLevels and Ng in coefficients
        if cls_name == "firstorder":
            obj.discretizedImageArray = binned
        else:
            obj.imageArray = binned
        return obj


def _lbp2d_on_box(gen, image_img, regions, args):
    """PyRadiomics' LBP-2D of the regions' common box (+ radius + 2 pixels), in a full-size image."""
    import SimpleITK as sitk

    full = sitk.GetArrayViewFromImage(image_img)
    live = [r for r in regions if r.result.reason is None] or regions
    margin = int(np.ceil(float(args.get("lbp2DRadius", 1)))) + 2
    lo = np.min([r.bb[0::2] for r in live], axis=0) - margin  # ITK order (x, y)
    hi = np.max([r.bb[1::2] for r in live], axis=0) + margin
    size = np.array(image_img.GetSize())
    lo, hi = np.maximum(lo, 0), np.minimum(hi, size - 1)
    box = np.empty(4, np.int64)
    box[0::2], box[1::2] = lo, hi
    crop, _ = _crop(image_img, box, full)
    for img, type_name, kw in gen(crop, crop, **args):
        out = np.zeros(full.shape, sitk.GetArrayViewFromImage(img).dtype)
        out[lo[1]: hi[1] + 1, lo[0]: hi[0] + 1] = sitk.GetArrayViewFromImage(img)
        res = sitk.GetImageFromArray(out)
        res.CopyInformation(image_img)
        yield res, type_name, kw


_STANDINS: dict = {}


def _standin(image):
    """A one-pixel image with ``image``'s spacing: what the fast path's feature classes get as
    input image (they read only its spacing; their arrays come from the fast path)."""
    import SimpleITK as sitk

    key = (image.GetDimension(), tuple(image.GetSpacing()))
    img = _STANDINS.get(key)
    if img is None:
        img = sitk.GetImageFromArray(np.zeros((1,) * key[0], np.float64))
        img.SetSpacing(key[1])
        _STANDINS[key] = img
    return img


def pyradiomics_execute(
    image,
    masks: Mapping[str, object],
    spacing: Sequence[float] | None = None,
    preset: str | Preset = RADIOMICS.preset,
    blas: int | None = 1,
    *,
    check_spacing: bool = True,
) -> dict[str, RegionResult]:
    """The baseline: one plain ``RadiomicsFeatureExtractor.execute`` per region.

    Same inputs and outputs as :meth:`MultiRegionExtractor.execute`; a ``ValueError`` from
    PyRadiomics (absent or too small region) becomes the reason. Used by the parity tests and
    the benchmark; ``blas`` limits BLAS threads as in the engine, so that timings compare the
    work done, not thread contention.
    """
    from .inputs import image_and_spacing, region_masks_checked

    image, spacing, geometry = image_and_spacing(image, spacing, check_spacing=check_spacing)
    masks = region_masks_checked(masks, np.shape(image), geometry)
    preset = load_preset(preset)
    ext = preset.extractor()
    ext.settings["additionalInfo"] = False
    image_img = _to_sitk(np.asarray(image), spacing)
    out: dict[str, RegionResult] = {}
    with warnings.catch_warnings(), blas_threads(blas):
        warnings.simplefilter("ignore", UserWarning)
        for name, m in masks.items():
            m = np.asarray(m).astype(np.uint32)
            res = RegionResult(n_pixels=int(np.count_nonzero(m)))
            try:
                values = ext.execute(image_img, _to_sitk(m, spacing), label=1)
                res.features = collections.OrderedDict(
                    (k, v) for k, v in values.items() if not k.startswith("diagnostics_"))
            except ValueError as exc:
                res.reason = str(exc)
            out[name] = res
    return out
