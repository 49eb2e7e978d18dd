"""What keeping freed memory in the process (cnnlab.training.process) saves per training step.

    .venv/bin/python benchmarks/allocator.py [--models fastnet fastnet-bn chapter-cnn] [--steps 120] [--rounds 3]

Each run is a fresh process doing --steps training steps (batch 256, 1x28x28 MNIST-sized input, Adam,
bf16 autocast where the CPU has native bf16, channels-last: what `cnnlab train` does) with glibc's
default malloc thresholds ("default") or with `keep_freed_memory()` ("kept"). Sides alternate order
between rounds. Reported: minor page faults and system CPU seconds (deterministic: they count the
kernel's work of handing memory back and faulting it in again), user + system CPU seconds, and
images/s (median over rounds; wall time on a shared machine is noisy, CPU time less so).
"""

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time


def worker(model_name: str, steps: int, kept: bool) -> dict:
    import torch

    from cnnlab.models import get_model
    from cnnlab.training.precision import cpu_native_bf16
    from cnnlab.training.process import keep_freed_memory
    from cnnlab.training.step import TrainStep

    if kept:
        keep_freed_memory()
    torch.manual_seed(0)
    model = get_model(model_name).to(memory_format=torch.channels_last)
    x = torch.randn(256, 1, 28, 28).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (256,))
    bf16 = cpu_native_bf16()
    step = TrainStep(model, torch.optim.Adam(model.parameters(), 1e-3), "bf16" if bf16 else "fp32")
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    for _ in range(steps):
        step(x, y)  # the step `cnnlab train` takes (training/step.py)
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "faults": r1.ru_minflt - r0.ru_minflt,
        "sys": r1.ru_stime - r0.ru_stime,
        "cpu": (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime),
        "img_s": steps * 256 / wall,
        "bf16": bf16,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=["fastnet", "fastnet-bn", "chapter-cnn"])
    p.add_argument("--steps", type=int, default=120)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        name, steps, kept = args.worker
        print(json.dumps(worker(name, int(steps), kept == "kept")))
        return
    rows = []
    for name in args.models:
        got: dict[str, list[dict]] = {"default": [], "kept": []}
        for r in range(args.rounds):
            order = ["default", "kept"] if r % 2 == 0 else ["kept", "default"]
            for side in order:
                cmd = [sys.executable, __file__, "--worker", name, str(args.steps), side]
                res = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
                got[side].append(res)
                print(f"{name} round {r + 1} {side}: {res}", file=sys.stderr)
        med = {
            s: {k: statistics.median(g[k] for g in got[s]) for k in ("faults", "sys", "cpu", "img_s")}
            for s in got
        }
        rows.append((name, med, got["kept"][0]["bf16"]))
    print(f"\n{args.rounds} rounds x {args.steps} steps of batch 256 per run, medians\n")
    print(
        "| model | precision | page faults default -> kept | system s | CPU s | images/s | CPU-time saving |"
    )
    print("|---|---|---|---|---|---|---|")
    for name, m, bf16 in rows:
        d, k = m["default"], m["kept"]
        print(
            f"| {name} | {'bf16' if bf16 else 'fp32'} | {d['faults']:,.0f} -> {k['faults']:,.0f} "
            f"| {d['sys']:.2f} -> {k['sys']:.2f} | {d['cpu']:.1f} -> {k['cpu']:.1f} "
            f"| {d['img_s']:,.0f} -> {k['img_s']:,.0f} | {1 - k['cpu'] / d['cpu']:.0%} |"
        )


if __name__ == "__main__":
    main()
