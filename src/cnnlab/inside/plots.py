"""Pictures of training and of what a network learned: drawing functions that take results and return Figures.

Every `*_figure` function builds a `Figure` (a `matplotlib.figure.Figure` rendered by the Agg canvas: no
pyplot, no global backend switch, no window, so plotting is safe inside the trainer, tests and the web
server alike) and records in `figure.panels` how many image/chart panels it drew (tests check it, e.g.
16 + 32 + 64 feature maps for chapter-cnn). `save(figure, png)` writes one PNG and returns a
`Picture(path, panels)`. In Jupyter a Figure shows itself inline (`_repr_png_`), pyplot or not.

Words are in the current language (cnnlab.i18n); every figure is built and drawn inside
`cnnlab.i18n.fonts.picture_text()`, so Hangul (Korean labels, or a folder's Korean class names) renders
with a Hangul font instead of boxes.
"""

import csv
import functools
import io
import math
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
import torch.nn as nn
from matplotlib import figure
from matplotlib.backends.backend_agg import FigureCanvasAgg

from cnnlab.errors import CnnlabError
from cnnlab.i18n import N_, _, _n
from cnnlab.i18n.fonts import picture_text

DPI = 100
PANEL = 0.7  # inches per image panel in grids


class Picture(NamedTuple):
    path: Path
    panels: int


class Figure(figure.Figure):
    """A matplotlib Figure that knows its panel count and renders itself for Jupyter without pyplot."""

    panels: int = 0  # image/chart panels drawn (set by each *_figure function)

    def _repr_png_(self) -> bytes:
        buffer = io.BytesIO()
        _render(self, buffer, "png")
        return buffer.getvalue()


def _render(fig: figure.Figure, target, fmt: str | None = None) -> None:
    """Draw `fig` with the Agg canvas (explicitly: no global backend is involved). The first draw
    fixes the constrained layout, which would otherwise move again on a second draw (colorbars), so a
    figure shown in Jupyter and then saved gives the same pixels as `cnnlab plot`."""
    FigureCanvasAgg(fig)
    with picture_text():  # tick labels (class names) are made while drawing
        fig.savefig(target, format=fmt, dpi=DPI)  # a file: the format its suffix names
    fig.set_layout_engine("none")


def localized(build):
    """Decorator of the `*_figure` functions: the figure is built with a Hangul font and its words in the
    current language (English, with one warning, when no Hangul font can be had)."""

    @functools.wraps(build)
    def wrapper(*args, **kwargs):
        with picture_text():
            return build(*args, **kwargs)

    return wrapper


def _done(fig: Figure, panels: int) -> Figure:
    fig.panels = panels
    return fig


def save(fig: Figure, out_png: str | Path, reads=()) -> Picture:
    """Render `fig` with Agg and write it (creating the folder) in the format its suffix names, PNG when
    the suffix names none; atomically, never onto a file in `reads` or a special file, through a
    symbolic link (`cnnlab.checkpoint.output_file`). Bad paths give a CnnlabError."""
    from cnnlab.checkpoint import atomic_write, output_file, write_error

    out = Path(out_png)
    output_file(out, reads)  # before creating folders: a refused name leaves nothing behind
    fmt = out.suffix[1:].lower()
    fmt = fmt if fmt in FigureCanvasAgg.get_supported_filetypes() else "png"
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise write_error(out, e) from None
    atomic_write(out, lambda tmp: _render(fig, tmp, fmt))
    return Picture(out, getattr(fig, "panels", len(fig.axes)))


def _as_image(x: torch.Tensor) -> tuple[np.ndarray, str | None]:
    """uint8 C x H x W -> what imshow wants: H x W with a grey colormap, or H x W x 3 for colour."""
    a = x.detach().cpu().numpy()
    return (a[0], "gray") if a.shape[0] == 1 else (a.transpose(1, 2, 0), None)


def _grid(fig, count: int, cols: int) -> list:
    """count axes in a grid `cols` wide, without ticks; spare cells of the last row are removed."""
    rows = math.ceil(count / cols)
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False).ravel())
    for ax in axes[count:]:
        ax.remove()
    for ax in axes[:count]:
        ax.set_xticks([])
        ax.set_yticks([])
    return list(axes[:count])


