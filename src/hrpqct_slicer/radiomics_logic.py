"""What the HRpQCTRadiomics module does, below its widget: features of a scan and segmentation.

* :func:`region_names`: the region checkboxes (six regions, skin, all soft tissue, distance
  bands ``ST<d>mm``) as the core's region names.
* :class:`RadiomicsTask`: the scan node and the segmentation node (exported to a 7-region label
  map on the scan's grid) written to a work folder, and the radiomics worker
  (``python -m hrpqct_slicer.worker radiomics``) run in a background process with progress and
  cancel (:mod:`.jobs`). It writes the slice-level table and the per-scan table
  (``<name>.patient.<ext>``) with :func:`hrpqct.radiomics.tables.write_scan_features`.
* :func:`features_table_node`: the per-scan table as a table node, one row per feature or
  measure and one column per region (readable in Slicer's table view; 939 columns are not).
* :func:`radiomics_of_nodes`: all of it for the Python console, blocking.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Optional, Sequence

from hrpqct.errors import Cancelled, InputError
from hrpqct.method import PRESETS, RADIOMICS
from hrpqct.regions import RADIOMICS_REGIONS

from .jobs import RADIOMICS_STAGES, BackgroundJob, JobStatus, JobTask, radiomics_argv
from .seg_logic import JobFailed, default_output_folder, safe_stem, scan_volume

__all__ = [
    "RadiomicsResults",
    "RadiomicsTask",
    "region_names",
    "preset_argument",
    "features_table_node",
    "radiomics_of_nodes",
]


def region_names(regions: Iterable[str] = (), band_distances_mm: Iterable[float] = ()
                 ) -> list[str]:
    """Region codes plus distance bands as :func:`hrpqct.radiomics.masks.parse_regions` names
    (validated, normalised, duplicates dropped); empty -> :class:`InputError`."""
    from hrpqct.radiomics.masks import band_name, parse_regions

    items = [str(r) for r in regions] + [band_name(float(d)) for d in band_distances_mm]
    if not items:
        raise InputError("choose at least one region")
    return parse_regions(items)


def preset_argument(preset: str, preset_file: str = "") -> str:
    """A shipped preset (:data:`hrpqct.method.PRESETS`) as it is; ``"file"`` -> the parameter file's path (checked)."""
    if preset in PRESETS:
        return preset
    if preset == "file":
        path = Path(preset_file or "")
        if not preset_file or not path.is_file():
            raise InputError(f"{preset_file or '(none)'}: choose an existing PyRadiomics "
                             "parameter file (.yaml or .json)")
        return str(path.resolve())
    raise InputError(f"preset must be 'paper', '3d' or 'file', got {preset!r}")


@dataclass
class RadiomicsResults:
    """The table node and the files of a radiomics run."""

    table: Any  # vtkMRMLTableNode: rows = features / measures, columns = regions
    patient: Any  # pandas DataFrame, the per-scan table as written
    slice_file: Path
    patient_file: Path
    warnings: list = None  # input warnings of the run (hrpqct.checks), to show with the table

    def __post_init__(self):
        if self.warnings is None:
            self.warnings = []


def features_table_node(scene: Any, patient, name: Optional[str] = None, node: Any = None
                        ) -> Any:
    """The per-scan table (one row per region) as a table node with one row per feature or
    measure (column ``feature``) and one column per region, in the table's region order."""
    import pandas as pd

    from .tables import dataframe_to_table_node

    if "region" not in patient.columns:
        raise InputError("per-scan table has no 'region' column")
    values = patient.drop(columns=[c for c in ("scan_id",) if c in patient.columns])
    values = values.set_index("region")
    numeric = values.select_dtypes("number").astype("float64")
    wide = numeric.T
    wide.columns = [str(c) for c in wide.columns]
    wide.index.name = None
    wide = wide.reset_index().rename(columns={"index": "feature"})
    wide["feature"] = wide["feature"].astype(str)
    return dataframe_to_table_node(scene, pd.DataFrame(wide), name=name, node=node)


