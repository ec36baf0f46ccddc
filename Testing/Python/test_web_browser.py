"""End to end: ``hrpqct serve`` driven by a real headless Chromium.

The server runs as a child process on 127.0.0.1 (a free port) on a folder holding a small
synthetic scan (the demo phantom's anatomy on a 192 px x 2 slice grid), a file that is not a scan
and a segmentation of another grid. Through the page the test: opens the non-scan (an error line,
nothing changes), opens the scan, starts the segmentation and cancels it (nothing written), runs it again
(background process, progress), saves,
tries the other-geometry segmentation (an error line; the saved file is untouched), paints one
stroke of "Fibula trabecular" with trame-slicer's Paint effect, re-applies the soft-tissue split,
saves again, runs "Radiomics + classify" on one slice (the region features, the bundled demo
classifier's prediction table with its warning, the probability plot), and then checks the files
on disk: the earlier version kept, the seven segments with their names and colours, and exactly
the stroke's voxels (as the page reported them) turned into fibula trabecular bone.

Needs Debian's ``chromium`` (Playwright drives it; no browser is downloaded) and an OpenGL
context (Mesa software rendering: ``libosmesa6``); ``scripts/setup-browser.sh``, run by ``make
test``, installs both. Without them the test is skipped and says why.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

CHROMIUM = os.environ.get("HRPQCT_CHROMIUM", "/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[2]


def _skip_reason() -> str | None:
    if not Path(CHROMIUM).exists():
        return (f"no Chromium at {CHROMIUM} (Debian: apt-get install chromium; "
                "scripts/setup-browser.sh)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install -c requirements/lock.txt playwright)"
    try:
        import trame_slicer.core  # noqa: F401
    except Exception as exc:  # noqa: BLE001
        return f"trame-slicer does not import: {exc}"
    from hrpqct_web.rendering import opengl_check

    ok, what = opengl_check()
    if not ok:
        return f"no OpenGL for the server's views ({what}); apt-get install libosmesa6"
    return None


_REASON = _skip_reason()
pytestmark = [pytest.mark.skipif(_REASON is not None, reason=_REASON or ""),
              pytest.mark.timeout(600)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    from hrpqct.io import write_segmentation
    from hrpqct.volume import Volume
    from hrpqct_web.demo import write_demo_scan

    d = tmp_path_factory.mktemp("web-data")
    write_demo_scan(d, size=192, n_slices=2, name="leg.nrrd")
    (d / "not-a-scan.nrrd").write_bytes(b"this is not a scan\n" * 20)
    other = np.zeros((2, 64, 80), dtype=np.uint8)
    other[:, 20:40, 20:50] = 2
    write_segmentation(Volume(other, spacing=(0.5, 0.5, 0.5), unit="label"),
                       d / "other-geometry.seg.nrrd")
    return d


@pytest.fixture(scope="module")
def server(data_dir):
    port = _free_port()
    env = dict(os.environ, NO_COLOR="1", PYTHONUNBUFFERED="1")
    log = open(data_dir.parent / "server.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen([sys.executable, "-m", "hrpqct", "serve", "--port", str(port),
                             "--data", str(data_dir)], stdout=log, stderr=subprocess.STDOUT,
                            env=env, cwd=str(data_dir))
    url = f"http://127.0.0.1:{port}/"
    t0 = time.time()
    while True:
        if proc.poll() is not None:
            log.close()
            pytest.fail("server exited: " + (data_dir.parent / "server.log").read_text(
                encoding="utf-8", errors="replace")[-2000:])
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            pass
        if time.time() - t0 > 120:
            proc.kill()
            pytest.fail("server did not answer within 120 s")
        time.sleep(0.5)
    yield url
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


def _message(page) -> str:
    return page.inner_text("#hr-message")


def _wait_message(page, *words, timeout_s: float = 60) -> str:
    page.wait_for_function(
        "(words) => { const e = document.querySelector('#hr-message');"
        " return e && words.every(w => e.innerText.includes(w)); }",
        arg=list(words), timeout=timeout_s * 1000)
    return _message(page)


def _choose(page, select_id: str, item: str) -> None:
    """Pick ``item`` in a Vuetify select, as a user does: open the menu, click the entry."""
    page.click(f"#{select_id}", force=True)
    page.locator(".v-overlay--active .v-list-item", has_text=item).first.click()
    page.wait_for_timeout(300)


def _region_counts(text: str) -> dict[str, int]:
    return {code: int(n.replace(",", "")) for code, n in
            re.findall(r"\b(TC|TT|FC|FT|SK|MT|AT) ([+-][\d,]+)", text)}


def test_correct_in_the_browser(server, data_dir):
    from playwright.sync_api import sync_playwright

    from hrpqct.io import read_segmentation_file
    from hrpqct.regions import REGIONS

    seg_file = data_dir / "leg.seg.nrrd"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                     args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1600, "height": 900})
        page.goto(server)
        page.wait_for_selector("#hr-open", timeout=60_000)

        # a file that is not a scan: one clear line in the page, nothing opened
        _choose(page, "hr-scan", "not-a-scan.nrrd")
        page.click("#hr-open")
        text = _wait_message(page, "not-a-scan.nrrd")
        assert "not" in text.lower() and "scan" in text.lower()
        assert "none" in page.inner_text("#hr-open-name")

        # the scan; segmentation in the background with progress
        _choose(page, "hr-scan", "leg.nrrd")
        page.click("#hr-open")
        _wait_message(page, "opened leg.nrrd")
        cancel_enabled = ("document.querySelector('#hr-cancel') &&"
                          " !document.querySelector('#hr-cancel').disabled")
        page.click("#hr-segment")  # Cancel stops the run and changes nothing
        page.wait_for_function(cancel_enabled, timeout=20_000)
        page.click("#hr-cancel")
        _wait_message(page, "cancelled", timeout_s=60)
        assert not seg_file.exists()
        page.click("#hr-segment")
        page.wait_for_function(cancel_enabled, timeout=20_000)
        text = _wait_message(page, "segmented leg.nrrd", timeout_s=240)
        assert "slice(s) to review" in text
        summary = page.inner_text("#hr-summary")
        for r in REGIONS:
            assert r.name in summary

        # next slice to review: the least confident of the two
        page.click("#hr-next-review")
        page.wait_for_function("document.querySelector('#hr-review').innerText.includes('slice')")
        assert "1 of 2 least confident" in page.inner_text("#hr-review")

        page.click("#hr-save")
        _wait_message(page, "saved", "leg.seg.nrrd")
        assert seg_file.is_file()
        first = read_segmentation_file(seg_file).array
        first_sha = _sha(seg_file)

        # a segmentation of another grid: one clear line, the saved file untouched
        _choose(page, "hr-seg", "other-geometry.seg.nrrd")
        page.click("#hr-load-seg")
        text = _wait_message(page, "other-geometry.seg.nrrd")
        assert "differs" in text or "grid" in text
        assert _sha(seg_file) == first_sha

        # one paint stroke of "Fibula trabecular" across the middle of the axial view
        # (segment names sit in read-only text fields: click the row's corner; rows are in
        # label order)
        row = [r.code for r in REGIONS].index("FT")
        page.locator(".v-navigation-drawer--left .v-list-item").nth(row).click(
            position={"x": 8, "y": 8})
        page.wait_for_function("document.querySelectorAll('.v-navigation-drawer--left "
                               ".v-list-item')[%d].classList.contains('v-list-item--active')" % row,
                               timeout=20_000)
        page.locator(".v-navigation-drawer--left button:has(.mdi-brush):visible").first.click()
        page.wait_for_selector("text=Brush size", timeout=20_000)
        view = page.locator(".remote-controlled-area").first.bounding_box()
        cx, cy = view["x"] + view["width"] / 2, view["y"] + view["height"] / 2
        page.mouse.move(cx - 30, cy)
        page.mouse.down()
        for k in range(1, 13):
            page.mouse.move(cx - 30 + 5 * k, cy)
            page.wait_for_timeout(40)
        page.mouse.up()
        page.wait_for_function("document.querySelector('#hr-last-edit').innerText.includes('FT +')",
                               timeout=30_000)
        edit = _region_counts(page.inner_text("#hr-last-edit"))
        painted = edit["FT"]
        assert painted > 20
        assert sum(v for v in edit.values() if v < 0) == -painted  # taken from other regions

        # re-apply the soft-tissue split (bone and the stroke stay), then save again
        page.click("#hr-refine-split")
        page.wait_for_function("document.querySelector('#hr-refine-result').innerText"
                               ".includes('Soft-tissue split')", timeout=60_000)
        page.click("#hr-save")
        text = _wait_message(page, "saved", "kept as leg.previous-")
        page.screenshot(path=str(data_dir.parent / "web-app.png"))
        shot = os.environ.get("HRPQCT_WEB_SCREENSHOT")
        if shot:
            page.screenshot(path=shot)

        # radiomics + classify of the corrected segmentation, one slice (the bundled demo
        # classifier): the tables, the demo warning and the plot
        page.fill("#hr-an-slices", "0")
        page.click("#hr-analyse")
        page.wait_for_function("!document.querySelector('#hr-analysis-cancel').disabled",
                               timeout=20_000)
        page.wait_for_selector("#hr-prediction", timeout=420_000)
        features = page.inner_text("#hr-features")
        for code in ("TC", "TT", "FC", "FT", "MT", "AT"):
            assert re.search(rf"^{code}\s", features, re.M), features
        prediction = page.inner_text("#hr-prediction")
        assert "patient level" in prediction and "region MT" in prediction
        p_main = float(re.search(r"patient level[^\n]*?\s(0\.\d{3}|1\.000)\s", prediction).group(1))
        assert 0.0 <= p_main <= 1.0
        assert "osteoporosis" in prediction
        assert "synthetic phantoms" in page.inner_text("#hr-demo-warning")
        assert page.locator("#hr-prob-plot").get_attribute("src").startswith("data:image/png")
        browser.close()

    # on disk: the earlier version kept byte for byte, the new one with the stroke
    previous = sorted(data_dir.glob("leg.previous-*.seg.nrrd"))
    assert len(previous) == 1 and _sha(previous[0]) == first_sha
    import slicerio

    seg = slicerio.read_segmentation(str(seg_file), skip_voxels=True)
    segments = {s["id"]: s for s in seg["segments"]}
    assert list(segments) == [r.segment_id for r in REGIONS]
    for r in REGIONS:
        assert segments[r.segment_id]["name"] == r.name
        assert np.allclose(segments[r.segment_id]["color"], r.color_float, atol=1e-3)
    final = read_segmentation_file(seg_file).array
    fibula_t = next(r.label for r in REGIONS if r.code == "FT")
    gained = (final == fibula_t) & (first != fibula_t)
    assert int(gained.sum()) == painted
    zz, yy, xx = np.nonzero(gained)  # one compact stroke near the middle of the scan
    assert np.ptp(yy) < final.shape[1] / 2 and np.ptp(xx) < final.shape[2] / 2
    assert int(np.count_nonzero(final != first)) >= painted


def test_token_is_required_when_set(data_dir):
    """``--token``: a page without it (or with another) gets no connection, hence no controls."""
    from playwright.sync_api import sync_playwright

    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "hrpqct", "serve", "--port", str(port),
                             "--data", str(data_dir), "--token", "t0ken-for-test"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=str(data_dir))
    url = f"http://127.0.0.1:{port}/"
    try:
        t0 = time.time()
        while True:
            try:
                with urllib.request.urlopen(url, timeout=2):
                    break
            except OSError:
                assert proc.poll() is None and time.time() - t0 < 120, "server did not start"
                time.sleep(0.5)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                         args=["--no-sandbox", "--disable-gpu"])
            seen = {}
            for query in ("", "?secret=wrong", "?secret=t0ken-for-test"):
                page = browser.new_page()
                page.goto(url + query)
                try:
                    page.wait_for_selector("#hr-open", timeout=10_000)
                    seen[query] = True
                except Exception:  # noqa: BLE001  playwright's TimeoutError
                    seen[query] = False
                page.close()
            browser.close()
        assert seen == {"": False, "?secret=wrong": False, "?secret=t0ken-for-test": True}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
