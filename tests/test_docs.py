"""The README and docs/ hold together: every relative link and #anchor resolves, the README stays a page
read in one sitting, the reference pages list what they claim to list (every `train` option, every
module), and docs/python.md's example runs as written."""

import re
from dataclasses import fields
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", ROOT / "README.ko.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"!?\[(?:[^\]]|\][^(])*\]\(([^)\s]+)\)")  # [text](target) and ![alt](target)


def prose(text: str) -> str:
    """The Markdown outside fenced code blocks and inline code (where `](` or `#` are not markup)."""
    text = re.sub(r"^(```|~~~).*?^\1[^\n]*$", "", text, flags=re.S | re.M)
    return re.sub(r"`[^`\n]*`", "``", text)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: the rendered text, lower case, punctuation dropped, spaces -> '-'."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link: its text
    text = re.sub(r"[`*]", "", text).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    for line in re.sub(r"^(```|~~~).*?^\1[^\n]*$", "", page.read_text(), flags=re.S | re.M).splitlines():
        m = re.match(r"#{1,6} (.+?)\s*#*\s*$", line)
        if m:
            base = slug(m.group(1))
            n = seen.get(base, 0)
            seen[base] = n + 1
            out.add(base if n == 0 else f"{base}-{n}")  # GitHub numbers repeated headings
    return out


def test_slug_follows_github():
    assert slug("Precision: `--precision auto|fp32|bf16`") == "precision---precision-autofp32bf16"
    assert slug("Where the chapter's numbers are off") == "where-the-chapters-numbers-are-off"
    assert slug("Language / 언어") == "language--언어"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_and_anchors_resolve(page):
    targets = LINK.findall(prose(page.read_text()))
    assert targets or page.parent.name == "docs", f"{page.name}: no links found (is the pattern broken?)"
    broken = []
    for target in targets:
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto:, ...: not checked here
            continue
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists():
            broken.append(f"{target}: no such file")
        elif anchor and file.suffix == ".md" and anchor not in anchors(file):
            broken.append(f"{target}: no heading #{anchor} in {file.name}")
    assert not broken, f"{page.relative_to(ROOT)}: " + "; ".join(broken)


def test_readme_is_read_in_one_sitting():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 300
    # the two commands of its promise, and CI runs the README's test command
    assert "make demo" in readme and "make test" in readme
    assert re.search(r"^make test$", (ROOT / ".ci" / "run").read_text(), re.M)
    assert readme.index("## How it is built") < readme.index("## What most people do")


def test_readme_map_names_every_package_folder():
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## How it is built") :]
    section = section[: section.index("\n## ", 3)]
    folders = [p.name for p in (ROOT / "src" / "cnnlab").iterdir() if (p / "__init__.py").is_file()]
    assert folders and [f for f in folders if f"  {f}/" not in section] == [], (
        "add a line to the README's map"
    )


def test_layout_page_names_every_module():
    layout = (ROOT / "docs" / "layout.md").read_text()
    modules = sorted((ROOT / "src" / "cnnlab").rglob("*.py"))
    assert modules
    missing = [str(m.relative_to(ROOT)) for m in modules if "bundled" not in m.parts and m.name not in layout]
    assert missing == [], "add a line for each to docs/layout.md"


def test_training_page_lists_every_option():
    from cnnlab.training.config import TrainConfig

    page = (ROOT / "docs" / "training.md").read_text()
    flags = [f"--{f.name.replace('_', '-')}" for f in fields(TrainConfig)]
    missing = [f for f in flags if not re.search(rf"--(\[no-\])?{f[2:]}(?![\w-])", page)]
    assert flags and missing == [], "add them to the table of docs/training.md"


def test_python_page_example_runs(tmp_path, monkeypatch):
    """docs/python.md's block, run as written except for a shorter training run (as the README's block
    in tests/test_api.py)."""
    page = (ROOT / "docs" / "python.md").read_text()
    code = re.search(r"```python\n(.*?)```", page, re.S).group(1)
    assert "epochs=2" in code
    code = code.replace("epochs=2", "epochs=1, max_steps=2, limit_train=512")
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "docs/python.md", "exec"), {})
    assert (tmp_path / "runs/py/best.safetensors").is_file() and (tmp_path / "feature-maps.png").is_file()
