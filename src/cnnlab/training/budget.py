"""`--time-budget S`: plan the number of optimiser steps so that training *and* its per-epoch evaluation
end within S seconds of the start of the training loop, and the one-cycle/cosine schedule ends with them.

How: the first few steps are timed (after a short warm-up, since oneDNN builds its kernels on the first
calls); the planner then picks the largest step count T whose predicted time fits, counting one evaluation
per epoch end it crosses plus the final one. It re-plans at every 10% of T with the real elapsed time, so
a machine that slows down (other jobs) shortens the run instead of overrunning it. The LR scheduler reads
`total` live (see `cnnlab.training.optim.build_scheduler`), and `update` returns the plan, which the
training loop uses as its step limit (the config itself is never written: it is what the user asked for). The time between the last step of an epoch and the first of the next
(evaluation + checkpoint) is measured as it happens and used from then on.

`--epochs` and `--max-steps` stay upper bounds: the budget shortens a run to fit, it never lengthens it
(give a generous --epochs to let the budget decide). Under DDP every rank plans at the same steps and they
agree on the smallest plan (all_reduce MIN), so no rank waits for a step another rank will not take.
"""

import statistics
import time

import torch
import torch.distributed as dist

from cnnlab.errors import CnnlabError
from cnnlab.i18n import _
from cnnlab.training.config import TrainConfig

PROBE_STEPS = 4  # steps timed before the first plan (the first 2 are warm-up and not used)
SAFETY = 0.03  # keep 3% of the budget spare for the summary, plots and timing noise


class TimeBudget:
    def __init__(self, cfg: TrainConfig, steps_per_epoch: int, cap: int, eval_fraction: float):
        self.seconds = cfg.time_budget
        self.steps_per_epoch = steps_per_epoch
        self.cap = cap  # steps of --epochs, or --max-steps if smaller: never planned past this
        self.total = cap  # replaced by the first plan
        # an evaluation before it has been measured: eval_fraction of an epoch of training steps
        self.eval_fraction = eval_fraction
        self.eval_seconds: float | None = None
        self.start = time.perf_counter()
        self._last: tuple[int, float] | None = None
        self._step_times: list[float] = []
        self._next_plan = PROBE_STEPS

    def update(self, step: int) -> int:
        """Call before every optimiser step with the number of steps done; re-plans when due and returns
        the planned total number of steps.

        Plans are due at fixed step counts (4, 8, 16, ... then every 10% of the plan), never on a clock,
        so DDP ranks always plan, and all_reduce, together."""
        now = time.perf_counter()
        self._observe(step, now)
        if step >= self._next_plan and step < self.total:
            if step == PROBE_STEPS:
                self.check_one_step_fits()
            self.total = self._agree(self.plan(step, now))
            self._next_plan = step + max(1, min(step, self.total // 10))
        return self.total

    def _observe(self, step: int, now: float) -> None:
        if self._last is not None and step == self._last[0] + 1:
            dt = now - self._last[1]
            if step % self.steps_per_epoch == 0:
                # the interval ending at an epoch's last step is only measured after that epoch's
                # evaluation + checkpoint: it holds both
                step_t = statistics.median(self._step_times) if self._step_times else 0.0
                self.eval_seconds = max(dt - step_t, 0.0)
            elif step > 2:  # the first two steps pay oneDNN's kernel creation
                self._step_times.append(dt)
                del self._step_times[:-50]  # a window of recent steps follows a machine that changes speed
        if self._last is None or step != self._last[0]:
            self._last = (step, now)

    def plan(self, step: int, now: float) -> int:
        """Largest total step count that fits the budget, given the time per step measured so far."""
        step_t = (
            statistics.median(self._step_times) if self._step_times else (now - self.start) / max(step, 1)
        )
        eval_t = self.eval_seconds
        if eval_t is None:
            eval_t = self.eval_fraction * self.steps_per_epoch * step_t
        left = self.seconds * (1 - SAFETY) - (now - self.start)
        # With k more evaluations the run may end no later than the k-th epoch end from here (steps_at(k))
        # and must leave k evaluations' time (fits(k)); the best plan is the largest min of the two over k.
        spe, done_epochs = self.steps_per_epoch, step // self.steps_per_epoch
        total, k = step, 1
        while True:
            steps_at = (done_epochs + k) * spe
            fits = step + int((left - k * eval_t) / max(step_t, 1e-9))
            total = max(total, min(steps_at, fits))
            if fits <= steps_at or steps_at >= self.cap:
                break
            k += 1
        return max(min(total, self.cap), step + 1)

    def check_one_step_fits(self) -> None:
        """A budget shorter than one measured training step cannot be planned: a clean error (exit 2), on
        every rank at once (they agree on the flag, so none waits for a step another will not take)."""
        step_t = statistics.median(self._step_times) if self._step_times else 0.0
        too_short = -self._agree(-int(self.seconds < step_t))  # MIN of the negated flags = MAX of the flags
        if too_short:
            raise CnnlabError(
                _(
                    "--time-budget {seconds:g}: shorter than one training step ({step:.3g} s measured); give more "
                    "seconds, or a smaller --batch-size or model",
                    seconds=self.seconds,
                    step=step_t,
                )
            )

    @staticmethod
    def _agree(total: int) -> int:
        if dist.is_available() and dist.is_initialized():
            t = torch.tensor([total], dtype=torch.int64, device=group_device())
            dist.all_reduce(t, op=dist.ReduceOp.MIN)
            return int(t.item())
        return total


def group_device() -> torch.device:
    """Where the default process group's collectives take tensors: NCCL only CUDA ones, gloo CPU ones."""
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def start_budget(
    cfg: TrainConfig, steps_per_epoch: int, total_steps: int, train_images: int, eval_images: int
):
    """A TimeBudget when --time-budget is set, else None. Its clock starts now: build it just before the
    training loop (after data loading and model building, which the budget does not cover)."""
    if not cfg.time_budget:
        return None
    # forward-only evaluation costs ~1/3 of a training step per image (x3 with TTA's two extra passes)
    passes = 3 if cfg.tta else 1
    eval_fraction = eval_images / max(train_images, 1) / 3 * passes
    return TimeBudget(cfg, steps_per_epoch, total_steps, eval_fraction)
