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
from cnnlab.core.files import atomic_write_text
from cnnlab.data import Dataset, to_float
from cnnlab.data.cache import Writer, cache_key, load
from cnnlab.errors import CnnlabError
from cnnlab.models.adapt import head_name
from cnnlab.training.config import TrainConfig
from cnnlab.training.data_setup import save_run_files
from cnnlab.training.finetune import make_optimizer, wants_weights
from cnnlab.training.logger import Logger
from cnnlab.training.loop import _json, draw_curves, epoch_order
from cnnlab.training.metrics import append_metrics, summarize
from cnnlab.training.process import set_up
from cnnlab.training.runs import open_run_folder, release_runs
from cnnlab.training.start import begin, discard


@torch.inference_mode()
def features(model: nn.Module, x: torch.Tensor, data: Dataset, batch_size: int = 256) -> torch.Tensor:
    """The classifier's input for every uint8 image in x (N x F float32), body in eval mode."""
    head = model.get_submodule(head_name(model))
    grabbed: list[torch.Tensor] = []
    hook = head.register_forward_hook(lambda m, inp, out: grabbed.append(inp[0].float()))
    was_training = model.training
    model.eval()
    try:
        for i in range(0, len(x), batch_size):
            xb = to_float(x[i : i + batch_size], data.mean, data.std)
            model(xb.contiguous(memory_format=torch.channels_last))
    finally:
        hook.remove()
        model.train(was_training)
    return torch.cat(grabbed) if grabbed else torch.empty(0, head.in_features)


def cached_features(model: nn.Module, x: torch.Tensor, data: Dataset, cfg: TrainConfig, source: str):
    """features(), through the decode cache: key = the weights file + model + the images' bytes."""
    digest = hashlib.sha256(x.numpy().tobytes()).hexdigest()
    files = [source] if source and not source.startswith("http") else []
    settings = {
        "probe": cfg.model,
        "kwargs": model.cnnlab_kwargs,
        "images": digest,
        "mean": list(data.mean),
        "std": list(data.std),
    }
    key = cache_key(files, settings)
    hit = load(key, mmap=False)
    if hit is not None:
        return torch.from_numpy(np.array(hit["features"])), True
    feats = features(model, x, data)
    with Writer(key) as w:
        w.put("features", feats.numpy())
    return feats, False


def train_head(head: nn.Linear, cfg: TrainConfig, fx, fy, epoch: int) -> float:
    """One epoch of the linear head on cached features; returns the mean training loss."""
    head.train()
    order = epoch_order(cfg.seed, epoch, len(fy))
    total = 0.0
    for i in range(0, len(fy), cfg.batch_size):
        idx = order[i : i + cfg.batch_size]
        loss = F.cross_entropy(head(fx[idx]), fy[idx], label_smoothing=cfg.label_smoothing)
        head.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        head.optimizer.step()
        total += loss.item() * len(idx)
    return total / max(len(fy), 1)


@torch.inference_mode()
def score(head: nn.Linear, fx, fy) -> tuple[float, float]:
    head.eval()
    logits = head(fx)
    return F.cross_entropy(logits, fy).item(), (logits.argmax(1) == fy).float().mean().item()


def train_probe(cfg: TrainConfig, json_mode: bool = False, given: set[str] | None = None) -> dict:
    """`cnnlab train --finetune probe`: returns the same summary as a normal run."""
    opened: list = []
    try:
        return _train_probe(cfg, json_mode, given, opened)
    except BaseException:
        if opened and not cfg.resume:
            discard(*opened)  # nothing left behind by a probe that failed before its checkpoint
        raise
    finally:
        release_runs()  # the run folder's lock


def _train_probe(cfg: TrainConfig, json_mode: bool, given, opened: list) -> dict:
    log = Logger(True, json_mode)
    if not wants_weights(cfg):
        raise CnnlabError("--finetune probe needs weights to probe: pass --pretrained or --weights FILE")
    if cfg.augment != "none":
        raise CnnlabError(
            "--finetune probe computes each image's features once, so it cannot augment; drop --augment"
        )
    set_up(cfg.threads)  # training/process.py
    torch.manual_seed(cfg.seed)
    run = begin(cfg, log, given)  # settings -> weights -> data -> model; nothing written yet
    cfg, data, model = run.cfg, run.data, run.model.to(memory_format=torch.channels_last)
    train_x, train_y, val_x, val_y = run.split
    opened[:] = open_run_folder(cfg)  # locked; numbered when there is no --out
    out = opened[0]
    cfg = replace(cfg, out=str(out))
    meta = {**run.meta, "config": cfg.to_dict(), "precision": "fp32"}
    atomic_write_text(out / "config.json", _json(cfg.to_dict()))
    save_run_files(out, data, log)  # folders: split.json, skipped.txt
    (out / "metrics.csv").unlink(missing_ok=True)
    for note in model.cnnlab_weights["notes"]:
        log(f"weights: {note}")
    log(f"probe: {cfg.model} frozen in eval mode; features computed once per image (no augmentation)")
    source = model.cnnlab_weights["source"]
    t0 = time.perf_counter()
    parts = {"train": (train_x, train_y), "test": (data.test_x, data.test_y)}
    if val_x is not None:
        parts["val"] = (val_x, val_y)
    feats = {}
    for name, (x, y) in parts.items():
        fx, hit = cached_features(model, x, data, cfg, source)
        feats[name] = (fx, y)
        log(
            f"probe: {name} features {tuple(fx.shape)} "
            + ("from the cache" if hit else "computed and cached")
        )
    extract_s = time.perf_counter() - t0
    head = model.get_submodule(head_name(model))
    for p in model.parameters():
        p.requires_grad_(False)
    for p in head.parameters():
        p.requires_grad_(True)
    head.optimizer = make_optimizer(cfg, [{"params": list(head.parameters())}])
    history, best, best_state, best_row = [], -1.0, None, None
    fx, fy = feats["train"]
    for epoch in range(1, cfg.epochs + 1):
        t1 = time.perf_counter()
        row = {"epoch": epoch, "train_loss": train_head(head, cfg, fx, fy, epoch)}
        row["seconds"] = time.perf_counter() - t1 + (extract_s if epoch == 1 else 0.0)
        row["images_per_second"] = len(fy) / row["seconds"]
        row["test_loss"], row["test_accuracy"] = score(head, *feats["test"])
        row["val_loss"], row["val_accuracy"] = score(head, *feats["val"]) if "val" in feats else ("", "")
        append_metrics(out / "metrics.csv", row)
        history.append(row)
        sel = row["val_accuracy"] if "val" in feats else epoch
        if sel > best:
            best, best_state, best_row = sel, copy.deepcopy(head.state_dict()), row
        log(f"epoch {epoch:>3}: train loss {row['train_loss']:.4f}, test acc {row['test_accuracy']:.4%}")
    del head.optimizer
    model.eval()
    save_checkpoint(out / "last", model, {**meta, "epoch": len(history), "metrics": history[-1]})
    head.load_state_dict(best_state)
    save_checkpoint(out / "best", model, {**meta, "epoch": best_row["epoch"], "metrics": best_row})
    summary = summarize(cfg, data, history, time.perf_counter() - t0, out)
    summary["feature_seconds"] = extract_s
    draw_curves(out, log)
    return summary
