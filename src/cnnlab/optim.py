"""Optimisers and learning-rate schedules built from a TrainConfig (all PyTorch's own classes)."""

import math

import torch
from torch.optim.lr_scheduler import LambdaLR, LRScheduler

from cnnlab.config import TrainConfig
from cnnlab.errors import CnnlabError

OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("constant", "onecycle", "cosine", "step")


def build_optimizer(cfg: TrainConfig, model: torch.nn.Module) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(
            params, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.momentum > 0, weight_decay=cfg.weight_decay
        )
    raise CnnlabError(f"unknown optimizer {cfg.optimizer!r}; choose from: {', '.join(OPTIMIZERS)}")


def lr_factor(cfg: TrainConfig, step: int, total: int) -> float:
    """Multiplier of cfg.lr at optimiser step `step` of `total` (pure, so it is easy to test)."""
    warm = cfg.warmup_epochs / max(cfg.epochs, 1) * total
    if cfg.schedule == "onecycle":
        # triangular one-cycle (Smith 2018): up for the first 25% (or the warm-up), then down to 0
        peak = warm if warm > 0 else 0.25 * total
        return step / peak if step < peak else max(0.0, (total - step) / max(total - peak, 1))
    if step < warm:
        return (step + 1) / warm
    frac = (step - warm) / max(total - warm, 1)
    if cfg.schedule == "constant":
        return 1.0
    if cfg.schedule == "cosine":
        return 0.5 * (1 + math.cos(math.pi * min(frac, 1.0)))
    if cfg.schedule == "step":
        return 0.1 ** int(min(frac, 0.999) * 3)  # /10 at 1/3 and 2/3 of training
    raise CnnlabError(f"unknown schedule {cfg.schedule!r}; choose from: {', '.join(SCHEDULES)}")


def build_scheduler(cfg: TrainConfig, optimizer: torch.optim.Optimizer, total_steps: int) -> LRScheduler:
    lr_factor(cfg, 0, total_steps)  # validate the name now, not mid-run
    return LambdaLR(optimizer, lambda step: lr_factor(cfg, step, total_steps))
