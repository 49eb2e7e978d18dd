"""The learning-rate range test (Smith 2015, "Cyclical Learning Rates"; fastai's lr_find) behind
`cnnlab lr-find` (the command: cnnlab.commands.lr_find).

On a deep copy of the model (the model itself is never touched), one optimiser step per mini-batch with
the learning rate growing exponentially from --start-lr (1e-7) to --end-lr (10) over --num-steps (100);
the loss is smoothed (exponential moving average, bias-corrected) and the sweep stops once the smoothed
loss exceeds 4x its minimum: it diverged. Suggested rate: fastai's "valley" -- the longest stretch over
which the loss keeps falling, about halfway down it; the steepest-descent point is printed too.
Takes every `cnnlab train` flag and starts as `train` does (training/start.py): the same data (folder options,
image size, --val-split, --classes, ...), the same model and weights, precision, augmentation and memory
format; only the learning rate is swept.
"""

import copy
import math
from pathlib import Path

import torch
import torch.nn as nn

from cnnlab.errors import CnnlabError
from cnnlab.i18n import _

SMOOTH = 0.98  # EMA factor of the loss (fastai's)
DIVERGE = 4.0  # stop when smoothed loss > DIVERGE x its minimum


def sweep_rates(start: float, end: float, steps: int) -> list[float]:
    """steps rates spaced exponentially from start to end (both included)."""
    if not (0 < start < end) or steps < 2:
        raise CnnlabError(
            _(
                "lr-find needs 0 < --start-lr < --end-lr and --num-steps >= 2 (got {start}, {end}, {steps})",
                start=start,
                end=end,
                steps=steps,
            )
        )
    return [start * (end / start) ** (i / (steps - 1)) for i in range(steps)]


def valley(lrs: list[float], losses: list[float]) -> float:
    """fastai's suggestion: the longest decreasing run of the loss curve, about halfway along it."""
    n = len(losses)
    if n < 3:
        return lrs[0]
    length = [1] * n  # longest decreasing subsequence ending at i
    best_end = 0
    for i in range(1, n):
        for j in range(i):
            if losses[i] < losses[j] and length[i] < length[j] + 1:
                length[i] = length[j] + 1
        if length[i] > length[best_end]:
            best_end = i
    start = best_end - length[best_end]  # fastai's indices, kept so the suggestions agree
    third = (best_end - start) / 3
    return lrs[max(0, start + int(third) + int(third / 2))]


def steepest(lrs: list[float], losses: list[float]) -> float:
    """The rate where the smoothed loss falls fastest per decade of learning rate."""
    if len(losses) < 3:
        return lrs[0]
    slopes = [
        (losses[i + 1] - losses[i - 1]) / (math.log10(lrs[i + 1]) - math.log10(lrs[i - 1]))
        for i in range(1, len(losses) - 1)
    ]
    return lrs[1 + min(range(len(slopes)), key=slopes.__getitem__)]


def find(model: nn.Module, make_step, batches, rates: list[float]) -> dict:
    """Run the sweep on a copy of `model`; `batches` yields (x, y) forever, `make_step(net)` builds the
    `TrainStep` (training/step.py: the run's optimiser, precision and loss) for the copy. Returns lrs,
    losses (smoothed), raw losses."""
    net = copy.deepcopy(model).train()
    step = make_step(net)
    avg, best, lrs, smooth, raw = 0.0, math.inf, [], [], []
    for i, (lr, (x, y)) in enumerate(zip(rates, batches)):
        for g in step.optimizer.param_groups:
            g["lr"] = lr
        value = step(x, y).item()
        if not math.isfinite(value):
            break
        avg = SMOOTH * avg + (1 - SMOOTH) * value
        s = avg / (1 - SMOOTH ** (i + 1))  # bias correction of the EMA's zero start
        lrs.append(lr)
        smooth.append(s)
        raw.append(value)
        best = min(best, s)
        if i > 0 and s > DIVERGE * best:
            break
    return {"lrs": lrs, "losses": smooth, "raw_losses": raw}


