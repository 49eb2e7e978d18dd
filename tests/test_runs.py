"""Run folders: numbered folders + runs/latest without --out, the flock lock against a second concurrent
run, stale locks (also raced for by several processes), and resuming: settings from state.pt, extending a
finished run where the schedule allows."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cnnlab.errors import CnnlabError
from cnnlab.training import runs
from cnnlab.training.config import TrainConfig
from cnnlab.training.resume_rules import check_same_config

TINY = ("--dataset", "mnist-sample", "--limit-train", "256", "--epochs", "1", "--batch-size", "128")


def test_numbered_folders_and_latest_link(tmp_path):
    a = runs.new_run_dir("chapter-cnn", "mnist", tmp_path)
    b = runs.new_run_dir("chapter-cnn", "mnist", tmp_path)
    c = runs.new_run_dir("vgg11-bn", "cifar10", tmp_path)
    assert [a.name, b.name, c.name] == ["chapter-cnn-mnist-1", "chapter-cnn-mnist-2", "vgg11-bn-cifar10-1"]
    assert os.readlink(tmp_path / "latest") == "vgg11-bn-cifar10-1"
    (tmp_path / "chapter-cnn-mnist-7").mkdir()  # numbering continues after the highest, never reuses
    assert runs.new_run_dir("chapter-cnn", "mnist", tmp_path).name == "chapter-cnn-mnist-8"


def test_an_old_latest_folder_is_left_alone(tmp_path):
    (tmp_path / "latest").mkdir()  # older cnnlab's default --out
    (tmp_path / "latest" / "metrics.csv").write_text("x")
    runs.new_run_dir("m", "d", tmp_path)
    assert (tmp_path / "latest" / "metrics.csv").read_text() == "x"


def test_second_run_into_a_locked_folder_is_refused(cli, tmp_path):
    out = tmp_path / "r"
    out.mkdir()
    runs.claim(out)  # this (live) test process holds the folder, as a first run would
    try:
        proc = cli("train", *TINY, "--out", str(out), check=False)
    finally:
        runs.release_runs()
    assert proc.returncode == 6, proc.stderr
    assert "in use by another run" in proc.stderr and f"pid {os.getpid()}" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert sorted(p.name for p in out.iterdir()) == []  # nothing written, lock released


def test_lock_of_a_dead_run_is_taken_over(tmp_path):
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    import socket

    (tmp_path / runs.LOCK).write_text(f"{socket.gethostname()} {int(dead.stdout)}\n")
    runs.claim(tmp_path)
    assert (tmp_path / runs.LOCK).read_text().split()[1] == str(os.getpid())
    runs.release_runs()
    assert not (tmp_path / runs.LOCK).exists()


def test_lock_is_exclusive_within_a_process(tmp_path):
    runs.claim(tmp_path)
    try:
        with pytest.raises(CnnlabError, match="in use by another run") as e:
            runs.claim(tmp_path)
        assert e.value.exit_code == 6
    finally:
        runs.release_runs()


def test_plain_train_twice_gets_two_folders_then_resume_extends_latest(cli, tmp_path):
    first = json.loads(cli("train", *TINY, "--json", cwd=tmp_path).stdout)
    second = cli("train", *TINY, "--json", cwd=tmp_path)
    summary = json.loads(second.stdout)
    assert first["out"] == os.path.join("runs", "chapter-cnn-mnist-sample-1")
    assert summary["out"] == os.path.join("runs", "chapter-cnn-mnist-sample-2")
    assert "run folder: runs/chapter-cnn-mnist-sample-2" in second.stderr
    assert os.readlink(tmp_path / "runs" / "latest") == "chapter-cnn-mnist-sample-2"
    run2 = tmp_path / "runs" / "chapter-cnn-mnist-sample-2"
    assert not (run2 / runs.LOCK).exists()  # released at the end
    # a missing config.json must not send --resume to the defaults: the settings come from state.pt
    (run2 / "config.json").unlink()
    more = cli("train", "--resume", "--epochs", "2", "--eval-batch-size", "500", "--json", cwd=tmp_path)
    extended = json.loads(more.stdout)
    assert extended["out"] == str(os.path.join("runs", "chapter-cnn-mnist-sample-2"))
    assert extended["epochs"] == 2 and "extending the finished run" in more.stderr
    rows = (run2 / "metrics.csv").read_text().strip().splitlines()
    assert len(rows) == 3  # header + epochs 1 and 2
    assert json.loads((run2 / "config.json").read_text())["limit_train"] == 256  # not the default 0


def saved(**kw) -> dict:
    return {**TrainConfig(epochs=10).to_dict(), **kw}


def test_resume_rules_allow_result_neutral_settings_and_longer_constant_runs(tmp_path):
    check_same_config(
        saved(), TrainConfig(epochs=10, eval_batch_size=64, threads=3, tensorboard=True), tmp_path
    )
    check_same_config(saved(), TrainConfig(epochs=20), tmp_path)
    check_same_config(saved(schedule="step"), TrainConfig(epochs=20, schedule="step"), tmp_path)
    check_same_config(saved(max_steps=100), TrainConfig(epochs=10, max_steps=0), tmp_path)


@pytest.mark.parametrize("schedule", ["onecycle", "cosine"])
def test_resume_refuses_to_extend_whole_run_schedules(tmp_path, schedule):
    with pytest.raises(CnnlabError, match=f"its {schedule} schedule is planned over the whole run.*new run"):
        check_same_config(saved(schedule=schedule), TrainConfig(epochs=20, schedule=schedule), tmp_path)


def test_resume_refuses_shortening_and_other_settings(tmp_path):
    with pytest.raises(CnnlabError, match="cannot be shortened"):
        check_same_config(saved(), TrainConfig(epochs=5), tmp_path)
    with pytest.raises(CnnlabError, match="other settings: --lr"):
        check_same_config(saved(), TrainConfig(epochs=10, lr=0.1), tmp_path)


def test_resume_without_out_or_latest_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(CnnlabError, match="continues runs/latest, which does not exist"):
        runs.run_folder(TrainConfig(resume=True))
    assert not (tmp_path / "runs").exists()  # no stray runs/latest folder that would block the link


def _race(root: str, trials: int, barrier, results) -> None:
    """One of several processes that, trial after trial, try to take the same folder's stale lock at once."""
    from cnnlab.errors import CnnlabError
    from cnnlab.training import runs

    for t in range(trials):
        barrier.wait()
        try:
            runs.claim(Path(root) / f"t{t}")
            won = True
        except CnnlabError as e:
            won = False
            assert e.exit_code == 6, str(e)
        barrier.wait()  # every process has tried while the winner still holds the lock
        runs.release_runs()
        results.put((t, won))


def test_racing_takers_of_a_stale_lock_get_exactly_one_winner(tmp_path):
    """The issue's check-dead, delete, create race: two of six processes both got the folder in 2 of 30
    trials. Every trial starts from a lock file left by a dead process; exactly one racer may win it."""
    import multiprocessing
    import socket

    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    trials, racers = 150, 6
    for t in range(trials):
        (tmp_path / f"t{t}").mkdir()
        (tmp_path / f"t{t}" / runs.LOCK).write_text(f"{socket.gethostname()} {int(dead.stdout)}\n")
    # a fork server imports cnnlab once, then forks the racers: no fork of this process (torch's threads)
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["cnnlab.training.runs"])
    barrier, results = ctx.Barrier(racers), ctx.Queue()
    procs = [ctx.Process(target=_race, args=(str(tmp_path), trials, barrier, results)) for _ in range(racers)]
    for p in procs:
        p.start()
    got = [results.get(timeout=300) for _ in range(trials * racers)]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    winners = [sum(won for t, won in got if t == trial) for trial in range(trials)]
    assert winners == [1] * trials, winners
    assert not any((tmp_path / f"t{t}" / runs.LOCK).exists() for t in range(trials))  # released
