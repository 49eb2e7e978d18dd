"""Transfer learning measured with weights cnnlab makes itself (no ImageNet weights on this machine).

    python benchmarks/transfer.py accuracy --data ../shared/data --work /tmp/transfer-bench
    python benchmarks/transfer.py speed

`accuracy`: pretrain resnet18 (width 0.25, small form) on Fashion-MNIST with a normal `cnnlab train` run
(2 epochs planned into `--time-budget` 300 s, so it fits a loaded machine), then, with 100 MNIST training
images per class (`--train-per-class`, seeded, stratified; `--per-class 50 100` for more sizes), compare
`--finetune probe`, `--finetune full` and training from scratch, 3 seeds each: test accuracy on all
10,000 MNIST test images (full/scratch: `cnnlab eval` of the final checkpoint, per-epoch evaluation used
the first 1,000 via `--limit-test`) and the wall time of the whole `cnnlab train` command (a subprocess
each). Same optimiser for all: Adam, batch 16, lr 2e-3 (probe 3e-3); full and scratch 4 epochs (full: 1
of them frozen), probe 40 epochs of its linear head.

`speed`: resnet18 (width 1, ImageNet form, 3 channels, 1000-class weights made here) on random images:
probe feature extraction at 224 px (images/s) and full fine-tuning (everything unfrozen, batch 16) at 96
and 224 px (images/s, and the seconds an epoch of 1,000 images takes at that rate). Prints markdown rows.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

# --threads 1: on a machine shared by many jobs, two spinning OpenMP threads per process cost far more
# than they gain (measured here: 3-5 images/s with 2 threads under load 14)
COMMON = [
    "--model",
    "resnet18",
    "--width",
    "0.25",
    "--batch-size",
    "64",
    "--json",
    "--overwrite",
    "--threads",
    "1",
]


def cnnlab(*args: str) -> tuple[dict, float]:
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "cnnlab", *args], capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode:
        sys.exit(f"cnnlab {' '.join(args)} failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout), wall


def accuracy(args) -> None:
    work = Path(args.work)
    fashion, mnist = str(Path(args.data) / "fashion-mnist"), str(Path(args.data) / "mnist")
    src = work / "fashion"
    if not (src / "best.safetensors").exists():
        pretrain = [
            "--dataset",
            "fashion-mnist",
            "--data-dir",
            fashion,
            "--epochs",
            "2",
            "--optimizer",
            "adamw",
        ]
        pretrain += ["--lr", "3e-3", "--schedule", "onecycle", "--time-budget", str(args.pretrain_seconds)]
        s, wall = cnnlab("train", *COMMON, *pretrain, "--limit-test", "2000", "--out", str(src))
        print(
            f"pretrain: fashion-mnist accuracy {s['test_accuracy']:.4f} (first 2,000 test images), {wall:.0f}s"
        )
    common = ["--dataset", "mnist", "--data-dir", mnist, "--lr", "2e-3", "--batch-size", "16"]
    modes = {
        # probe: every test image's features are computed once and cached, so it scores on all 10,000
        "probe": ["--weights", str(src), "--finetune", "probe", "--epochs", "40", "--lr", "3e-3"],
        "full": ["--weights", str(src), "--epochs", "4", "--freeze-epochs", "1", "--limit-test", "1000"],
        "scratch": ["--epochs", "4", "--schedule", "onecycle", "--limit-test", "1000"],
    }
    results: dict[tuple[int, str], tuple[list, list]] = {}
    for n in args.per_class:
        for seed in args.seeds:  # seeds outermost: an interrupted run still has every mode for some seeds
            for mode, extra in modes.items():
                accs, walls = results.setdefault((n, mode), ([], []))
                out = work / f"{mode}-{n}-{seed}"
                done = out / "result.json"
                if not done.exists():  # a finished run is not repeated when the script is restarted
                    args_ = ["--train-per-class", str(n), "--seed", str(seed), "--out", str(out)]
                    s, wall = cnnlab("train", *COMMON, *common, *args_, *extra)
                    acc = s["test_accuracy"]
                    if "--limit-test" in extra:  # per-epoch numbers used 1,000 test images; the final all
                        acc = cnnlab("eval", str(out), "--data-dir", mnist, "--json")[0]["accuracy"]
                    done.write_text(json.dumps({"accuracy": acc, "wall": wall}))
                r = json.loads(done.read_text())
                accs.append(r["accuracy"])
                walls.append(r["wall"])
                print(f"{n}/class {mode} seed {seed}: {r['accuracy']:.4f} in {r['wall']:.1f}s", flush=True)
    rows = [(n, mode, accs, walls) for (n, mode), (accs, walls) in results.items()]
    print(
        "\n| images per class | mode | test accuracy (mean ± sd, 3 seeds) | per seed | wall time (median) |"
    )
    print("|---:|---|---:|---|---:|")
    for n, mode, accs, walls in rows:
        sd = statistics.stdev(accs) if len(accs) > 1 else 0.0
        per = ", ".join(f"{a:.2%}" for a in accs)
        print(
            f"| {n} | {mode} | {statistics.mean(accs):.2%} ± {sd:.2%} | {per} | {statistics.median(walls):.1f} s |"
        )


def train_epoch(model, tuned, d, n: int) -> float:
    """Seconds for one pass over the n images, batch 16, every layer training (the step `cnnlab train`
    takes: training/step.py)."""
    import torch

    from cnnlab.training.step import TrainStep

    step = TrainStep(model, tuned.optimizer)
    t0 = time.perf_counter()
    for i in range(0, n, 16):
        x = ((d.train_x[i : i + 16].float() / 255 - 0.45) / 0.25).contiguous(
            memory_format=torch.channels_last
        )
        step(x, d.train_y[i : i + 16])
    return time.perf_counter() - t0


def speed(args) -> None:
    import torch

    from cnnlab.data import Dataset
    from cnnlab.models import get_model
    from cnnlab.training.config import TrainConfig
    from cnnlab.training.finetune import FineTune
    from cnnlab.training.transfer import features

    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    rows = []
    n = args.images

    def data(px: int) -> Dataset:
        x = torch.randint(0, 256, (n, 3, px, px), dtype=torch.uint8)
        y = torch.randint(0, 10, (n,))
        return Dataset("random", x, y, x[:1], y[:1], [str(i) for i in range(10)], (0.45,) * 3, (0.25,) * 3)

    model = get_model("resnet18", num_classes=10, in_channels=3, input_size=224)
    d = data(224)
    features(model, d.train_x[:4], d, batch_size=4)  # warm-up (oneDNN primitive creation)
    times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        features(model, d.train_x, d, batch_size=16)
        times.append(time.perf_counter() - t0)
    rows.append(("probe feature extraction", 224, n / statistics.median(times)))
    for px in (96, 224):
        d = data(px)
        model = get_model("resnet18", num_classes=10, in_channels=3, input_size=px).train()
        model = model.to(memory_format=torch.channels_last)
        model.cnnlab_fresh = {"fc.weight", "fc.bias"}
        tuned = FineTune(TrainConfig(model="resnet18", lr=1e-3), model, 1, 10**6)
        tuned.set_step(10**5)  # unfrozen phase: every layer trains

        train_epoch(model, tuned, d, n)  # warm-up
        rows.append(
            (
                "full fine-tune (train step)",
                px,
                n / statistics.median([train_epoch(model, tuned, d, n) for _ in range(args.repeats)]),
            )
        )
    print(f"load average before: {args.load}; after: {open('/proc/loadavg').read().split()[:3]}")
    print(f"torch threads {torch.get_num_threads()}, {n} images, median of {args.repeats}")
    print("\n| what | px | images/s | 1,000 images take |")
    print("|---|---:|---:|---:|")
    for what, px, rate in rows:
        print(f"| {what} | {px} | {rate:.1f} | {1000 / rate:.0f} s |")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="what", required=True)
    a = sub.add_parser("accuracy")
    a.add_argument("--data", default=os.environ.get("CNNLAB_DATA", "../shared/data"))
    a.add_argument("--work", default="/tmp/transfer-bench")
    a.add_argument("--pretrain-seconds", type=int, default=300, help="--time-budget of the pretraining run")
    a.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    a.add_argument("--per-class", type=int, nargs="+", default=[100])
    s = sub.add_parser("speed")
    s.add_argument("--images", type=int, default=32)
    s.add_argument("--repeats", type=int, default=3)
    s.add_argument("--threads", type=int, default=1, help="torch threads (1: fair on a shared machine)")
    args = p.parse_args()
    args.load = open("/proc/loadavg").read().split()[:3]
    print(f"load average at start: {args.load}", flush=True)
    accuracy(args) if args.what == "accuracy" else speed(args)


if __name__ == "__main__":
    main()
