"""`--finetune probe`: a linear classifier on the frozen body's features ("linear probing").

The body runs once per image, in eval mode and under inference mode, so no weight and no BatchNorm
statistic changes; its pooled features (the classifier's input) are cached with `cnnlab.data.cache`,
keyed by the weights file and the images' bytes, so a second probe of the same data starts at once.
Only the new classifier trains, on those cached features: seconds on a CPU. Because each image's features
are computed once, there is no augmentation in this mode (--augment is refused).

The result is an ordinary run folder: the whole model (frozen body + trained head) is saved as
`last`/`best.safetensors`, so eval, predict, serve and export work unchanged.
"""

import copy
import hashlib
import time
from dataclasses import replace

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from cnnlab.checkpoint import save_checkpoint
from cnnlab.core.autocast import autocast
from cnnlab.data import Dataset, to_float
from cnnlab.data.cache import Writer, cache_key, load
from cnnlab.errors import CnnlabError
from cnnlab.i18n import _
from cnnlab.inside.hooks import hooked
from cnnlab.models.adapt import head_name
from cnnlab.training.config import TrainConfig
from cnnlab.training.data_setup import save_run_files
from cnnlab.training.finetune import make_optimizer, note_text, wants_weights
from cnnlab.training.logger import Logger
from cnnlab.training.metrics import append_metrics, draw_curves, save_config, selection_score, summarize
from cnnlab.training.process import set_up
from cnnlab.training.runs import open_run_folder
from cnnlab.training.start import begin
from cnnlab.training.step import TrainStep, epoch_order


@torch.inference_mode()
def features(
    model: nn.Module, x: torch.Tensor, data: Dataset, batch_size: int = 256, precision: str = "fp32"
) -> torch.Tensor:
    """The classifier's input for every uint8 image in x (N x F float32), body in eval mode (under
    `precision`'s autocast, as the run computes)."""
    name = head_name(model)
    head = model.get_submodule(name)
    grabbed: list[torch.Tensor] = []
    with hooked(model, [(name, head)], before=lambda n, m, inp: grabbed.append(inp[0].float())):
        for i in range(0, len(x), batch_size):
            xb = to_float(x[i : i + batch_size], data.mean, data.std)
            with autocast(precision):
                model(xb.contiguous(memory_format=torch.channels_last))
    return torch.cat(grabbed) if grabbed else torch.empty(0, head.in_features)


def cached_features(
    model: nn.Module, x: torch.Tensor, data: Dataset, cfg: TrainConfig, source: str, precision: str
):
    """features(), through the decode cache: key = the weights file + model + the images' bytes."""
    digest = hashlib.sha256(x.numpy().tobytes()).hexdigest()
    files = [source] if source and not source.startswith("http") else []
    settings = {
        "probe": cfg.model,
        "kwargs": model.cnnlab_kwargs,
        "images": digest,
        "mean": list(data.mean),
        "std": list(data.std),
        "precision": precision,
    }
    key = cache_key(files, settings)
    hit = load(key, mmap=False)
    if hit is not None:
        return torch.from_numpy(np.array(hit["features"])), True
    feats = features(model, x, data, precision=precision)
    with Writer(key) as w:
        w.put("features", feats.numpy())
    return feats, False


def train_head(step: TrainStep, cfg: TrainConfig, fx, fy, epoch: int) -> float:
    """One epoch of the linear head on cached features; returns the mean training loss."""
    step.model.train()
    order = epoch_order(cfg.seed, epoch, len(fy))
    total = 0.0
    for i in range(0, len(fy), cfg.batch_size):
        idx = order[i : i + cfg.batch_size]
        total += step(fx[idx], fy[idx]).item() * len(idx)  # the batch mean, as `cnnlab train` takes it
    return total / max(len(fy), 1)


@torch.inference_mode()
def score(head: nn.Linear, fx, fy, precision: str) -> tuple[float, float]:
    head.eval()
    with autocast(precision):
        logits = head(fx).float()
    return F.cross_entropy(logits, fy).item(), (logits.argmax(1) == fy).float().mean().item()


