"""One training step -- forward under autocast, loss, backward, optimiser step -- for every caller.

`cnnlab train` (training/loop.py), the probe's linear head (training/transfer.py), `cnnlab lr-find`
(training/lr_find.py), `cnnlab bench` and the benchmark scripts all take their steps through `TrainStep`,
so what a benchmark times is what training does, and a change to the step (a loss term, the order of
zero_grad and backward) is made once. The data order of an epoch (`epoch_order`) lives here too: it is
what every caller slices its batches by.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F

from cnnlab.checkpoint import unwrap
from cnnlab.core.autocast import autocast


def epoch_order(seed: int, epoch: int, n: int) -> torch.Tensor:
    """The permutation of n training images for `epoch`; identical on every rank and after resume."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=g)


def compute_loss(
    model: nn.Module, out, y: torch.Tensor, smoothing: float, scale: float, class_weight=None
) -> torch.Tensor:
    """Summed cross-entropy times `scale`; a tuple output (GoogLeNet aux heads) is weighted by the
    model's `loss_weights` (Szegedy et al. 2014: aux losses weighted 0.3); `class_weight` (--balance)
    weights each image by its class."""
    outs = out if isinstance(out, tuple) else (out,)
    weights = getattr(unwrap(model), "loss_weights", (1.0,) * len(outs))
    total = sum(
        # .float(): under bf16 autocast the loss is still computed in fp32 (a no-op for fp32 logits)
        w * F.cross_entropy(o.float(), y, weight=class_weight, reduction="sum", label_smoothing=smoothing)
        for w, o in zip(weights, outs)
    )
    return total * scale


class TrainStep:
    """`step(x, y)`: one optimiser step of `model` on a batch; returns the loss (a tensor, not synced).

    The forward pass runs under `precision`'s autocast (bf16 or none, training/precision.py); the loss is
    `compute_loss` (label smoothing, --balance's class weights, GoogLeNet's weighted aux heads) times
    `scale`, by default 1/len(y): the batch mean. The loop passes world/global-batch instead, so that
    DDP's gradient averaging yields the global batch's mean."""

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        precision: str = "fp32",
        device: torch.device | str = "cpu",
        label_smoothing: float = 0.0,
        class_weight: torch.Tensor | None = None,
    ):
        self.model, self.optimizer = model, optimizer
        self.precision, self.device = precision, device
        self.label_smoothing, self.class_weight = label_smoothing, class_weight

    def __call__(self, x: torch.Tensor, y: torch.Tensor, scale: float | None = None) -> torch.Tensor:
        with autocast(self.precision, self.device):
            out = self.model(x)
        scale = 1.0 / len(y) if scale is None else scale
        loss = compute_loss(self.model, out, y, self.label_smoothing, scale, self.class_weight)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return loss
