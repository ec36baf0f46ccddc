"""Region ids, names, short codes, colours and terminology: the one place they are defined.

Two label maps are used throughout (docs/method.md, "Regions"):

* the model's 5 classes + background (``MODEL_CLASSES``, values 0-5), and
* the final 7 regions after post-processing and the soft-tissue split (``REGIONS``, values 1-7).

Label values 1-4 mean the same bone compartment in both maps; 5 is "soft tissue" in the model map
and "skin" in the final map, which is why the two maps have separate tables and are never mixed.
Terminology follows DICOM SEG: a segmented property category and type (SNOMED CT), and the
anatomic region the tissue lies in (tibia or fibula for bone, lower leg for soft tissue).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "Code",
    "Region",
    "BACKGROUND",
    "MODEL_CLASSES",
    "REGIONS",
    "RADIOMICS_REGIONS",
    "model_class",
    "region",
    "codes",
    "lookup_table",
    "MODEL_TO_REGION",
    "SOFT_TISSUE_CLASS",
    "BONE_CLASSES",
]


@dataclass(frozen=True)
class Code:
    """A coded concept (DICOM code sequence item)."""

    scheme: str  # CodingSchemeDesignator, e.g. "SCT"
    value: str  # CodeValue
    meaning: str  # CodeMeaning

    def slicer_string(self) -> str:
        """``scheme^value^meaning`` as used in Slicer terminology entry strings."""
        return f"{self.scheme}^{self.value}^{self.meaning}"


# SNOMED CT concepts (verified against the DICOM/Slicer terminology lists; see Resources/README.md).
_TISSUE = Code("SCT", "85756007", "Tissue")
_ANATOMY = Code("SCT", "91723000", "Anatomical Structure")  # CID 7150; 123037004 is "Body structure"
# PS3.16 and Slicer's lists have no cortical / cancellous bone concepts (4421005 is "Cell structure"):
# private codes ("99" prefix = private coding scheme) until verified SNOMED CT concepts are chosen.
_CORTICAL = Code("99HRPQCT", "CORTICAL-BONE", "Cortical bone")
_CANCELLOUS = Code("99HRPQCT", "CANCELLOUS-BONE", "Cancellous bone")
_SOFT = Code("SCT", "87784001", "Soft tissue")
_SKIN = Code("SCT", "39937001", "Skin")
_MUSCLE = Code("SCT", "91727004", "Muscle")
_ADIPOSE = Code("SCT", "55603005", "Fat")  # CID 7166 meaning; SNOMED CT term "Adipose tissue"
_TIBIA = Code("SCT", "12611008", "Tibia")
_FIBULA = Code("SCT", "87342007", "Fibula")
_LOWER_LEG = Code("SCT", "30021000", "Lower leg")


@dataclass(frozen=True)
class Region:
    """One labelled region: value in the label map, names, display colour and terminology."""

    label: int
    code: str  # short code used in column names and file names (TC, TT, ...)
    name: str  # display / segment name
    color: tuple[int, int, int]  # sRGB 0-255
    category: Code
    type: Code
    anatomic_region: Code
    description: str = field(default="", compare=False)

    @property
    def color_float(self) -> tuple[float, float, float]:
        """Colour as floats in [0, 1] (VTK / Slicer convention)."""
        return tuple(c / 255.0 for c in self.color)  # type: ignore[return-value]

    @property
    def segment_id(self) -> str:
        """Stable segment id used in .seg.nrrd files and MRML segmentation nodes."""
        return self.code


BACKGROUND = 0

# --- model output: 5 classes + background (0) ------------------------------------------------
MODEL_CLASSES: tuple[Region, ...] = (
    Region(1, "TC", "Tibia cortical", (241, 214, 145), _TISSUE, _CORTICAL, _TIBIA,
           "Cortical shell of the tibia"),
    Region(2, "TT", "Tibia trabecular", (216, 132, 98), _TISSUE, _CANCELLOUS, _TIBIA,
           "Trabecular bone and marrow enclosed by the tibial cortex"),
    Region(3, "FC", "Fibula cortical", (128, 204, 255), _TISSUE, _CORTICAL, _FIBULA,
           "Cortical shell of the fibula"),
    Region(4, "FT", "Fibula trabecular", (58, 110, 205), _TISSUE, _CANCELLOUS, _FIBULA,
           "Trabecular bone and marrow enclosed by the fibular cortex"),
    Region(5, "ST", "Soft tissue", (200, 150, 150), _TISSUE, _SOFT, _LOWER_LEG,
           "All soft tissue of the limb (skin, muscle, tendon, fat)"),
)

# --- final map: 7 regions ---------------------------------------------------------------------
REGIONS: tuple[Region, ...] = (
    *MODEL_CLASSES[:4],
    Region(5, "SK", "Skin", (253, 198, 177), _TISSUE, _SKIN, _LOWER_LEG,
           "Band along the outer boundary of the soft tissue"),
    Region(6, "MT", "Myotendinous tissue", (192, 76, 68), _TISSUE, _MUSCLE, _LOWER_LEG,
           "Muscle and tendon"),
    Region(7, "AT", "Adipose tissue", (242, 222, 92), _TISSUE, _ADIPOSE, _LOWER_LEG,
           "Subcutaneous and intermuscular fat"),
)

#: Regions used for radiomics and classification (all but skin), docs/method.md "Regions".
RADIOMICS_REGIONS: tuple[str, ...] = ("TC", "TT", "FC", "FT", "MT", "AT")

SOFT_TISSUE_CLASS = 5  # in the model map
BONE_CLASSES = (1, 2, 3, 4)
#: Model label -> final label for the labels that carry over unchanged (bone).
MODEL_TO_REGION = {1: 1, 2: 2, 3: 3, 4: 4}

_BY_CODE = {r.code: r for r in (*MODEL_CLASSES, *REGIONS)}


def region(key: int | str) -> Region:
    """A final region by label value (1-7) or short code ("TC", "MT", ...)."""
    if isinstance(key, str):
        try:
            r = _BY_CODE[key.upper()]
        except KeyError:
            raise KeyError(f"unknown region code {key!r}; known: {sorted(_BY_CODE)}") from None
        if r not in REGIONS:
            raise KeyError(f"{key!r} is a model class, not one of the 7 final regions")
        return r
    for r in REGIONS:
        if r.label == int(key):
            return r
    raise KeyError(f"no final region has label {key}; labels are 1-{len(REGIONS)}")


def model_class(key: int | str) -> Region:
    """A model class by label value (1-5) or short code ("TC", ..., "ST")."""
    for r in MODEL_CLASSES:
        if r.label == key or (isinstance(key, str) and r.code == key.upper()):
            return r
    raise KeyError(f"no model class {key!r}; classes are 1-5: TC, TT, FC, FT, ST")


def codes(table: tuple[Region, ...] = REGIONS) -> list[str]:
    """Short codes in label order."""
    return [r.code for r in table]


def lookup_table(table: tuple[Region, ...] = REGIONS) -> np.ndarray:
    """(max_label + 1, 3) uint8 colour table indexed by label value; background is black."""
    lut = np.zeros((max(r.label for r in table) + 1, 3), dtype=np.uint8)
    for r in table:
        lut[r.label] = r.color
    return lut
