"""The `cnnlab serve` page in a real browser: Playwright driving Debian's headless Chromium, launched by
path (a test tool's own browser download cannot work offline).

Skips with the reason when playwright or Chromium is missing, except with CNNLAB_REQUIRE_BROWSER=1 (CI):
then it fails. CNNLAB_SERVE_CHECKPOINT serves that checkpoint instead of an untrained one (a trained
model makes a better picture); CNNLAB_UPDATE_DOCS=1 also copies the screenshot to docs/img/serve.png.
"""

import io
import os
import shutil
from pathlib import Path

import pytest
from conftest import ROOT, require
from PIL import Image
from test_serve import digit, make_checkpoint

from cnnlab.core.sizes import output_size
from cnnlab.errors import CnnlabError
from cnnlab.serve.launch import running_server

CHROMIUM = Path(os.environ.get("CNNLAB_CHROMIUM", "/usr/bin/chromium"))
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def _playwright():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return None
    return sync_playwright


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    sync_playwright = _playwright()
    require(
        sync_playwright is not None,
        "playwright is not installed (pip install playwright)",
        env="CNNLAB_REQUIRE_BROWSER",
    )
    require(
        CHROMIUM.is_file(),
        f"Chromium not found at {CHROMIUM} (apt-get install chromium)",
        env="CNNLAB_REQUIRE_BROWSER",
    )
    ckpt = os.environ.get("CNNLAB_SERVE_CHECKPOINT") or make_checkpoint(tmp_path_factory.mktemp("ckpt"))
    with running_server(ckpt, "--log-level", "warning", log_dir=tmp_path_factory.mktemp("log")) as server:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.problems = []  # console errors and uncaught exceptions (a CSP violation shows up here)
            page.on("console", lambda m: m.type == "error" and page.problems.append(m.text))
            page.on("pageerror", lambda e: page.problems.append(str(e)))
            page.goto(server.url)
            page.wait_for_function(
                "() => document.getElementById('model-info').textContent.includes('parameters')"
            )
            yield page
            browser.close()


def draw_seven(page) -> None:
    box = page.locator("#pad").bounding_box()
    at = lambda fx, fy: (box["x"] + fx * box["width"], box["y"] + fy * box["height"])  # noqa: E731
    page.mouse.move(*at(0.28, 0.22))
    page.mouse.down()
    for point in (at(0.72, 0.22), at(0.42, 0.82)):
        page.mouse.move(*point, steps=12)
    page.mouse.up()


def wait_for_prediction(page, previous: str = "") -> None:
    # predicates are functions, not bare expressions: Playwright evals bare ones, which the page's CSP forbids
    page.wait_for_function(
        "prev => document.querySelector('#bars .bar-row.best') && document.getElementById('status').textContent.startsWith('answered') && document.getElementById('input-preview').src !== prev",
        arg=previous,
    )


def test_draw_a_digit_and_see_the_network_think(page, tmp_path):
    draw_seven(page)
    wait_for_prediction(page)
    probs = page.eval_on_selector_all("#bars .bar-row", "rows => rows.map(r => Number(r.dataset.p))")
    assert len(probs) == 10 and sum(probs) == pytest.approx(1.0, abs=1e-4)
    best = page.eval_on_selector("#bars .bar-row.best .bar-label", "e => e.textContent")
    assert page.text_content("#label") == best and best in [str(i) for i in range(10)]
    assert probs[int(best)] == max(probs)
    assert page.eval_on_selector("#input-preview", "img => [img.complete, img.naturalWidth]") == [True, 28]

    # one picture per conv layer, every one decoded by the browser
    page.wait_for_function("() => [...document.querySelectorAll('img.fmap')].every(i => i.complete)")
    widths = page.eval_on_selector_all("img.fmap", "imgs => imgs.map(i => i.naturalWidth)")
    assert len(widths) == 3 and all(w > 0 for w in widths)

    shot = tmp_path / "serve.png"
    page.screenshot(path=str(shot), full_page=True)
    assert Image.open(shot).size[0] == 1200
    if os.environ.get("CNNLAB_UPDATE_DOCS"):
        (ROOT / "docs" / "img").mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, ROOT / "docs" / "img" / "serve.png")
    assert page.problems == []


def test_click_a_layer_to_enlarge_it(page):
    page.locator("button.layer").nth(1).click()
    assert page.eval_on_selector("#zoom", "d => d.open")
    assert page.text_content("#zoom-title").startswith(
        page.locator("button.layer").nth(1).get_attribute("data-name")
    )
    assert page.eval_on_selector("#zoom-img", "i => i.naturalWidth") > 0
    page.click("#zoom-close")
    assert not page.eval_on_selector("#zoom", "d => d.open")


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def test_upload_a_blank_image_then_a_digit(page):
    blank = {"name": "blank.png", "mimeType": "image/png", "buffer": _png(Image.new("L", (64, 64), 255))}
    page.set_input_files("#upload", files=[blank])
    page.wait_for_function("() => document.getElementById('status').classList.contains('error')")
    assert "image is blank" in page.text_content("#status")
    # Chromium logs every 4xx as a console error; this one is the answer the test asked for
    page.problems[:] = [p for p in page.problems if "status of 400" not in p]
    assert page.text_content("#label") == "–"

    previous = page.get_attribute("#input-preview", "src")
    page.set_input_files("#upload", files=[{"name": "1.png", "mimeType": "image/png", "buffer": digit("1")}])
    wait_for_prediction(page, previous)
    assert not page.eval_on_selector("#status", "s => s.classList.contains('error')")
    page.click("#clear")
    assert page.text_content("#label") == "–"


@pytest.mark.parametrize(
    "i, k, s, p", [(5, 3, 1, 0), (7, 3, 2, 1), (9, 4, 3, 2), (6, 2, 2, 0), (3, 5, 1, 0), (4, 7, 1, 1)]
)
def test_convolution_panel_output_size_matches_the_library(page, i, k, s, p):
    for field, value in (("i", i), ("k", k), ("s", s), ("p", p)):
        page.fill(f"#conv-{field}", str(value))
    try:
        expected = output_size(i, k, s, p)
    except CnnlabError:
        expected = None
    shown = page.get_attribute("#conv-size", "data-size")
    assert shown == ("" if expected is None else str(expected))
    cells = page.locator("#conv-output .cell").count()
    assert cells == (expected or 0) ** 2
    if expected:
        page.click("#conv-step")
        assert page.locator("#conv-output .cell.cur").count() == 1
        assert page.text_content("#conv-sum").startswith(
            "output[0][1] =" if expected > 1 else "output[0][0] ="
        )
    assert page.problems == []
