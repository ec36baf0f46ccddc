"""The engine's fast path: one pass per filtered image for all regions, PyRadiomics' numbers.

For one filtered image and all regions (see ``docs/radiomics.md``, "The engine"):

* **Discretisation, once per image.** PyRadiomics' ``binWidth`` rule gives region r the edges
  ``lowBound_r + k * binWidth`` with ``lowBound_r = min_r - (min_r % binWidth)``: the same grid
  of multiples of the bin width for every region, shifted so that each region's lowest pixel
  lands in bin 1 (its grey levels are the shared grid's bins minus a per-region offset). In
  floating point ``min_r % binWidth`` can round (float32 filtered images), moving a region's
  edges off the grid by one unit in the last place, so the edges are not taken as shared: one
  pass over the image digitises every pixel against *its own region's* edges, each computed by
  PyRadiomics' ``getBinEdges`` (exact in every case, and the same pass for ``binCount``).
* **Texture matrices, one pass.** The regions of a slice are put in layers of non-overlapping
  regions (the paper's six regions are one layer; a distance band overlaps them and gets a
  second); compiled loops (:mod:`.kernels`, numba) build the GLCM, GLRLM, GLSZM, NGTDM and GLDM
  counts of all regions of a layer in one pass each, identical to PyRadiomics' C matrices.
* **Features.** PyRadiomics' own feature classes compute the texture features from those
  matrices: their ``_calculateMatrix`` runs unchanged with the matrices handed in where it calls
  its C extension, so the post-processing (empty grey levels, symmetry, weighting, empty
  angles, normalisation) and every formula are PyRadiomics' code. Two pieces are the project's
  own because PyRadiomics spends most of its time there: the GLCM sum/difference marginals
  (``bincount`` instead of one boolean mask per diagonal) and the first-order statistics (one
  pass per moment, one ``partition`` for all percentiles instead of one per feature); both are
  written to give PyRadiomics' values (the first-order ones bit for bit: same numpy operations
  on the same arrays, in the same order).

Not on this path (the engine's per-region path, PyRadiomics' classes with one shared
discretisation, handles them): region-dependent filtering (resampling, ``preCrop``, LBP-3D),
filtered images with NaN or infinite values in a region, feature classes other than the six
texture/first-order classes, and machines without numba.
"""

from __future__ import annotations

import traceback
import types
from dataclasses import dataclass, field

import numpy as np

__all__ = ["available", "FAST_CLASSES", "Layout", "FastImage", "fast_class"]

#: Feature classes computed on the fast path.
FAST_CLASSES = ("firstorder", "glcm", "glrlm", "glszm", "ngtdm", "gldm")

try:  # numba is an optional dependency of the radiomics extra: without it the engine is slower
    from . import kernels as _k
except ImportError:  # pragma: no cover - exercised only where numba is missing
    _k = None


def available() -> bool:
    """True when the compiled kernels (numba) can be used."""
    return _k is not None


# --- per-slice layout --------------------------------------------------------------------------
@dataclass
class _RegionGeom:
    crop_shape: tuple  # shape of PyRadiomics' crop (2D: (y, x); 3D: (z, y, x))
    crop_mask: np.ndarray  # bool, crop_shape
    full_idx: np.ndarray  # flat indices of its pixels in the full image (C order)
    layer_idx: np.ndarray  # flat indices of its pixels in the padded layer (C order)
    angles: dict = field(default_factory=dict)  # (kind, distances, bidirectional) -> angles


@dataclass
class _Layer:
    shape: tuple  # padded [z, y, x] shape
    lab: np.ndarray  # int32, flat (C order) over the padded layer: region index or -1
    regions: list  # the engine's _Region objects, in layer order
    geoms: list  # _RegionGeom, same order


def _angles(size, distances, bidirectional, settings) -> np.ndarray:
    from radiomics import cMatrices

    return cMatrices.generate_angles(
        np.asarray(size), np.asarray(distances), bidirectional,
        bool(settings.get("force2D", False)), int(settings.get("force2Ddimension", 0)))


