"""Draw the extension and module icons (128 x 128 PNG) from the region colours in hrpqct.regions.

Run from the repository root: ``.venv/bin/python Resources/Icons/make_icons.py``.
A stylised distal-tibia cross-section: skin and fat ring, muscle, a rounded-triangular tibia
(cortex + trabecular bone) and a small fibula; the module icons add a glyph in one corner.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from hrpqct.regions import region

ROOT = Path(__file__).resolve().parents[2]
N = 128
SS = 4  # supersampling for smooth edges


def _c(code: str) -> tuple[int, int, int, int]:
    return (*region(code).color, 255)


def cross_section() -> Image.Image:
    s = N * SS
    img = Image.new("RGBA", (s, s), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    cx, cy = s * 0.5, s * 0.52

    def ell(rx, ry, fill, ox=0.0, oy=0.0):
        d.ellipse([cx + ox - rx, cy + oy - ry, cx + ox + rx, cy + oy + ry], fill=fill)

    ell(s * 0.47, s * 0.44, _c("SK"))
    ell(s * 0.44, s * 0.41, _c("AT"))
    ell(s * 0.37, s * 0.34, _c("MT"), oy=s * 0.03)
    # rounded-triangular tibia: a polygon with a smooth radius profile
    t = np.linspace(0, 2 * np.pi, 360, endpoint=False)
    r = 1.0 + 0.16 * np.cos(3 * (t + np.pi / 2))
    for code, scale in (("TC", 0.22), ("TT", 0.17)):
        x0, y0 = cx - s * 0.06, cy - s * 0.06
        pts = [(x0 + s * scale * rr * np.cos(a), y0 + s * scale * rr * np.sin(a))
               for a, rr in zip(t, r)]
        d.polygon(pts, fill=_c(code))
    ell(s * 0.075, s * 0.075, _c("FC"), ox=-s * 0.24, oy=s * 0.16)
    ell(s * 0.045, s * 0.045, _c("FT"), ox=-s * 0.24, oy=s * 0.16)
    return img


def glyph(img: Image.Image, kind: str) -> Image.Image:
    d = ImageDraw.Draw(img)
    s = N * SS
    x0, y0, w = s * 0.64, s * 0.64, s * 0.34
    d.rounded_rectangle([x0, y0, x0 + w, y0 + w], radius=s * 0.05, fill=(40, 40, 48, 235))
    ink = (255, 255, 255, 255)
    if kind == "seg":  # label-map grid
        for i in range(3):
            for j in range(3):
                code = ("TC", "TT", "MT", "AT", "FC", "FT", "SK", "TT", "MT")[3 * i + j]
                q = w / 3
                g = s * 0.012
                box = [x0 + j * q + g, y0 + i * q + g, x0 + (j + 1) * q - g, y0 + (i + 1) * q - g]
                d.rectangle(box, fill=_c(code))
    elif kind == "radiomics":  # bar chart
        for i, h in enumerate((0.35, 0.7, 0.5, 0.9)):
            bx = x0 + w * (0.12 + 0.2 * i)
            d.rectangle([bx, y0 + w * (0.9 - 0.75 * h), bx + w * 0.14, y0 + w * 0.9], fill=ink)
    elif kind == "classify":  # ROC-like curve
        pts = [(x0 + w * (0.12 + 0.76 * u), y0 + w * (0.88 - 0.76 * (1 - (1 - u) ** 3)))
               for u in np.linspace(0, 1, 40)]
        d.line(pts, fill=ink, width=int(s * 0.025))
        d.line([(x0 + w * 0.12, y0 + w * 0.88), (x0 + w * 0.88, y0 + w * 0.12)],
               fill=(150, 150, 160, 255), width=int(s * 0.01))
    return img


def save(img: Image.Image, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    img.resize((N, N), Image.LANCZOS).save(path, optimize=True)
    print(path.relative_to(ROOT))


if __name__ == "__main__":
    save(cross_section(), ROOT / "Resources/Icons/HRpQCT.png")
    modules = (
        ("HRpQCTSeg", "seg"), ("HRpQCTRadiomics", "radiomics"), ("HRpQCTClassify", "classify")
    )
    for module, kind in modules:
        save(glyph(cross_section(), kind), ROOT / f"{module}/Resources/Icons/{module}.png")
