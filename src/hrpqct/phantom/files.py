"""Write phantoms and cohorts to disk (atomically, resumably)."""

from __future__ import annotations

import json
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict
from pathlib import Path

import pandas as pd

from .. import regions as R
from ..progress import ProgressCallback, report
from .anatomy import Anatomy
from .cohort import anatomy_for, make_subjects
from .render import Grid
from .scan import Phantom, generate

__all__ = ["write_phantom", "write_cohort", "anatomy_from_json", "PHANTOM_FILES", "MANIFEST"]

#: File names inside one phantom folder.
PHANTOM_FILES = {
    "image": "image.nrrd",  # HU, int16
    "labels5": "labels5.nrrd",  # model classes 0-5
    "labels7": "labels7.nrrd",  # final regions 0-7
    "segmentation": "regions.seg.nrrd",  # 7 regions as a Slicer segmentation
    "anatomy": "anatomy.json",
    "overview": "overview.png",
}
MANIFEST = "manifest.csv"
_DONE = ".complete"


def _json_atomic(obj, path: Path) -> None:
    _text_atomic(json.dumps(obj, indent=2, default=str), path)


def _text_atomic(text: str, path: Path) -> None:
    from ..io.atomic import atomic_write_text

    atomic_write_text(path, text)


def _csv_atomic(frame: pd.DataFrame, path: Path) -> None:
    from ..io.atomic import atomic_path

    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)


def write_phantom(ph: Phantom, out: str | os.PathLike, overview: bool = True) -> dict[str, Path]:
    """Write image, both label maps, the 7-region .seg.nrrd, the anatomy (JSON) and a PNG of the
    middle slice into folder ``out``; a ``.complete`` marker is written last."""
    from ..io import write_image, write_labelmap, write_segmentation
    from ..viz import save_overview

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {k: out / v for k, v in PHANTOM_FILES.items()}
    write_image(ph.image, paths["image"])
    write_labelmap(ph.labels5, paths["labels5"])
    write_labelmap(ph.labels7, paths["labels7"])
    write_segmentation(ph.labels7, paths["segmentation"], table=R.REGIONS)
    _json_atomic(ph.describe(), paths["anatomy"])
    if overview:
        k = ph.image.shape[0] // 2
        save_overview(paths["overview"], ph.image.array[k], ph.labels7.array[k],
                      pixel_mm=ph.grid.pixel_mm,
                      title=f"synthetic HR-pQCT, seed {ph.anatomy.seed}, slice {k}")
    else:
        paths.pop("overview")
    _text_atomic("ok\n", out / _DONE)
    return paths


def _one_subject(row: dict, grid: Grid, folder: str) -> str:
    anat = anatomy_for(pd.Series(row))
    write_phantom(generate(anat, grid), folder, overview=False)
    return row["subject_id"]


def write_cohort(out: str | os.PathLike, n_subjects: int, grid: Grid, seed: int = 0,
                 workers: int = 1, progress: ProgressCallback | None = None) -> pd.DataFrame:
    """Generate an ``n_subjects`` cohort into ``out``: ``subjects.csv`` (all variables),
    ``manifest.csv`` (paths + labels + clinical variables, the radiomics cohort input) and
    ``scans/<subject_id>/`` per subject.

    Resumable: subjects whose folder is complete are skipped, so re-running after an
    interruption finishes the cohort with results identical to an uninterrupted run.
    """
    out = Path(out)
    (out / "scans").mkdir(parents=True, exist_ok=True)
    subjects = make_subjects(n_subjects, seed=seed)
    _csv_atomic(subjects, out / "subjects.csv")
    _json_atomic({"n_subjects": n_subjects, "seed": seed, "grid": asdict(grid)}, out / "cohort.json")

    rel = {sid: Path("scans") / sid for sid in subjects.subject_id}
    manifest = subjects.copy()
    manifest.insert(1, "scan", [str(rel[s] / PHANTOM_FILES["image"]) for s in subjects.subject_id])
    manifest.insert(2, "segmentation", [str(rel[s] / PHANTOM_FILES["labels7"]) for s in subjects.subject_id])
    manifest.insert(3, "segmentation5", [str(rel[s] / PHANTOM_FILES["labels5"]) for s in subjects.subject_id])
    _csv_atomic(manifest, out / MANIFEST)

    todo = [r for r in subjects.to_dict("records") if not (out / rel[r["subject_id"]] / _DONE).exists()]
    done = n_subjects - len(todo)
    report(progress, done, n_subjects)
    if workers <= 1:
        for r in todo:
            _one_subject(r, grid, str(out / rel[r["subject_id"]]))
            done += 1
            report(progress, done, n_subjects)
    else:
        from ..lifeline import die_with_parent

        with ProcessPoolExecutor(max_workers=workers, initializer=die_with_parent,
                                 initargs=(os.getpid(),)) as ex:
            futs = [ex.submit(_one_subject, r, grid, str(out / rel[r["subject_id"]])) for r in todo]
            for f in as_completed(futs):
                f.result()
                done += 1
                report(progress, done, n_subjects)
    return manifest


def anatomy_from_json(path: str | os.PathLike) -> Anatomy:
    """The :class:`Anatomy` stored in a phantom's ``anatomy.json``."""
    d = json.loads(Path(path).read_text(encoding="utf-8"))["anatomy"]
    return Anatomy(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in d.items()})
