#!/usr/bin/env python
"""Rebuild the bundled demo classifier (Resources/models/demo-classifier) from a synthetic cohort.

NOT A CLINICAL MODEL: it has only ever seen synthetic phantoms. It exists so that `make demo` can
show the last step of the pipeline (a probability and a class for the bundled scan).

Steps (resumable: each reuses what an earlier run left in WORK):

1. ``hrpqct phantom-cohort``: N synthetic subjects (latent health score, T-scores, labels,
   clinical variables) and one scan each, on the bundled demo scan's grid (768 px over the
   140 mm field of view, ``hrpqct.demo.DEMO_SCAN``) with a few slices per subject;
2. the project's own segmentation of every scan with the bundled demo SegFormer
   (``hrpqct segment``; topology rules and soft-tissue split), not the phantom's ground truth;
3. ``hrpqct cohort``: the paper's radiomics (939 2D features per region and slice) of every
   scan on its predicted seven-region map;
4. ``hrpqct classify train``-equivalent: the main model is the patient-level logistic regression
   on the soft-tissue (MT+AT) radiomics (top 5 LASSO features), plus a logistic regression per
   region on the slices; the study (test results) is saved next to the model;
5. the model folder is copied to Resources/models/demo-classifier and its study (test results,
   the input of the demo's HTML report) to Resources/models/demo-classifier-study.

Usage:  .venv/bin/python scripts/build_demo_classifier.py [--work DIR] [--subjects 48]
        [--slices 2] [--workers 2]
Measured on the project's 2-core machine under load (load average 6-8): 1258 s (21 min) for 48
subjects x 2 slices (phantoms 430 s, segmentation 336 s, radiomics 415 s, training 77 s).
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=REPO / "build" / "demo-classifier")
    ap.add_argument("--subjects", type=int, default=48)
    ap.add_argument("--slices", type=int, default=2)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--no-install", action="store_true", help="do not copy into Resources/")
    a = ap.parse_args()

    import pandas as pd

    from hrpqct.demo import DEMO_SCAN
    from hrpqct.phantom.files import write_cohort
    from hrpqct.phantom.render import Grid
    from hrpqct.progress import cli_progress

    t0 = time.perf_counter()
    work = a.work
    cohort_dir = work / "cohort"
    grid = Grid(size=DEMO_SCAN.size, n_slices=a.slices)
    with cli_progress("1/4 phantom cohort", a.subjects) as cb:
        manifest = write_cohort(cohort_dir, a.subjects, grid, seed=a.seed, workers=a.workers,
                                progress=cb)
    print(f"phantoms: {time.perf_counter() - t0:.0f} s")

    from hrpqct.seg.pipeline import segment_scan

    seg_dir = work / "segmentation"
    rows = []
    with cli_progress("2/4 segmentation (bundled demo model)", len(manifest)) as cb:
        for k, r in enumerate(manifest.itertuples()):
            out = seg_dir / r.subject_id
            lab = out / f"{r.subject_id}_labels.nrrd"
            if not lab.exists():
                segment_scan(cohort_dir / r.scan, out, name=r.subject_id, quiet=True)
            rows.append({"subject_id": r.subject_id, "scan": str(cohort_dir / r.scan),
                         "segmentation": str(lab)})
            cb(k + 1, len(manifest))
    man = pd.DataFrame(rows)
    man.to_csv(work / "manifest_predicted.csv", index=False)
    print(f"+ segmentation: {time.perf_counter() - t0:.0f} s")

    from hrpqct.radiomics.cohort import read_manifest, run_cohort

    rad_dir = work / "radiomics"
    with cli_progress("3/4 radiomics (paper preset)", len(man)) as cb:
        res = run_cohort(read_manifest(work / "manifest_predicted.csv"), rad_dir,
                         workers=a.workers, progress=cb)
    if res.failed:
        raise SystemExit(f"{res.failed} scans failed, see {rad_dir / 'errors.csv'}")
    print(f"+ radiomics: {time.perf_counter() - t0:.0f} s")

    from hrpqct.classify.data import load_cohort
    from hrpqct.classify.model import train_model
    from hrpqct.classify.study import StudyConfig, save_study

    cohort = load_cohort(slices=rad_dir, patients=rad_dir, subjects=cohort_dir / "subjects.csv")
    notes = [
        "DEMO MODEL, NOT FOR CLINICAL USE: trained only on synthetic phantoms "
        f"({a.subjects} subjects of `hrpqct phantom-cohort --seed {a.seed}`, {a.slices} slices "
        "each, segmented by the bundled demo SegFormer), never on patient data.",
        "Rebuild with scripts/build_demo_classifier.py.",
    ]
    cfg = StudyConfig(title="Demo classifier (synthetic phantoms only)", radscore_group=None,
                      patient_groups={})
    with cli_progress("4/4 training", None) as cb:
        study, folder = train_model(cohort, work / "model", config=cfg, notes=notes,
                                    title="HRpQCT demo classifier (synthetic phantoms only)",
                                    progress=cb)
    save_study(study, work / "study")
    m = study.model("patient / radiomics soft tissue (MT+AT) / logreg")
    from hrpqct.classify.classifiers import auroc

    print(f"main model: CV AUROC {m.cv_auroc_mean:.3f}, test AUROC "
          f"{auroc(m.y_true, m.y_prob, 2):.3f} on {len(m.ids)} test subjects; "
          f"total {time.perf_counter() - t0:.0f} s")
    if not a.no_install:
        dst = REPO / "Resources" / "models" / "demo-classifier"
        if dst.exists():
            shutil.rmtree(dst)
        shutil.copytree(folder, dst)
        sdst = REPO / "Resources" / "models" / "demo-classifier-study"
        if sdst.exists():
            shutil.rmtree(sdst)
        shutil.copytree(work / "study", sdst)
        print(f"installed -> {dst} and {sdst}")


if __name__ == "__main__":
    main()
