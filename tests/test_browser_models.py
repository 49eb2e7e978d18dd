"""Every overview column of every kind of model, clicked in Chromium (Playwright, as tests/test_browser.py),
and class names shown whole.

- chapter-cnn, fastnet-bn (BatchNorm), resnet18 (residual blocks, adaptive pooling) and googlenet
  (Inception blocks, ceil-mode pooling), untrained at 28 px: every column's header lies inside its column,
  and a map of every column (two where it has several) opens a detail view of its own kind whose
  arithmetic, where it has some, equals the network's activation; no console error, no page error.
- Class names ("T-shirt/top", "Ankle boot"; a real folder run with classes zero..nine trained 20 steps
  through the CLI) are written whole in the bars, the prediction, the overview and the softmax table, in
  English and Korean, at 1200 px and on a 375 px phone.
Skips like test_browser.py without playwright or Chromium.
"""

from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack

import pytest
from conftest import run_cli, untrained_checkpoint
from folder_images import make_folder, mnist_sample_test
from test_browser_explore import browser, drawn, open_page  # noqa: F401 (browser: a fixture)

from cnnlab.data.records import DATASETS
from cnnlab.serve.launch import running_server

MODELS = {"chapter-cnn": 1.0, "fastnet-bn": 1.0, "resnet18": 0.125, "googlenet": 0.25}  # name: width
FASHION = list(DATASETS["fashion-mnist"].classes)
NAMES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
TIMEOUT_MS = 15_000  # one detail answer; a broken view fails fast instead of waiting Playwright's 30 s

CLIPPED_HEADS = """() => {
  // a head line wider than its column, or left of the card's scroll area (which cannot scroll there)
  const left = document.getElementById('overview').getBoundingClientRect().left;
  const out = [];
  for (const col of document.querySelectorAll('#columns .col')) {
    const c = col.getBoundingClientRect();
    for (const e of col.querySelectorAll('.col-head > *')) {
      const r = e.getBoundingClientRect();
      const cut = e.scrollWidth > e.clientWidth + 1 || r.left < c.left - 0.5 || r.right > c.right + 0.5;
      if (cut || r.left < left - 0.5) out.push(`${col.dataset.index}: ${e.textContent}`);
    }
  }
  return out;
}"""


def open_detail(page, button) -> str:
    """Click `button`; wait for its detail (or an error); return the view's kind."""
    col = button.get_attribute("data-col")
    button.click()  # the page swaps the old view for "computing…" before the click returns
    page.wait_for_selector("#detail > div[data-at], #detail .status.error")
    errors = page.locator("#detail .status.error")
    assert errors.count() == 0, f"column {col}: {errors.first.text_content()}"
    view = page.locator("#detail > div")
    assert view.get_attribute("data-at").split("-")[0] == col
    return view.get_attribute("data-kind")


def sums_agree(page, where: str) -> None:
    """The page's own arithmetic (#detail-sum) equals the network's activation, where a view has both."""
    if page.locator("#detail-sum").count() and page.locator("#detail-activation").count():
        ours, net = (
            float(page.get_attribute(f"#{i}", "data-value")) for i in ("detail-sum", "detail-activation")
        )
        assert ours == pytest.approx(net, rel=1e-3, abs=2e-4), where


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    """A server per model (chapter-cnn's with Fashion-MNIST's class names), started side by side: each
    spends seconds importing torch before it answers."""
    base = tmp_path_factory.mktemp("servers")
    # the checkpoints first, in this thread: the model registry fills itself on first use, not thread-safely
    ckpts = {}
    for name, width in MODELS.items():
        (base / name).mkdir()
        ckpts[name] = untrained_checkpoint(
            base / name / "model", name, width, FASHION if name == "chapter-cnn" else None
        )
    with ExitStack() as stack, ThreadPoolExecutor(len(ckpts)) as pool:

        def start(name):
            cm = running_server(ckpts[name], "--log-level", "warning", log_dir=base / name)
            server = cm.__enter__()
            stack.push(cm.__exit__)  # stopped when the module's tests are done, even if another failed
            return server

        futures = {name: pool.submit(start, name) for name in ckpts}
        yield {name: f.result() for name, f in futures.items()}


