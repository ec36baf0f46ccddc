"""PyRadiomics parameter presets: the shipped ``paper`` (2D, 939 features) and ``3d`` presets,
and users' own parameter files, validated by PyRadiomics itself.

A preset is a PyRadiomics parameter file (YAML or JSON) with the usual ``setting``,
``imageType`` and ``featureClass`` sections. :func:`load_preset` accepts a shipped preset's
name or a path and raises :class:`hrpqct.errors.InputError` naming the file when the file is
missing or PyRadiomics rejects it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import warnings
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ..errors import InputError
from ..method import PRESETS as PRESET_NAMES
from ..method import RADIOMICS

__all__ = ["Preset", "PRESETS", "load_preset", "preset_path", "first_order_preset"]

#: Shipped presets: name -> file under Resources/ (importable as ``hrpqct.resources``).
PRESETS: dict[str, str] = {name: f"radiomics-{name}.yaml" for name in PRESET_NAMES}


def first_order_preset(features=("Mean", "Median", "Energy")) -> str:
    """The text of a PyRadiomics parameter file of a few 2D first-order features (binWidth 25,
    original image only): for quick looks, tests and benches, not for a study."""
    return ("setting:\n  force2D: true\n  force2Ddimension: 0\n  binWidth: 25\n  label: 1\n"
            "imageType:\n  Original: {}\nfeatureClass:\n"
            f"  firstorder: [{', '.join(features)}]\n")


# Settings the engine does not support (voxel-based extraction gives maps, not values).
_UNSUPPORTED = ("kernelRadius", "maskedKernel", "initValue", "voxelBatch")


def quiet_pyradiomics() -> None:
    """Keep PyRadiomics' log to errors (it warns once per GLCM about a deprecated feature)."""
    import radiomics

    radiomics.setVerbosity(logging.ERROR)
    logging.getLogger("radiomics").setLevel(logging.ERROR)