def train_probe(cfg: TrainConfig, json_mode: bool, on_summary, given, opened: list) -> dict:
    """`cnnlab train --finetune probe` (called by `training.loop.train`, which undoes a failed start):
    returns the same summary as a normal run; `opened` gets the run folder as soon as it is made."""
    log = Logger(True, json_mode)
    if not wants_weights(cfg):
        raise CnnlabError(_("--finetune probe needs weights to probe: pass --pretrained or --weights FILE"))
    if cfg.augment != "none":
        raise CnnlabError(
            _("--finetune probe computes each image's features once, so it cannot augment; drop --augment")
        )
    set_up(cfg.threads)  # training/process.py
    torch.manual_seed(cfg.seed)
    run = begin(cfg, log, given)  # settings -> weights -> data -> model; nothing written yet
    cfg, data, model = run.cfg, run.data, run.model.to(memory_format=torch.channels_last)
    train_x, train_y, val_x, val_y = run.split
    opened[:] = open_run_folder(cfg)  # locked; numbered when there is no --out
    out = opened[0]
    cfg = replace(cfg, out=str(out))
    meta = {**run.meta, "config": cfg.to_dict()}
    save_config(out, cfg)
    save_run_files(out, data, log)  # folders: split.json, skipped.txt
    (out / "metrics.csv").unlink(missing_ok=True)
    for note in model.cnnlab_weights["notes"]:
        log(_("weights: {note}", note=note_text(note)))
    log(
        _(
            "probe: {model} frozen in eval mode; features computed once per image (no augmentation)",
            model=cfg.model,
        )
    )
    source = model.cnnlab_weights["source"]
    t0 = time.perf_counter()
    parts = {"train": (train_x, train_y), "test": (data.test_x, data.test_y)}
    if val_x is not None:
        parts["val"] = (val_x, val_y)
    feats = {}
    for name, (x, y) in parts.items():
        fx, hit = cached_features(model, x, data, cfg, source, run.precision)
        feats[name] = (fx, y)
        which = {"train": _("train"), "test": _("test"), "val": _("val")}[name]
        if hit:
            log(_("probe: {part} features {shape} from the cache", part=which, shape=tuple(fx.shape)))
        else:
            log(_("probe: {part} features {shape} computed and cached", part=which, shape=tuple(fx.shape)))
    extract_s = time.perf_counter() - t0
    head = model.get_submodule(head_name(model))
    for p in model.parameters():
        p.requires_grad_(False)
    for p in head.parameters():
        p.requires_grad_(True)
    optimizer = make_optimizer(cfg, [{"params": list(head.parameters())}])
    step = TrainStep(head, optimizer, run.precision, label_smoothing=cfg.label_smoothing)
    history, best, best_state, best_row = [], -1.0, None, None
    fx, fy = feats["train"]
    for epoch in range(1, cfg.epochs + 1):
        t1 = time.perf_counter()
        row = {"epoch": epoch, "train_loss": train_head(step, cfg, fx, fy, epoch)}
        row["seconds"] = time.perf_counter() - t1 + (extract_s if epoch == 1 else 0.0)
        row["images_per_second"] = len(fy) / row["seconds"]
        row["test_loss"], row["test_accuracy"] = score(head, *feats["test"], run.precision)
        row["val_loss"], row["val_accuracy"] = (
            score(head, *feats["val"], run.precision) if "val" in feats else ("", "")
        )
        append_metrics(out / "metrics.csv", row)
        history.append(row)
        sel = selection_score(row, "val" in feats)  # the loop's choice of the best epoch
        if sel > best:
            best, best_state, best_row = sel, copy.deepcopy(head.state_dict()), row
        log(
            _(
                "epoch {epoch:>3}: train loss {loss:.4f}, test acc {acc:.4%}",
                epoch=epoch,
                loss=row["train_loss"],
                acc=row["test_accuracy"],
            )
        )
    model.eval()
    save_checkpoint(out / "last", model, {**meta, "epoch": len(history), "metrics": history[-1]})
    head.load_state_dict(best_state)
    save_checkpoint(out / "best", model, {**meta, "epoch": best_row["epoch"], "metrics": best_row})
    summary = summarize(cfg, data, history, time.perf_counter() - t0, out)
    summary["feature_seconds"] = extract_s
    if on_summary is not None:
        on_summary(summary)
    draw_curves(out, log)
    return summary
