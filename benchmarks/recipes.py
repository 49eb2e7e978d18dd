"""Time-to-accuracy of the training recipes (`cnnlab train --recipe NAME`) on full MNIST.

    .venv/bin/python benchmarks/recipes.py [--recipes fast best] [--seeds 0 1 2] [-- EXTRA TRAIN FLAGS]

Every run is the real CLI in a fresh process, timed from the moment it is started: Python and torch
start-up, reading the dataset, training, every per-epoch evaluation on all 10,000 test images and the
checkpoints are all inside the wall time. The time of each epoch's line on stderr (printed right after that
epoch's evaluation) gives the time-to-accuracy curve. CPU seconds (user + sys of the run) are printed as
well: on a machine shared with other jobs they show how much of the wall time was waiting for a core.
"""

import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "mnist"
TARGETS = {"fast": 0.990, "best": 0.995, "chapter": 0.9866}
EPOCH_LINE = re.compile(r"epoch\s+(\d+):.*test acc ([\d.]+)%")


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run_once(recipe: str, seed: int, data_dir: str, extra: list[str]) -> dict:
    """One training run; returns its curve [(epoch, seconds since start, accuracy)], wall and CPU time."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "cnnlab", "train", "--recipe", recipe, "--seed", str(seed)]
        cmd += ["--data-dir", data_dir, "--out", tmp, "--overwrite", "--json", *extra]
        cpu0, t0 = cpu_seconds(), time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        curve = []
        for line in proc.stderr:
            m = EPOCH_LINE.search(line)
            if m:
                curve.append((int(m.group(1)), time.perf_counter() - t0, float(m.group(2)) / 100))
        summary = json.loads(proc.stdout.read().strip().splitlines()[-1])
        if proc.wait() != 0:
            raise SystemExit(f"{' '.join(cmd)} failed with exit code {proc.returncode}")
        wall, cpu = time.perf_counter() - t0, cpu_seconds() - cpu0
    return {"seed": seed, "curve": curve, "accuracy": summary["test_accuracy"], "wall": wall, "cpu": cpu}


def report(recipe: str, runs: list[dict], extra: list[str]) -> None:
    accs = [r["accuracy"] for r in runs]
    walls = [r["wall"] for r in runs]
    target = TARGETS.get(recipe)
    flags = " ".join(extra)
    print(
        f"\n### `cnnlab train --recipe {recipe}{' ' + flags if flags else ''}` (seeds {[r['seed'] for r in runs]})\n"
    )
    print("| seed | test accuracy | wall s (all included) | CPU s | accuracy after each epoch @ wall s |")
    print("|---|---|---|---|---|")
    for r in runs:
        curve = ", ".join(f"{a:.2%} @ {t:.1f}" for _, t, a in r["curve"])
        print(f"| {r['seed']} | {r['accuracy']:.2%} | {r['wall']:.1f} | {r['cpu']:.1f} | {curve} |")
    spread = statistics.pstdev(accs) if len(accs) > 1 else 0.0
    hit = (
        "" if target is None else (" (target met)" if statistics.mean(accs) >= target else " (TARGET MISSED)")
    )
    print(
        f"| mean | {statistics.mean(accs):.2%} ± {spread:.2%}{hit} | {statistics.mean(walls):.1f} "
        f"(min {min(walls):.1f}, max {max(walls):.1f}) | {statistics.mean(r['cpu'] for r in runs):.1f} | |"
    )
    epochs = min(len(r["curve"]) for r in runs)
    print("\nmean over seeds, per epoch: " + "; ".join(
        f"epoch {e + 1}: {statistics.mean(r['curve'][e][2] for r in runs):.2%} at "
        f"{statistics.mean(r['curve'][e][1] for r in runs):.1f} s"
        for e in range(epochs)
    ))  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--recipes", nargs="+", default=["fast", "best"])
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--data-dir", default=str(DATA))
    p.add_argument("extra", nargs="*", help="more `cnnlab train` flags, after --")
    args = p.parse_args()
    print(f"machine: {os.cpu_count()} cores, 1-min load average at start {os.getloadavg()[0]:.1f}")
    for recipe in args.recipes:
        runs = []
        for seed in args.seeds:
            runs.append(run_once(recipe, seed, args.data_dir, args.extra))
            r = runs[-1]
            print(
                f"{recipe} seed {seed}: {r['accuracy']:.2%} in {r['wall']:.1f} s", file=sys.stderr, flush=True
            )
        report(recipe, runs, args.extra)
    print(f"\n1-min load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
