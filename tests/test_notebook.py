"""docs/chapter5.ipynb and its Korean twin docs/chapter5.ko.ipynb: committed without outputs, and executed top
to bottom (nbclient) on the bundled sample in a kernel running this very interpreter, so neither can
silently rot. The Korean one has the same code, Korean prose, and prints cnnlab's tables in Korean."""

import os
import re
import sys
import time
from pathlib import Path

import nbclient  # dev extra: a missing package fails the suite instead of skipping the notebook
import nbformat
import pytest
from ipykernel.kernelspec import install

DOCS = Path(__file__).resolve().parents[1] / "docs"
NOTEBOOKS = [DOCS / "chapter5.ipynb", DOCS / "chapter5.ko.ipynb"]
HANGUL = re.compile(r"[가-힣]")


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_committed_without_outputs(notebook):
    nb = nbformat.read(notebook, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert len(code) >= 10
    for cell in code:
        assert cell.outputs == [] and cell.execution_count is None, cell.source[:80]


def test_the_korean_notebook_is_the_english_one_in_korean():
    en, ko = (nbformat.read(path, as_version=4) for path in NOTEBOOKS)
    assert len(ko.cells) == len(en.cells) >= 20
    for e, k in zip(en.cells, ko.cells):
        assert e.cell_type == k.cell_type
        if k.cell_type == "markdown":  # prose: more Hangul than Latin letters (code and maths aside)
            prose = re.sub(r"`[^`]*`|\$\$?[^$]*\$\$?|\*\*[^*]*\*\*", " ", k.source)
            assert len(HANGUL.findall(prose)) > len(re.findall(r"[A-Za-z]", prose)), k.source[:60]
            assert len(HANGUL.findall(e.source)) < len(re.findall(r"[A-Za-z]", e.source))
        else:  # the same code (its comments in Korean), and one line that makes cnnlab speak Korean
            code = [line.split("  #")[0] for line in k.source.splitlines() if "set_language" not in line]
            assert code == [line.split("  #")[0] for line in e.source.splitlines()]
    assert 'cnnlab.set_language("ko")' in ko.cells[1].source


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_top_to_bottom(notebook, tmp_path, monkeypatch):
    # Kernel spec "python3" pointing at sys.executable (pip's own spec says "python", whatever PATH finds).
    install(prefix=str(tmp_path), kernel_name="python3")
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "share" / "jupyter"))
    src = str(Path(__file__).resolve().parents[1] / "src")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([src, os.environ.get("PYTHONPATH", "")]))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(notebook, as_version=4)
    client = nbclient.NotebookClient(
        nb, kernel_name="python3", timeout=300, resources={"metadata": {"path": str(tmp_path)}}
    )
    t0 = time.perf_counter()
    client.execute()  # raises CellExecutionError, with the cell and its traceback, if any cell fails
    seconds = time.perf_counter() - t0
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) >= 4  # curves, confusion, feature maps, filters show inline as PNGs
    text = "".join(o.get("text", "") for o in outputs)
    assert "28 - 5 + 2*0" in text and "576 values" in text and "1.2040" in text
    table = "".join(o.get("data", {}).get("text/plain", "") for o in nb.cells[-1].outputs)
    korean = notebook.name.endswith(".ko.ipynb")
    assert ("전체 파라미터: 123,222" if korean else "Total params: 123,222") in table
    print(f"{notebook.name} executed in {seconds:.1f} s with {sys.executable}")