# ---------------------------------------------------------------- training curves


def read_metrics(metrics_csv: str | Path) -> dict[str, list[float]]:
    """metrics.csv as columns of floats; empty cells (no validation split) become NaN."""
    path = Path(metrics_csv)
    if path.is_dir():
        path = path / "metrics.csv"
    if not path.is_file():
        raise CnnlabError(_("{path} does not exist (expected a run folder or its metrics.csv)", path=path))
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows or "epoch" not in rows[0]:
        raise CnnlabError(
            _("{path}: no epochs recorded (expected columns epoch,train_loss,test_loss,...)", path=path)
        )
    try:
        return {k: [float(r[k]) if r[k] not in ("", None) else math.nan for r in rows] for k in rows[0]}
    except ValueError as e:
        raise CnnlabError(f"{path}: {e}") from None


@localized
def curves_figure(metrics_csv: str | Path) -> Figure:
    """Loss (left) and accuracy in % (right) per epoch from a run's metrics.csv."""
    m = read_metrics(metrics_csv)
    fig = Figure(figsize=(10, 4), layout="constrained")
    loss_ax, acc_ax = fig.subplots(1, 2)
    epochs = m["epoch"]
    for key, label, style in (
        ("train_loss", _("train (mean over the epoch)"), "-o"),
        ("test_loss", _("test"), "-s"),
        ("val_loss", _("val"), "--^"),
    ):
        if key in m and not all(math.isnan(v) for v in m[key]):
            loss_ax.plot(epochs, m[key], style, label=label)
    for key, label, style in (("test_accuracy", _("test"), "-s"), ("val_accuracy", _("val"), "--^")):
        if key in m and not all(math.isnan(v) for v in m[key]):
            acc_ax.plot(
                epochs, [100 * v for v in m[key]], style, label=label, color="C1" if key[0] == "t" else "C2"
            )
    loss_ax.set(title=_("cross-entropy loss"), xlabel=_("epoch"), ylabel=_("loss"))
    acc_ax.set(title=_("accuracy"), xlabel=_("epoch"), ylabel=_("accuracy (%)"))
    for ax in (loss_ax, acc_ax):
        ax.grid(alpha=0.3)
        ax.legend()
        ax.xaxis.get_major_locator().set_params(integer=True)
    run = Path(metrics_csv) if Path(metrics_csv).is_dir() else Path(metrics_csv).parent
    fig.suptitle(_("training curves of run {run}", run=repr(run.name)), fontsize=10)
    return _done(fig, 2)


# ---------------------------------------------------------------- evaluation pictures


@localized
def confusion_figure(confusion: list[list[int]], classes: list[str]) -> Figure:
    """Confusion matrix (rows = true class, colour = share of the row) and per-class accuracy."""
    conf = np.asarray(confusion, dtype=float)
    n = len(classes)
    if conf.shape != (n, n):
        raise CnnlabError(
            _("confusion matrix is {shape}, expected {n}x{n} for {n} classes", shape=conf.shape, n=n)
        )
    per_row = conf / np.maximum(conf.sum(1, keepdims=True), 1)
    accuracy = 100 * np.diag(per_row)
    fig = Figure(figsize=(6 + 0.45 * n, 1.5 + 0.45 * n), layout="constrained")
    mat_ax, acc_ax = fig.subplots(1, 2, width_ratios=[n, max(3, n * 0.4)])
    image = mat_ax.imshow(per_row, cmap="Blues", vmin=0, vmax=1)
    for i, j in np.ndindex(n, n):
        if conf[i, j]:
            colour = "white" if per_row[i, j] > 0.5 else "black"
            mat_ax.text(j, i, f"{int(conf[i, j])}", ha="center", va="center", fontsize=8, color=colour)
    mat_ax.set_xticks(range(n), classes, rotation=45 if max(map(len, classes)) > 2 else 0, ha="right")
    mat_ax.set_yticks(range(n), classes)
    mat_ax.set(xlabel=_("predicted class"), ylabel=_("true class"))
    total = 100 * np.trace(conf) / max(conf.sum(), 1)
    mat_ax.set_title(
        _("confusion matrix: {n:,} test images, {right:.2f}% right", n=int(conf.sum()), right=total)
    )
    fig.colorbar(image, ax=mat_ax, shrink=0.8, label=_("share of the true class"))
    acc_ax.plot(accuracy, range(n), "o", color="C0")
    for i, a in enumerate(accuracy):
        acc_ax.annotate(
            f"{a:.1f}", (a, i), textcoords="offset points", xytext=(0, 5), ha="center", fontsize=8
        )
    acc_ax.set_yticks(range(n), classes)
    acc_ax.set_ylim(n - 0.5, -0.5)
    acc_ax.set_xlim(max(0, math.floor(accuracy.min() / 5) * 5 - 5), 101)  # zoomed: dots, not bars
    acc_ax.set(title=_("per-class accuracy"), xlabel=_("accuracy (%)"))
    acc_ax.grid(axis="x", alpha=0.3)
    return _done(fig, 2)