class Layout:
    """Layers of non-overlapping regions of one image: padded label arrays and pixel indices.

    ``pad``: the largest neighbour distance of the preset (the layers get that many pixels of
    "no region" on every side, so the compiled loops need no bounds checks).
    """

    def __init__(self, regions, shape, pad: int = 1):
        self.ndim = len(shape)
        self.shape = tuple(shape)
        self.pad = (0, pad, pad) if self.ndim == 2 else (pad, pad, pad)
        self.layers: list[_Layer] = []
        groups: list[tuple[np.ndarray, list]] = []
        for reg in regions:
            m = reg.mask
            for occupied, members in groups:
                if not np.any(occupied & m):
                    occupied |= m
                    members.append(reg)
                    break
            else:
                groups.append((m.copy(), [reg]))
        for _occupied, members in groups:
            self.layers.append(self._layer(members))

    def _box(self, bb) -> tuple:
        """ITK-order bounding box -> [z, y, x] slices (z = 0:1 for 2D)."""
        lo, hi = bb[0::2][::-1], bb[1::2][::-1]  # numpy order
        sl = tuple(slice(int(a), int(b) + 1) for a, b in zip(lo, hi))
        return (slice(0, 1), *sl) if self.ndim == 2 else sl

    def _layer(self, members) -> _Layer:
        boxes = [self._box(r.bb) for r in members]
        box = tuple(slice(min(b[d].start for b in boxes), max(b[d].stop for b in boxes))
                    for d in range(3))
        shape = tuple(s.stop - s.start + 2 * p for s, p in zip(box, self.pad))
        lab = np.full(shape, -1, np.int32)
        inner = tuple(slice(p, n - p) for p, n in zip(self.pad, shape))
        geoms = []
        for k, reg in enumerate(members):
            local = np.zeros(shape, bool)
            local[inner] = _as3d(reg.mask)[box]
            lab[local] = k
            geoms.append(_RegionGeom(
                crop_shape=reg.crop_mask.shape, crop_mask=reg.crop_mask,
                full_idx=np.flatnonzero(reg.mask), layer_idx=np.flatnonzero(local)))
        return _Layer(shape=shape, lab=lab.reshape(-1), regions=list(members), geoms=geoms)


def _as3d(a: np.ndarray) -> np.ndarray:
    return a[None] if a.ndim == 2 else a


# --- one filtered image --------------------------------------------------------------------------
class _Bins:
    """What ``_applyBinning`` returns for one (image, region): the engine's shared-bins contract.

    ``binned`` (the region's crop with each pixel's bin, 0 outside) is built on first use only:
    on the fast path nothing reads it (the matrices are handed in), so the feature classes get
    ``shape_only``, an array of the crop's shape (PyRadiomics reads the shape: GLRLM's Nr).
    """

    __slots__ = ("_binned", "gray_levels", "ng", "counts", "pixel_bins", "bin_counts",
                 "crop_mask", "shape_only")

    def __init__(self, crop_mask, gray_levels, ng, counts, pixel_bins, bin_counts):
        self._binned = None
        self.crop_mask = crop_mask
        self.shape_only = np.broadcast_to(np.zeros(1, dtype="int"), crop_mask.shape)
        self.gray_levels = gray_levels
        self.ng = ng
        self.counts = counts  # pixels per present grey level, same order
        self.pixel_bins = pixel_bins  # each pixel's bin, in the order of the values
        self.bin_counts = bin_counts  # numpy.bincount(pixel_bins)

    @property
    def binned(self) -> np.ndarray:
        if self._binned is None:
            binned = np.zeros(self.crop_mask.shape, dtype="int")
            binned[self.crop_mask] = self.pixel_bins
            binned.flags.writeable = False
            self._binned = binned
        return self._binned


class _FastBinning:
    """Mixin (before the engine's ``_SharedInputs``): ``_applyBinning`` gives ``shape_only``;
    ``_calculateSegment`` is PyRadiomics' (``base.py``: ``_initCalculation``, then every enabled
    ``get<Name>FeatureValue``, squeezed; a ``DeprecationWarning`` skips the feature, another
    exception gives NaN and an error log) without its generator and debug logging."""

    def _calculateSegment(self):  # noqa: N802 (PyRadiomics' name)
        self._initCalculation()
        values = self.featureValues
        for feature, enabled in self.enabledFeatures.items():
            if not enabled:
                continue
            try:
                v = getattr(self, f"get{feature}FeatureValue")()
            except DeprecationWarning:
                continue
            except Exception:
                self.logger.error("FAILED: %s", traceback.format_exc())
                v = np.nan
            values[feature] = v.squeeze() if type(v) is np.ndarray else np.squeeze(v)

    def _applyBinning(self, matrix):  # noqa: N802 (PyRadiomics' name)
        d = self._shared_bins
        self.coefficients["grayLevels"] = d.gray_levels
        self.coefficients["Ng"] = d.ng
        return d.shape_only


