"""Start-up: where a run's wall time goes is measured from process start; the summary is reported before
the curves picture is drawn; the training path imports no matplotlib."""

import json
import subprocess
import sys
import time

from cnnlab.training.phases import Phases, describe, process_age


def test_process_age_counts_from_process_start():
    """This pytest process has been running (imports, collection) longer than a fresh timer would say."""
    t = process_age()
    assert 0.2 < t < 86400
    a = Phases()
    a.points = [("start-up", 2.0), ("data", 2.5), ("setup", 3.0), ("fit", 10.0)]
    assert a.split() == {"start-up": 2.0, "data": 0.5, "setup": 0.5, "fit": 7.0}
    split = a.fit_split([{"seconds": 4.0}, {"seconds": 2.0}])
    assert split == {
        "start-up": 2.0,
        "data": 0.5,
        "setup": 0.5,
        "training": 6.0,
        "evaluation+checkpoints": 1.0,
    }
    assert describe(split).startswith("time from process start: start-up 2.00 s, data 0.50 s")
    assert describe(split).endswith(" = 10.00 s")


def test_training_path_does_not_import_matplotlib():
    code = "import sys, cnnlab.cli, cnnlab.commands.train, cnnlab.training.loop; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_profile_startup_phases_add_up_to_the_wall_time(cli, tmp_path):
    t0 = time.perf_counter()
    proc = cli(
        "train", "--model", "fastnet", "--dataset", "mnist-sample", "--max-steps", "3", "--epochs", "1",
        "--out", str(tmp_path / "p"), "--json", "--profile-startup",
    )  # fmt: skip
    wall = time.perf_counter() - t0
    summary = json.loads(proc.stdout)  # exactly one JSON value on stdout
    phases = summary["phases"]
    assert list(phases) == ["start-up", "data", "setup", "training", "evaluation+checkpoints"]
    assert all(v >= 0 for v in phases.values())
    assert phases["start-up"] > 0.2  # Python + torch cannot start faster than that
    assert sum(phases.values()) <= wall + 0.05  # measured from the process's real start, inside our wall
    # the summary went out before the curves were drawn, so it cannot know their time; stderr does
    assert "curves" not in phases and (tmp_path / "p" / "curves.png").is_file()
    assert "time from process start: start-up" in proc.stderr and "curves" in proc.stderr.splitlines()[-1]
