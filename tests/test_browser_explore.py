"""The see-inside page in Chromium (Playwright, as tests/test_browser.py): the overview's columns and
shapes, detail views whose arithmetic equals the network's activation, Grad-CAM, Korean, a photo model,
keyboard use and a 375 px phone screen. Skips like test_browser.py without playwright or Chromium."""

import os

import pytest
from conftest import require
from test_browser import ARGS, CHROMIUM, _playwright, draw_seven
from test_serve import make_checkpoint, png_bytes
from test_serve_explore import photo_checkpoint

from cnnlab.serve.launch import running_server

CHAPTER_SHAPES = [
    "16×24×24", "16×24×24", "32×20×20", "32×20×20", "32×10×10", "64×6×6", "64×6×6", "64×3×3",
    "576", "100", "100", "10", "10",
]  # fmt: skip


@pytest.fixture(scope="module")
def browser():
    sync_playwright = _playwright()
    require(sync_playwright is not None, "playwright is not installed", env="CNNLAB_REQUIRE_BROWSER")
    require(CHROMIUM.is_file(), f"Chromium not found at {CHROMIUM}", env="CNNLAB_REQUIRE_BROWSER")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def digit_server(tmp_path_factory):
    ckpt = os.environ.get("CNNLAB_SERVE_CHECKPOINT") or make_checkpoint(tmp_path_factory.mktemp("ckpt"))
    with running_server(ckpt, "--log-level", "warning", log_dir=tmp_path_factory.mktemp("log")) as server:
        yield server


def open_page(browser, url, width=1200, locale="en-US"):
    page = browser.new_page(viewport={"width": width, "height": 900}, locale=locale)
    page.problems = []
    page.on("console", lambda m: m.type == "error" and page.problems.append(m.text))
    page.on("pageerror", lambda e: page.problems.append(str(e)))
    page.goto(url)
    page.wait_for_function("() => document.getElementById('bars').children.length > 0")
    return page


def drawn(page):
    draw_seven(page)
    page.wait_for_function("() => document.querySelectorAll('#columns .col').length > 0")
    page.wait_for_function("() => document.getElementById('status').textContent.length > 0")


def open_unit(page, col: int, unit: int = 0):
    page.locator(f'#columns .unit[data-col="{col}"][data-unit="{unit}"]').click()
    page.wait_for_selector(f'#detail > div[data-at="{col}-{unit}"]')


def shown(page, id_: str) -> float:
    return float(page.get_attribute(f"#{id_}", "data-value"))


@pytest.fixture(scope="module")
def page(browser, digit_server):
    page = open_page(browser, digit_server.url)
    drawn(page)
    yield page
    page.close()


def test_overview_columns_have_the_chapter_shapes(page):
    shapes = page.eval_on_selector_all("#columns .col", "cols => cols.map(c => c.dataset.shape)")
    assert shapes == CHAPTER_SHAPES
    assert page.locator('#columns .unit[data-col="0"]').count() == 16  # every filter of the first conv
    page.locator('#columns .unit[data-col="2"][data-unit="3"]').hover()
    assert page.locator("#links line").count() == 16  # a conv map is fed by every map before it
    page.locator('#columns .unit[data-col="3"][data-unit="3"]').hover()
    assert page.locator("#links line").count() == 1  # a ReLU map by its own map only


@pytest.mark.parametrize("col, unit", [(0, 2), (2, 5), (5, 30)])
def test_conv_detail_sum_equals_the_activation(page, col, unit):
    open_unit(page, col, unit)
    assert page.get_attribute("#detail > div", "data-kind") == "conv"
    for _ in range(3):  # a few positions across the map
        assert shown(page, "detail-sum") == pytest.approx(shown(page, "detail-activation"), abs=2e-4)
        page.click("#detail-step")
    assert page.locator("#detail .channel").count() == min(3, 1 if col == 0 else 16)


@pytest.mark.parametrize("col", [1, 4, 11])  # ReLU, max-pool, fully connected
def test_other_details_agree_with_the_network(page, col):
    open_unit(page, col, 1)
    if col != 11:
        page.click("#detail-step")
    assert shown(page, "detail-sum") == pytest.approx(shown(page, "detail-activation"), abs=2e-4)


