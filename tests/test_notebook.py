"""docs/chapter5.ipynb: committed without outputs, and executed top to bottom (nbclient) on the bundled
sample in a kernel running this very interpreter, so the notebook can never silently rot."""

import os
import sys
import time
from pathlib import Path

import nbclient  # dev extra: a missing package fails the suite instead of skipping the notebook
import nbformat
from ipykernel.kernelspec import install

NOTEBOOK = Path(__file__).resolve().parents[1] / "docs" / "chapter5.ipynb"


def test_notebook_is_committed_without_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert len(code) >= 10
    for cell in code:
        assert cell.outputs == [] and cell.execution_count is None, cell.source[:80]


def test_notebook_runs_top_to_bottom(tmp_path, monkeypatch):
    # Kernel spec "python3" pointing at sys.executable (pip's own spec says "python", whatever PATH finds).
    install(prefix=str(tmp_path), kernel_name="python3")
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "share" / "jupyter"))
    src = str(Path(__file__).resolve().parents[1] / "src")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([src, os.environ.get("PYTHONPATH", "")]))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(NOTEBOOK, as_version=4)
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
    print(f"notebook executed in {seconds:.1f} s with {sys.executable}")
