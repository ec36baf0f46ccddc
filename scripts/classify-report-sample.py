"""Write the HTML report of a synthetic sample study and screenshot it with headless Chromium.

    .venv/bin/python scripts/classify-report-sample.py [--out docs/images/classify-report.png]
                                                       [--html sample-report.html]

The study is the test suite's synthetic StudyResult (Testing/Python/synthetic_study.py: no
fitting, predictions drawn around a latent health score), so the numbers are illustrative only.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "Testing" / "Python"))

from synthetic_study import make_study  # noqa: E402

from hrpqct.classify.report import write_study_report  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "images" / "classify-report.png")
    ap.add_argument("--html", type=Path, default=None, help="also keep the report here")
    ap.add_argument("--section", default="", help="anchor to scroll to, e.g. roc-curves")
    ap.add_argument("--size", default="1280,1500", help="window width,height in pixels")
    args = ap.parse_args()
    exe = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")
                if shutil.which(n)), None)
    if exe is None:
        sys.exit("no chromium: run scripts/setup-browser.sh (as root) first")
    with tempfile.TemporaryDirectory() as tmp:
        html = args.html or Path(tmp) / "report.html"
        write_study_report(make_study(seed=0, slices=42), html)
        url = html.resolve().as_uri() + (f"#{args.section}" if args.section else "")
        args.out.parent.mkdir(parents=True, exist_ok=True)
        r = subprocess.run([exe, "--headless", "--no-sandbox", "--disable-gpu",
                            "--hide-scrollbars", f"--window-size={args.size}",
                            f"--screenshot={args.out.resolve()}", url],
                           capture_output=True, text=True, timeout=180)
        if r.returncode != 0 or not args.out.exists():
            sys.exit(f"chromium failed: {r.stderr[-1000:]}")
    print(f"report screenshot: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