def top_losses(probs: torch.Tensor, labels: torch.Tensor, count: int) -> torch.Tensor:
    """Indices of the `count` wrong predictions with the largest loss -ln p(true class), worst first:
    the examples the model is most confidently wrong about (fastai's "top losses")."""
    loss = -probs[torch.arange(len(labels)), labels].clamp_min(1e-12).log()
    wrong = (probs.argmax(1) != labels).nonzero().flatten()
    return wrong[loss[wrong].argsort(descending=True)[:count]]


@localized
def top_losses_figure(
    images: torch.Tensor, labels: torch.Tensor, probs: torch.Tensor, classes: list[str], count: int = 16
) -> Figure:
    """Grid of the most confidently wrong images: true and predicted class, p(predicted), loss."""
    worst = top_losses(probs, labels, count)
    if len(worst) == 0:
        raise CnnlabError(_("no wrong predictions: nothing to show"))
    cols = min(8, len(worst))
    fig = Figure(figsize=(cols * 1.45, math.ceil(len(worst) / cols) * 1.75 + 0.5), layout="constrained")
    for ax, i in zip(_grid(fig, len(worst), cols), worst.tolist()):
        pixels, cmap = _as_image(images[i])
        ax.imshow(pixels, cmap=cmap)
        pred, true = int(probs[i].argmax()), int(labels[i])
        p_pred, loss = float(probs[i, pred]), -math.log(max(float(probs[i, true]), 1e-12))
        ax.set_title(
            _(
                "true {true}\npred {pred} ({p:.2f})\nloss {loss:.1f}",
                true=classes[true],
                pred=classes[pred],
                p=p_pred,
                loss=loss,
            ),
            fontsize=8,
        )
    fig.suptitle(
        _(
            "top losses: the {n} most confidently wrong of {total:,} images (loss = -ln p(true))",
            n=len(worst),
            total=len(labels),
        ),
        fontsize=11,
    )
    return _done(fig, len(worst))


@localized
def samples_figure(
    images: torch.Tensor, labels: torch.Tensor, classes: list[str], count: int = 32, title: str | None = None
) -> Figure:
    """Grid of `count` images picked at random (seed 0, so the picture is stable) with their labels."""
    pick = torch.randperm(len(images), generator=torch.Generator().manual_seed(0))[:count]
    cols = min(8, len(pick))
    fig = Figure(figsize=(cols * 1.1, math.ceil(len(pick) / cols) * 1.25 + 0.4), layout="constrained")
    for ax, i in zip(_grid(fig, len(pick), cols), pick.tolist()):
        pixels, cmap = _as_image(images[i])
        ax.imshow(pixels, cmap=cmap)
        ax.set_title(classes[int(labels[i])], fontsize=9)
    fig.suptitle(
        _(
            "{title}: {n} random images of {total:,}, with their labels",
            title=title or _("samples"),
            n=len(pick),
            total=len(images),
        )
    )
    return _done(fig, len(pick))


# ---------------------------------------------------------------- inside the network


def first_conv(model: nn.Module) -> tuple[str, nn.Conv2d]:
    for name, m in model.named_modules():
        if isinstance(m, nn.Conv2d):
            return name, m
    raise CnnlabError(_("the model has no Conv2d layer"))


