"""`cnnlab bench [MODEL...]`: training and inference throughput of registered models, timm-style.

Modelled on timm's benchmark.py: synthetic input of the given shape, a few warm-up steps (oneDNN builds its
kernels on the first calls), then the median of repeated timed steps. A training step is what
`cnnlab train` does per batch (forward, cross-entropy, backward, fused Adam step, channels_last); inference
is a forward pass under `torch.inference_mode()` in eval mode.

Counts: params and MACs per image come from `cnnlab.inside.summary` (Conv2d and Linear multiply-adds, forward).
Achieved GFLOP/s uses PyTorch's own FlopCounterMode on one real step (forward + backward for training: the
backward of a layer costs ~2x its forward, except the first layer's unneeded input gradient), divided by
the median step time, and is set against the fp32 matrix-multiply roofline (`sgemm_peak`: one core's best
torch.mm times the thread count) measured in the same run: the share of that roofline a model reaches.

Precision: every model is measured in fp32 and, unless `--precision fp32`, again under bf16 autocast (what
`cnnlab train --precision bf16` does: fp32 weights and optimiser, bf16 matrix multiplies); the bf16 columns
give images/s and the speed-up over fp32 measured in the same run. `bf16_native` says whether this
machine computes bf16 in hardware (without it oneDNN emulates bf16 and it is slower than fp32).
"""

import argparse
import json
import statistics
import sys
import time

import torch
import torch.nn as nn
from torch.utils.flop_counter import FlopCounterMode

from cnnlab.errors import CnnlabError
from cnnlab.i18n import _
from cnnlab.models import get_model
from cnnlab.options import unknown_error

DEFAULT_WIDTH = 0.25  # every registered model at a small width keeps the default run short
DEFAULT_INPUT = "1x28x28"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "models",
        nargs="*",
        metavar="MODEL",
        help=_("registry names (default: every model), or run folders / checkpoints: their model and input"),
    )
    p.add_argument(
        "--input",
        default=DEFAULT_INPUT,
        metavar="CxHxW",
        help=_("input shape (default {default})", default=DEFAULT_INPUT),
    )
    p.add_argument("--batch-size", type=int, default=64, help=_("batch size (default 64)"))
    p.add_argument(
        "--width",
        type=float,
        default=DEFAULT_WIDTH,
        help=_("width multiplier (default {default})", default=DEFAULT_WIDTH),
    )
    p.add_argument("--classes", type=int, default=10, help=_("number of classes (default 10)"))
    p.add_argument("--warmup", type=int, default=2, help=_("untimed steps first (default 2)"))
    p.add_argument(
        "--repeats", type=int, default=5, help=_("timed steps; the median is reported (default 5)")
    )
    p.add_argument("--threads", type=int, default=0, help=_("torch intra-op threads (default: PyTorch's)"))
    p.add_argument("--no-channels-last", dest="channels_last", action="store_false", help=_("keep NCHW"))
    p.add_argument(
        "--precision",
        choices=("both", "fp32"),
        default="both",
        help=_("both: fp32 and bf16 autocast (default); fp32: fp32 only"),
    )
    p.add_argument("--json", action="store_true", help=_("one JSON object on stdout"))


def sgemm_peak(threads: int | None = None, n: int = 2048, repeats: int = 5) -> float:
    """This machine's fp32 roofline for `threads` cores, GFLOP/s: the best of `repeats` n x n torch.mm on
    ONE thread, times `threads`. Measured per core because on a machine shared with other jobs a
    multi-threaded multiply waits for whichever core is busy, which says more about the neighbours than
    about the hardware; every core runs the same code, so the roofline is the per-core peak x cores."""
    threads = threads or torch.get_num_threads()
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        a, b = torch.randn(n, n), torch.randn(n, n)
        c = torch.empty(n, n)
        torch.mm(a, b, out=c)
        best = min(_time(lambda: torch.mm(a, b, out=c)) for _repeat in range(repeats))
    finally:
        torch.set_num_threads(before)
    return threads * 2 * n**3 / best / 1e9


