"""Shared fixtures. Tests needing ../shared/data skip off CI, and fail on CI (CNNLAB_REQUIRE_SHARED=1)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("CNNLAB_SHARED_DATA", ROOT.parent / "shared" / "data"))

# The suite checks English text: a developer's Korean locale must not change what the CLI runs print (tests of
# the language choice pass their own CNNLAB_LANG/LANG; an empty CNNLAB_LANG counts as unset).
os.environ["CNNLAB_LANG"] = "en"

if os.environ.get("PYTEST_XDIST_WORKER"):
    # `make test` runs one pytest worker per core: one torch thread each (inherited by the CLI runs the tests
    # start), or every worker's OpenMP threads spin-wait for cores the other workers hold (BENCHMARKS.md:
    # a 2-thread run on a busy machine took 5x the CPU time of a 1-thread run)
    os.environ.setdefault("OMP_NUM_THREADS", "1")


def require(condition: bool, reason: str, env: str = "CNNLAB_REQUIRE_SHARED") -> None:
    """Skip with `reason` unless `env` is set (CI sets it), in which case fail loudly instead."""
    if condition:
        return
    if os.environ.get(env):
        pytest.fail(f"{reason} (and {env} is set, so this must run)")
    pytest.skip(reason)


@pytest.fixture
def shared_data() -> Path:
    require((SHARED_DATA / "mnist").is_dir(), f"real datasets not found at {SHARED_DATA}")
    return SHARED_DATA


def run_cli(*args: str, check: bool = True, env: dict | None = None, timeout: float = 600, cwd=None):
    """Run the real `cnnlab` CLI in a subprocess; returns CompletedProcess with text output."""
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    proc = subprocess.run(
        [sys.executable, "-m", "cnnlab", *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
        cwd=cwd,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"cnnlab {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return proc


@pytest.fixture
def cli():
    return run_cli


MNIST_META = {
    "dataset": "mnist-sample",
    "classes": [str(i) for i in range(10)],
    "mean": [0.1307],
    "std": [0.3081],
    "input_shape": [1, 28, 28],
}


def untrained_checkpoint(
    stem: Path, name: str = "chapter-cnn", width: float = 1.0, classes: list[str] | None = None, **meta
) -> Path:
    """An untrained 1x28x28 checkpoint saved as `cnnlab train` does; tests of plumbing need no training.
    `classes` replaces MNIST's digit names (and sets the number of outputs); `meta` adds or replaces
    metadata fields (e.g. `dataset="mnist", config={"tta": True}` for a run on full MNIST with TTA).
    The one helper for this: benchmarks/load_check.py imports it too."""
    import torch

    from cnnlab.checkpoint import save_checkpoint
    from cnnlab.models import get_model

    torch.manual_seed(0)
    meta = {**MNIST_META, "classes": classes or MNIST_META["classes"], **meta}
    kwargs = {"num_classes": len(meta["classes"]), "in_channels": 1, "input_size": 28, "width": width}
    model = get_model(name, **kwargs).eval()
    return save_checkpoint(stem, model, {"model": name, "model_kwargs": kwargs, **meta})


@pytest.fixture
def server(tmp_path):
    """A local HTTP server on 127.0.0.1 serving tmp_path/www: (that folder, its base URL). A mirror for
    downloads (weights, dataset files) with no network."""
    import http.server
    import threading
    from functools import partial

    root = tmp_path / "www"
    root.mkdir()
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.RequestHandlerClass.log_message = lambda *a: None
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
