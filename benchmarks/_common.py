"""What the benchmark scripts share: `cnnlab train` started as a subprocess and timed from the moment it is
started (Python and torch start-up, data, training, every evaluation, checkpoints and `curves.png` inside the
wall time), the run's summary and per-epoch curve read back, and one line that says what machine and load
a figure came from.

    from _common import machine, run_train
    run = run_train(["--recipe", "fast", "--seed", "0"], dataset="mnist")
    run["summary"]["test_accuracy"], run["wall"], run["cpu"], run["curve"]

(`python benchmarks/X.py` puts benchmarks/ first on sys.path, so the scripts import this module by name.)
"""

import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"  # the real datasets beside the checkout, as the tests find them
EPOCH_LINE = re.compile(r"epoch\s+(\d+):.*test acc ([\d.]+)%")  # an evaluated epoch's line on stderr


def cpu_seconds() -> float:
    """User + system CPU seconds of every finished child process so far."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def data_dir(dataset: str) -> str:
    return str(DATA / dataset)


def train_argv(args: list[str], dataset: str = "mnist", out: str | None = None) -> list[str]:
    """The `python -m cnnlab train ...` command line: --dataset and its --data-dir from ../shared, --json."""
    argv = [sys.executable, "-m", "cnnlab", "train", "--dataset", dataset, "--data-dir", data_dir(dataset)]
    if out is not None:
        argv += ["--out", out, "--overwrite"]
    return argv + ["--json", *args]


def run_train(args: list[str], dataset: str = "mnist", read=None, env: dict | None = None) -> dict:
    """One `cnnlab train` in a fresh process and a temporary run folder, timed from its start.

    Returns {"summary": the --json summary, "wall": seconds from start to exit, "cpu": its user + system
    CPU seconds, "load": the 1-minute load average at its start, "curve": [(epoch, seconds since start,
    test accuracy)] from the evaluated epochs' lines, "read": read(run folder) if given (called before
    the folder is deleted), "tail": its last 5 lines on stderr}. A failed run stops the benchmark with its command line and last lines."""
    with tempfile.TemporaryDirectory() as tmp:
        argv = train_argv(args, dataset, tmp)
        load = os.getloadavg()[0]
        cpu0, t0 = cpu_seconds(), time.perf_counter()
        proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})}
        )
        curve, tail = [], []
        for line in proc.stderr:  # read as it comes: the time of each epoch's line is its time-to-accuracy
            m = EPOCH_LINE.search(line)
            if m:
                curve.append((int(m.group(1)), time.perf_counter() - t0, float(m.group(2)) / 100))
            tail = (tail + [line])[-5:]
        stdout = proc.stdout.read()
        code = proc.wait()
        wall, cpu = time.perf_counter() - t0, cpu_seconds() - cpu0
        if code != 0:
            raise SystemExit(f"{' '.join(argv)} failed with exit code {code}:\n{''.join(tail)}")
        extra = read(Path(tmp)) if read is not None else None
    summary = json.loads(stdout.strip().splitlines()[-1])
    return {
        "summary": summary,
        "wall": wall,
        "cpu": cpu,
        "load": load,
        "curve": curve,
        "read": extra,
        "tail": tail,
    }


def cpu_model() -> tuple[str, list[str]]:
    """(model name, the flags that decide this project's speed) from /proc/cpuinfo."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "unknown CPU", []
    name = next((ln.split(":", 1)[1].strip() for ln in text.splitlines() if ln.startswith("model name")), "?")
    flags = next((ln.split(":", 1)[1].split() for ln in text.splitlines() if ln.startswith("flags")), [])
    wanted = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")
    return name, [f for f in wanted if f in flags]


def machine() -> str:
    """One line: CPU model and cores, its vector/bf16 flags, torch version, and the load right now."""
    import torch

    name, flags = cpu_model()
    bf16 = "native bf16" if {"avx512_bf16", "amx_bf16"} & set(flags) else "NO native bf16 (emulated, slow)"
    return (
        f"{name}, {os.cpu_count()} cores, flags {' '.join(flags) or '-'} ({bf16}); Python "
        f"{sys.version.split()[0]}, torch {torch.__version__}; 1-min load average {os.getloadavg()[0]:.1f}"
    )
