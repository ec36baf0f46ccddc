"""Make Testing/Data/pyradiomics/ from PyRadiomics' data/ files (see the README here).

    python make_subset.py <folder with brain1_image.nrrd, brain1_label.nrrd, baseline_*.csv> <out>
"""

import csv
import sys
from pathlib import Path

import numpy as np
import SimpleITK as sitk

CLASSES = ("firstorder", "glcm", "glrlm", "glszm", "gldm", "ngtdm", "shape")
MARGIN = 12  # in-plane margin, pixels (> padDistance 5); all slices are kept

src, dst = Path(sys.argv[1]), Path(sys.argv[2])
img = sitk.ReadImage(str(src / "brain1_image.nrrd"))
lab = sitk.ReadImage(str(src / "brain1_label.nrrd"))
a = sitk.GetArrayFromImage(lab)
idx = np.nonzero(a)
lo = [int(i.min()) for i in idx]
hi = [int(i.max()) for i in idx]
lo_x, lo_y = max(lo[2] - MARGIN, 0), max(lo[1] - MARGIN, 0)
hi_x, hi_y = min(hi[2] + MARGIN, a.shape[2] - 1), min(hi[1] + MARGIN, a.shape[1] - 1)
size = [hi_x - lo_x + 1, hi_y - lo_y + 1, a.shape[0]]
for im, name in ((img, "brain1_image.nrrd"), (lab, "brain1_label.nrrd")):
    sitk.WriteImage(sitk.RegionOfInterest(im, size, [lo_x, lo_y, 0]), str(dst / name),
                    useCompression=True)
print("label box (z, y, x)", lo, hi, "; crop index", [lo_x, lo_y, 0], "size", size)
rows = []
for cls in CLASSES:
    with open(src / f"baseline_{cls}.csv", encoding="utf-8", newline="") as f:
        for r in csv.DictReader(f):
            name = r["featureName"]
            settings = name == "diagnostics_Configuration_Settings" and cls == "firstorder"
            if name.startswith("original_") or settings:
                rows.append((name, r["brain1"]))
with open(dst / "brain1_baseline.csv", "w", encoding="utf-8", newline="") as f:
    w = csv.writer(f)
    w.writerow(("featureName", "brain1"))
    w.writerows(rows)
print(len(rows), "rows")
