"""Both cores for a small net: two OpenMP threads in one process (cnnlab's default), one thread, or one
single-thread process per core (`--nproc 2`: DDP on gloo, the global batch split, identical maths).

    .venv/bin/python benchmarks/threads_vs_procs.py [--recipe fast] [--rounds 2] [--images 30720]

Each variant is the real CLI in a fresh process (`cnnlab train --recipe R --limit-train N`), in an order that
alternates between rounds; images/s is the run's own (metrics.csv: the training loop only), CPU seconds are
the whole command's (user + system, all its processes). ~1 minute per round on an idle machine.
"""

import argparse
import csv
import statistics

from _common import machine, run_train

VARIANTS = {"2 threads (default)": [], "--threads 1": ["--threads", "1"], "--nproc 2": ["--nproc", "2"]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--recipe", default="fast")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--images", type=int, default=30720, help="training images per run (--limit-train)")
    args = p.parse_args()
    print(f"machine: {machine()}\n")
    rows: dict[str, list[tuple[float, float, float]]] = {k: [] for k in VARIANTS}
    for r in range(args.rounds):
        for name in list(VARIANTS) if r % 2 == 0 else list(VARIANTS)[::-1]:
            flags = ["--recipe", args.recipe, "--limit-train", str(args.images), "--limit-test", "1000"]
            run = run_train(
                [*flags, *VARIANTS[name]], read=lambda o: list(csv.DictReader(open(o / "metrics.csv")))
            )
            rows[name].append((float(run["read"][-1]["images_per_second"]), run["cpu"], run["load"]))
    print(
        f"| `--recipe {args.recipe}`, {args.images} images | images/s per round | median | CPU s per round | load |"
    )
    print("|---|---|---|---|---|")
    for name, vals in rows.items():
        rates = ", ".join(f"{v[0]:,.0f}" for v in vals)
        cpus = ", ".join(f"{v[1]:.1f}" for v in vals)
        loads = ", ".join(f"{v[2]:.1f}" for v in vals)
        print(f"| {name} | {rates} | {statistics.median(v[0] for v in vals):,.0f} | {cpus} | {loads} |")
    print(f"\nmachine at the end: {machine()}")


if __name__ == "__main__":
    main()
