"""The Gradio web demo in a real browser (headless Chromium driven by Playwright): upload an
image, click an object, get a mask and a label; change the vocabulary, get a new label.

Skipped, with the reason, where Playwright or a system Chromium is missing
(``tools/setup_env.sh`` installs both when it can). The screenshot is saved in the test's tmp
folder and, when ``OMGSEG_SCREENSHOT_DIR`` is set, there too.
"""
import io
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import numpy as np
import pytest
from PIL import Image

from helpers_demo import DEMO_DIR, VOCABULARY, shapes_image, write_tiny_model

playwright_api = pytest.importorskip(
    "playwright.sync_api", reason="Playwright is not installed (pip install playwright)")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="no system Chromium (apt-get install chromium); Playwright's own download is not used")

CLICK = (60, 45)  # (x, y) inside the red rectangle of shapes_image()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_until_serving(proc, url: str, timeout: float = 60.0) -> None:
    start = time.time()
    while time.time() - start < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"web demo exited with {proc.returncode}: "
                               f"{proc.stdout.read()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"web demo did not serve {url} within {timeout:.0f}s")


@pytest.fixture
def web_demo(tmp_path, request):
    config = write_tiny_model(tmp_path / "model")
    port = _free_port()
    env = dict(os.environ, OMP_NUM_THREADS="1", GRADIO_ANALYTICS_ENABLED="False",
               PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [sys.executable, os.path.join(DEMO_DIR, "web_demo.py"), "--config-file", config,
         "--port", str(port), "--vocabulary", VOCABULARY, "--examples", ""],
        cwd=str(tmp_path), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )

    def stop():
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    request.addfinalizer(stop)
    url = f"http://127.0.0.1:{port}/"
    _wait_until_serving(proc, url)
    return url


def _result_image(page) -> np.ndarray:
    src = page.locator("#result_image img").first.get_attribute("src")
    body = page.request.get(src).body()
    return np.asarray(Image.open(io.BytesIO(body)).convert("RGB"))


def _labels(page) -> str:
    return page.locator("#labels textarea, #labels input").first.input_value()


def test_click_segments_and_vocabulary_relabels(web_demo, tmp_path):
    image = shapes_image()
    upload = tmp_path / "upload.png"
    Image.fromarray(image).save(upload)
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                    args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.goto(web_demo, wait_until="domcontentloaded")
            page.wait_for_selector("#input_image input[type=file]", state="attached",
                                   timeout=30000)
            page.set_input_files("#input_image input[type=file]", str(upload))
            shown = page.locator("#input_image img").first
            shown.wait_for(timeout=30000)
            page.wait_for_timeout(500)  # let the upload event settle before clicking
            box = shown.bounding_box()
            h, w = image.shape[:2]
            shown.click(position={"x": box["width"] * (CLICK[0] + 0.5) / w,
                                  "y": box["height"] * (CLICK[1] + 0.5) / h})
            page.wait_for_function(
                "() => { const t = document.querySelector('#labels textarea, #labels input');"
                " return t && t.value.length > 0 }", timeout=30000)
            first_label = _labels(page)
            overlay = _result_image(page)

            # the mask: the overlay differs from the upload inside the rectangle, away from the
            # drawn click (a dot of radius <= 5 px)
            assert overlay.shape == image.shape
            changed = np.abs(overlay.astype(int) - image.astype(int)).sum(-1) > 30
            yy, xx = np.mgrid[:h, :w]
            away = (yy - CLICK[1]) ** 2 + (xx - CLICK[0]) ** 2 > 8 ** 2
            changed_rect = changed[20:70, 30:90] & away[20:70, 30:90]
            assert changed_rect.mean() > 0.05, "no mask drawn on the clicked object"
            assert first_label in VOCABULARY.split(",")

            field = page.locator("#vocabulary textarea, #vocabulary input").first
            field.fill("delta,epsilon")
            field.press("Enter")
            page.wait_for_function(
                "() => { const t = document.querySelector('#labels textarea, #labels input');"
                f" return t && t.value.length > 0 && t.value !== {first_label!r} }}",
                timeout=30000)
            assert _labels(page) in ("delta", "epsilon")

            shot = tmp_path / "web_demo.png"
            page.screenshot(path=str(shot), full_page=True)
            extra = os.environ.get("OMGSEG_SCREENSHOT_DIR")
            if extra:
                os.makedirs(extra, exist_ok=True)
                shutil.copy(shot, os.path.join(extra, "web_demo.png"))
        finally:
            browser.close()
