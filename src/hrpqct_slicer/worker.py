"""Worker process for the Slicer modules: ``python -m hrpqct_slicer.worker radiomics ...``.

The segmentation runs as ``hrpqct segment --progress-json FILE``; radiomics runs here, because
``hrpqct radiomics`` reports progress only as a terminal bar. This calls the same core function
(:func:`hrpqct.radiomics.tables.write_scan_features`) with a progress callback that appends one
JSON line per slice to ``--progress-json`` (format of :func:`hrpqct.progress.json_progress`;
steps :data:`RADIOMICS_STAGES`). Imports no Slicer or Qt module.

Exit status: 0 done, 2 bad input (one ``error: ...`` line on stderr), 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional, Sequence

__all__ = ["main", "parse_slices", "RADIOMICS_STAGES"]

READ = "read"
RADIOMICS = "radiomics"
#: Steps of the radiomics worker and their share of the run time (for one progress bar).
RADIOMICS_STAGES: tuple[tuple[str, float], ...] = ((READ, 0.05), (RADIOMICS, 0.95))


def parse_slices(spec: Optional[str], n: int) -> Optional[list[int]]:
    """``None``/``""`` -> all slices; ``"start:stop:step"`` or ``"a,b,c"`` -> those indices."""
    from hrpqct.errors import InputError

    if not spec:
        return None
    try:
        if ":" in spec:
            parts = [int(p) if p.strip() else None for p in spec.split(":")]
            return list(range(n))[slice(*parts)]
        return [int(p) for p in spec.split(",") if p.strip()]
    except (ValueError, TypeError):
        raise InputError(f"slices {spec!r}: use 'start:stop:step' or a comma list") from None


def _radiomics(ns: argparse.Namespace) -> None:
    from hrpqct.errors import InputError
    from hrpqct.io import read_pair
    from hrpqct.radiomics.masks import parse_regions
    from hrpqct.radiomics.presets import load_preset
    from hrpqct.radiomics.tables import write_scan_features
    from hrpqct.progress import stage_progress

    out = Path(ns.out)
    if out.suffix.lower() not in (".csv", ".parquet"):
        raise InputError(f"{out}: choose a .csv or .parquet output file")
    preset = load_preset(ns.preset)
    regions = parse_regions(ns.regions or None)
    stats = tuple(s.strip() for s in ns.stats.split(",") if s.strip())
    progress = Path(ns.progress_json) if ns.progress_json else None

    def stage(key: str, label: str, total: Optional[int]):
        return stage_progress(key, label, total, json_file=progress, bars=False)

    with stage(READ, "Reading", None) as cb:
        image, labels = read_pair(ns.image, ns.labels, unit="HU")
        cb(1, 1)
    zs = parse_slices(ns.slices, image.shape[0])
    n = 1 if preset.ndim == 3 else len(zs if zs is not None else range(image.shape[0]))
    out.parent.mkdir(parents=True, exist_ok=True)
    with stage(RADIOMICS, f"Radiomics ({preset.name})", n) as cb:
        write_scan_features(image, labels, out, scan_id=ns.scan_id or Path(ns.image).name,
                            preset=preset, regions=regions, slices=zs, stats=stats, progress=cb)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run one worker command; returns the exit status."""
    from hrpqct.errors import Cancelled, HRpQCTError

    parser = argparse.ArgumentParser(prog="python -m hrpqct_slicer.worker")
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("radiomics", help="features of one scan (write_scan_features)")
    r.add_argument("image", help="scan (read in HU)")
    r.add_argument("labels", help="7-region label map or .seg.nrrd")
    r.add_argument("--out", required=True, help="slice-level table (.csv or .parquet)")
    r.add_argument("--progress-json", default=None, help="append JSON progress lines here")
    r.add_argument("--preset", default="paper", help="paper, 3d or a parameter file")
    r.add_argument("--regions", default="", help="comma-separated region names")
    r.add_argument("--stats", default="mean", help="per-scan statistics: mean,median,sd")
    r.add_argument("--slices", default=None, help="'start:stop:step' or 'a,b,c'")
    r.add_argument("--scan-id", default=None, help="scan id in the tables")
    ns = parser.parse_args(argv)
    try:
        _radiomics(ns)
    except Cancelled as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 130
    except HRpQCTError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
