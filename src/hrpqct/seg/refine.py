"""Re-apply the topology rules and the soft-tissue split to an annotator's edited segmentation.

The typical case: an annotator opens the seven-region segmentation in Slicer, repairs the bone
(closes a cortical gap, erases trabecular bone that leaked into the soft tissue, paints a missed
piece of fibula) and wants the rest to follow: the enclosed marrow to become trabecular, stray
fragments to go, the soft tissue freed or covered by the bone edit to be re-split, and nothing
they painted by hand in the soft tissue to be thrown away. :func:`refine` does that:

1. **Input.** A 7-region map (any 6 or 7 present; SK/MT/AT are merged back into soft tissue 5)
   or a 5-class map (values 0-5). ``input_kind`` forces one reading (a 7-region map with no MT
   or AT voxel at all is otherwise read as 5-class, which gives the same result).
2. **Erased pixels inside the leg are soft tissue.** Slicer's eraser sets voxels to background
   (0). Background enclosed by the limb (not connected to the air around it, per slice) is taken
   to be soft tissue, not air, so erasing leaked bone does not leave a hole or hand it back to the
   bone through the majority rule (``erased_is_soft_tissue``).
3. **Topology rules** (:func:`hrpqct.seg.postprocess.postprocess`), unless ``only="split"``.
4. **Soft-tissue split** (:func:`hrpqct.seg.softtissue.split_soft_tissue`) of the result, with
   the annotator's soft-tissue labels kept where they are still soft tissue:

   * default (``keep_soft_tissue_edits=True``): voxels the input labels MT or AT stay MT or AT;
     every other soft-tissue voxel (former skin, former bone, erased) takes the split's label.
     MT/AT painted by hand survive, and skin is recomputed from the current outline. Pass
     ``False`` to recompute the whole split (reproducible from the bone alone, e.g. for a study).
   * ``only="topology"``: the split is not re-applied; every voxel that was SK, MT or AT and is
     still soft tissue keeps its label, and only voxels that became soft tissue through the
     topology rules take the split's label. A 5-class input gives a 5-class output.
   * ``only="split"``: no topology rules, then the split as in the default.

The output is the 7-region map (uint8), except ``only="topology"`` on a 5-class input.
"""

from __future__ import annotations

import numpy as np

from ..errors import GeometryError, InputError
from ..method import POSTPROCESSING, SOFT_TISSUE, PostProcessing, SoftTissue
from ..progress import ProgressCallback, report
from ..regions import BACKGROUND, SOFT_TISSUE_CLASS, region
from .morphology import bbox, fill_holes, window
from .postprocess import postprocess_slice
from .softtissue import AT, MT, SK, split_slice

__all__ = ["refine", "to_model_classes", "detect_kind", "ONLY"]

ONLY = (None, "split", "topology")
_MAX_REGION = max(region(c).label for c in ("SK", "MT", "AT"))


def detect_kind(labels: np.ndarray) -> str:
    """``"regions"`` (7-region map) if any MT or AT voxel is present, else ``"model"`` (5-class)."""
    lab = np.asarray(labels)
    if lab.size and (lab.min() < 0 or lab.max() > _MAX_REGION):
        bad = np.unique(lab[(lab < 0) | (lab > _MAX_REGION)])[:10]
        raise InputError(f"label map has values {bad.tolist()}; expected 0-5 (model classes) "
                         f"or 0-{_MAX_REGION} (seven regions)")
    return "regions" if np.isin(lab, (MT, AT)).any() else "model"


def to_model_classes(labels: np.ndarray, kind: str = "auto") -> np.ndarray:
    """A 7-region map with SK/MT/AT merged into soft tissue (5); a 5-class map unchanged (uint8)."""
    lab = np.asarray(labels)
    kind = detect_kind(lab) if kind == "auto" else kind
    out = lab.astype(np.uint8, copy=True)
    if kind == "regions":
        out[np.isin(lab, (SK, MT, AT))] = SOFT_TISSUE_CLASS
    elif kind != "model":
        raise InputError(f"input_kind must be 'auto', 'model' or 'regions', got {kind!r}")
    elif lab.size and lab.max() > SOFT_TISSUE_CLASS:
        raise InputError(f"a 5-class map holds values 0-{SOFT_TISSUE_CLASS}, got up to {lab.max()}")
    return out


def _erased_to_soft_tissue(model: np.ndarray) -> np.ndarray:
    """Background enclosed by the limb (2D) -> soft tissue."""
    box = bbox(model != BACKGROUND)
    if box is None:
        return model
    sl, _ = window(model.shape, box, 1)
    w = model[sl]
    tissue = w != BACKGROUND
    holes = fill_holes(tissue) & ~tissue
    if holes.any():
        model = model.copy()
        model[sl][holes] = SOFT_TISSUE_CLASS
    return model


def _refine_slice(lab, hu, spacing, kind, only, keep, erased, post, soft):
    model = to_model_classes(lab, kind)
    if erased:
        model = _erased_to_soft_tissue(model)
    if only != "split":
        model, _ = postprocess_slice(model, spacing, post)
    if only == "topology" and kind == "model":
        return model
    out = split_slice(model, hu, spacing, soft)
    if kind == "regions":
        kept = (SK, MT, AT) if only == "topology" else (MT, AT) if keep else ()
        if kept:
            still_soft = model == SOFT_TISSUE_CLASS
            mine = still_soft & np.isin(lab, kept)
            out[mine] = lab[mine]
    return out


def refine(labels: np.ndarray, image_hu: np.ndarray, spacing, *, only: str | None = None,
           keep_soft_tissue_edits: bool = True, erased_is_soft_tissue: bool = True,
           input_kind: str = "auto", post: PostProcessing = POSTPROCESSING,
           soft: SoftTissue = SOFT_TISSUE, progress: ProgressCallback | None = None) -> np.ndarray:
    """Re-apply the topology rules and/or the soft-tissue split to an edited segmentation.

    ``labels``: 7-region or 5-class map, 2D ``[y, x]`` or 3D ``[z, y, x]``; ``image_hu``: the scan
    in HU, same shape; ``spacing``: ``(x, y[, z])`` mm. ``only``: None (both), ``"split"`` or
    ``"topology"``. See the module docstring for what is kept. Returns a new uint8 map.
    """
    lab = np.asarray(labels)
    hu = np.asarray(image_hu)
    if only not in ONLY:
        raise InputError(f"only must be one of None, 'split', 'topology'; got {only!r}")
    if lab.shape != hu.shape:
        raise GeometryError(f"segmentation shape {lab.shape} != image shape {hu.shape}")
    if lab.ndim not in (2, 3):
        raise InputError(f"expected a 2D or 3D segmentation, got shape {lab.shape}")
    if not np.issubdtype(lab.dtype, np.integer):
        raise InputError(f"segmentation must hold integer labels, got dtype {lab.dtype}")
    kind = detect_kind(lab) if input_kind == "auto" else input_kind
    if kind not in ("model", "regions"):
        raise InputError(f"input_kind must be 'auto', 'model' or 'regions', got {input_kind!r}")
    args = (kind, only, keep_soft_tissue_edits, erased_is_soft_tissue, post, soft)
    if lab.ndim == 2:
        return _refine_slice(lab, hu, spacing, *args)
    out = np.empty(lab.shape, dtype=np.uint8)
    for z in range(lab.shape[0]):
        out[z] = _refine_slice(lab[z], hu[z], spacing, *args)
        report(progress, z + 1, lab.shape[0])
    return out
