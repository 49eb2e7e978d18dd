"""DDP on CPU (gloo): torchrun with 2 processes, `cnnlab train --nproc 2`, two single-process
torchrun "nodes" joined by c10d rendezvous on 127.0.0.1, and SIGTERM + resume under DDP.

205 training images in batches of 64: the last global batch (13 images) splits unevenly, 7 + 6.
Every process uses one thread, so the multi-process runs are bit-identical to each other and
allclose to the single-process run (whose sums are merely ordered differently).
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from slow_steps import slow_steps

ARGS = [
    "--dataset", "mnist-sample", "--limit-train", "205", "--batch-size", "64", "--width", "0.5",
    "--epochs", "2", "--seed", "1", "--threads", "1",
]  # fmt: skip
TIMING = ("images_per_second", "seconds")
ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}


def weights(out: Path) -> dict[str, torch.Tensor]:
    return load_file(str(out / "last.safetensors"))


def metrics(out: Path) -> list[dict]:
    import csv

    with open(out / "metrics.csv") as f:
        return [{k: v for k, v in r.items() if k not in TIMING} for r in csv.DictReader(f)]


def assert_equal(a: Path, b: Path) -> None:
    wa, wb = weights(a), weights(b)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert metrics(a) == metrics(b)


def assert_close(a: Path, b: Path) -> None:
    wa, wb = weights(a), weights(b)
    for k in wa:
        torch.testing.assert_close(wa[k], wb[k], rtol=1e-5, atol=1e-6)
    for ra, rb in zip(metrics(a), metrics(b), strict=True):
        for key in ("train_loss", "test_loss", "test_accuracy"):
            assert float(ra[key]) == pytest.approx(float(rb[key]), rel=1e-5), key


def torchrun(*args: str) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", *args, "-m", "cnnlab", "train", *ARGS]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("ddp")


@pytest.fixture(scope="module")
def one_process(runs) -> Path:
    from conftest import run_cli

    run_cli("train", *ARGS, "--out", str(runs / "one"))
    return runs / "one"


@pytest.fixture(scope="module")
def nproc_two(runs) -> Path:
    """`cnnlab train --nproc 2 --json`: the launcher re-runs itself under torchrun."""
    from conftest import run_cli

    proc = run_cli("train", *ARGS, "--out", str(runs / "nproc"), "--nproc", "2", "--json")
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stdout  # only rank 0 prints the summary
    assert json.loads(lines[0])["epochs"] == 2
    assert "Traceback" not in proc.stderr
    return runs / "nproc"


def test_nproc_two_matches_one_process(one_process, nproc_two):
    assert_close(one_process, nproc_two)


def test_torchrun_two_processes_match(one_process, nproc_two, runs):
    out = runs / "torchrun"
    cmd = torchrun("--standalone", "--nproc_per_node", "2")
    proc = subprocess.run([*cmd, "--out", str(out)], capture_output=True, text=True, env=ENV, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("epoch   1:") == 1  # only rank 0 logs
    assert_close(one_process, out)
    assert_equal(nproc_two, out)


def test_two_nodes_form_one_job(nproc_two, runs):
    out, port = runs / "nodes", free_port()
    rdzv = ["--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{port}", "--rdzv-id", "cnnlab-test"]
    nodes = [
        subprocess.Popen(
            [
                *torchrun("--nnodes", "2", "--nproc_per_node", "1", "--node_rank", str(i), *rdzv),
                "--out",
                str(out),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=ENV,
        )
        for i in range(2)
    ]
    results = [n.communicate(timeout=300) for n in nodes]
    for node, (_, err) in zip(nodes, results):
        assert node.returncode == 0, err[-3000:]
    assert "2 process(es)" in "".join(o for o, _ in results)
    assert_equal(nproc_two, out)


def test_sigterm_under_ddp_then_resume_is_bit_identical(nproc_two, runs):
    out = runs / "stopped"
    launcher = subprocess.Popen(
        [sys.executable, "-m", "cnnlab", "train", *ARGS, "--out", str(out), "--nproc", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**ENV, **slow_steps(runs / "site", 0.3)},  # signal lands in epoch 2
    )
    deadline = time.monotonic() + 240
    while not (out / "metrics.csv").exists():  # epoch 1 done: the signal lands in epoch 2
        assert launcher.poll() is None and time.monotonic() < deadline, launcher.communicate()[1][-3000:]
        time.sleep(0.05)
    time.sleep(0.4)
    launcher.send_signal(signal.SIGTERM)  # torchrun's agent forwards it to both workers
    _, err = launcher.communicate(timeout=120)
    assert launcher.returncode == 143, err[-3000:]
    assert err.count("stopped by SIGTERM") == 1 and "Traceback" not in err
    assert torch.load(out / "state.pt", weights_only=True)["progress"]["epoch"] == 2

    from conftest import run_cli

    run_cli("train", "--resume", "--out", str(out), "--nproc", "2")
    assert_equal(nproc_two, out)


def test_folder_dataset_two_processes_match_one(tmp_path):
    """A folder of images under DDP: rank 0 decodes into the cache while rank 1 waits, both map it;
    2 processes train like 1 (~20 s)."""
    from conftest import run_cli
    from folder_images import make_folder, mnist_sample_test

    x, y = mnist_sample_test(20)
    make_folder(tmp_path / "data", x, y, [str(i) for i in range(10)])
    env = {"CNNLAB_CACHE": str(tmp_path / "cache")}
    # the chapter's settings: no BatchNorm or augmentation, whose statistics and draws differ per rank
    args = ["--dataset", str(tmp_path / "data"), "--recipe", "chapter", "--batch-size", "64", "--width", "0.5",
            "--epochs", "2", "--seed", "1", "--threads", "1"]  # fmt: skip
    proc = run_cli("train", *args, "--out", str(tmp_path / "two"), "--nproc", "2", env=env)
    assert proc.stdout.count("skipped 1 unreadable") == 1  # the report comes from rank 0 only
    entries = sorted(p.name for p in (tmp_path / "cache" / "decoded").iterdir())
    assert len(entries) == 3 and not any(e.startswith(".") for e in entries)  # check, decode, manifest: once
    run_cli("train", *args, "--out", str(tmp_path / "one"), env=env)
    assert_close(tmp_path / "one", tmp_path / "two")
    assert (tmp_path / "one" / "split.json").read_text() == (tmp_path / "two" / "split.json").read_text()
