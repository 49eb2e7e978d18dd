"""The chapter's own training loop against `cnnlab train`, same model, optimiser, batch and learning rate.

    .venv/bin/python benchmarks/chapter_vs_cnnlab.py [--steps 60] [--rounds 3] [--data-dir DIR]

Chapter side: a faithful copy of the chapter's loop (typos fixed): a per-sample Dataset that turns each
image into a PIL image and back through ToTensor's arithmetic (what torchvision's MNIST + ToTensor do),
DataLoader(batch 256, shuffle, 2 workers, drop_last), the chapter's CNN, Adam lr 2e-4, cross-entropy.
cnnlab side: the real CLI, `cnnlab train --recipe chapter` (identical model/optimiser/batch/lr), on
--steps batches; its first epoch is the warm-up and its second is timed (cnnlab's own images/s).
Variants: cnnlab's defaults; --threads 1; --nproc 2 (one single-thread process per core, DDP on gloo,
the global batch still 256: identical math); --precision bf16 (bf16 autocast: not identical maths, the
chapter's experiment in bf16 reached the same accuracy, see BENCHMARKS.md). Each round runs every side in a fresh process, in an order
that alternates between rounds; the ratio is taken within a round and the median over rounds reported.

GFLOP/s: PyTorch's FlopCounterMode on one real training step of the model (43.05 MFLOP per image), times
images/s, against the fp32 sgemm roofline measured in every round (`cnnlab.bench.sgemm_peak`: the best
2048^2 torch.mm on one core, times the cores).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
from _common import run_train
from PIL import Image
from torch.utils.data import DataLoader

from cnnlab.bench import sgemm_peak

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "mnist"
VARIANTS = {  # name -> extra `cnnlab train` flags
    "cnnlab": [],
    "cnnlab --threads 1": ["--threads", "1"],
    "cnnlab --nproc 2": ["--nproc", "2"],
    # not identical maths: convolutions in bf16 (fp32 weights, optimiser and loss), see docs/speed.md
    "cnnlab --precision bf16": ["--precision", "bf16"],
}
batch_size = 256  # the chapter's names and values
learning_rate = 0.0002


# ---- the chapter's script (typos fixed: nn.Sequential, lr=, closing brackets) ----------------------------
class CNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.layer = nn.Sequential(
            nn.Conv2d(1, 16, 5),
            nn.ReLU(),
            nn.Conv2d(16, 32, 5),
            nn.ReLU(),
            nn.MaxPool2d(2, 2),
            nn.Conv2d(32, 64, 5),
            nn.ReLU(),
            nn.MaxPool2d(2, 2),
        )
        self.fc_layer = nn.Sequential(nn.Linear(64 * 3 * 3, 100), nn.ReLU(), nn.Linear(100, 10))

    def forward(self, x):
        out = self.layer(x)
        out = out.view(batch_size, -1)
        return self.fc_layer(out)


class MNIST(torch.utils.data.Dataset):
    """torchvision.datasets.MNIST's __getitem__ + transforms.ToTensor(), without torchvision."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor):
        self.data, self.targets = images[:, 0], labels

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int):
        img, target = self.data[index], int(self.targets[index])
        img = Image.fromarray(img.numpy(), mode="L")  # torchvision: "to return a PIL Image"
        pic = torch.from_numpy(np.array(img, np.uint8, copy=True))  # ToTensor: PIL -> HWC -> CHW / 255
        pic = pic.view(img.size[1], img.size[0], 1).permute((2, 0, 1)).contiguous()
        return pic.to(dtype=torch.get_default_dtype()).div(255), target


def chapter_worker(data_dir: str, warmup: int, steps: int) -> dict:
    from cnnlab.data import load_dataset

    d = load_dataset("mnist", data_dir, progress=False)
    mnist_train = MNIST(d.train_x, d.train_y)
    train_loader = DataLoader(mnist_train, batch_size=batch_size, shuffle=True, num_workers=2, drop_last=True)
    device = torch.device("cpu")
    model = CNN().to(device)
    loss_func = nn.CrossEntropyLoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate)
    t0 = None
    for j, [image, label] in enumerate(train_loader):
        if j == warmup:
            t0 = time.perf_counter()
        if j == warmup + steps:
            break
        x = image.to(device)
        y_ = label.to(device)
        optimizer.zero_grad()
        output = model.forward(x)
        loss = loss_func(output, y_)
        loss.backward()
        optimizer.step()
        if j % 1000 == 0:
            print(loss.item(), file=sys.stderr)
    return {"images_per_second": steps * batch_size / (time.perf_counter() - t0)}


