"""A disk that fills up: exit 5 and one line from whichever writer found it (an OSError, safetensors'
"os error 28", torch.save's "unexpected pos"), the previous file intact, no temp file left; a run that
fills its disk mid-way keeps its last good checkpoint; --resume counts the space its own files hold.

The real cases run on a 3 MiB tmpfs (mounting needs root; elsewhere they skip and say why); the same
paths are also driven with faked errors, which run everywhere.
"""

import errno
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors import SafetensorError
from safetensors.torch import save_file

from cnnlab.checkpoint import EXIT_OUT_FULL, atomic_write
from cnnlab.errors import CnnlabError

TINY = (
    "--dataset", "mnist-sample", "--limit-train", "512", "--batch-size", "64", "--width", "0.5",
    "--epochs", "3", "--schedule", "constant",
)  # fmt: skip
BIG = {"w": torch.zeros(1 << 18)}  # 1 MiB of float32


@pytest.fixture
def tmpfs(tmp_path) -> Path:
    """A real, tiny filesystem that can fill up."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    try:
        proc = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mnt)], capture_output=True, text=True
        )
    except FileNotFoundError:
        pytest.skip("no mount command here: the real full-disk cases need a tmpfs")
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {proc.stderr.strip()}")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def fill(folder: Path, leave: int) -> Path:
    """Fill `folder`'s filesystem until about `leave` bytes are free."""
    filler = folder / "filler"
    with open(filler, "wb") as f:
        f.write(b"\0" * max(shutil.disk_usage(folder).free - leave, 0))
    return filler


def no_temp_files(folder: Path) -> bool:
    return not list(folder.glob(".*.tmp"))


# ---- each writer on a real full disk ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "writer",
    [
        lambda tmp: save_file(BIG, tmp),  # SafetensorError: ... No space left on device (os error 28)
        lambda tmp: torch.save(
            BIG, tmp
        ),  # RuntimeError: [enforce fail at inline_container.cc] unexpected pos
        lambda tmp: Path(tmp).write_bytes(b"\0" * (1 << 20)),  # OSError ENOSPC
    ],
    ids=["safetensors", "torch.save", "plain"],
)
def test_every_writer_on_a_full_disk_is_exit_5_and_keeps_the_old_file(tmpfs, writer):
    target = tmpfs / "last.safetensors"
    target.write_bytes(b"the previous checkpoint")
    fill(tmpfs, 64 * 1024)
    with pytest.raises(CnnlabError, match="No space left on device") as e:
        atomic_write(target, writer)
    assert e.value.exit_code == EXIT_OUT_FULL
    assert target.read_bytes() == b"the previous checkpoint"
    assert no_temp_files(tmpfs)


# ---- the same, faked: runs everywhere ----------------------------------------------------------------------


def _raise(e: BaseException):
    def writer(tmp):
        Path(tmp).write_bytes(b"partial")
        raise e

    return writer


@pytest.mark.parametrize(
    "error",
    [
        OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)),
        SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)"),
    ],
    ids=["OSError", "SafetensorError"],
)
def test_enospc_from_any_writer_is_exit_5(tmp_path, error):
    target = tmp_path / "state.pt"
    target.write_text("old")
    with pytest.raises(CnnlabError) as e:
        atomic_write(target, _raise(error))
    assert e.value.exit_code == EXIT_OUT_FULL
    assert target.read_text() == "old" and no_temp_files(tmp_path)


def test_torch_saves_unexplained_error_is_judged_by_the_free_space(tmp_path, monkeypatch):
    """torch.save's "unexpected pos" names no errno: a folder left without free space says disk full; with
    plenty of space the error is not disguised as one."""
    import cnnlab.checkpoint as ck

    fault = RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 576 vs 534")
    target = tmp_path / "state.pt"
    target.write_text("old")
    with pytest.raises(RuntimeError, match="unexpected pos"):
        atomic_write(target, _raise(fault))
    real = os.statvfs(tmp_path)
    full = os.statvfs_result((*real[:4], 0, *real[5:]))  # f_bavail = 0
    monkeypatch.setattr(ck.os, "statvfs", lambda p: full)
    with pytest.raises(CnnlabError) as e:
        atomic_write(target, _raise(fault))
    assert e.value.exit_code == EXIT_OUT_FULL
    assert target.read_text() == "old" and no_temp_files(tmp_path)


