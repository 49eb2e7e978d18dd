"""Exact resume after SIGINT/SIGTERM, safe loading, and each training fault's message and exit code.

Runs are tiny (256 bundled MNIST images, a half-width chapter CNN) so the whole file takes about a
minute on two cores. tests/slow_steps.py slows each step from the test side (a sitecustomize module on
PYTHONPATH) so that a signal sent after epoch 1 lands at a random step of epoch 2.
"""

import csv
import os
import pickle
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from slow_steps import slow_steps

from cnnlab.errors import EXIT_OUT_FULL, CnnlabError
from cnnlab.training.config import TrainConfig

ARGS = [
    "--dataset", "mnist-sample", "--limit-train", "256", "--batch-size", "32", "--width", "0.5",
    "--epochs", "2", "--ema", "0.9", "--schedule", "cosine", "--val-split", "0.05", "--seed", "3",
]  # fmt: skip
STEPS_PER_EPOCH = 8
TIMING = ("images_per_second", "seconds")  # wall-clock columns: the only ones allowed to differ


def metrics(out: Path) -> list[dict]:
    with open(out / "metrics.csv") as f:
        return [{k: v for k, v in row.items() if k not in TIMING} for row in csv.DictReader(f)]


def assert_same_weights(a: Path, b: Path) -> None:
    ta, tb = load_file(str(a)), load_file(str(b))
    assert ta.keys() == tb.keys()
    for k in ta:
        assert torch.equal(ta[k], tb[k]), k


def clean_fail(proc, code: int, text: str) -> None:
    assert proc.returncode == code, proc.stderr[-2000:]
    assert text in proc.stderr, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """An uninterrupted run: what every resumed run must reproduce bit for bit."""
    from conftest import run_cli

    out = tmp_path_factory.mktemp("reference") / "run"
    run_cli("train", *ARGS, "--out", str(out))
    return out


def start(*args: str, env: dict) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "cnnlab", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **env},
    )


def signal_mid_epoch(proc: subprocess.Popen, out: Path, sig: int, step_delay: float) -> None:
    """Wait for epoch 1's metrics row, then send `sig` at a random moment of epoch 2."""
    deadline = time.monotonic() + 240
    while not (out / "metrics.csv").exists():
        assert proc.poll() is None, proc.communicate()[1][-2000:]
        assert time.monotonic() < deadline, "training never finished epoch 1"
        time.sleep(0.05)
    time.sleep(random.uniform(0, (STEPS_PER_EPOCH - 2) * step_delay))
    proc.send_signal(sig)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_then_resume_is_bit_identical(cli, reference, tmp_path, sig):
    out = tmp_path / "run"
    proc = start("train", *ARGS, "--out", str(out), env=slow_steps(tmp_path / "site", 0.15))
    signal_mid_epoch(proc, out, sig, 0.15)
    _, err = proc.communicate(timeout=240)
    assert proc.returncode == 128 + sig, err[-2000:]
    assert f"stopped by {signal.Signals(sig).name}" in err and "--resume" in err
    assert "Traceback" not in err
    state = torch.load(out / "state.pt", weights_only=True)
    prog = state["progress"]
    assert prog["epoch"] == 2 and 1 <= prog["batch"] <= STEPS_PER_EPOCH, prog  # stopped in epoch 2

    done = cli("train", "--resume", "--out", str(out))
    assert "resuming" in done.stdout and "Traceback" not in done.stderr
    for name in ("last.safetensors", "best.safetensors"):
        assert_same_weights(reference / name, out / name)
    assert metrics(out) == metrics(reference)


def test_sigkill_loses_at_most_checkpoint_every_steps(cli, reference, tmp_path):
    out = tmp_path / "run"
    env = slow_steps(tmp_path / "site", 0.15)
    proc = start("train", *ARGS, "--out", str(out), "--checkpoint-every", "3", env=env)
    deadline = time.monotonic() + 240
    step = 0
    while step < 9:  # the periodic state after step 9 (epoch 2, batch 1) has been written
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[1][-2000:]
        time.sleep(0.05)
        if (out / "state.pt").exists():
            step = torch.load(out / "state.pt", weights_only=True)["progress"]["step"]
    proc.kill()  # SIGKILL: no handler runs
    proc.communicate(timeout=60)
    assert step >= 9
    cli("train", "--resume", "--out", str(out))
    assert_same_weights(reference / "last.safetensors", out / "last.safetensors")
    assert metrics(out) == metrics(reference)


def test_diverging_run_stops_naming_the_step_and_keeps_last_good_checkpoint(cli, tmp_path):
    out = tmp_path / "run"
    proc = cli("train", *ARGS, "--lr", "1e6", "--checkpoint-every", "1", "--out", str(out), check=False)
    clean_fail(proc, 3, "training diverged: loss is not finite at step")
    kept = torch.load(out / "state.pt", weights_only=True)["progress"]["step"]
    assert f"(step {kept})" in proc.stderr
    bad = int(proc.stderr.split("not finite at step ")[1].split()[0])
    assert kept == bad - 1
    assert all(torch.isfinite(t).all() for t in load_file(str(out / "last.safetensors")).values())


@pytest.mark.parametrize("where", ["parent-is-file", "proc"])
def test_unwritable_out_fails_before_training(cli, tmp_path, where):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    out = blocker / "run" if where == "parent-is-file" else Path("/proc/cnnlab-forbidden")
    proc = cli("train", *ARGS, "--out", str(out), check=False)
    clean_fail(proc, 4, "is not writable")
    assert "training chapter-cnn" not in proc.stdout