@pytest.fixture(scope="module")
def folder_run(tmp_path_factory):
    """A real folder run: 120 MNIST images in class folders zero..nine, chapter-cnn trained 20 steps through
    the CLI; returns the run folder and one of its sevens."""
    base = tmp_path_factory.mktemp("words")
    x, y = mnist_sample_test(12)
    make_folder(base / "data", x, y, NAMES, junk=False)
    run_cli("train", "--dataset", str(base / "data"), "--max-steps", "20", "--batch-size", "16",
            "--threads", "1", "--out", str(base / "run"), env={"CNNLAB_CACHE": str(base / "cache")})  # fmt: skip
    return base / "run", next((base / "data" / "seven").glob("*.png"))


@pytest.mark.parametrize("model", MODELS)
def test_every_column_opens_a_detail_without_errors(browser, servers, model):  # noqa: F811
    page = open_page(browser, servers[model].url)
    page.set_default_timeout(TIMEOUT_MS)
    drawn(page)
    assert page.evaluate(CLIPPED_HEADS) == []
    kinds = page.eval_on_selector_all("#columns .col", "cols => cols.map(c => c.className.slice(9))")
    for col, kind in enumerate(kinds):
        units = page.locator(f'#columns .unit[data-col="{col}"]')
        assert units.count() > 0, f"{model} column {col} ({kind}) has no map to click"
        view = open_detail(page, units.nth(units.count() // 2))
        # the layer's own view (a block's: its output map), never a fallback
        assert view == ("map" if kind == "block" else kind), f"{model} column {col}"
        sums_agree(page, f"{model} column {col}")
        if page.locator("#detail-step").count():  # the next position adds up too
            page.click("#detail-step")
            sums_agree(page, f"{model} column {col}, one step on")
    assert page.problems == []
    page.close()


CUT_NAMES = """() => [...document.querySelectorAll(
    '#bars .bar-label, #label, #columns .vec-row > :first-child, table.softmax td:first-child')]
  .filter(e => e.scrollWidth > e.clientWidth + 1 || e.scrollHeight > e.clientHeight + 1)
  .map(e => e.textContent)"""


def check_names(page, classes: list[str], width: int) -> None:
    assert sorted(classes) == sorted(FASHION if "T-shirt/top" in classes else NAMES)
    assert page.evaluate(CLIPPED_HEADS) == []  # Korean heads too, and a column widened by long names
    # the last fully connected layer and the softmax: one row per class, each with its whole name
    names = page.eval_on_selector_all("#columns .vec-row > :first-child", "n => n.map(e => e.textContent)")
    assert names == classes * 2
    assert page.text_content("#label") in classes
    page.locator(".col.kind-softmax .unit").first.click()
    page.wait_for_selector("table.softmax")
    cells = page.eval_on_selector_all(
        "table.softmax tr[data-p] td:first-child", "c => c.map(e => e.textContent)"
    )
    assert cells == classes
    assert page.evaluate(CUT_NAMES) == []
    assert page.evaluate("() => document.documentElement.scrollWidth") <= width


def check_page(chromium, url: str, image) -> None:
    for query, width in (("", 1200), ("?lang=ko", 375)):
        page = open_page(chromium, url + query, width=width)
        page.set_default_timeout(TIMEOUT_MS)
        if image:  # the page is the drawing pad or the photo upload, as the run's preprocessing says
            page.set_input_files("#photo" if page.locator("#photo-mode").is_visible() else "#upload", image)
            page.wait_for_function("() => document.querySelectorAll('#columns .col').length > 0")
        else:
            drawn(page)
        check_names(
            page, page.eval_on_selector_all("#bars .bar-label", "b => b.map(e => e.textContent)"), width
        )
        assert page.problems == []
        page.close()


def test_fashion_class_names_are_shown_whole(browser, servers):  # noqa: F811
    check_page(browser, servers["chapter-cnn"].url, None)


def test_a_folder_runs_class_names_are_shown_whole(browser, folder_run, tmp_path):  # noqa: F811
    run, seven = folder_run
    with running_server(run, "--log-level", "warning", log_dir=tmp_path) as server:
        check_page(browser, server.url, seven)