@localized
def filters_figure(weight: torch.Tensor, title: str | None = None) -> Figure:
    """Each filter of a conv layer (F x C x K x K) as a small image. One input channel: red = positive
    weight, blue = negative, on one shared scale so filters compare; three channels: as colour."""
    w = weight.detach().float().cpu()
    count, channels = w.shape[:2]
    cols = min(8 if count <= 32 else 16, count)  # few filters: draw them larger
    fig = Figure(figsize=(cols * 1.0 + 1.2, math.ceil(count / cols) * 1.1 + 0.7), layout="constrained")
    axes = _grid(fig, count, cols)
    limit = float(w.abs().max()) or 1.0
    for f, ax in enumerate(axes):
        if channels == 3:  # stretch each filter to 0..1 so its colours show
            rgb = w[f].permute(1, 2, 0)
            ax.imshow(((rgb - rgb.min()) / (rgb.max() - rgb.min() + 1e-12)).numpy())
        else:  # one channel, or the mean over many (first layers normally have 1 or 3)
            image = ax.imshow(w[f].mean(0).numpy(), cmap="RdBu_r", vmin=-limit, vmax=limit)
        ax.set_title(str(f), fontsize=7)
    if channels != 3:
        fig.colorbar(image, ax=axes, shrink=0.8, label=_("weight"))
    size = "x".join(map(str, w.shape[2:]))
    fig.suptitle(
        _n(
            "{title}: {count} filters, {n} input channel, {size} each",
            "{title}: {count} filters, {n} input channels, {size} each",
            channels,
            title=title or _("first-layer filters"),
            count=count,
            size=size,
        )
    )
    return _done(fig, count)


LEGEND = N_("feature maps = conv outputs before ReLU: red > 0 (ReLU keeps it), blue < 0 (ReLU zeroes it)")


@localized
def feature_maps_figure(
    maps: list[tuple[str, torch.Tensor]], image: torch.Tensor | None = None, max_channels: int = 64
) -> Figure:
    """One panel per channel of every conv output (F x H x W each), layer by layer, as returned by
    `cnnlab.inside.activations.conv_feature_maps`. Maps are pre-ReLU: red = positive (ReLU keeps it),
    blue = negative (ReLU zeroes it), white = 0, one symmetric scale per layer. `image` (uint8 C x H x W)
    is drawn on top; it is not counted in `panels`."""
    cols = 16
    shown = [(name, fmap[:max_channels]) for name, fmap in maps]
    rows = [math.ceil(len(fmap) / cols) for _name, fmap in shown]
    header = 2 if image is not None else 0
    fig = Figure(figsize=(cols * PANEL, (sum(rows) + header) * PANEL + 0.6 * len(rows)), layout="constrained")
    subfigs = fig.subfigures(len(rows) + bool(header), 1, height_ratios=([header] if header else []) + rows)
    subfigs = np.atleast_1d(subfigs)
    if image is not None:
        ax = subfigs[0].subplots()
        pixels, cmap = _as_image(image)
        ax.imshow(pixels, cmap=cmap)
        ax.set_axis_off()
        subfigs[0].suptitle(_(LEGEND), fontsize=10)
    else:
        fig.suptitle(_(LEGEND), fontsize=10)
    panels = 0
    for sub, (name, fmap), full in zip(subfigs[bool(header) :], shown, maps):
        limit = float(torch.quantile(fmap.abs().flatten().float(), 0.99)) or 1.0
        for ax, channel in zip(_grid(sub, len(fmap), cols), fmap):
            ax.imshow(channel.numpy(), cmap="RdBu_r", vmin=-limit, vmax=limit)
        total = len(full[1])
        more = " " + _("(first {n} of {total})", n=len(fmap), total=total) if len(fmap) < total else ""
        size = "x".join(map(str, fmap.shape[1:]))
        title = _("{layer}: {n} filters -> {n} feature maps of {size}", layer=name, n=total, size=size)
        sub.suptitle(title + more, fontsize=10)
        panels += len(fmap)
    return _done(fig, panels)