class _Shim:
    """Stands in for ``radiomics.cMatrices`` inside a feature class's ``_calculateMatrix``:
    returns the matrices computed for all regions at once (checking PyRadiomics' arguments)."""

    __slots__ = ("raw",)

    def __init__(self, raw):
        self.raw = raw

    def _get(self, kind, ng):
        p = self.raw[kind]
        mat = p[0] if isinstance(p, tuple) else p
        if mat.shape[1] != ng:  # pragma: no cover - would be a bug in the fast path
            raise RuntimeError(f"fast {kind}: {mat.shape[1]} grey levels, PyRadiomics asks {ng}")
        return p

    def calculate_glcm(self, image, mask, distances, ng, *args):
        return self._get("glcm", ng)

    def calculate_glrlm(self, image, mask, ng, nr, *args):
        return self._get("glrlm", ng)

    def calculate_glszm(self, image, mask, ng, ns, *args):
        return self._get("glszm", ng)

    def calculate_ngtdm(self, image, mask, distances, ng, *args):
        return self._get("ngtdm", ng)

    def calculate_gldm(self, image, mask, distances, ng, alpha, *args):
        return self._get("gldm", ng)


def _starts(sizes) -> np.ndarray:
    return np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)


class FastImage:
    """Discretisation and texture matrices of every region of one layer for one filtered image.

    ``full``: the filtered image (numpy array, ``[y, x]`` or ``[z, y, x]``); ``kwargs``: the
    image type's PyRadiomics settings (bin width, distances ...); ``kinds``: feature classes
    whose matrices to build. ``ok[k]`` is False for regions whose values are not all finite
    (they take the per-region path); for the others ``bins[k]``, ``values[k]`` (float64
    ``(1, N)``, PyRadiomics' order) and ``raw[k]`` (matrices) feed the feature classes.
    """

    def __init__(self, layer: _Layer, full: np.ndarray, kwargs: dict, kinds):
        from radiomics import imageoperations

        self.layer = layer
        flat = full.reshape(-1)
        nreg = len(layer.geoms)
        self.ok = [True] * nreg
        self.values: list = [None] * nreg
        self.extremes: list = [None] * nreg  # (min, max) of values[k], as float64
        self.bins: list = [None] * nreg
        self.raw: list = [dict() for _ in range(nreg)]
        lab = layer.lab
        gl = np.zeros(lab.shape, np.int32)
        ng = np.zeros(nreg, np.int64)
        for k, g in enumerate(layer.geoms):
            # the region's pixels in C order (PyRadiomics' order), as float64: PyRadiomics'
            # targetVoxelArray; and their extremes (exact: float64 holds every value of flat)
            v64 = np.empty((1, g.full_idx.shape[0]), np.float64)
            lo, hi, finite = _k.gather(flat, g.full_idx, v64[0])
            if not finite:
                self.ok[k] = False
                continue
            # getBinEdges reads only the minimum and maximum (fixed bin width) or
            # numpy.histogram's range (fixed bin count): give it just those, same dtype
            edges = np.asarray(imageoperations.getBinEdges(np.array([lo, hi], dtype=flat.dtype),
                                                           **kwargs), dtype=np.float64)
            self.values[k] = v64
            self.extremes[k] = (lo, hi)
            inside = np.empty(g.full_idx.shape[0], np.int32)
            _k.digitize_bins(v64[0], edges, g.layer_idx, gl, inside)
            counts = np.bincount(inside)
            levels = np.flatnonzero(counts)
            ng[k] = int(levels[-1])
            levels = levels.astype("int")
            levels.flags.writeable = False
            self.bins[k] = _Bins(g.crop_mask, levels, int(ng[k]), counts[levels], inside, counts)
        if not all(self.ok):
            lab = lab.copy()
            for k, g in enumerate(layer.geoms):
                if not self.ok[k]:
                    lab[g.layer_idx] = -1
        self.lab, self.gl, self.ng = lab, gl, ng
        self._matrices(kwargs, set(kinds))

    # --- matrices ----------------------------------------------------------------------------
    def _angle_table(self, kind, distances, bidirectional, kwargs):
        """Per-region PyRadiomics angles, their padded (R, Na_max, 3) vectors, flat offsets and
        counts."""
        per = []
        key = (kind, tuple(distances), bidirectional)
        for g in self.layer.geoms:
            a = g.angles.get(key)
            if a is None:
                a = _angles(g.crop_shape, distances, bidirectional, kwargs)
                g.angles[key] = a
            per.append(a)
        namax = max(1, max(len(a) for a in per))
        vecs = np.zeros((len(per), namax, 3), np.int64)
        na = np.zeros(len(per), np.int64)
        for k, a in enumerate(per):
            na[k] = len(a)
            if len(a):
                vecs[k, : len(a), 3 - a.shape[1]:] = a
        _nz, ny, nx = self.layer.shape
        offs = vecs[..., 0] * (ny * nx) + vecs[..., 1] * nx + vecs[..., 2]
        return per, vecs, offs, na

    def _matrices(self, kwargs, kinds):
        geoms = self.layer.geoms
        nreg = len(geoms)
        ng = self.ng
        lab, gl = self.lab, self.gl
        live = [k for k in range(nreg) if self.ok[k]]
        distances = [int(d) for d in kwargs.get("distances", [1])]

        if "glcm" in kinds:
            per, _vecs, offs, na = self._angle_table("glcm", distances, False, kwargs)
            sizes = ng * ng * na
            base = _starts(sizes)
            buf = np.zeros(int(sizes.sum()), np.float64)
            _k.glcm_counts(lab, gl, ng, offs, na, base, buf)
            for k in live:
                p = buf[base[k]: base[k] + sizes[k]].reshape(1, ng[k], ng[k], na[k])
                self.raw[k]["glcm"] = (p, per[k])

        if "glrlm" in kinds:
            per, vecs, offs, na = self._angle_table("glrlm", [1], False, kwargs)
            nr = np.array([max(g.crop_shape) for g in geoms], np.int64)
            sizes = ng * nr * na
            base = _starts(sizes)
            buf = np.zeros(int(sizes.sum()), np.float64)
            multi = np.zeros(offs.shape, np.bool_)
            _k.glrlm_counts(lab, gl, np.array(self.layer.shape, np.int64), offs, vecs, na, nr,
                            base, buf, multi)
            for k in live:
                p = buf[base[k]: base[k] + sizes[k]].reshape(1, ng[k], nr[k], na[k])
                for a in range(na[k]):
                    if not multi[k, a]:  # as PyRadiomics: no line holds 2 pixels of the region
                        p[0, :, 0, a] = 0.0
                # PyRadiomics allocates Nr = the crop's longest side and deletes the run lengths
                # that never occur (_calculateCoefficients); ending the matrix after the longest
                # run found leaves the same matrix after that deletion, and much less to delete
                used = np.flatnonzero(p.any(axis=(0, 1, 3)))
                p = np.ascontiguousarray(p[:, :, : (used[-1] + 1 if len(used) else 1), :])
                self.raw[k]["glrlm"] = (p, per[k])

        if "glszm" in kinds:
            _per, _vecs, offs, na = self._angle_table("glszm", [1], True, kwargs)
            zr, zg, zs, nz, maxsize = _k.glszm_zones(lab, gl, offs, na, nreg)
            sizes = ng * maxsize
            base = _starts(sizes)
            buf = np.zeros(int(sizes.sum()), np.float64)
            _k.glszm_fill(zr, zg, zs, nz, maxsize, base, buf)
            for k in live:
                self.raw[k]["glszm"] = buf[base[k]: base[k] + sizes[k]].reshape(
                    1, ng[k], maxsize[k])

        if "ngtdm" in kinds or "gldm" in kinds:
            _per, _vecs, offs, na = self._angle_table("ngtdm", distances, True, kwargs)
            alpha = int(kwargs.get("gldm_a", 0))
            nsz = ng * 3
            nbase = _starts(nsz)
            dsz = ng * (2 * na + 1)
            dbase = _starts(dsz)
            nbuf = np.zeros(int(nsz.sum()), np.float64)
            dbuf = np.zeros(int(dsz.sum()), np.float64)
            _k.ngtdm_gldm_counts(lab, gl, offs, na, alpha, nbase, dbase, nbuf, dbuf)
            for k in live:
                n = nbuf[nbase[k]: nbase[k] + nsz[k]].reshape(1, ng[k], 3)
                n[0, :, 2] = np.arange(1, ng[k] + 1)
                self.raw[k]["ngtdm"] = n
                self.raw[k]["gldm"] = dbuf[dbase[k]: dbase[k] + dsz[k]].reshape(
                    1, ng[k], 2 * na[k] + 1)


