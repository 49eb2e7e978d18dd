"""Time-to-accuracy of the training recipes (`cnnlab train --recipe NAME`) on full MNIST or Fashion-MNIST.

    .venv/bin/python benchmarks/recipes.py [--recipes fast best] [--dataset mnist] [--seeds 0 1 2] [-- FLAGS]

A record (issue #13) holds when EVERY seed reaches the accuracy within the time; the table says which.

Every run is the real CLI in a fresh process, timed from the moment it is started: Python and torch
start-up, reading the dataset, training, every per-epoch evaluation on all 10,000 test images and the
checkpoints are all inside the wall time. The time of each epoch's line on stderr (printed right after that
epoch's evaluation) gives the time-to-accuracy curve. CPU seconds (user + sys of the run) are printed as
well: on a machine shared with other jobs they show how much of the wall time was waiting for a core.
"""

import argparse
import os
import statistics
import sys

from _common import DATA, run_train

# (recipe, dataset) -> (test accuracy, wall seconds from process start or None)
TARGETS = {
    ("fast", "mnist"): (0.990, 4.0),
    ("best", "mnist"): (0.995, 30.0),
    ("long", "mnist"): (0.9965, 300.0),
    ("best", "fashion-mnist"): (0.935, 60.0),
    ("long", "fashion-mnist"): (0.950, 900.0),
    ("chapter", "mnist"): (0.986, None),
}


def run_once(recipe: str, seed: int, data_dir: str, extra: list[str], dataset: str = "mnist") -> dict:
    """One training run; returns its curve [(epoch, seconds since start, accuracy)], wall and CPU time."""
    r = run_train(["--recipe", recipe, "--seed", str(seed), "--data-dir", data_dir, *extra], dataset)
    return {
        "seed": seed,
        "curve": r["curve"],
        "accuracy": r["summary"]["test_accuracy"],
        "wall": r["wall"],
        "cpu": r["cpu"],
        "load": r["load"],
        "precision": r["summary"].get("precision", "fp32"),
    }


def report(recipe: str, runs: list[dict], extra: list[str], dataset: str = "mnist") -> None:
    accs = [r["accuracy"] for r in runs]
    walls = [r["wall"] for r in runs]
    target, limit = TARGETS.get((recipe, dataset), (None, None))
    flags = " ".join(extra)
    print(
        f"\n### `cnnlab train --recipe {recipe} --dataset {dataset}{' ' + flags if flags else ''}` "
        f"(seeds {[r['seed'] for r in runs]}, {runs[0]['precision']})\n"
    )
    print(
        "| seed | load | test accuracy | wall s (all included) | CPU s | accuracy after each epoch @ wall s |"
    )
    print("|---|---|---|---|---|---|")
    for r in runs:
        curve = ", ".join(f"{a:.2%} @ {t:.1f}" for _, t, a in r["curve"])
        print(
            f"| {r['seed']} | {r['load']:.1f} | {r['accuracy']:.2%} | {r['wall']:.1f} | {r['cpu']:.1f} | {curve} |"
        )
    spread = statistics.pstdev(accs) if len(accs) > 1 else 0.0
    hit = ""
    if target is not None:
        acc_ok = min(accs) >= target
        time_ok = limit is None or max(walls) <= limit
        hit = f" (target {target:.2%}{f' in {limit:.0f} s' if limit else ''}: "
        hit += f"accuracy {'met' if acc_ok else 'MISSED'} by every seed"
        hit += "" if limit is None else f", time {'met' if time_ok else 'MISSED'})"
        hit += ")" if limit is None else ""
    print(
        f"| mean | | {statistics.mean(accs):.2%} ± {spread:.2%}{hit} | {statistics.mean(walls):.1f} "
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
    p.add_argument("--dataset", default="mnist", help="mnist or fashion-mnist (recipes pick their variant)")
    p.add_argument("--data-dir", default=None, help="default: ../shared/data/DATASET")
    p.add_argument("extra", nargs="*", help="more `cnnlab train` flags, after --")
    args = p.parse_args()
    print(f"machine: {os.cpu_count()} cores, 1-min load average at start {os.getloadavg()[0]:.1f}")
    data_dir = args.data_dir or str(DATA / args.dataset)
    for recipe in args.recipes:
        runs = []
        for seed in args.seeds:
            runs.append(run_once(recipe, seed, data_dir, args.extra, args.dataset))
            r = runs[-1]
            print(
                f"{recipe} seed {seed}: {r['accuracy']:.2%} in {r['wall']:.1f} s", file=sys.stderr, flush=True
            )
        report(recipe, runs, args.extra, args.dataset)
    print(f"\n1-min load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
