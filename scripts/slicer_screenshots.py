"""Render the pictures of the README's Slicer section from a demo run (no Slicer needed).

    .venv/bin/python -m hrpqct demo --out demo-output
    .venv/bin/python scripts/slicer_screenshots.py demo-output docs/images

A Slicer screenshot cannot be taken on the project's machines, so these are what the modules'
logic produces and shows: HRpQCTSeg's overlay of the seven regions and its confidence-per-slice
chart (the PNGs `hrpqct segment` writes), and HRpQCTRadiomics' per-scan table (rows: features,
columns: regions, as the table node shows it), drawn with matplotlib.
"""

from __future__ import annotations

import sys
from pathlib import Path

FEATURES = ("volume_mm3", "mean_HU", "original_firstorder_Mean", "original_firstorder_Entropy",
            "original_glcm_Idmn", "original_glcm_Contrast", "original_glrlm_RunEntropy",
            "original_glszm_ZoneEntropy", "original_ngtdm_Busyness", "original_shape2D_Sphericity")


def _downscaled(src: Path, dst: Path, width: int = 900) -> None:
    from PIL import Image

    with Image.open(src) as im:
        h = round(im.height * width / im.width)
        im.convert("RGB").resize((width, h), Image.LANCZOS).save(dst, optimize=True)


def _table_png(patient_csv: Path, dst: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    df = pd.read_csv(patient_csv).set_index("region")
    rows = [f for f in FEATURES if f in df.columns]
    cells = [[f"{df.loc[r, f]:.4g}" for r in df.index] for f in rows]
    fig, ax = plt.subplots(figsize=(9, 0.32 * len(rows) + 0.8), dpi=110)
    ax.axis("off")
    table = ax.table(cellText=cells, rowLabels=rows, colLabels=list(df.index), loc="center")
    table.auto_set_font_size(False)
    table.set_fontsize(8)
    table.scale(1, 1.25)
    ax.set_title("HRpQCT Radiomics: per-scan features (mean over slices), demo scan", fontsize=9)
    fig.tight_layout()
    fig.savefig(dst)
    plt.close(fig)


def main(demo: str, out: str) -> None:
    demo_dir, out_dir = Path(demo), Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    seg = demo_dir / "segmentation"
    _downscaled(seg / "demo_overlay.png", out_dir / "slicer-seg-overlay.png")
    _downscaled(seg / "demo_confidence.png", out_dir / "slicer-seg-confidence.png", width=700)
    _table_png(demo_dir / "radiomics" / "demo_features.patient.csv",
               out_dir / "slicer-radiomics-table.png")
    for name in ("slicer-seg-overlay.png", "slicer-seg-confidence.png",
                 "slicer-radiomics-table.png"):
        print(out_dir / name)


if __name__ == "__main__":
    main(*sys.argv[1:3])
