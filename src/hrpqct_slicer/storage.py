"""Save and load segmentation nodes as ``.seg.nrrd`` with ``vtkMRMLSegmentationStorageNode``.

Files are written atomically: Slicer writes a temporary ``.seg.nrrd`` in the target folder, which
then replaces the target. The file keeps segment ids, names, colours, label values and
``TerminologyEntry`` tags, and reads back in Slicer, with this module, and with ``slicerio``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from hrpqct.errors import InputError

__all__ = ["save_segmentation", "load_segmentation"]

_SUFFIX = ".seg.nrrd"


def save_segmentation(scene: Any, seg_node: Any, path: str | os.PathLike[str]) -> Path:
    """Write ``seg_node`` to ``path`` (must end in ``.seg.nrrd``); returns the path."""
    path = Path(path)
    if not path.name.endswith(_SUFFIX):
        raise InputError(f"{path}: a segmentation file name must end in {_SUFFIX}")
    if not path.parent.is_dir():
        raise InputError(f"{path}: folder {path.parent} does not exist")
    from hrpqct.io.atomic import atomic_path

    storage = scene.AddNewNodeByClass("vtkMRMLSegmentationStorageNode")
    try:
        with atomic_path(path, verify=False) as tmp:
            storage.SetFileName(str(tmp))
            if not storage.WriteData(seg_node):
                raise InputError(f"{path}: Slicer could not write segmentation "
                                 f"{seg_node.GetName()!r}")
    finally:
        scene.RemoveNode(storage)
    return path


def load_segmentation(scene: Any, path: str | os.PathLike[str], name: str | None = None) -> Any:
    """Read a ``.seg.nrrd`` file into a new segmentation node of ``scene`` and return it."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    default = path.name[: -len(_SUFFIX)] if path.name.endswith(_SUFFIX) else path.stem
    seg_node = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", name or default)
    storage = scene.AddNewNodeByClass("vtkMRMLSegmentationStorageNode")
    storage.SetFileName(str(path))
    if not storage.ReadData(seg_node):
        scene.RemoveNode(storage)
        scene.RemoveNode(seg_node)
        raise InputError(f"{path}: not a readable Slicer segmentation (.seg.nrrd)")
    seg_node.SetAndObserveStorageNodeID(storage.GetID())
    if seg_node.GetDisplayNode() is None:
        seg_node.CreateDefaultDisplayNodes()
    return seg_node