# --- feature classes fed by the fast path ------------------------------------------------------
_add_reduce = np.add.reduce
_isnan = np.isnan
_any = np.logical_or.reduce  # ndarray.any() without its Python wrapper (same answer)
_ndarray = np.ndarray


def _sum(a, axis=None, dtype=None, out=None, keepdims=False, **kwargs):
    """``numpy.sum`` without its Python wrapper for plain arrays: ``numpy.sum(a, ...)`` of an
    ``ndarray`` is ``numpy.add.reduce(a, axis, dtype, out, keepdims)`` (numpy's own code path,
    so the same result bit for bit); anything else goes to ``numpy.sum``."""
    if type(a) is _ndarray and out is None and not kwargs:
        return _add_reduce(a, axis, dtype, None, keepdims)
    return np.sum(a, axis, dtype, out, keepdims, **kwargs)


def _nanmean(a, axis=None, *args, **kwargs):
    """``numpy.nanmean`` without its fixed cost on the small, NaN-free arrays PyRadiomics' feature
    formulas average over angles (~15 us a call, some 2,000 calls a slice): the same operations
    as numpy's (the sum of a copy laid out as numpy's copy, divided by the count), used when
    that sum has no NaN (then the array has none, and ``nanmean`` is exactly that); otherwise
    numpy's own function."""
    if (type(a) is _ndarray and axis is not None and not args and not kwargs
            and a.dtype == np.float64 and a.size):
        b = a if a.flags.c_contiguous else np.array(a, copy=True)  # numpy's _replace_nan copy
        tot = _add_reduce(b, axis)
        if not _any(_isnan(tot), None):
            count = 1
            for ax in ((axis,) if isinstance(axis, int) else axis):
                count *= a.shape[ax]
            return tot / np.intp(count)
    return np.nanmean(a, axis, *args, **kwargs)


