#!/usr/bin/env python
"""Time the whole image-level study (6 regions x 6 classifiers, grid search with 5-fold
patient-grouped CV on the training patients, refit, one test) on a paper-size synthetic table.

Paper size: 122 patients x 168 slices = 20,496 slice rows of 939 features per region, split
98 / 24 patients. The tables come from hrpqct.classify.synthetic (features driven by the latent
health score; the layout of `hrpqct cohort`), one region at a time (154 MB per region).
Target: under 30 minutes on 2 cores.

Prints the time of the selection per region (fitted 5 + 1 times, shared by the classifiers) and
of each classifier's search + refit + test, the total, and a baseline measured in the same run
(one logistic regression fit on the selected training rows), with the machine load. On a loaded
machine, run a subset (--regions MT --classifiers ...) and the script extrapolates the total from
the regions it ran (it says so).

  .venv/bin/python bench/bench_classify.py [--regions TC,TT,FC,FT,MT,AT] [--classifiers ...]
      [--patients 122] [--slices 168] [--features 939] [--jobs 2]
"""

from __future__ import annotations

import argparse
import os
import time


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--regions", default="TC,TT,FC,FT,MT,AT")
    ap.add_argument("--classifiers", default="logreg,svm,knn,naive_bayes,random_forest,xgboost")
    ap.add_argument("--patients", type=int, default=122)
    ap.add_argument("--slices", type=int, default=168)
    ap.add_argument("--features", type=int, default=939)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()

    import numpy as np
    import pandas as pd
    from threadpoolctl import threadpool_limits

    from hrpqct.classify.classifiers import FoldSelection, auroc, grid_search
    from hrpqct.classify.selection import transform_selection
    from hrpqct.classify.splits import grouped_folds, split_patients
    from hrpqct.classify.synthetic import feature_subset, synthetic_region_matrix
    from hrpqct.method import CLASSIFICATION, SELECTION
    from hrpqct.phantom.cohort import make_subjects

    regions = [r for r in a.regions.split(",") if r]
    clfs = [c for c in a.classifiers.split(",") if c]
    subj = make_subjects(a.patients, seed=a.seed)
    y_pat = pd.Series((subj.t_score_fn <= CLASSIFICATION.osteoporosis_t_score).astype(int).to_numpy(),
                      index=subj.subject_id)
    tr_ids, te_ids = split_patients(y_pat, CLASSIFICATION.test_fraction, a.seed)
    feats = feature_subset(a.features)
    h = subj["health"].to_numpy()
    rows_ids = np.repeat(subj.subject_id.to_numpy(), a.slices)
    is_tr = np.isin(rows_ids, tr_ids)
    print(f"load: {os.getloadavg()[0]:.1f} (1 min), {os.cpu_count()} cores; "
          f"{a.patients} patients x {a.slices} slices = {a.patients * a.slices} rows x "
          f"{len(feats)} features per region; {len(tr_ids)} / {len(te_ids)} patients; "
          f"jobs {a.jobs}", flush=True)
    total = cpu = 0.0
    times: dict = {}
    baseline = None
    with threadpool_limits(limits=a.jobs):
        for r in regions:
            t0 = time.perf_counter()
            X = pd.DataFrame(synthetic_region_matrix(h, a.slices, feats, r, seed=a.seed),
                             columns=feats)
            gen = time.perf_counter() - t0
            y = y_pat.reindex(rows_ids).to_numpy()
            Xtr, ytr, gtr = X[is_tr].reset_index(drop=True), y[is_tr], rows_ids[is_tr]
            Xte, yte = X[~is_tr].reset_index(drop=True), y[~is_tr]
            folds = grouped_folds(ytr, gtr, CLASSIFICATION.cv_folds, a.seed)
            t0, c0 = time.perf_counter(), time.process_time()
            sel = FoldSelection(SELECTION.image_steps, Xtr, ytr, gtr, folds, seed=a.seed, n_jobs=a.jobs)
            Zte = transform_selection(sel.fitted, Xte)
            ts, cs = time.perf_counter() - t0, time.process_time() - c0
            total += ts
            cpu += cs
            times[(r, "selection")] = ts
            print(f"{r}: table {gen:.0f} s (not counted); selection {ts:.1f} s wall, {cs:.1f} s CPU "
                  f"({sel.Z.shape[1]} features kept of {len(feats)}); load {os.getloadavg()[0]:.1f}",
                  flush=True)
            if baseline is None:
                from sklearn.linear_model import LogisticRegression

                t0 = time.perf_counter()
                LogisticRegression(max_iter=5000).fit(sel.Z, ytr)
                baseline = time.perf_counter() - t0
            for c in clfs:
                t0, c0 = time.perf_counter(), time.process_time()
                res = grid_search(c, sel, 2, level="image", seed=a.seed, n_jobs=a.jobs)
                p = res.model.predict_proba(Zte)
                tc, cc = time.perf_counter() - t0, time.process_time() - c0
                total += tc
                cpu += cc
                times[(r, c)] = tc
                print(f"  {c:14s} {tc:7.1f} s wall {cc:7.1f} s CPU  load {os.getloadavg()[0]:4.1f}  grid {len(res.grid_scores)} points  "
                      f"CV AUROC {res.cv_auroc_mean:.3f}  test AUROC {auroc(yte, p, 2):.3f}",
                      flush=True)
    full = total
    if len(regions) < 6 or len(clfs) < 6:
        per_region = total / len(regions)
        full = per_region * 6 * (6 / len(clfs)) if len(clfs) < 6 else per_region * 6
        print(f"EXTRAPOLATED from {len(regions)} region(s) x {len(clfs)} classifier(s): the full "
              f"6 x 6 study would take ~{full / 60:.1f} min (not measured)")
    print(f"CPU time {cpu / 60:.1f} min (all threads of this process; with --jobs 1 the wall "
          f"time of the same run on an idle core)")
    print(f"total {total / 60:.1f} min for {len(regions)} region(s) x {len(clfs)} classifier(s); "
          f"full study {'measured' if full == total else 'estimated'} {full / 60:.1f} min "
          f"(target 30 min); baseline: one logistic-regression fit on the selected training "
          f"rows {baseline:.3f} s, study / baseline = {total / baseline:.0f}; load now "
          f"{os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
