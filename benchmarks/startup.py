"""Where the wall time of `cnnlab train --recipe fast` goes, from process start (item 2 of issue #13).

    .venv/bin/python benchmarks/startup.py [--repeats 5] [--data-dir DIR] [--recipe fast] [-- TRAIN FLAGS]

Part 1, the fixed costs, each in a fresh Python process (median of --repeats, wall time of the process):
an empty interpreter, `import torch` (also with `gc.freeze()` before the exit, as the `cnnlab` command
does: Python's shutdown then skips its last full garbage collection), the first optimiser call's `import torch._dynamo` (torch.optim
decorates `add_param_group` and `step` with it), cnnlab's training modules, matplotlib (Figure + Agg, the
curves picture), and `load_dataset("mnist")` decoded from the .gz files (CNNLAB_NO_DECODE_CACHE=1)
against the memory-mapped decode cache.
Part 2, the real CLI: `cnnlab train --recipe RECIPE --profile-startup --json`, whose own phases (measured
from the process's start time in /proc) are printed per run with the wall time measured here.
The 1-minute load average is printed with every table: on a shared machine the figures are upper bounds.
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import cpu_seconds, run_train

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "mnist"

SNIPPETS = {
    "empty interpreter": "pass",
    "import torch": "import torch",
    # what cnnlab.cli.entry does before the interpreter's shutdown (the difference is the exit's last collection)
    "import torch, then gc.freeze() (the `cnnlab` command's exit)": "import torch, gc; gc.freeze()",
    "import torch + torch._dynamo (what a stock torch.optim optimiser's first call adds)": "import torch, torch._dynamo",
    "import torch + cnnlab's training modules": "import torch, cnnlab.cli, cnnlab.training.cli, cnnlab.training.loop",
    "matplotlib Figure + Agg": "from matplotlib.figure import Figure; from matplotlib.backends.backend_agg import FigureCanvasAgg",
}
LOAD = "import torch; from cnnlab.data import load_dataset; load_dataset('mnist', {dir!r}, progress=False)"


def wall(code: str, env: dict | None = None) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of a fresh `python -c code`."""
    c0, t0 = cpu_seconds(), time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, **(env or {})})
    return time.perf_counter() - t0, cpu_seconds() - c0


def median_wall(code: str, repeats: int, env: dict | None = None) -> tuple[float, float]:
    runs = [wall(code, env) for _ in range(repeats)]
    return statistics.median(w for w, _ in runs), statistics.median(c for _, c in runs)


def fixed_costs(args) -> None:
    print(
        f"\n### Fixed costs (fresh process each, median of {args.repeats}; load {os.getloadavg()[0]:.1f})\n"
    )
    print("| what | wall s | CPU s (user + sys) |\n|---|---|---|")
    for name, code in SNIPPETS.items():
        w, c = median_wall(code, args.repeats)
        print(f"| {name} | {w:.2f} | {c:.2f} |", flush=True)
    with tempfile.TemporaryDirectory() as cache_dir:
        env = {"CNNLAB_CACHE": cache_dir}
        code = LOAD.format(dir=args.data_dir)
        base = median_wall("import torch", args.repeats)  # (wall, CPU)
        gunzip = median_wall(code, args.repeats, {**env, "CNNLAB_NO_DECODE_CACHE": "1"})
        wall(code, env)  # fills the cache
        mapped = median_wall(code, args.repeats, env)
    for name, (w, c) in (("gunzip + validate", gunzip), ("decode cache, memory map", mapped)):
        print(
            f"| load_dataset('mnist'): {name} (beyond import torch) | {w - base[0]:.2f} | {c - base[1]:.2f} |"
        )
    print(f"\nload at the end {os.getloadavg()[0]:.1f}")


def cli_runs(args) -> None:
    print(f"\n### `cnnlab train --recipe {args.recipe} --profile-startup --json {' '.join(args.extra)}`\n")
    rows = []
    for i in range(args.repeats):
        flags = ["--recipe", args.recipe, "--data-dir", args.data_dir, "--profile-startup", "--seed", str(i)]
        r = run_train([*flags, *args.extra])
        line = r["tail"][-1]  # "time from process start: ..., curves X s = Y s"
        curves = float(line.split("curves ")[1].split(" s")[0])
        s = r["summary"]
        rows.append({**s["phases"], "curves": curves, "wall": r["wall"], "acc": s["test_accuracy"]})
        rows[-1]["cpu"] = r["cpu"]
        rows[-1]["load"] = r["load"]
    names = [k for k in rows[0] if k not in ("wall", "acc", "load", "cpu")]
    print("| run | load | " + " | ".join(names) + " | wall s (measured outside) | CPU s | test accuracy |")
    print("|---" * (len(names) + 5) + "|")
    for i, r in enumerate(rows):
        cells = " | ".join(f"{r[n]:.2f}" for n in names)
        print(f"| {i} | {r['load']:.1f} | {cells} | {r['wall']:.2f} | {r['cpu']:.2f} | {r['acc']:.2%} |")
    med = " | ".join(f"{statistics.median(r[n] for r in rows):.2f}" for n in names)
    walls, cpus = [r["wall"] for r in rows], [r["cpu"] for r in rows]
    print(f"| median | | {med} | {statistics.median(walls):.2f} | {statistics.median(cpus):.2f} | |")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--data-dir", default=str(DATA))
    p.add_argument("--recipe", default="fast")
    p.add_argument("--skip-fixed", action="store_true", help="only the CLI runs")
    p.add_argument("extra", nargs="*", help="more `cnnlab train` flags, after --")
    args = p.parse_args()
    print(f"machine: {os.cpu_count()} cores; python {sys.version.split()[0]}")
    if not args.skip_fixed:
        fixed_costs(args)
    cli_runs(args)


if __name__ == "__main__":
    main()