class RadiomicsTask(JobTask):
    """Radiomics of a scan node and a segmentation node in a background process.

    ``out_file``: the slice-level table (``.csv`` or ``.parquet``; default
    ``<temporary folder>/HRpQCT/<scan>-<time>/<scan>_features.csv``); the per-scan table goes
    next to it as ``<name>.patient.<ext>``. ``regions``: core region names
    (:func:`region_names`). ``slices``: ``"start:stop:step"`` or ``"a,b"`` for a quick look.
    """

    def __init__(self, scene: Any, logic: Any, volume_node: Any, segmentation_node: Any, *,
                 preset: str = RADIOMICS.preset, regions: Sequence[str] = (),
                 stats: Sequence[str] = (RADIOMICS.aggregation,),
                 out_file: str | os.PathLike | None = None, slices: Optional[str] = None,
                 assume_unit: str = "HU", python: Optional[str] = None) -> None:
        from hrpqct.io import write_image, write_labelmap

        from .seg_logic import segmentation_kind
        from .segmentations import segmentation_to_labelmap

        self.volume_node = volume_node
        self.segmentation_node = segmentation_node
        stem = safe_stem(volume_node.GetName())
        out = Path(out_file) if out_file else default_output_folder(stem) / f"{stem}_features.csv"
        if out.suffix.lower() not in (".csv", ".parquet"):
            raise InputError(f"{out}: choose a .csv or .parquet output file")
        self.slice_file = out
        self.preset = preset
        self.patient_file = out.with_name(f"{out.stem}.patient{out.suffix}")
        table, kind = segmentation_kind(segmentation_node)
        if kind != "regions":
            raise InputError(f"segmentation {segmentation_node.GetName()!r} holds the model's "
                             "five classes; radiomics needs the seven regions (refine it first)")
        image = scan_volume(volume_node, assume_unit)
        labels = segmentation_to_labelmap(scene, logic, segmentation_node, volume_node,
                                          table=table)
        names = region_names(regions or RADIOMICS_REGIONS)

        def argv(staging: Path, progress: Path) -> list[str]:
            return list(radiomics_argv(image_path, labels_path, out.name, preset=preset,
                                       regions=names, stats=stats, slices=slices, scan_id=stem,
                                       python=python)(staging, progress))

        self.job = BackgroundJob(argv, out.parent, stages=RADIOMICS_STAGES,
                                 name="hrpqct-radiomics")
        image_path = self.job.work_dir / f"{stem}.nrrd"
        labels_path = self.job.work_dir / f"{stem}_labels.nrrd"
        try:
            write_image(image, image_path, compress=False)
            write_labelmap(labels, labels_path, compress=False)
        except BaseException:
            self.job.cleanup()
            raise

    def load(self, scene: Any, table_node: Any = None, name: Optional[str] = None
             ) -> RadiomicsResults:
        """The per-scan table as a table node (:func:`features_table_node`)."""
        import pandas as pd

        status = self.job.status
        if status.state != "succeeded":
            raise JobFailed(f"radiomics of {self.volume_node.GetName()!r} {status.state}"
                            + (f": {status.message}" if status.message else ""), status,
                            self.job.log_text)
        p = self.patient_file
        patient = pd.read_parquet(p) if p.suffix.lower() == ".parquet" else pd.read_csv(p)
        node = features_table_node(scene, patient, node=table_node,
                                   name=name or f"{self.volume_node.GetName()} radiomics")
        # what HRpQCTClassify needs: the slice-level table (region models) and the preset
        from .classify_logic import PRESET_ATTRIBUTE, SLICE_FILE_ATTRIBUTE
        from hrpqct.checks import input_warnings_path, read_warnings

        node.SetAttribute(SLICE_FILE_ATTRIBUTE, str(Path(self.slice_file).resolve()))
        node.SetAttribute(PRESET_ATTRIBUTE, str(self.preset))
        return RadiomicsResults(node, patient, self.slice_file, self.patient_file,
                                read_warnings(input_warnings_path(self.slice_file)))


def radiomics_of_nodes(scene: Any, logic: Any, volume_node: Any, segmentation_node: Any, *,
                       preset: str = RADIOMICS.preset, regions: Sequence[str] = (),
                       stats: Sequence[str] = (RADIOMICS.aggregation,),
                       out_file: str | os.PathLike | None = None, slices: Optional[str] = None,
                       table_node: Any = None, assume_unit: str = "HU",
                       timeout: Optional[float] = None,
                       progress: Optional[Callable[[JobStatus], Optional[bool]]] = None,
                       python: Optional[str] = None) -> RadiomicsResults:
    """Run :class:`RadiomicsTask` and wait (blocking); raises :class:`Cancelled` or
    :class:`JobFailed` when there are no results."""
    task = RadiomicsTask(scene, logic, volume_node, segmentation_node, preset=preset,
                         regions=regions, stats=stats, out_file=out_file, slices=slices,
                         assume_unit=assume_unit, python=python)
    status = task.wait(timeout=timeout, progress=progress)
    if status.state == "cancelled":
        raise Cancelled(f"radiomics of {volume_node.GetName()!r} cancelled")
    return task.load(scene, table_node=table_node)