def _time(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def median_time(fn, warmup: int, repeats: int) -> float:
    for _step in range(warmup):
        fn()
    return statistics.median(_time(fn) for _repeat in range(max(repeats, 1)))


def count_flops(fn) -> int:
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def _model_and_input(
    name: str, shape: tuple[int, int, int], args, kwargs: dict | None = None
) -> tuple[nn.Module, torch.Tensor, int, int]:
    """(model, batch, params, forward MACs per image) for registry model `name` (built with a run's own
    `kwargs` when given)."""
    from cnnlab.inside.summary import build, summarize

    model = get_model(name, **kwargs) if kwargs else build(name, shape, args.classes, args.width)
    s = summarize(model, shape)
    x = torch.randn(args.batch_size, *shape)
    if args.channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    return model, x, s.params, s.macs


def _steps(model: nn.Module, x: torch.Tensor, y: torch.Tensor, precision: str):
    """(train_step, infer_step) closures: what `cnnlab train` does per batch, and a forward pass."""
    from cnnlab.core.autocast import autocast
    from cnnlab.training.loop import compute_loss

    trainable = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(trainable, lr=1e-4, fused=True)

    def train_step() -> None:
        with autocast(precision):
            out = model(x)
        loss = compute_loss(model, out, y, 0.0, 1.0 / len(x))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    @torch.inference_mode()
    def infer_step() -> None:
        with autocast(precision):
            model(x)

    return train_step, infer_step


def bench_model(
    name: str, shape: tuple[int, int, int], args, peak: float, kwargs: dict | None = None
) -> dict:
    model, x, params, macs = _model_and_input(name, shape, args, kwargs)
    y = torch.randint(0, (kwargs or {}).get("num_classes", args.classes), (len(x),))
    train_step, infer_step = _steps(model, x, y, "fp32")
    model.train()
    train_flops = count_flops(train_step)
    train_t = median_time(train_step, args.warmup, args.repeats)
    model.eval()
    infer_flops = count_flops(infer_step)
    infer_t = median_time(infer_step, args.warmup, args.repeats)
    n = len(x)
    bf16 = {}
    if getattr(args, "precision", "both") == "both":
        train_step, infer_step = _steps(model, x, y, "bf16")
        model.train()
        bf16_train_t = median_time(train_step, args.warmup, args.repeats)
        model.eval()
        bf16_infer_t = median_time(infer_step, args.warmup, args.repeats)
        bf16 = {
            "bf16_train_images_per_second": n / bf16_train_t,
            "bf16_train_speedup": train_t / bf16_train_t,
            "bf16_infer_images_per_second": n / bf16_infer_t,
            "bf16_infer_speedup": infer_t / bf16_infer_t,
        }
    return {
        "model": name,
        "params": params,
        "macs": macs,
        "train_images_per_second": n / train_t,
        "train_step_ms": train_t * 1e3,
        "train_gflops": train_flops / train_t / 1e9,
        "train_peak_share": train_flops / train_t / 1e9 / peak,
        "infer_images_per_second": n / infer_t,
        "infer_step_ms": infer_t * 1e3,
        "infer_gflops": infer_flops / infer_t / 1e9,
        "infer_peak_share": infer_flops / infer_t / 1e9 / peak,
        **bf16,
    }


def format_table(result: dict) -> str:
    both = any("bf16_train_images_per_second" in r for r in result["models"])
    titles = [
        _("model"),
        _("params"),
        _("MACs/img"),
        _("train img/s"),
        _("train step ms"),
        _("train GFLOP/s"),
        _("train % roofline"),
        _("infer img/s"),
        _("infer GFLOP/s"),
        _("infer % roofline"),
    ]
    if both:
        titles += [_("train img/s bf16"), _("infer img/s bf16")]
    cols = len(titles)
    head = "| " + " | ".join(titles) + f" |\n|{'---|' * cols}"
    rows = [head]
    for r in result["models"]:
        if "error" in r:
            rows.append(f"| {r['model']} | {r['error']} |" + " |" * (cols - 2))
            continue
        bf16 = (
            f" {r['bf16_train_images_per_second']:,.0f} ({r['bf16_train_speedup']:.2f}x) "
            f"| {r['bf16_infer_images_per_second']:,.0f} ({r['bf16_infer_speedup']:.2f}x) |"
            if both
            else ""
        )
        rows.append(
            f"| {r['model']} | {r['params']:,} | {r['macs']:,} | {r['train_images_per_second']:,.0f} "
            f"| {r['train_step_ms']:.1f} | {r['train_gflops']:.1f} | {r['train_peak_share']:.0%} "
            f"| {r['infer_images_per_second']:,.0f} | {r['infer_gflops']:.1f} | {r['infer_peak_share']:.0%} |{bf16}"
        )
    return "\n".join(rows)


def run(args: argparse.Namespace) -> int:
    from cnnlab.checkpoint import run_model
    from cnnlab.inside.summary import parse_input
    from cnnlab.models import list_models

    shape = parse_input(args.input)
    names = args.models or list_models()
    runs = {n: run_model(n) for n in names}  # a run folder or checkpoint: its model on its own input
    unknown = [n for n in names if runs[n] is None and n not in list_models()]
    if unknown:
        raise unknown_error("model", unknown[0], list_models())
    if args.batch_size < 1 or args.repeats < 1 or args.warmup < 0:
        raise CnnlabError(_("--batch-size and --repeats must be >= 1, --warmup >= 0"))
    from cnnlab.training.precision import cpu_native_bf16
    from cnnlab.training.process import set_up

    set_up(args.threads)  # threads, and memory kept as `cnnlab train` keeps it (training/process.py)

    peak = sgemm_peak()
    rows = []
    for name in names:
        run = runs[name]
        try:
            if run is None:
                rows.append(bench_model(name, shape, args, peak))
            else:
                row = bench_model(run["model"], run["shape"], args, peak, run["kwargs"])
                rows.append({**row, "model": f"{run['model']} ({name})", "input_shape": list(run["shape"])})
        except CnnlabError as e:  # e.g. the input is too small for this model: report it, go on
            rows.append({"model": name, "error": str(e)})
        if not args.json:
            print("  " + _("{model} done", model=name), file=sys.stderr, flush=True)
    result = {
        "input_shape": list(shape),
        "batch_size": args.batch_size,
        "width": args.width,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "sgemm_peak_gflops": peak,
        "bf16_native": cpu_native_bf16(),
        "models": rows,
    }
    if args.json:
        print(json.dumps(result))
    else:
        bf16 = _("native") if result["bf16_native"] else _("emulated (no AVX-512-BF16/AMX)")
        print(
            _(
                "input {input}, batch {batch}, width {width}, {threads} threads, sgemm roofline {peak:.0f} "
                "GFLOP/s (best 1-thread torch.mm x threads), bf16 {bf16}",
                input="x".join(map(str, shape)),
                batch=args.batch_size,
                width=args.width,
                threads=result["threads"],
                peak=peak,
                bf16=bf16,
            )
        )
        print(format_table(result))
    return 0
