"""Training and inference throughput of registered models, timm-style: the library behind `cnnlab bench
[MODEL...]` (the command, its flags and table: cnnlab.commands.bench).

Modelled on timm's benchmark.py: synthetic input of the given shape, a few warm-up steps (oneDNN builds its
kernels on the first calls), then the median of repeated timed steps. A training step is the one `cnnlab
train` takes per batch (training/step.py: forward, cross-entropy, backward, here with a fused Adam step,
channels_last); inference is a forward pass under `torch.inference_mode()` in eval mode.

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

import statistics
import time
from dataclasses import dataclass

import torch
import torch.nn as nn
from torch.utils.flop_counter import FlopCounterMode

from cnnlab.errors import CnnlabError
from cnnlab.i18n import _
from cnnlab.models import get_model
from cnnlab.options import unknown_error

DEFAULT_WIDTH = 0.25  # every registered model at a small width keeps the default run short
DEFAULT_INPUT = "1x28x28"


@dataclass
class BenchOptions:
    batch_size: int = 64  # images per step
    width: float = DEFAULT_WIDTH  # width multiplier of the registry models
    classes: int = 10  # number of classes (outputs)
    warmup: int = 2  # untimed steps first (oneDNN builds its kernels on the first calls)
    repeats: int = 5  # timed steps; the median is reported
    threads: int = 0  # torch intra-op threads (0: PyTorch's)
    channels_last: bool = True  # NHWC, as `cnnlab train` runs
    precision: str = "both"  # both: fp32 and bf16 autocast; fp32: fp32 only


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
    name: str, shape: tuple[int, int, int], opts: BenchOptions, kwargs: dict | None = None
) -> tuple[nn.Module, torch.Tensor, int, int]:
    """(model, batch, params, forward MACs per image) for registry model `name` (built with a run's own
    `kwargs` when given)."""
    from cnnlab.inside.summary import build, summarize

    model = get_model(name, **kwargs) if kwargs else build(name, shape, opts.classes, opts.width)
    s = summarize(model, shape)
    x = torch.randn(opts.batch_size, *shape)
    if opts.channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    return model, x, s.params, s.macs


def _steps(model: nn.Module, x: torch.Tensor, y: torch.Tensor, precision: str):
    """(train_step, infer_step) closures: the step `cnnlab train` takes per batch, and a forward pass."""
    from cnnlab.core.autocast import autocast
    from cnnlab.training.step import TrainStep

    trainable = [p for p in model.parameters() if p.requires_grad]
    step = TrainStep(model, torch.optim.Adam(trainable, lr=1e-4, fused=True), precision)

    def train_step() -> None:
        step(x, y)

    @torch.inference_mode()
    def infer_step() -> None:
        with autocast(precision):
            model(x)

    return train_step, infer_step


def bench_model(
    name: str, shape: tuple[int, int, int], opts: BenchOptions, peak: float, kwargs: dict | None = None
) -> dict:
    """One row of the table: params, MACs, train and inference images/s, GFLOP/s and roofline share
    (and the bf16 columns unless opts.precision is "fp32") of registry model `name` on `shape` inputs."""
    model, x, params, macs = _model_and_input(name, shape, opts, kwargs)
    y = torch.randint(0, (kwargs or {}).get("num_classes", opts.classes), (len(x),))
    train_step, infer_step = _steps(model, x, y, "fp32")
    model.train()
    train_flops = count_flops(train_step)
    train_t = median_time(train_step, opts.warmup, opts.repeats)
    model.eval()
    infer_flops = count_flops(infer_step)
    infer_t = median_time(infer_step, opts.warmup, opts.repeats)
    n = len(x)
    bf16 = {}
    if opts.precision == "both":
        train_step, infer_step = _steps(model, x, y, "bf16")
        model.train()
        bf16_train_t = median_time(train_step, opts.warmup, opts.repeats)
        model.eval()
        bf16_infer_t = median_time(infer_step, opts.warmup, opts.repeats)
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


def bench(
    models: list[str], input: str = DEFAULT_INPUT, opts: BenchOptions | None = None, on_done=None
) -> dict:
    """What `cnnlab bench --json` prints: the machine (threads, torch, sgemm roofline, native bf16) and
    one row per model. `models`: registry names (none: every model) or run folders / checkpoints (their
    model on their own input); `input`: "CxHxW" or a run. A model the input does not fit gets an "error"
    row; `on_done(name)` is called after each model."""
    from cnnlab.checkpoint import run_model
    from cnnlab.inside.summary import parse_input
    from cnnlab.models import list_models
    from cnnlab.training.precision import cpu_native_bf16
    from cnnlab.training.process import set_up

    opts = opts or BenchOptions()
    shape = parse_input(input)
    names = models or list_models()
    runs = {n: run_model(n) for n in names}  # a run folder or checkpoint: its model on its own input
    unknown = [n for n in names if runs[n] is None and n not in list_models()]
    if unknown:
        raise unknown_error("model", unknown[0], list_models())
    if opts.batch_size < 1 or opts.repeats < 1 or opts.warmup < 0:
        raise CnnlabError(_("--batch-size and --repeats must be >= 1, --warmup >= 0"))
    set_up(opts.threads)  # threads, and memory kept as `cnnlab train` keeps it (training/process.py)

    peak = sgemm_peak()
    rows = []
    for name in names:
        run = runs[name]
        try:
            if run is None:
                rows.append(bench_model(name, shape, opts, peak))
            else:
                row = bench_model(run["model"], run["shape"], opts, peak, run["kwargs"])
                rows.append({**row, "model": f"{run['model']} ({name})", "input_shape": list(run["shape"])})
        except CnnlabError as e:  # e.g. the input is too small for this model: report it, go on
            rows.append({"model": name, "error": str(e)})
        if on_done is not None:
            on_done(name)
    return {
        "input_shape": list(shape),
        "batch_size": opts.batch_size,
        "width": opts.width,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "sgemm_peak_gflops": peak,
        "bf16_native": cpu_native_bf16(),
        "models": rows,
    }