def draw(result: dict, png: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from cnnlab.core.files import atomic_write
    from cnnlab.i18n.fonts import picture_text

    with picture_text():  # Korean labels need a Hangul font (or fall back to English)
        fig = Figure(figsize=(6, 4), layout="constrained")
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        ax.plot(result["lrs"], result["losses"])
        ax.set_xscale("log")
        ax.set_xlabel(_("learning rate"))
        ax.set_ylabel(_("loss (smoothed)"))
        losses = result["losses"]
        ax.set_ylim(
            min(losses) * 0.95, min(max(losses), 1.5 * losses[0]) * 1.02
        )  # the diverged tail off-scale
        labels = {"suggestion": _("suggestion {lr:.2e}"), "steepest": _("steepest {lr:.2e}")}
        for key, colour in (("suggestion", "tab:red"), ("steepest", "tab:green")):
            ax.axvline(result[key], color=colour, linestyle="--", label=labels[key].format(lr=result[key]))
        ax.legend()
        atomic_write(png, lambda tmp: fig.savefig(tmp, format="png", dpi=100))


def lr_find(
    cfg, given: set[str] | None, start_lr: float, end_lr: float, num_steps: int, plot: str, json_mode: bool
) -> dict:
    """The range test for a run of `cfg` (what `cnnlab lr-find --json` prints): the rates and smoothed
    losses, the suggestion (valley) and the steepest point, the input shape and precision; the curve is
    drawn to `plot`. Progress goes to stderr; `given`: the settings the user chose (a folder run fills the
    others, as `cnnlab train` does)."""
    from cnnlab.data import to_float
    from cnnlab.data.augment import augment_batch
    from cnnlab.training.data_setup import class_weights
    from cnnlab.training.logger import Logger
    from cnnlab.training.optim import build_optimizer
    from cnnlab.training.process import set_up
    from cnnlab.training.start import begin
    from cnnlab.training.step import TrainStep, epoch_order

    rates = sweep_rates(start_lr, end_lr, num_steps)
    set_up(cfg.threads)  # training/process.py
    torch.manual_seed(cfg.seed)
    log = Logger(True, json_mode)
    # the run's own start (training/start.py): the same data, folder settings, image size, model and
    # precision as `cnnlab train` with these flags would use
    start = begin(cfg, log, given)
    cfg, data, model = start.cfg, start.data, start.model
    x_all, y_all = start.split[0], start.split[1]
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    c, size, _width = start.spec.shape
    log(
        _(
            "lr-find: {model} trains at {size}x{size} ({c} channel(s)) on {n} images of {data}, batch {batch}, "
            "{precision}",
            model=cfg.model,
            size=size,
            c=c,
            n=len(y_all),
            data=_("folder") if data.name == "folder" else data.name,  # a folder: said as a word
            batch=cfg.batch_size,
            precision=start.precision,
        )
    )
    class_weight = class_weights(cfg, y_all, len(data.classes))

    def batches():
        epoch, step = 0, 0
        while True:
            order = epoch_order(cfg.seed, epoch, len(y_all))
            for i in range(0, len(order), cfg.batch_size):
                idx = order[i : i + cfg.batch_size]
                x = to_float(x_all[idx], data.mean, data.std)
                if cfg.channels_last:
                    x = x.contiguous(memory_format=torch.channels_last)
                if cfg.augment != "none":
                    x = augment_batch(x, cfg.augment, torch.Generator().manual_seed(cfg.seed * 7 + step))
                step += 1
                yield x, y_all[idx]
            epoch += 1

    def make_step(net):
        optimizer = build_optimizer(cfg, net)
        return TrainStep(net, optimizer, start.precision, "cpu", cfg.label_smoothing, class_weight)

    result = find(model, make_step, batches(), rates)
    if len(result["lrs"]) < 3:
        raise CnnlabError(_("lr-find: the loss diverged within the first steps; lower --start-lr"))
    result["suggestion"] = valley(result["lrs"], result["losses"])
    result["steepest"] = steepest(result["lrs"], result["losses"])
    result["plot"] = str(plot)
    result["input_shape"] = list(start.spec.shape)
    result["precision"] = start.precision
    draw(result, Path(plot))
    return result
