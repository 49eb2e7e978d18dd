"""Starting a run from trained weights, and `--finetune full`: fastai's `fine_tune` schedule.

`fine_tune` (fastai, `Learner.fine_tune`): first only the new layers train (`--freeze-epochs`, one-cycle at
`--lr` with a long warm-up, pct_start 0.99), then everything trains with the rate halved and spread over
the body -- "discriminative learning rates": the earliest layers get `--lr / 2 / --lr-mult`, the head
`--lr / 2`, the groups between geometrically spaced -- on a one-cycle of pct_start 0.3, div 5.
`--epochs` counts both phases (fastai's `fine_tune(epochs, freeze_epochs)` runs epochs + freeze_epochs).

BatchNorm, a documented choice (fastai's `train_bn=True`): while the body is frozen its BatchNorm layers
still train -- their scale and shift get gradients and their running statistics follow the new data --
because statistics measured on ImageNet describe other images than the user's. Convolution and linear
weights of the body do stay bit-identical through the frozen epochs (tests/test_transfer.py).
"""

import math

import torch
import torch.nn as nn
from torch.optim.lr_scheduler import LambdaLR

from cnnlab.errors import CnnlabError
from cnnlab.i18n import N_, _
from cnnlab.training.config import TrainConfig

FINETUNE = ("full", "probe")
BODY_GROUPS = 3  # the body's parameters in this many consecutive groups, each with its own rate
FREEZE_PCT, FREEZE_DIV = 0.99, 25.0  # fastai fine_tune, frozen phase: fit_one_cycle(pct_start=0.99)
UNFROZEN_PCT, UNFROZEN_DIV = 0.3, 5.0  # fastai fine_tune, unfrozen phase: pct_start=0.3, div=5
FINAL_DIV = 1e5  # fastai's div_final: the cycle ends at peak / 1e5
# the note a run's checkpoints keep (in English) and its log says (translated: note_text)
NORMALISED = N_("inputs normalised as the weights were trained: mean {mean}, std {std}")


def wants_weights(cfg: TrainConfig) -> bool:
    return bool(cfg.pretrained or cfg.weights)


def load_start(cfg: TrainConfig):
    """The `Weights` a run starts from (--weights FILE, else --pretrained's download)."""
    from cnnlab.models import weights

    if cfg.weights:
        return weights.from_file(cfg.weights)
    return weights.pretrained(cfg.model)


def init_from_weights(model: nn.Module, cfg: TrainConfig, data) -> dict:
    """Load the run's starting weights into `model`; records on it which parameters are new
    (`cnnlab_fresh`) and returns what checkpoints record about the start (source, preprocessing, notes).

    Weights bring their normalisation -- ImageNet's mean and std (0.5 for GoogLeNet), a cnnlab run's own --
    when the channel counts agree: `data.mean`/`data.std` are set to it, so the body sees inputs scaled as
    in its training."""
    from cnnlab.models.adapt import load_into
    from cnnlab.models.weights import describe

    if cfg.finetune not in FINETUNE:
        raise CnnlabError(
            _(
                "unknown --finetune {value}; choose from: {names}",
                value=repr(cfg.finetune),
                names=", ".join(FINETUNE),
            )
        )
    w = load_start(cfg)
    fresh, notes = load_into(model, w, data.classes, cfg.model)
    model.cnnlab_fresh = fresh
    mean, std = w.preprocess.get("mean"), w.preprocess.get("std")
    if w.kind in ("imagenet", "cnnlab") and mean and len(mean) == len(data.mean):
        data.mean, data.std = tuple(mean), tuple(std)
        notes.append(NORMALISED.format(mean=mean, std=std))
    return {**describe(w), "notes": notes}


def note_text(note: str) -> str:
    """A note about the starting weights (kept in English in the checkpoints) in the current language."""
    from cnnlab.data.spec import translated

    return translated(note, (NORMALISED,))


