"""HR-pQCT distal tibia: SegFormer segmentation into seven regions, radiomics, classification.

The core package of the HRpQCT 3D Slicer extension. It has no Slicer imports; the bridge to
MRML lives in :mod:`hrpqct_slicer`.
"""

from .errors import CalibrationError, GeometryError, HRpQCTError, InputError, ModelError
from .volume import Calibration, Volume

__version__ = "0.1.0"
__all__ = [
    "Volume",
    "Calibration",
    "HRpQCTError",
    "InputError",
    "GeometryError",
    "CalibrationError",
    "ModelError",
    "__version__",
]