class _NumpyModule(types.ModuleType):
    """``numpy`` as PyRadiomics' feature formulas see it on the fast path: numpy's names copied
    into a module object (plain attribute look-ups), with :func:`_sum` and :func:`_nanmean`."""

    def __getattr__(self, name):  # names numpy loads lazily
        return getattr(np, name)


_NUMPY = _NumpyModule("numpy")
_NUMPY.__dict__.update({k: v for k, v in vars(np).items() if not k.startswith("__")})
_NUMPY.sum = _sum
_NUMPY.nanmean = _nanmean


def _with_globals(fn, **names):
    """A copy of function ``fn`` whose module globals ``names`` are replaced (nothing is patched;
    other callers of ``fn`` are unaffected)."""
    g = dict(fn.__globals__)
    g.update(names)
    new = types.FunctionType(fn.__code__, g, fn.__name__, fn.__defaults__, fn.__closure__)
    new.__dict__.update(fn.__dict__)  # e.g. PyRadiomics' _is_deprecated flag
    return new


def _calculate_matrix_with(orig, shim):
    """PyRadiomics' ``_calculateMatrix`` with ``cMatrices`` resolved to ``shim``."""
    return _with_globals(orig, cMatrices=shim, numpy=_NUMPY)


class _InjectedMatrices:
    """Mixin (before PyRadiomics' class): ``_calculateMatrix`` gets the precomputed matrices."""

    _shared_raw: dict
    _orig_matrix = None  # PyRadiomics' _calculateMatrix function, set per class

    def _calculateMatrix(self, voxelCoordinates=None):  # noqa: N802 (PyRadiomics' name)
        fn = _calculate_matrix_with(type(self)._orig_matrix, _Shim(self._shared_raw))
        return fn(self, voxelCoordinates)