def per_class_subset(
    x: torch.Tensor, y: torch.Tensor, n: int, seed: int, num_classes: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """At most n images of every class, drawn seeded and stratified; the kept images stay in file order."""
    g = torch.Generator().manual_seed(seed + 104729)
    keep = []
    for c in range(num_classes):
        idx = (y == c).nonzero().flatten()
        keep.append(idx[torch.randperm(len(idx), generator=g)[:n]])
    order = torch.cat(keep).sort().values
    return x[order], y[order]


def limit_test(data, n: int):
    """The dataset with only its first n test images (n = 0: unchanged), for quick per-epoch numbers."""
    if not n:
        return data
    from dataclasses import replace

    return replace(data, test_x=data.test_x[:n], test_y=data.test_y[:n])


def one_cycle(step: int, total: int, pct: float, div: float, final_div: float = FINAL_DIV) -> float:
    """fastai's one-cycle multiplier of the peak rate: cosine from 1/div up to 1 over the first pct of
    `total` steps, then cosine down to 1/final_div at the end."""
    total = max(total, 1)
    up = max(pct * total, 1e-9)

    def cos(a: float, b: float, t: float) -> float:
        return b + (a - b) * (1 + math.cos(math.pi * min(max(t, 0.0), 1.0))) / 2

    if step < up:
        return cos(1 / div, 1.0, step / up)
    return cos(1.0, 1 / final_div, (step - up) / max(total - up, 1e-9))


def param_groups(model: nn.Module, fresh: set[str]) -> list[list[tuple[str, nn.Parameter]]]:
    """BODY_GROUPS consecutive chunks of the body's parameters (registration order = depth), then the new
    layers (classifier, fresh auxiliary heads) as the last group."""
    named = list(model.named_parameters())
    head = [(n, p) for n, p in named if n in fresh]
    body = [(n, p) for n, p in named if n not in fresh]
    k = max(1, min(BODY_GROUPS, len(body)))
    size = math.ceil(len(body) / k) if body else 0
    return [body[i * size : (i + 1) * size] for i in range(k) if body[i * size : (i + 1) * size]] + [head]


def bn_param_names(model: nn.Module) -> set[str]:
    return {
        f"{m_name}.{p_name}" if m_name else p_name
        for m_name, m in model.named_modules()
        if isinstance(m, nn.modules.batchnorm._BatchNorm)
        for p_name, _ in m.named_parameters(recurse=False)
    }


class FineTune:
    """The optimiser, scheduler and freezing of `--finetune full` (see the module docstring)."""

    def __init__(
        self, cfg: TrainConfig, model: nn.Module, steps_per_epoch: int, total_steps: int, world: int = 1
    ):
        fresh = getattr(model, "cnnlab_fresh", set())
        self.cfg, self.model = cfg, model
        # nothing new to warm up (the weights had the same classes): no frozen phase
        self.freeze_steps = min(cfg.freeze_epochs * steps_per_epoch, total_steps) if fresh else 0
        if world > 1 and self.freeze_steps:
            # DDP fixes the set of parameters it synchronises at construction; unfreezing later would
            # leave the body's gradients unsynchronised
            raise CnnlabError(
                _("--finetune full with frozen epochs runs in one process; use --freeze-epochs 0")
            )
        self.total = total_steps
        groups = param_groups(model, fresh)
        n = len(groups)
        # discriminative rates: earliest body group lr/lr_mult ... head lr, geometrically spaced
        self.mults = [cfg.lr_mult ** (-(n - 1 - i) / max(n - 1, 1)) for i in range(n)]
        self.groups = groups
        self.bn = bn_param_names(model)
        self.fresh = fresh
        self.optimizer = make_optimizer(
            cfg, [{"params": [p for _, p in g], "lr": cfg.lr * m} for g, m in zip(groups, self.mults)]
        )
        self.scheduler = LambdaLR(self.optimizer, [self._factor(i) for i in range(n)])
        self.frozen: bool | None = None

    def _factor(self, i: int):
        mult = self.mults[i]

        def f(step: int) -> float:
            if step < self.freeze_steps:  # frozen: every trainable parameter at --lr (fastai slice(lr))
                return one_cycle(step, self.freeze_steps, FREEZE_PCT, FREEZE_DIV) / mult
            s, length = step - self.freeze_steps, self.total - self.freeze_steps
            return 0.5 * one_cycle(s, length, UNFROZEN_PCT, UNFROZEN_DIV)

        return f

    def set_step(self, step: int) -> None:
        """Freeze the body (all but new layers and BatchNorm) before freeze_steps, unfreeze after."""
        frozen = step < self.freeze_steps
        if frozen == self.frozen:
            return
        for name, p in self.model.named_parameters():
            p.requires_grad_(not frozen or name in self.fresh or name in self.bn)
        self.frozen = frozen


def make_optimizer(cfg: TrainConfig, groups: list[dict]) -> torch.optim.Optimizer:
    """cfg's optimiser over explicit parameter groups (each with its own lr)."""
    if cfg.optimizer == "adam":
        return torch.optim.Adam(groups, lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(
            groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.momentum > 0, weight_decay=cfg.weight_decay
        )
    raise CnnlabError(_("unknown optimizer {value}", value=repr(cfg.optimizer)))