# ---- cnnlab through its real CLI -------------------------------------------------------------------------
def cnnlab_run(extra: list[str], data_dir: str, steps: int) -> dict:
    """cnnlab's own images/s of the second (timed) epoch of --steps batches, from its metrics.csv."""
    import csv

    args = ["--recipe", "chapter", "--data-dir", data_dir, "--limit-train", str(steps * batch_size)]
    r = run_train(
        [*args, "--epochs", "2", *extra], read=lambda out: list(csv.DictReader(open(out / "metrics.csv")))
    )
    return {"images_per_second": float(r["read"][-1]["images_per_second"])}


def chapter_run(data_dir: str, warmup: int, steps: int) -> dict:
    cmd = [sys.executable, __file__, "--worker", "--data-dir", data_dir, "--warmup", str(warmup)]
    proc = subprocess.run(cmd + ["--steps", str(steps)], check=True, capture_output=True, text=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def train_flops_per_image() -> float:
    from torch.utils.flop_counter import FlopCounterMode

    model = CNN()
    x, y = torch.randn(batch_size, 1, 28, 28), torch.randint(0, 10, (batch_size,))
    with FlopCounterMode(display=False) as counter:
        nn.functional.cross_entropy(model(x), y).backward()
    return counter.get_total_flops() / batch_size


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", default=str(DATA))
    p.add_argument("--steps", type=int, default=60, help="timed batches per run (default 60)")
    p.add_argument("--warmup", type=int, default=5, help="untimed first batches of the chapter loop")
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds (default 3)")
    p.add_argument("--variants", nargs="*", default=list(VARIANTS), choices=list(VARIANTS))
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        print(json.dumps(chapter_worker(args.data_dir, args.warmup, args.steps)))
        return
    flops = train_flops_per_image()
    sides = ["chapter", *args.variants]
    rates: dict[str, list[float]] = {s: [] for s in sides}
    peaks: list[float] = []
    for r in range(args.rounds):
        peaks.append(sgemm_peak(os.cpu_count()))
        for side in sides if r % 2 == 0 else sides[::-1]:  # alternate the order between rounds
            if side == "chapter":
                res = chapter_run(args.data_dir, args.warmup, args.steps)
            else:
                res = cnnlab_run(VARIANTS[side], args.data_dir, args.steps)
            rates[side].append(res["images_per_second"])
            print(f"round {r + 1} {side}: {res['images_per_second']:.0f} img/s", file=sys.stderr, flush=True)
    report(rates, peaks, flops, args)


def report(rates: dict[str, list[float]], peaks: list[float], flops: float, args) -> None:
    peak = statistics.median(peaks)
    load = os.getloadavg()[0]
    print(
        f"\nsgemm roofline, {os.cpu_count()} cores x best 1-thread torch.mm (median of {len(peaks)} rounds): {peak:.0f} GFLOP/s; training step {flops / 1e6:.2f} MFLOP/image"
    )
    print(
        f"{args.rounds} rounds x {args.steps} batches of {batch_size}; 1-min load average at the end {load:.1f}\n"
    )
    print(
        "| loop | images/s (median) | per round | ratio to chapter (median) | GFLOP/s | % of sgemm roofline |"
    )
    print("|---|---|---|---|---|---|")
    base = rates["chapter"]
    for side, vals in rates.items():
        med = statistics.median(vals)
        ratio = statistics.median(v / b for v, b in zip(vals, base))
        rounds = ", ".join(f"{v:.0f}" for v in vals)
        gflops = med * flops / 1e9
        print(f"| {side} | {med:,.0f} | {rounds} | {ratio:.2f}x | {gflops:.1f} | {gflops / peak:.0%} |")


if __name__ == "__main__":
    main()
