"""Make docs/images/web-app.png: ``hrpqct serve`` on a synthetic scan, segmented, corrected with
one paint stroke, split re-applied and saved, photographed by headless Chromium.

    .venv/bin/python scripts/web_screenshot.py [--out docs/images/web-app.png] [--size 384]

Needs what the browser test needs (Debian chromium, Mesa OpenGL: scripts/setup-browser.sh).
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "images" / "web-app.png")
    ap.add_argument("--size", type=int, default=384)
    ap.add_argument("--slices", type=int, default=3)
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    args = ap.parse_args()

    from playwright.sync_api import sync_playwright

    from hrpqct_web.demo import write_demo_scan

    data = Path(tempfile.mkdtemp(prefix="hrpqct-web-shot-"))
    write_demo_scan(data, size=args.size, n_slices=args.slices, name="demo-leg.nrrd")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "hrpqct", "serve", "--port", str(port),
                             "--data", str(data)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/"
    try:
        for _ in range(240):
            try:
                urllib.request.urlopen(url, timeout=2)
                break
            except OSError:
                time.sleep(0.5)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=args.chromium, headless=True,
                                         args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1600, "height": 900})
            page.goto(url)
            page.wait_for_selector("#hr-open", timeout=60_000)
            page.wait_for_timeout(1000)
            page.click("#hr-open")
            page.wait_for_function("document.querySelector('#hr-open-name').innerText"
                                   ".includes('demo-leg')", timeout=60_000)
            page.click("#hr-segment")
            page.wait_for_function("(document.querySelector('#hr-message')||{innerText:''})"
                                   ".innerText.includes('segmented')", timeout=600_000)
            page.click("#hr-next-review")
            rows = page.locator(".v-navigation-drawer--left .v-list-item")
            rows.nth(6).click(position={"x": 8, "y": 8})  # Adipose tissue
            page.wait_for_timeout(800)
            page.locator(".v-navigation-drawer--left button:has(.mdi-brush):visible").first.click()
            page.wait_for_selector("text=Brush size", timeout=20_000)
            view = page.locator(".remote-controlled-area").first.bounding_box()
            cx, cy = view["x"] + view["width"] / 2, view["y"] + view["height"] / 2
            page.mouse.move(cx + 40, cy + 60)
            page.mouse.down()
            for k in range(1, 10):
                page.mouse.move(cx + 40 + 4 * k, cy + 60 - 2 * k)
                page.wait_for_timeout(60)
            page.mouse.up()
            page.wait_for_function("document.querySelector('#hr-last-edit').innerText"
                                   ".includes('AT +')", timeout=60_000)
            page.click("#hr-refine-split")
            page.wait_for_function("document.querySelector('#hr-refine-result').innerText"
                                   ".includes('split')", timeout=120_000)
            page.click("#hr-save")
            page.wait_for_function("document.querySelector('#hr-saved').innerText"
                                   ".includes('saved')", timeout=60_000)
            page.wait_for_timeout(2500)
            args.out.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(args.out))
            browser.close()
        print(f"wrote {args.out}")
    finally:
        proc.terminate()
        proc.wait(timeout=30)


if __name__ == "__main__":
    main()