class _FastGLCMCoefficients:
    """GLCM coefficients and three features as PyRadiomics defines them, faster: the
    sum/difference marginals (p_x+y, p_x-y) by ``bincount`` over the grey-level sums and
    differences, not one boolean mask per value (same sums; they may differ from PyRadiomics'
    in the last bit); MCC's matrix by a compiled loop (bit-identical); cluster prominence and
    shade with products for ``numpy.power`` (guarded as the first-order skewness)."""

    def _calculateCoefficients(self):  # noqa: N802
        P = self.P_glcm
        ng = self.coefficients["Ng"]
        eps = np.spacing(1)
        levels = self.coefficients["grayLevels"]
        grid = levels.astype("float")
        i, j = np.meshgrid(grid, grid, indexing="ij", sparse=True)
        k_sum = np.arange(2, (ng * 2) + 1, dtype="float")
        k_diff = np.arange(0, ng, dtype="float")
        li = levels.astype(np.int64)
        s_idx = (li[:, None] + li[None, :] - 2).ravel()
        d_idx = np.abs(li[:, None] - li[None, :]).ravel()
        nv, _, _, na = P.shape
        p_add = np.empty((nv, len(k_sum), na))
        p_sub = np.empty((nv, len(k_diff), na))
        for v in range(nv):
            for a in range(na):
                w = P[v, :, :, a].ravel()
                p_add[v, :, a] = np.bincount(s_idx, weights=w, minlength=len(k_sum))
                p_sub[v, :, a] = np.bincount(d_idx, weights=w, minlength=len(k_diff))
        c = self.coefficients
        c["eps"] = eps
        c["i"] = i
        c["j"] = j
        c["kValuesSum"] = k_sum
        c["kValuesDiff"] = k_diff
        c["px"] = P.sum(2, keepdims=True)
        c["py"] = P.sum(1, keepdims=True)
        c["ux"] = np.sum(i[None, :, :, None] * P, (1, 2), keepdims=True)
        c["uy"] = np.sum(j[None, :, :, None] * P, (1, 2), keepdims=True)
        c["pxAddy"] = p_add
        c["pxSuby"] = p_sub
        c["HXY"] = (-1) * np.sum((P * np.log2(P + eps)), (1, 2))

    def getMCCFeatureValue(self):  # noqa: N802
        # PyRadiomics' formula; Q by a compiled loop in PyRadiomics' order (bit-identical)
        px = self.coefficients["px"]
        py = self.coefficients["py"]
        eps = self.coefficients["eps"]
        Q = _k.glcm_mcc_q(np.ascontiguousarray(self.P_glcm), np.ascontiguousarray(px),
                          np.ascontiguousarray(py), eps)
        Q_eigenValue = np.linalg.eigvals(Q.transpose((0, 3, 1, 2)))
        Q_eigenValue.sort()  # along the last axis: low to high
        if Q_eigenValue.shape[2] < 2:
            return 1  # flat region
        MCC = np.sqrt(Q_eigenValue[:, :, -2])  # second highest eigenvalue
        return np.nanmean(MCC, 1).real

    def _cluster(self, power):
        i = self.coefficients["i"]
        j = self.coefficients["j"]
        t = (i + j)[None, :, :, None] - self.coefficients["ux"] - self.coefficients["uy"]
        t2 = t * t
        P = self.P_glcm
        if power == 4:  # positive terms: t2 * t2 is within ~2 ulp of numpy.power(t, 4)
            return np.nanmean(np.sum(P * (t2 * t2), (1, 2)), 1)
        # numpy.power(t, 3) is slow; t2 * t unless the sum is small against sum |.| (see the
        # first-order skewness): then PyRadiomics' own numpy.power
        terms = P * (t2 * t)
        cs = np.sum(terms, (1, 2))
        if not np.all(np.abs(cs) * _MOMENT_GUARD >= np.sum(np.abs(terms), (1, 2))):
            cs = np.sum(P * (t ** 3), (1, 2))
        return np.nanmean(cs, 1)

    def getClusterProminenceFeatureValue(self):  # noqa: N802
        return self._cluster(4)

    def getClusterShadeFeatureValue(self):  # noqa: N802
        return self._cluster(3)


_FAST_CLASSES_CACHE: dict = {}


def fast_class(cls: type, name: str) -> type:
    """PyRadiomics' feature class ``cls`` fed by the fast path (inputs shared, matrices and, for
    first order and the GLCM marginals, the computation above)."""
    sub = _FAST_CLASSES_CACHE.get(cls)
    if sub is None:
        from .engine import _SharedInputs

        if name == "firstorder":
            bases = (_FastBinning, _SharedInputs, _FastFirstOrder, cls)
            ns = {}
        else:
            bases = ((_FastBinning, _SharedInputs, _InjectedMatrices, _FastGLCMCoefficients, cls)
                     if name == "glcm" else (_FastBinning, _SharedInputs, _InjectedMatrices, cls))
            ns = {"_orig_matrix": cls._calculateMatrix}
        ns["__module__"] = cls.__module__
        if name != "firstorder":  # PyRadiomics' formulas, with the faster nanmean
            for attr, fn in vars(cls).items():
                mine = any(attr in vars(b) for b in bases[:-1])  # the fast path's own methods
                if (not mine and isinstance(fn, types.FunctionType)
                        and (attr.startswith("get") and attr.endswith("FeatureValue")
                             or attr == "_calculateCoefficients")):
                    ns[attr] = _with_globals(fn, numpy=_NUMPY)
        # PyRadiomics' own feature list (names and deprecation flags) of the original class
        names = cls.getFeatureNames()
        ns["getFeatureNames"] = classmethod(lambda _c, _names=names: _names)
        sub = type(f"Fast{cls.__name__}", bases, ns)
        _FAST_CLASSES_CACHE[cls] = sub
    return sub