def test_enospc_outside_atomic_write_is_exit_5_in_one_line(monkeypatch, capsys):
    """metrics.csv is appended to, not replaced: its ENOSPC reaches the CLI as a plain OSError."""
    import importlib

    from cnnlab import cli

    evaluate = importlib.import_module("cnnlab.evaluate")  # `cnnlab.evaluate` the attribute is a function

    def full(args):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "runs/x/metrics.csv")

    monkeypatch.setattr(evaluate, "run", full)
    with pytest.raises(SystemExit) as e:
        cli.main(["eval", "runs/x"])
    assert e.value.code == EXIT_OUT_FULL
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["cnnlab: error: cannot write runs/x/metrics.csv: No space left on device"]


# ---- a run whose disk fills up mid-way ------------------------------------------------------------------------


@pytest.mark.parametrize("leave_kib, failing", [(64, "last.safetensors"), (300, "state.pt")])
def test_a_disk_filled_mid_run_ends_in_exit_5_and_the_last_checkpoint_evaluates(
    cli, tmpfs, tmp_path, leave_kib, failing
):
    """After epoch 1's checkpoint the disk is filled: 64 KiB left stops the next safetensors file
    (127 KiB), 300 KiB the next state.pt (~400 KiB, after last/best were written)."""
    out = tmpfs / "run"
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "CNNLAB_TEST_STEP_DELAY": "0.15"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "cnnlab", "train", *TINY, "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    deadline = time.monotonic() + 300
    while not (out / "state.pt").exists():  # epoch 1 is saved
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[1][-2000:]
        time.sleep(0.02)
    filler = fill(tmpfs, leave_kib * 1024)
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == EXIT_OUT_FULL, stderr[-2000:]
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    assert lines[0] == f"cnnlab: error: cannot write {out / failing}: No space left on device"
    assert no_temp_files(out) and not (out / ".cnnlab-run.lock").exists()
    filler.unlink()
    assert cli("eval", str(out), "--json").returncode == 0  # the last good checkpoint
    if failing == "state.pt":  # nothing lost: the run continues from its last resume state
        cli("train", *TINY, "--resume", "--out", str(out))
        assert len((out / "metrics.csv").read_text().splitlines()) == 1 + 3


# ---- --resume's free-space estimate ------------------------------------------------------------------------------


def test_resume_counts_the_space_of_the_files_it_replaces(tmp_path, monkeypatch):
    from cnnlab.models import get_model
    from cnnlab.training import resume
    from cnnlab.training.config import TrainConfig

    model = get_model("chapter-cnn", num_classes=10, in_channels=1, input_size=28)
    w = sum(t.numel() * t.element_size() for t in model.state_dict().values())
    s = 3 * w  # adam: weights + 2 moments
    (tmp_path / "last.safetensors").write_bytes(b"\0" * w)
    (tmp_path / "best.safetensors").write_bytes(b"\0" * w)
    (tmp_path / "state.pt").write_bytes(b"\0" * s)
    usage = shutil.disk_usage(tmp_path)
    # a resume needs room for one more state.pt while it replaces the old one, plus 1 MiB of text
    monkeypatch.setattr(resume.shutil, "disk_usage", lambda p: usage._replace(free=s + (1 << 20) + 4096))
    resume.check_free_space(tmp_path, TrainConfig(), model)  # refused before: 2 w + 2 s + 1 MiB > free
    monkeypatch.setattr(resume.shutil, "disk_usage", lambda p: usage._replace(free=0))
    with pytest.raises(CnnlabError, match="MiB its files hold now") as e:
        resume.check_free_space(tmp_path, TrainConfig(), model)
    assert e.value.exit_code == EXIT_OUT_FULL
