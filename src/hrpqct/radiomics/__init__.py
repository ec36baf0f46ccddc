"""Radiomics: the paper's 939-feature 2D set per region, a multi-region engine, cohort runs.

* :mod:`.presets`: the shipped ``paper`` (2D) and ``3d`` presets and users' parameter files.
* :mod:`.engine`: :class:`MultiRegionExtractor`, PyRadiomics' values for many regions of one
  image with each filtered image computed once.
* :mod:`.masks`: region names (``TC`` ... ``AT``, ``ST``, ``ST10mm``) and their masks.
* :mod:`.tables`: slice-level and patient-level tables with plain measures.
* :mod:`.cohort`: resumable cohort runs on local processes or Dask.

Names are imported lazily so that ``import hrpqct.radiomics`` does not load PyRadiomics.
"""

from __future__ import annotations

import importlib

__all__ = [
    "Preset", "load_preset", "PRESETS",
    "MultiRegionExtractor", "RegionResult", "pyradiomics_execute",
    "parse_regions", "region_masks", "band_name",
    "extract_scan", "extract_volume", "aggregate", "to_wide",
    "run_cohort", "read_manifest", "CohortResult",
]

_WHERE = {
    "Preset": "presets", "load_preset": "presets", "PRESETS": "presets",
    "MultiRegionExtractor": "engine", "RegionResult": "engine", "pyradiomics_execute": "engine",
    "parse_regions": "masks", "region_masks": "masks", "band_name": "masks",
    "extract_scan": "tables", "extract_volume": "tables", "aggregate": "tables",
    "to_wide": "tables",
    "run_cohort": "cohort", "read_manifest": "cohort", "CohortResult": "cohort",
}


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
