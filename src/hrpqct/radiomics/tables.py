"""Radiomics of a whole scan as tables: one row per slice and region, one row per scan and region.

Slice-level table (:func:`extract_scan`), one row per ``(slice, region)``:

=================  ===========================================================================
``slice``          slice index ``z`` (``-1`` for whole-scan rows of a 3D preset)
``region``         region name (``TC`` ... ``AT``, ``ST``, ``ST10mm``; :mod:`.masks`)
``reason``         ``None`` when the features were computed, else why not (``"absent"``,
                   ``"too small: 9 pixels, minimumROISize is 16"``, ...); features are NaN then
``n_pixels``       pixels (voxels) in the region
``area_mm2``       region area on the slice (2D rows; NaN for whole-scan rows)
``volume_mm3``     region volume: area x slice thickness on slice rows, all voxels on 3D rows
``mean_HU``        mean and (population) standard deviation of the image in the region
``sd_HU``
``mean_mgHA_ccm``  mean density when a calibration is known (:class:`hrpqct.volume.Calibration`),
                   else NaN
features           PyRadiomics names, in the preset's order (939 for ``paper``)
=================  ===========================================================================

Patient-level table (:func:`aggregate`): one row per scan and region, features averaged over
the slices where the region has features (the paper's mean; median and SD on request, as
``<feature>__median`` / ``<feature>__sd``), ``n_slices`` counted, volume summed, mean HU and
density pixel-weighted over slices.

Slices are cropped to the labelled limb's bounding box (over the whole scan) plus
``Radiomics.crop_margin_mm`` before extraction, so features do not depend on how much air the
scanner's field of view holds (PyRadiomics' square/exponential/... filters scale by the image's
maximum, and every filter runs on the whole slice).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from ..errors import InputError
from ..method import RADIOMICS, Radiomics
from ..progress import ProgressCallback, report
from ..regions import REGIONS
from ..volume import Calibration, Volume
from .engine import MultiRegionExtractor
from .masks import parse_regions, region_masks
from .presets import Preset, load_preset

__all__ = [
    "MEASURE_COLUMNS",
    "extract_scan",
    "extract_volume",
    "aggregate",
    "to_wide",
    "limb_box",
    "write_table",
    "write_scan_features",
]

MEASURE_COLUMNS = ("n_pixels", "area_mm2", "volume_mm3", "mean_HU", "sd_HU", "mean_mgHA_ccm")
_KEY_COLUMNS = ("slice", "region", "reason")
# feature-name suffix per statistic: the paper's mean keeps the names
_STAT_SUFFIX = {s: "" if s == RADIOMICS.aggregation else f"__{s}" for s in RADIOMICS.aggregation_stats}


def limb_box(labels: np.ndarray, margin_px: Sequence[int]) -> tuple[slice, slice]:
    """``(rows, cols)`` slices: box of all labelled pixels of a 2D/3D map, plus a margin."""
    labels = np.asarray(labels)
    fg = labels != 0
    if fg.ndim == 3:
        fg = fg.any(axis=0)
    if not fg.any():
        return slice(0, fg.shape[0]), slice(0, fg.shape[1])
    rows = np.flatnonzero(fg.any(axis=1))
    cols = np.flatnonzero(fg.any(axis=0))
    my, mx = int(margin_px[0]), int(margin_px[1])
    return (slice(max(rows[0] - my, 0), min(rows[-1] + my + 1, fg.shape[0])),
            slice(max(cols[0] - mx, 0), min(cols[-1] + mx + 1, fg.shape[1])))


def _measures(values: np.ndarray, n: int, pixel_mm2: float, thickness_mm: float | None,
              calibration: Calibration | None) -> dict:
    out = {"n_pixels": n, "area_mm2": np.nan, "volume_mm3": np.nan, "mean_HU": np.nan,
           "sd_HU": np.nan, "mean_mgHA_ccm": np.nan}
    if thickness_mm is None:  # a 2D row
        out["area_mm2"] = n * pixel_mm2
    if n:
        v = values.astype(np.float64)
        out["mean_HU"] = float(v.mean())
        out["sd_HU"] = float(v.std())
        if calibration is not None:
            out["mean_mgHA_ccm"] = float(np.mean(calibration.hu_to_density(v), dtype=np.float64))
    return out


def extract_scan(
    image,
    labels,
    spacing: Sequence[float] | None = None,
    *,
    preset: str | Preset = RADIOMICS.preset,
    regions: str | Iterable[str] | None = None,
    calibration: Calibration | None = None,
    slices: Iterable[int] | None = None,
    params: Radiomics = RADIOMICS,
    progress: ProgressCallback | None = None,
    check_spacing: bool = True,
) -> pd.DataFrame:
    """Radiomics and plain measures of one scan: the slice-level table (module docstring).

    ``image``: ``[z, y, x]`` in HU (a 2D ``[y, x]`` slice is taken as a one-slice scan);
    ``labels``: the final 7-region map, same shape; ``spacing``: ``(x, y, z)`` mm (``(x, y)``
    for a 2D slice). A 2D preset (``paper``) runs slice by slice (``slices`` picks some); a 3D
    preset (``3d``) runs once on the whole scan and gives rows with ``slice = -1``.
    ``progress`` is called after every slice with ``(done, total)``.

    ``image`` and ``labels`` may also be ``SimpleITK.Image`` s (or Volumes) on one grid; the
    image's spacing is then used. Spacing that looks like ``(z, y, x)`` order is refused
    (:mod:`hrpqct.radiomics.inputs`; ``check_spacing=False`` to pass a truly non-square scan).
    """
    from .inputs import image_and_spacing, label_array

    if (isinstance(image, np.ndarray) and image.ndim == 2 and spacing is not None
            and len(spacing) == 3):
        spacing = tuple(spacing)[:2]  # a slice of a scan: its (x, y); z is not used
    image, spacing, geometry = image_and_spacing(image, spacing, check_spacing=check_spacing)
    image = np.asarray(image)
    labels = np.asarray(label_array(labels, image.shape, geometry))
    if image.ndim == 2:
        image, labels = image[None], labels[None]
        spacing = (*tuple(spacing)[:2], 1.0)
    if image.ndim != 3 or image.shape != labels.shape:
        raise InputError(
            f"image {image.shape} and label map {labels.shape} must be the same 3D shape")
    if len(spacing) != 3 or any(not (s > 0) for s in spacing):
        raise InputError(f"spacing must be 3 positive values (x, y, z) in mm, got {tuple(spacing)}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise InputError(f"label map must hold integers, got {labels.dtype}")
    present = np.unique(labels)
    unknown = sorted(set(present.tolist()) - {0, *(r.label for r in REGIONS)})
    if unknown:
        raise InputError(f"label map has values {unknown[:10]} that are not final region labels "
                         f"({', '.join(f'{r.label} {r.code}' for r in REGIONS)}); radiomics needs "
                         "the final 7-region map")
    preset = load_preset(preset)
    names = parse_regions(regions)
    dx, dy, dz = (float(s) for s in spacing)
    rows_sl, cols_sl = limb_box(labels, (math.ceil(params.crop_margin_mm / dy),
                                         math.ceil(params.crop_margin_mm / dx)))
    image = image[:, rows_sl, cols_sl]
    labels = labels[:, rows_sl, cols_sl]
    if not np.all(np.isfinite(image)):
        raise InputError("image has NaN or infinite values inside the limb's box")
    image = image.astype(np.float32, copy=False)
    engine = MultiRegionExtractor(preset)
    feature_names = preset.feature_names()
    rows: list[dict] = []

    if preset.ndim == 3:
        masks = region_masks(labels, names, (dy, dx), params)
        results = engine.execute(image, masks, (dx, dy, dz))
        for name in names:
            m = masks[name]
            meas = _measures(image[m], int(m.sum()), dx * dy, dz, calibration)
            meas["volume_mm3"] = meas["n_pixels"] * dx * dy * dz
            rows.append(_row(-1, name, results[name], meas))
        report(progress, 1, 1)
    else:
        zs = list(range(image.shape[0])) if slices is None else [int(z) for z in slices]
        for z in zs:
            if not 0 <= z < image.shape[0]:
                raise InputError(f"slice {z} is outside the scan (0..{image.shape[0] - 1})")
        for k, z in enumerate(zs):
            masks = region_masks(labels[z], names, (dy, dx), params)
            results = engine.execute(image[z], masks, (dx, dy))
            for name in names:
                m = masks[name]
                meas = _measures(image[z][m], int(m.sum()), dx * dy, None, calibration)
                meas["volume_mm3"] = meas["n_pixels"] * dx * dy * dz
                rows.append(_row(z, name, results[name], meas))
            report(progress, k + 1, len(zs))
    return _frame(rows, feature_names)


def _row(z, name, result, meas) -> dict:
    row = {"slice": int(z), "region": name, "reason": result.reason, **meas}
    for k, v in result.features.items():
        row[k] = float(v)
    return row


def _frame(rows: list[dict], feature_names: list[str]) -> pd.DataFrame:
    extra = []
    seen = set(feature_names)
    for r in rows:
        for k in r:
            if k not in seen and k not in _KEY_COLUMNS and k not in MEASURE_COLUMNS:
                extra.append(k)
                seen.add(k)
    columns = [*_KEY_COLUMNS, *MEASURE_COLUMNS, *feature_names, *extra]
    feats = np.full((len(rows), len(feature_names) + len(extra)), np.nan)
    index = {n: i for i, n in enumerate([*feature_names, *extra])}
    for i, r in enumerate(rows):
        for k, v in r.items():
            j = index.get(k)
            if j is not None:
                feats[i, j] = v
    head = pd.DataFrame({c: [r[c] for r in rows] for c in (*_KEY_COLUMNS, *MEASURE_COLUMNS)})
    head["slice"] = head["slice"].astype("int64")
    head["n_pixels"] = head["n_pixels"].astype("int64")
    head["reason"] = head["reason"].astype("object")
    body = pd.DataFrame(feats, columns=[*feature_names, *extra])
    return pd.concat([head, body], axis=1)[columns]


def extract_volume(
    image: Volume, labels: Volume, **kwargs
) -> pd.DataFrame:
    """:func:`extract_scan` for :class:`~hrpqct.volume.Volume` inputs (HU image, label map).

    The image's calibration is used for ``mean_mgHA_ccm`` unless ``calibration`` is given.
    """
    if image.unit != "HU":
        raise InputError(f"{image.source or 'image'}: radiomics needs HU, got {image.unit}")
    if not image.same_geometry(labels):
        raise InputError(
            f"{image.source or 'image'} and {labels.source or 'label map'} do not share a grid")
    kwargs.setdefault("calibration", image.calibration)
    kwargs.setdefault("check_spacing", False)  # read from files: the order is known
    return extract_scan(image.array, labels.array, image.spacing, **kwargs)


def aggregate(
    table: pd.DataFrame,
    stats: Sequence[str] = (RADIOMICS.aggregation,),
    by: Sequence[str] = (),
) -> pd.DataFrame:
    """Patient-level table from a slice-level one (module docstring).

    ``stats``: any of ``"mean"`` (the paper's; feature names unchanged), ``"median"``,
    ``"sd"`` (sample SD, ddof 1). ``by``: id columns besides ``region`` (e.g. ``scan_id``).
    Only rows without a ``reason`` enter the feature statistics; other non-numeric columns are
    left out.
    """
    for s in stats:
        if s not in _STAT_SUFFIX:
            raise InputError(f"unknown statistic {s!r}; choose from {list(_STAT_SUFFIX)}")
    keys = [*by, "region"]
    fixed = {*keys, *_KEY_COLUMNS, *MEASURE_COLUMNS}
    feats = [c for c in table.columns if c not in fixed and c not in by
             and pd.api.types.is_numeric_dtype(table[c])]
    order = list(dict.fromkeys(table["region"]))
    out = []
    for key, g in table.groupby(keys, sort=False, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        row = dict(zip(keys, key))
        ok = g[g["reason"].isna()]
        n = g["n_pixels"].to_numpy(np.float64)
        row["n_slices"] = int(len(ok))
        row["n_pixels"] = int(n.sum())
        row["volume_mm3"] = float(g["volume_mm3"].sum())
        tot = n.sum()
        good = n > 0
        for col in ("mean_HU", "sd_HU", "mean_mgHA_ccm"):  # pixel-weighted over slices
            v = g[col].to_numpy(np.float64)
            if not tot or not np.all(np.isfinite(v[good])):
                row[col] = np.nan
            elif col == "sd_HU":  # pooled: E[x^2] - E[x]^2 from the slices' means and SDs
                m = g["mean_HU"].to_numpy(np.float64)
                ex2 = np.sum(n[good] * (v[good] ** 2 + m[good] ** 2)) / tot
                row[col] = float(np.sqrt(max(ex2 - row["mean_HU"] ** 2, 0.0)))
            else:
                row[col] = float(np.sum(v[good] * n[good]) / tot)
        vals = ok[feats].to_numpy(np.float64)
        for stat in stats:
            if len(vals) == 0:
                agg = np.full(len(feats), np.nan)
            elif stat == "mean":
                agg = vals.mean(axis=0)
            elif stat == "median":
                agg = np.median(vals, axis=0)
            else:
                agg = vals.std(axis=0, ddof=1) if len(vals) > 1 else np.full(len(feats), np.nan)
            row.update({f + _STAT_SUFFIX[stat]: a for f, a in zip(feats, agg)})
        out.append(row)
    res = pd.DataFrame(out)
    if len(res):
        res["_order"] = res["region"].map({r: i for i, r in enumerate(order)})
        res = res.sort_values([*by, "_order"], kind="stable")
        res = res.drop(columns="_order").reset_index(drop=True)
    return res


def to_wide(
    table: pd.DataFrame, by: Sequence[str] = ("scan_id",), columns: Sequence[str] | None = None
) -> pd.DataFrame:
    """One row per ``by`` key, columns ``<region>_<column>`` (e.g. ``MT_original_firstorder_Mean``).

    ``columns`` restricts which value columns are spread (default: all but ids and ``reason``).
    """
    by = [b for b in by if b in table.columns]
    values = [c for c in (columns or table.columns) if c not in (*by, "region", "reason", "slice")]
    wide = table.pivot(index=by, columns="region", values=values) if by else None
    if wide is None:
        raise InputError("to_wide needs at least one id column")
    regions = list(dict.fromkeys(table["region"]))
    wide = wide.reindex(columns=pd.MultiIndex.from_product([values, regions]))
    wide.columns = [f"{r}_{v}" for v, r in wide.columns]
    ordered = [f"{r}_{v}" for r in regions for v in values]
    return wide[ordered].reset_index()


def write_table(table: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write a table atomically as Parquet (``.parquet``) or CSV (``.csv``); returns the path."""
    from ..io import atomic_path

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".parquet", ".csv"):
        raise InputError(f"{path}: choose a .parquet or .csv output file")
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        if suffix == ".parquet":
            table.to_parquet(tmp, index=False)
        else:
            table.to_csv(tmp, index=False)
    return path


def write_scan_features(
    image: Volume,
    labels: Volume,
    out: str | os.PathLike,
    *,
    scan_id: str | None = None,
    stats: Sequence[str] = (RADIOMICS.aggregation,),
    **kwargs,
) -> tuple[Path, Path]:
    """Features of one scan to files: the slice-level table to ``out`` (``.parquet``/``.csv``)
    and the per-scan aggregate next to it as ``<name>.patient<ext>``.

    ``kwargs`` go to :func:`extract_scan` (``preset``, ``regions``, ``slices``, ``progress``...).
    Returns both paths. This is what ``hrpqct radiomics`` and the demo write.
    """
    out = Path(out)
    table = extract_volume(image, labels, **kwargs)
    table.insert(0, "scan_id", scan_id or (image.source.name if image.source else out.stem))
    write_table(table, out)
    patient = aggregate(table, stats=stats, by=["scan_id"])
    ppath = write_table(patient, out.with_name(f"{out.stem}.patient{out.suffix}"))
    return out, ppath
