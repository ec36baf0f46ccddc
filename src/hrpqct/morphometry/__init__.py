"""Standard HR-pQCT morphometry (densities, areas, cortical and trabecular microstructure) of the
tibia and the fibula from the seven-region segmentation; see :mod:`.core` and
docs/morphometry.md."""

from .core import (BONES, HU_ONLY_NOTE, UNITS, MorphometryResult, gaussian_filter, morphometry,
                   morphometry_volume, reference_calibration)

__all__ = ["BONES", "HU_ONLY_NOTE", "UNITS", "MorphometryResult", "gaussian_filter",
           "morphometry", "morphometry_volume", "reference_calibration"]