def test_softmax_detail_sums_to_one(page):
    open_unit(page, 12, 0)
    probs = page.eval_on_selector_all(
        "table.softmax tr[data-p]", "rows => rows.map(r => Number(r.dataset.p))"
    )
    bars = page.eval_on_selector_all("#bars .bar-row", "rows => rows.map(r => Number(r.dataset.p))")
    assert len(probs) == 10 and sum(probs) == pytest.approx(1, abs=1e-9)
    assert probs == pytest.approx(bars, abs=1e-5)  # the page's own exp/sum equals the server's softmax
    assert shown(page, "detail-sum") == pytest.approx(1, abs=1e-9)


def test_gradcam_overlay_and_a_clicked_class(page):
    overlay = page.locator("#gradcam-overlay")
    assert overlay.is_visible()
    assert page.eval_on_selector("#gradcam-overlay", "i => i.naturalWidth") == 28
    best = page.get_attribute("#bars .bar-row.best", "data-index")
    assert overlay.get_attribute("data-class") == best
    other = "3" if best != "3" else "4"
    page.click(f'#bars .bar-row[data-index="{other}"] .bar-label')
    page.wait_for_function(f"() => document.getElementById('gradcam-overlay').dataset.class === '{other}'")
    page.uncheck("#gradcam-on")
    assert not overlay.is_visible()
    page.check("#gradcam-on")
    assert page.problems == []


def test_keyboard_opens_a_detail(page):
    page.locator('#columns .unit[data-col="4"][data-unit="0"]').focus()
    page.keyboard.press("Enter")
    page.wait_for_function("() => document.querySelector('#detail > div')?.dataset.kind === 'maxpool'")


def test_korean(browser, digit_server):
    page = open_page(browser, digit_server.url + "?lang=ko")
    assert page.eval_on_selector("html", "h => h.lang") == "ko"
    assert "한눈에" in page.text_content("#overview-title") and "파라미터" in page.text_content("#model-info")
    drawn(page)
    kinds = page.eval_on_selector_all("#columns .col-kind", "k => k.map(e => e.textContent)")
    assert kinds[:2] == ["합성곱", "렐루"] and kinds[-1] == "소프트맥스"
    page.select_option("#lang", "en")
    page.wait_for_function(
        "() => document.getElementById('overview-title').textContent.startsWith('Overview')"
    )
    assert page.eval_on_selector("html", "h => h.lang") == "en" and "lang=en" in page.url
    page.close()
    page = open_page(browser, digit_server.url, locale="ko-KR")  # the browser's language is the default
    assert page.eval_on_selector("html", "h => h.lang") == "ko"
    page.close()


def test_phone_width_has_no_horizontal_scroll(browser, digit_server):
    page = open_page(browser, digit_server.url, width=375)
    drawn(page)
    open_unit(page, 2, 0)
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 375
    assert page.problems == []
    page.close()


def test_photo_model_shows_upload_and_class_names(browser, tmp_path):
    with running_server(photo_checkpoint(tmp_path), "--log-level", "warning", log_dir=tmp_path) as server:
        page = open_page(browser, server.url)
        assert page.locator("#photo-mode").is_visible() and not page.locator("#pad").is_visible()
        assert page.get_attribute("#photo", "accept") == "image/*" and page.get_attribute("#photo", "capture")
        assert page.text_content("#draw-title") == "Upload a photo"
        labels = page.eval_on_selector_all("#bars .bar-label", "b => b.map(e => e.textContent)")
        assert labels == ["cat", "dog", "fox"]
        from PIL import Image

        photo = {
            "name": "p.png",
            "mimeType": "image/png",
            "buffer": png_bytes(Image.new("RGB", (90, 60), "teal")),
        }
        page.set_input_files("#photo", files=[photo])
        page.wait_for_function("() => document.getElementById('status').textContent.startsWith('answered')")
        assert page.text_content("#label") in labels
        assert page.locator("#photo-preview").is_visible()
        assert page.problems == []
        page.close()