# First-order statistics ------------------------------------------------------------------------
def _percentiles(sorted_part: np.ndarray, n: int, qs) -> dict:
    """numpy's ``nanpercentile`` (method 'linear') of n values, given an array partitioned at
    the needed order statistics; same floating-point operations as numpy's ``_lerp``."""
    out = {}
    for q in qs:
        vi = (n - 1) * (q / 100.0)
        if vi >= n - 1:
            lo = hi = n - 1
        elif vi < 0:
            lo = hi = 0
        else:
            lo = int(np.floor(vi))
            hi = lo + 1
        t = np.float64(vi) - np.float64(np.floor(vi))
        a, b = np.float64(sorted_part[lo]), np.float64(sorted_part[hi])
        diff = b - a
        res = a + diff * t
        if t >= 0.5:
            res = b - diff * (1 - t)
        out[q] = res
    return out


def _order_statistics(x: np.ndarray, ranks, lo=None, hi=None) -> dict:
    """``{k: k-th smallest value of x}`` (exact; see :func:`.kernels.order_statistics`);
    ``lo``/``hi``: x's minimum and maximum when known."""
    r = np.asarray(ranks, np.int64)
    if lo is None:
        lo, hi = float(x.min()), float(x.max())
    vals = _k.order_statistics(x, lo, hi, r, 4096)
    return dict(zip(ranks, vals))


def _needed_indices(n: int, qs) -> list:
    idx = set()
    for q in qs:
        vi = (n - 1) * (q / 100.0)
        if vi >= n - 1:
            idx.add(n - 1)
        elif vi < 0:
            idx.add(0)
        else:
            lo = int(np.floor(vi))
            idx.update((lo, lo + 1))
    h = n // 2
    idx.update((h,) if n % 2 else (h - 1, h))  # median
    return sorted(i for i in idx if 0 <= i < n)



#: Terms of kernels.pairwise_sums: (v, (v + shift)^2) and (d*d, (d*d)*d, |(d*d)*d|, d^4, |d|).
_MODES_PLAIN = np.array([0, 1], np.int64)
_MODES_CENTRAL = np.array([2, 3, 4, 5, 6], np.int64)

#: Third moments smaller than sum |d^3| / _MOMENT_GUARD are recomputed with numpy.power.
_MOMENT_GUARD = 1e4