@dataclass(frozen=True)
class Preset:
    """A validated PyRadiomics parameter set.

    ``settings`` are PyRadiomics' defaults updated with the file's ``setting`` section;
    ``image_types`` maps image type (``"LoG"``...) to its custom settings; ``feature_classes``
    maps class (``"glcm"``...) to its feature list (``None`` = all non-deprecated features).
    """

    name: str
    source: Path | None
    params: dict = field(repr=False)  # the file's content as parsed
    settings: dict = field(repr=False)
    image_types: dict = field(repr=False)
    feature_classes: dict = field(repr=False)

    @property
    def force2d(self) -> bool:
        return bool(self.settings.get("force2D", False))

    @property
    def ndim(self) -> int:
        """2 for a per-slice preset (shape2D enabled or force2D), else 3 (whole scan)."""
        return 2 if (self.force2d or "shape2D" in self.feature_classes) else 3

    @property
    def digest(self) -> str:
        """SHA-256 of the parsed parameters (identifies a preset in cohort run records)."""
        blob = json.dumps(self.params, sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()

    def extractor(self):
        """A fresh ``radiomics.featureextractor.RadiomicsFeatureExtractor`` for these parameters."""
        from radiomics.featureextractor import RadiomicsFeatureExtractor

        quiet_pyradiomics()
        ext = RadiomicsFeatureExtractor(json.loads(json.dumps(self.params)))
        return ext

    def feature_names(self) -> list[str]:
        """The feature names this preset yields for a valid region, in PyRadiomics' order."""
        return list(_feature_names(_freeze(self.params), self.ndim))


def preset_path(name: str) -> Path:
    """Path of a shipped preset file."""
    return Path(str(resources.files("hrpqct.resources") / PRESETS[name]))


def _read_params(path: Path) -> dict:
    import yaml

    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise InputError(
            f"{path}: not a valid YAML/JSON PyRadiomics parameter file: {exc}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise InputError(f"{path}: a PyRadiomics parameter file must be a mapping with "
                         f"'setting', 'imageType' and 'featureClass' sections")
    return data


def load_preset(preset: str | Path | Mapping | Preset = RADIOMICS.preset) -> Preset:
    """A shipped preset by name (``"paper"``, ``"3d"``), a user's parameter file (path), or a
    dict of PyRadiomics parameters (``setting``, ``imageType``, ``featureClass`` sections, as
    in a parameter file; its name is ``"custom"``).

    The parameters are validated by PyRadiomics (schema, image types, feature classes and
    names); any rejection is raised as :class:`InputError` naming the file (or "preset dict")
    and PyRadiomics' message. Anything else (a list, a number) is refused by name.
    """
    if isinstance(preset, Preset):
        return preset
    if isinstance(preset, Mapping):
        params = json.loads(json.dumps(dict(preset), default=str))
        if not set(params) <= {"setting", "imageType", "featureClass", "voxelSetting"}:
            extra = sorted(set(params) - {"setting", "imageType", "featureClass", "voxelSetting"})
            raise InputError(f"preset dict: unknown section(s) {extra}; a PyRadiomics parameter "
                             "dict has 'setting', 'imageType' and 'featureClass'")
        return _from_params(params, name="custom", path=None, where="preset dict")
    if not isinstance(preset, (str, os.PathLike)):
        raise InputError(f"preset must be {' or '.join(repr(p) for p in PRESETS)}, a parameter file "
                         f"path, a dict of PyRadiomics parameters or a Preset; got a "
                         f"{type(preset).__name__}")
    if isinstance(preset, str) and preset in PRESETS:
        name, path = preset, preset_path(preset)
    else:
        path = Path(preset).expanduser()
        name = path.stem
        if not path.is_file():
            raise InputError(
                f"{path}: preset file not found (shipped presets: {', '.join(PRESETS)}; "
                "or give a PyRadiomics parameter file)"
            )
    return _from_params(_read_params(path), name=name, path=path, where=str(path))


def _from_params(params: dict, name: str, path: Path | None, where: str) -> Preset:
    from radiomics.featureextractor import RadiomicsFeatureExtractor

    quiet_pyradiomics()
    try:
        ext = RadiomicsFeatureExtractor(json.loads(json.dumps(params)))
    except Exception as exc:  # pykwalify SchemaError, ValueError from schemaFuncs, ...
        msg = " ".join(str(exc).split())
        raise InputError(f"{where}: PyRadiomics rejected the parameters: {msg}") from None
    bad = [k for k in _UNSUPPORTED if k in (params.get("voxelSetting") or {})]
    if bad:
        raise InputError(f"{where}: voxel-based settings {bad} are not supported "
                         "(the engine computes one value per region)")
    classes = dict(ext.enabledFeatures)
    for cls_name, names in classes.items():
        if names:
            from radiomics import getFeatureClasses

            known = getFeatureClasses()[cls_name].getFeatureNames()
            unknown = [n for n in names if n not in known]
            if unknown:
                raise InputError(f"{where}: feature class {cls_name} has no features {unknown}")
    if not ext.enabledImagetypes:
        raise InputError(f"{where}: no image types enabled")
    return Preset(
        name=name,
        source=path,
        params=params,
        settings=dict(ext.settings),
        image_types={k: dict(v or {}) for k, v in ext.enabledImagetypes.items()},
        feature_classes=classes,
    )


def _freeze(obj: Any):
    return json.dumps(obj, default=str)  # key order matters (it is the output order)


@lru_cache(maxsize=32)
def _feature_names(frozen_params: str, ndim: int) -> tuple[str, ...]:
    """Names by running PyRadiomics' own filters on a tiny image (cheap, and exactly its naming)."""
    import SimpleITK as sitk
    from radiomics import getFeatureClasses, imageoperations

    params = json.loads(frozen_params)
    settings, image_types, classes = load_preset_from_params(params)
    sigmas = [s for t in image_types.values() for s in (t.get("sigma") or [])]
    sigmas += list(settings.get("sigma") or [])
    n = int(max([8.0] + [np.ceil(s) + 2 for s in sigmas]))
    shape = (n,) * ndim
    rng = np.random.default_rng(0)
    img = sitk.GetImageFromArray(rng.normal(100.0, 30.0, shape))
    msk_arr = np.zeros(shape, np.uint32)
    msk_arr[(slice(1, n - 1),) * ndim] = 1
    msk = sitk.GetImageFromArray(msk_arr)
    fc = getFeatureClasses()

    def class_names(cls_name):
        listed = classes[cls_name]
        if listed:
            return [f for f in listed if not fc[cls_name].getFeatureNames()[f]]
        return [f for f, dep in fc[cls_name].getFeatureNames().items() if not dep]

    names: list[str] = []
    texture: list[str] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # skimage's LBP on a float image
        for image_type, custom in image_types.items():
            args = dict(settings)
            args.update(custom)
            gen = getattr(imageoperations, f"get{image_type}Image")(img, msk, **args)
            for _im, type_name, _kw in gen:
                for cls_name in classes:
                    if not cls_name.startswith("shape"):
                        texture.extend(f"{type_name}_{cls_name}_{f}" for f in class_names(cls_name))
    for shape_cls in ("shape", "shape2D"):
        if shape_cls in classes:
            if shape_cls == "shape" and ndim != 3:
                continue
            if shape_cls == "shape2D" and ndim == 3 and not settings.get("force2D", False):
                continue
            names += [f"original_{shape_cls}_{f}" for f in class_names(shape_cls)]
    return tuple(names + texture)


def load_preset_from_params(params: dict) -> tuple[dict, dict, dict]:
    """``(settings, image_types, feature_classes)`` of parsed parameters, as in PyRadiomics."""
    from radiomics.featureextractor import RadiomicsFeatureExtractor

    quiet_pyradiomics()
    ext = RadiomicsFeatureExtractor(json.loads(json.dumps(params)))
    return (dict(ext.settings), {k: dict(v or {}) for k, v in ext.enabledImagetypes.items()},
            dict(ext.enabledFeatures))
