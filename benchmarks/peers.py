"""cnnlab against PyTorch Lightning on the chapter's experiment: the same net (the chapter's CNN), optimiser
(Adam, lr 2e-4), batch 256 and data (MNIST's 60,000 training images), one epoch each, alternating.

    .venv/bin/python benchmarks/peers.py [--pairs 3] [--precision bf16|fp32] [--batches N]

cnnlab side: the real CLI, `cnnlab train --recipe chapter --precision P --epochs 1`, and its own images/s of
the epoch (metrics.csv: the training loop only, not start-up or the test evaluation after it).
Lightning side: its idiomatic fast path, in its own virtual environment: a LightningModule around the
chapter's CNN, the whole training set as one in-memory tensor (TensorDataset + DataLoader(batch 256,
shuffle), no worker processes), `Trainer(accelerator="cpu", devices=1, precision="bf16-mixed" or "32-true",
max_epochs=1)` with logging, checkpointing, progress bar and model summary off; images/s from a Callback
timing the training epoch (benchmarks/_lightning_worker.py).
Each pair runs both sides in fresh processes, the order alternating; the ratio is taken within a pair and
the median over pairs reported. Both sides use PyTorch's default threads (one per core).

The Lightning environment is made on first use in benchmarks/.peers/lightning (git-ignored; delete it to
start over): `python -m venv`, `pip install torch==2.13.0` (the same CPU build as cnnlab's: on this
project's machines pip finds that wheel locally), then `pip install lightning` from PyPI. Expected
runtime on an idle 2-core machine with native bf16: ~1 minute per side and pair, ~6 minutes for 3 pairs
(plus ~2 minutes for the first install).
"""

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

from _common import data_dir, machine, run_train

HERE = Path(__file__).resolve().parent
VENV = HERE / ".peers" / "lightning"
TORCH = "torch==2.13.0"
LIGHTNING_PRECISION = {"bf16": "bf16-mixed", "fp32": "32-true"}
BATCH = 256  # the chapter's batch size


def lightning_python() -> Path:
    """The peer venv's python, made (and Lightning installed) on first use."""
    python = VENV / "bin" / "python"
    if not (VENV / ".installed").exists():
        print(f"installing Lightning into {VENV} (first use) ...", file=sys.stderr, flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        pip = [str(python), "-m", "pip", "install", "-q"]
        subprocess.run([*pip, TORCH], check=True)
        subprocess.run([*pip, "lightning"], check=True)
        (VENV / ".installed").touch()
    return python


def lightning_version(python: Path) -> str:
    code = "import lightning; print(lightning.__version__)"
    return subprocess.run(
        [str(python), "-c", code], check=True, capture_output=True, text=True
    ).stdout.strip()


def lightning_run(python: Path, precision: str, batches: int) -> float:
    worker = HERE / "_lightning_worker.py"
    cmd = [
        str(python),
        str(worker),
        "--data-dir",
        data_dir("mnist"),
        "--precision",
        LIGHTNING_PRECISION[precision],
    ]
    proc = subprocess.run([*cmd, "--batches", str(batches)], check=True, capture_output=True, text=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])["images_per_second"]


def cnnlab_run(precision: str, batches: int) -> float:
    args = ["--recipe", "chapter", "--precision", precision, "--epochs", "1"]
    args += ["--limit-train", str(batches * BATCH)]
    r = run_train(args, read=lambda out: list(csv.DictReader(open(out / "metrics.csv"))))
    return float(r["read"][-1]["images_per_second"])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pairs", type=int, default=3, help="alternating pairs (default 3)")
    p.add_argument("--precision", choices=("bf16", "fp32"), default="bf16", help="bf16: bf16-mixed (default)")
    p.add_argument(
        "--batches", type=int, default=234, help="batches of 256 per epoch (default 234: all of MNIST)"
    )
    args = p.parse_args()
    python = lightning_python()
    print(f"machine: {machine()}; Lightning {lightning_version(python)}\n")
    rates: dict[str, list[float]] = {"cnnlab": [], "lightning": []}
    for i in range(args.pairs):
        for side in ("cnnlab", "lightning") if i % 2 == 0 else ("lightning", "cnnlab"):
            if side == "cnnlab":
                rate = cnnlab_run(args.precision, args.batches)
            else:
                rate = lightning_run(python, args.precision, args.batches)
            rates[side].append(rate)
            print(f"pair {i + 1} {side}: {rate:.0f} img/s", file=sys.stderr, flush=True)
    ratios = [c / lt for c, lt in zip(rates["cnnlab"], rates["lightning"])]
    print(
        f"chapter CNN, Adam lr 2e-4, batch {BATCH}, {args.batches} batches, {args.precision} "
        f"(Lightning {LIGHTNING_PRECISION[args.precision]}); load at the end {os.getloadavg()[0]:.1f}\n"
    )
    print("| side | images/s per pair | median |\n|---|---|---|")
    for side, vals in rates.items():
        print(f"| {side} | {', '.join(f'{v:,.0f}' for v in vals)} | {statistics.median(vals):,.0f} |")
    print(f"\ncnnlab / Lightning per pair: {', '.join(f'{r:.2f}x' for r in ratios)}; "
          f"**median {statistics.median(ratios):.2f}x**")  # fmt: skip


if __name__ == "__main__":
    main()