def test_full_disk_fails_before_training(tmp_path, monkeypatch):
    from cnnlab.training import resume

    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(resume.shutil, "disk_usage", lambda p: usage._replace(free=4096))
    from cnnlab.models import get_model

    model = get_model("chapter-cnn", num_classes=10, in_channels=1, input_size=28)
    with pytest.raises(CnnlabError, match="MiB free") as e:
        resume.check_free_space(tmp_path, TrainConfig(), model)
    assert e.value.exit_code == EXIT_OUT_FULL


def test_full_disk_cli(tmp_path):
    """The real CLI with disk_usage faked to report 4 KiB free."""
    code = (
        "import shutil, sys; from cnnlab import cli; from cnnlab.training import resume; u = shutil.disk_usage('.');"
        "resume.shutil.disk_usage = lambda p: u._replace(free=4096); cli.main(sys.argv[1:])"
    )
    args = ["train", *ARGS, "--out", str(tmp_path / "run")]
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=300)
    clean_fail(proc, EXIT_OUT_FULL, "this run's checkpoints need about")
    assert not (tmp_path / "run" / "metrics.csv").exists()


def test_second_run_into_same_out_is_refused(cli, reference, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(reference, out)
    before = (out / "last.safetensors").read_bytes()
    proc = cli("train", *ARGS, "--out", str(out), check=False)
    clean_fail(proc, 6, "already holds a run; use --resume")
    assert (out / "last.safetensors").read_bytes() == before
    cli("train", *ARGS, "--out", str(out), "--overwrite", "--max-steps", "2")
    assert len(metrics(out)) == 1  # replaced, not appended to


def test_truncated_checkpoints_give_clear_errors(cli, reference, tmp_path):
    weights = tmp_path / "last.safetensors"
    data = (reference / "last.safetensors").read_bytes()
    weights.write_bytes(data[: len(data) // 2])
    clean_fail(cli("eval", str(weights), check=False), 7, "truncated or corrupt")

    out = tmp_path / "run"
    shutil.copytree(reference, out)
    state = (out / "state.pt").read_bytes()
    (out / "state.pt").write_bytes(state[: len(state) // 2])
    clean_fail(cli("train", "--resume", "--out", str(out), check=False), 7, "state.pt: truncated or corrupt")


def test_mismatched_checkpoint_gives_clear_error(cli, reference, tmp_path):
    from safetensors import safe_open

    with safe_open(str(reference / "last.safetensors"), framework="pt") as f:
        header = f.metadata()
    tensors = load_file(str(reference / "last.safetensors"))
    first = next(iter(tensors))
    tensors[first] = torch.zeros(3, 3)  # wrong shape for this model
    bad = tmp_path / "bad.safetensors"
    save_file(tensors, str(bad), metadata=header)
    clean_fail(cli("eval", str(bad), check=False), 7, "weights do not match model")


def test_resume_refuses_other_settings(cli, reference, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(reference, out)
    proc = cli("train", "--resume", "--out", str(out), "--lr", "0.5", check=False)
    clean_fail(proc, 2, "was saved with other settings: --lr 0.5")


class Exploit:
    """Unpickling this runs a shell command: exactly what a hostile checkpoint would do."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("how", ["torch.save", "pickle.dump"])
def test_malicious_pickle_checkpoint_runs_nothing(cli, tmp_path, how):
    marker = tmp_path / "pwned"
    evil = tmp_path / ("evil.pt" if how == "torch.save" else "evil.pth")
    payload = {"meta": {"model": "chapter-cnn"}, "model": Exploit(marker)}
    if how == "torch.save":
        torch.save(payload, evil)
    else:
        evil.write_bytes(pickle.dumps(payload))
    clean_fail(cli("eval", str(evil), check=False), 8, "refused to load")
    assert not marker.exists()


def test_malicious_resume_state_runs_nothing(cli, reference, tmp_path):
    marker = tmp_path / "pwned"
    out = tmp_path / "run"
    shutil.copytree(reference, out)
    torch.save({"format": "cnnlab-state/1", "progress": Exploit(marker)}, out / "state.pt")
    proc = cli("train", "--resume", "--out", str(out), check=False)
    clean_fail(proc, 8, "state.pt: refused to load")
    assert "GLOBAL posix.system" in proc.stderr
    assert not marker.exists()


def test_resume_state_loads_as_checkpoint(cli, reference):
    """state.pt is itself a weights_only-loadable checkpoint (the raw, non-EMA weights)."""
    proc = cli("eval", str(reference / "state.pt"), "--json")
    assert '"accuracy"' in proc.stdout


def test_deterministic_runs_are_bit_identical(cli, tmp_path):
    args = [*ARGS, "--epochs", "1", "--deterministic"]
    cli("train", *args, "--out", str(tmp_path / "a"))
    cli("train", *args, "--out", str(tmp_path / "b"))
    assert_same_weights(tmp_path / "a" / "last.safetensors", tmp_path / "b" / "last.safetensors")
    assert metrics(tmp_path / "a") == metrics(tmp_path / "b")


def test_rng_states_round_trip_through_weights_only_file(tmp_path):
    import numpy as np

    from cnnlab.training.resume import rng_state, set_rng_state

    state = rng_state(torch.device("cpu"))
    torch.save({"rng": [state]}, tmp_path / "s.pt")
    draws = (torch.rand(3), random.random(), np.random.rand())
    set_rng_state(torch.load(tmp_path / "s.pt", weights_only=True)["rng"][0], torch.device("cpu"))
    again = (torch.rand(3), random.random(), np.random.rand())
    assert torch.equal(draws[0], again[0]) and draws[1:] == again[1:]
