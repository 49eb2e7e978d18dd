"""Optimisers and learning-rate schedules built from a TrainConfig (all PyTorch's own classes).

The schedule is one pure function, `lr_factor`, wrapped in PyTorch's LambdaLR: easy to test, and its
`total` can be re-planned mid-run by `cnnlab.training.budget.TimeBudget` (PyTorch's OneCycleLR fixes its length
at construction and raises past it).
"""

import math

import torch
from torch.optim.lr_scheduler import LambdaLR, LRScheduler

from cnnlab.options import unknown_error
from cnnlab.training.config import TrainConfig
from cnnlab.training.lean_optim import lean  # the same optimisers, without importing torch._dynamo
from cnnlab.training.validate import OPTIMIZERS, SCHEDULES  # the names TrainConfig accepts

ONECYCLE_START = 1 / 25  # PyTorch OneCycleLR's div_factor=25: start at peak/25, not at 0
ONECYCLE_PEAK = 0.25  # fraction of training spent warming up when --warmup-epochs is 0


def _fused(params: list[torch.Tensor]) -> bool:
    """PyTorch's fused (single-kernel) optimiser step: same update, one pass over all tensors instead of
    ~8 ops per tensor. It needs every parameter on a device it supports (CPU/CUDA here)."""
    return bool(params) and all(p.is_floating_point() and p.device.type in ("cpu", "cuda") for p in params)


def build_optimizer(cfg: TrainConfig, model: torch.nn.Module) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    fused = _fused(params)
    if cfg.optimizer == "adam":
        return lean(torch.optim.Adam)(
            params, lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay, fused=fused
        )
    if cfg.optimizer == "adamw":
        return lean(torch.optim.AdamW)(
            params, lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay, fused=fused
        )
    if cfg.optimizer == "sgd":
        return lean(torch.optim.SGD)(
            params,
            lr=cfg.lr,
            momentum=cfg.momentum,
            nesterov=cfg.momentum > 0,
            weight_decay=cfg.weight_decay,
            fused=fused,
        )
    raise unknown_error("optimizer", cfg.optimizer, OPTIMIZERS, "--optimizer")


def warmup_steps(cfg: TrainConfig, total: int, steps_per_epoch: int | None = None) -> float:
    """--warmup-epochs in optimiser steps: by steps per epoch when known (time budget), else pro rata."""
    if steps_per_epoch:
        return min(cfg.warmup_epochs * steps_per_epoch, total)
    return cfg.warmup_epochs / max(cfg.epochs, 1) * total


def lr_factor(cfg: TrainConfig, step: int, total: int, steps_per_epoch: int | None = None) -> float:
    """Multiplier of cfg.lr at optimiser step `step` of `total` (pure, so it is easy to test)."""
    warm = warmup_steps(cfg, total, steps_per_epoch)
    if cfg.schedule == "onecycle":
        # one-cycle (Smith & Topin 2018, "Super-convergence"): linear from peak/25 up to the peak at 25% of
        # training (or the end of the warm-up), then linearly down to 0 at the end
        peak = warm if warm > 0 else ONECYCLE_PEAK * total
        if step < peak:
            return ONECYCLE_START + (1 - ONECYCLE_START) * step / peak
        return max(0.0, (total - step) / max(total - peak, 1))
    if cfg.schedule not in SCHEDULES:
        raise unknown_error("schedule", cfg.schedule, SCHEDULES, "--schedule")
    if step < warm:
        return (step + 1) / warm  # linear warm-up (Goyal et al. 2017)
    frac = min((step - warm) / max(total - warm, 1), 1.0)
    if cfg.schedule == "cosine":
        return 0.5 * (1 + math.cos(math.pi * frac))  # SGDR without restarts (Loshchilov & Hutter 2017)
    if cfg.schedule == "step":
        return 0.1 ** int(min(frac, 0.999) * 3)  # /10 at 1/3 and 2/3 of training
    return 1.0


def build_scheduler(
    cfg: TrainConfig, optimizer: torch.optim.Optimizer, total_steps: int, budget=None
) -> LRScheduler:
    """LambdaLR over `lr_factor`; with a `cnnlab.training.budget.TimeBudget` the total is read from its live plan."""
    lr_factor(cfg, 0, total_steps)  # validate the name now, not mid-run
    if budget is None:
        return LambdaLR(optimizer, lambda step: lr_factor(cfg, step, total_steps))
    return LambdaLR(optimizer, lambda step: lr_factor(cfg, step, budget.total, budget.steps_per_epoch))