class _FastFirstOrder:
    """Mixin for ``RadiomicsFirstOrder``: all statistics from one pass per moment and one
    partition, with numpy's operations in PyRadiomics' order: bit-identical values, except the
    third and fourth moments (skewness, kurtosis), which take ``d * d * d`` and ``d^2 * d^2``
    for numpy's (slow) ``power`` and agree to ~1e-15 relative (see ``_MOMENT_GUARD``)."""

    _shared_values: np.ndarray  # (1, N) float64, the region's pixels in PyRadiomics' order

    def _initCalculation(self, voxelCoordinates=None):  # noqa: N802
        x = self._shared_values
        self.targetVoxelArray = x
        # the values' minimum and maximum, found by the fast path's gather (same values as
        # x.min() / x.max(): the extremes of the same float64 numbers)
        ext = getattr(self, "_shared_extremes", None)
        self._extremes = ext if ext is not None else (float(x.min()), float(x.max()))
        counts = self._shared_bins.counts.reshape((1, -1))
        sum_bins = np.sum(counts, 1, keepdims=True).astype("float")
        sum_bins[sum_bins == 0] = 1
        self.coefficients["p_i"] = counts.astype("float") / sum_bins
        self._stats = {}

    def _s(self, key):
        """Statistic ``key``, computed once. Sums are numpy's pairwise sums of the same terms
        (:func:`.kernels.pairwise_sum`), so they equal PyRadiomics' ``nansum``/``nanmean``."""
        st = self._stats
        if key in st:
            return st[key]
        x = self.targetVoxelArray[0]
        n = x.shape[0]
        if key in ("mean", "sq_sum"):  # nanmean: sum / count; nansum((x + voxelArrayShift) ** 2)
            tot, sq = _k.pairwise_sums(x, _MODES_PLAIN, float(self.voxelArrayShift))
            st["mean"] = np.array([tot]) / n
            st["sq_sum"] = np.array([sq])
        elif key in ("m2", "m3", "m4", "mad"):
            # central moments (numpy squares: d * d; power(d, 2) is nanvar's too), one tree walk.
            # numpy.power(d, 3) costs ~60 ns a value; (d * d) * d differs from it by at most ~2
            # ulp per term, so the mean differs by < 1e-15 of sum |d^3|. Where the third moment
            # is that small against sum |d^3| (near-symmetric values: > 1e4 times smaller), use
            # numpy.power itself, so the skewness stays within 1e-10 of PyRadiomics'. The fourth
            # moment's terms are positive: d^2 * d^2 is within ~2 ulp of d^4.
            mean = float(self._s("mean")[0])
            m2, m3, m3_abs, m4, mad = _k.pairwise_sums(x, _MODES_CENTRAL, mean)
            if not abs(m3) * _MOMENT_GUARD >= m3_abs:
                m3 = np.sum(np.power(x - mean, 3))
            st["m2"] = np.array([m2]) / n
            st["m3"] = np.array([m3]) / n
            st["m4"] = np.array([m4]) / n
            st["mad"] = np.array([mad]) / n
        elif key == "pct":
            qs = (10, 25, 75, 90)
            ranks = _needed_indices(n, qs)
            part = _order_statistics(x, ranks, *self._extremes)
            st[key] = _percentiles(part, n, qs)
            h = n // 2
            st["median"] = part[h] if n % 2 else (part[h - 1] + part[h]) / 2.0
        elif key == "min":
            st[key] = np.array([self._extremes[0]])
        elif key == "max":
            st[key] = np.array([self._extremes[1]])
        return st[key]

    def _pct(self, q):
        return np.array([self._s("pct")[q]])

    def getEnergyFeatureValue(self):  # noqa: N802
        return self._s("sq_sum")

    def getTotalEnergyFeatureValue(self):  # noqa: N802
        return self._s("sq_sum") * np.multiply.reduce(self.pixelSpacing)

    def getMinimumFeatureValue(self):  # noqa: N802
        return self._s("min")

    def getMaximumFeatureValue(self):  # noqa: N802
        return self._s("max")

    def get10PercentileFeatureValue(self):  # noqa: N802
        return self._pct(10)

    def get90PercentileFeatureValue(self):  # noqa: N802
        return self._pct(90)

    def getMeanFeatureValue(self):  # noqa: N802
        return self._s("mean")

    def getMedianFeatureValue(self):  # noqa: N802
        self._s("pct")
        return np.array([self._stats["median"]])

    def getInterquartileRangeFeatureValue(self):  # noqa: N802
        return self._pct(75) - self._pct(25)

    def getRangeFeatureValue(self):  # noqa: N802
        return self.getMaximumFeatureValue() - self.getMinimumFeatureValue()

    def getMeanAbsoluteDeviationFeatureValue(self):  # noqa: N802
        return self._s("mad")

    def getRobustMeanAbsoluteDeviationFeatureValue(self):  # noqa: N802
        # PyRadiomics: NaN outside [P10, P90], then nanmean twice (NaN counted as 0 in the sums)
        x = self.targetVoxelArray[0]
        p10, p90 = float(self._pct(10)[0]), float(self._pct(90)[0])
        cnt = int(np.count_nonzero((x >= p10) & (x <= p90)))
        m = _k.pairwise_sum(x, 7, 0.0, p10, p90) / cnt
        return np.array([_k.pairwise_sum(x, 8, m, p10, p90)]) / cnt

    def getRootMeanSquaredFeatureValue(self):  # noqa: N802
        x = self.targetVoxelArray
        if x.size == 0:
            return 0
        return np.sqrt(self._s("sq_sum") / np.array([float(x.shape[1])]))

    def getStandardDeviationFeatureValue(self):  # noqa: N802
        return np.sqrt(self._s("m2"))

    getStandardDeviationFeatureValue._is_deprecated = True  # as PyRadiomics' (not enabled by default)

    def getSkewnessFeatureValue(self):  # noqa: N802
        m2 = self._s("m2").copy()
        m3 = self._s("m3").copy()
        m2[m2 == 0] = 1  # as PyRadiomics: a flat region gives m3 / 1
        return m3 / m2 ** 1.5

    def getKurtosisFeatureValue(self):  # noqa: N802
        m2 = self._s("m2").copy()
        m4 = self._s("m4").copy()
        m2[m2 == 0] = 1
        return m4 / m2 ** 2.0

    def getVarianceFeatureValue(self):  # noqa: N802
        return np.sqrt(self._s("m2")) ** 2  # nanstd ** 2

    def getEntropyFeatureValue(self):  # noqa: N802
        p_i = self.coefficients["p_i"]
        eps = np.spacing(1)
        return -1.0 * np.sum(p_i * np.log2(p_i + eps), 1)

    def getUniformityFeatureValue(self):  # noqa: N802
        p_i = self.coefficients["p_i"]
        return np.sum(p_i ** 2, 1)
