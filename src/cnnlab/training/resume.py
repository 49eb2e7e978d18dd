"""Runs that survive being stopped: the resume state, stop signals, divergence checks, determinism.

`state.pt` (torch.save, read back only with weights_only=True) holds everything the next step of
training depends on: raw model weights, optimizer, scheduler, EMA, every rank's RNG states, the
position (epoch, batch within it, global step), the epoch's running loss, the best score and the
metric history. Data order is a pure function of (seed, epoch) and augmentation of (seed, step,
rank), so nothing about the data needs saving. `last.safetensors` is written next to it for users;
resuming never reads it.

SIGINT/SIGTERM only set a flag; after the current step every rank learns of it through the same
all-reduce that sums the step losses, so all ranks stop after the same step, rank 0 writes the
state, and the process exits 128 + signal number (130, 143).
"""

import math
import os
import random
import shutil
import signal
import threading
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn as nn

from cnnlab.checkpoint import load_state, load_weights, save_checkpoint, unwrap
from cnnlab.core.files import atomic_write
from cnnlab.errors import EXIT_BAD_CHECKPOINT, EXIT_DIVERGED, EXIT_OUT_FULL, CnnlabError
from cnnlab.i18n import _
from cnnlab.training.config import TrainConfig
from cnnlab.training.resume_rules import STATE, STATE_FORMAT, check_same_config, check_state, extends

# Rank 0 evaluates while the other ranks wait in their next collective; gloo's 30-minute default
# would kill a long evaluation, so allow more.
DIST_TIMEOUT = timedelta(hours=2)


class Stop(CnnlabError):
    """A stop all ranks agreed on (signal, divergence): rank 0 reports it, the others exit quietly."""


@dataclass
class Progress:
    epoch: int = 1  # epoch in progress (1-based)
    batch: int = 0  # index of the next batch within `epoch`
    step: int = 0  # optimiser steps done in total
    best: float = -1.0  # best model-selection score so far
    history: list[dict] = field(default_factory=list)  # metrics.csv rows of finished epochs
    loss_sum: float = 0.0  # summed training loss of `epoch` so far, all ranks
    seen: int = 0  # images of `epoch` trained so far, all ranks
    seconds: float = 0.0  # wall time spent in `epoch` so far
    finished: bool = False  # the run ended (last epoch, --max-steps or early stop)


@dataclass
class Trainables:
    model: nn.Module  # possibly DDP-wrapped
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    ema: nn.Module | None  # AveragedModel or None

    @property
    def eval_net(self) -> nn.Module:
        """The weights that are evaluated and exported: the EMA when there is one."""
        return unwrap(self.ema.module if self.ema is not None else self.model)


# ---- reproducibility ------------------------------------------------------------------------------


def make_deterministic(cfg: TrainConfig) -> None:
    """--deterministic: one thread unless --threads, deterministic kernels on CPU (oneDNN) and GPU."""
    if not cfg.deterministic:
        return
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # cuBLAS refuses determinism without it
    torch.set_num_threads(cfg.threads or 1)  # reductions split across threads sum in another order
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False  # autotuning may pick different kernels run to run
    torch.backends.mkldnn.deterministic = True


def rng_state(device: torch.device) -> dict:
    """Every random generator this process could draw from, as weights_only-loadable values."""
    import numpy as np

    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "python": [list(x) if isinstance(x, tuple) else x for x in random.getstate()],
        "numpy": [kind, torch.from_numpy(keys.astype("int64")), pos, has_gauss, gauss],
    }
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def set_rng_state(state: dict, device: torch.device) -> None:
    import numpy as np

    torch.set_rng_state(state["torch"])
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype("uint32"), pos, has_gauss, cached))
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


# ---- preflight ------------------------------------------------------------------------------------


def check_free_space(out: Path, cfg: TrainConfig, model: nn.Module) -> None:
    """Fail before training when --out cannot hold this run's checkpoints (estimated from the model)."""
    weights = sum(t.numel() * t.element_size() for t in unwrap(model).state_dict().values())
    slots = {"adam": 2, "adamw": 2, "sgd": 1}.get(cfg.optimizer, 2)  # optimizer tensors per parameter
    state = weights * (1 + slots + (1 if cfg.ema else 0))
    # last + best safetensors, state.pt plus its temp copy during the atomic replace, 1 MiB of text/plots
    need = 2 * weights + 2 * state + (1 << 20)
    # a resumed run replaces its own files: the space they hold now comes back (the temp copy is counted)
    held = replaced_bytes(out)
    free = shutil.disk_usage(out).free
    if free + held < need:
        fields = dict(path=out, free=free / 2**20, need=need / 2**20)
        if held:
            text = _(
                "--out {path}: only {free:.1f} MiB free (+{held:.1f} MiB its files hold now), this run's "
                "checkpoints need about {need:.1f} MiB; free space or choose another --out",
                held=held / 2**20,
                **fields,
            )
        else:
            text = _(
                "--out {path}: only {free:.1f} MiB free, this run's checkpoints need about {need:.1f} MiB; "
                "free space or choose another --out",
                **fields,
            )
        raise CnnlabError(text, EXIT_OUT_FULL)


def replaced_bytes(out: Path) -> int:
    """Bytes held by the checkpoint files a run in `out` rewrites (last, best, state.pt), if there."""
    total = 0
    for name in ("last.safetensors", "best.safetensors", STATE):
        try:
            total += (out / name).stat().st_size
        except OSError:
            pass
    return total


# ---- resume ---------------------------------------------------------------------------------------


def resume(out: Path, cfg: TrainConfig, parts: Trainables, dd, log) -> Progress:
    """Load OUT/state.pt into `parts` (rank 0 reads, all ranks receive); a fresh Progress if none."""
    state = read_state(out, cfg, log) if dd.main else None
    if dd.world > 1:
        box = [state]
        dist.broadcast_object_list(box, src=0)  # no shared filesystem needed across nodes
        state = box[0]
    if state is None:
        return Progress()
    load_weights(unwrap(parts.model), state["model"], out / STATE, _("weights do not match this model"))
    try:
        parts.optimizer.load_state_dict(state["optimizer"])
        parts.scheduler.load_state_dict(state["scheduler"])
        if parts.ema is not None:
            parts.ema.load_state_dict(state["ema"])
    except (RuntimeError, ValueError, KeyError, TypeError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CnnlabError(
            _("{path}: does not match this run ({why})", path=out / STATE, why=first), EXIT_BAD_CHECKPOINT
        ) from None
    if state["world"] == dd.world:
        try:
            set_rng_state(state["rng"][dd.rank], dd.device)
        except (TypeError, ValueError, RuntimeError, KeyError, AttributeError, IndexError) as e:
            why = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise CnnlabError(
                _(
                    "{path}: resume state field 'rng[{rank}]' is not a random state ({why})",
                    path=out / STATE,
                    rank=dd.rank,
                    why=why,
                ),
                EXIT_BAD_CHECKPOINT,
            ) from None
    elif dd.main:
        n = dict(saved=state["world"], world=dd.world)
        log(_("resuming a {saved}-process run with {world}: results will differ in the last bits", **n))
    prog = Progress(**state["progress"])
    at = dict(path=out, epoch=prog.epoch, batch=prog.batch, step=prog.step)  # str.format skips unused ones
    if prog.finished and extends(state["meta"]["config"], cfg):
        prog.finished = False  # the finished run's position is the start of its extension
        log(_("extending the finished run in {path} from epoch {epoch} (step {step})", **at))
        if cfg.schedule == "step":
            log(_("note: the step schedule's /10 drops move to 1/3 and 2/3 of the new length"))
    elif prog.finished:
        log(_("the run in {path} already finished; nothing left to train", **at))
    else:
        log(_("resuming {path} at epoch {epoch}, batch {batch} (step {step})", **at))
    return prog


def read_state(out: Path, cfg: TrainConfig, log) -> dict | None:
    """The validated resume state, or None when --out holds no run yet (then --resume starts one)."""
    path = out / STATE
    if not path.exists():
        if (out / "last.safetensors").exists() or (out / "metrics.csv").exists():
            raise CnnlabError(
                _(
                    "--out {path} holds a run but no resume state ({state}); use --overwrite to start again",
                    path=out,
                    state=STATE,
                ),
                EXIT_BAD_CHECKPOINT,
            )
        log(_("--resume: nothing to resume in {path}, starting a new run", path=out))
        return None
    state = load_state(path)
    keys = {"format", "meta", "progress", "world", "model", "optimizer", "scheduler", "ema", "rng"}
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT or not keys <= set(state):
        raise CnnlabError(
            _("{path}: not a cnnlab resume state ({format})", path=path, format=STATE_FORMAT),
            EXIT_BAD_CHECKPOINT,
        )
    check_state(state, path)  # every field, so a hand edit is one line naming it (exit 7)
    check_same_config(state["meta"]["config"], cfg, path)
    return state


# ---- the guard around the training loop -----------------------------------------------------------


@dataclass
class Verdict:
    loss: float  # summed training loss of the polled steps, all ranks
    bad_step: int | None  # first step whose loss was NaN/inf on any rank
    signum: int  # signal that asked this job to stop (0 = none)


class Guard:
    """Signals -> a stop agreed by all ranks; per-step loss finiteness; periodic and final checkpoints."""

    def __init__(self, cfg: TrainConfig, out: Path, parts: Trainables, meta: dict, dd, step: int):
        self.cfg, self.out, self.parts, self.meta, self.dd = cfg, out, parts, meta, dd
        # One host sync per poll. On CPU it costs well under 1% (see docs/scale.md); on GPUs a sync
        # per step would stall the launch queue, so poll every 10 steps and name the step exactly.
        self.every = 1 if dd.device.type == "cpu" else 10
        self.signum = 0  # set by the handler, this process only
        self.stop = 0  # the signal all ranks agreed to stop for, after a poll
        self.saved_step: int | None = step if step else None  # the last good state on disk
        self.pending: list[torch.Tensor] = []
        self._old: dict[int, object] = {}

    def __enter__(self) -> "Guard":
        if threading.current_thread() is threading.main_thread():  # signal.signal works only there
            for s in (signal.SIGINT, signal.SIGTERM):
                self._old[s] = signal.signal(s, self._on_signal)
        return self

    def __exit__(self, *exc) -> None:
        for s, old in self._old.items():
            signal.signal(s, old)
        self._old.clear()

    def _on_signal(self, signum: int, frame) -> None:
        # Only a flag: the step in flight finishes, then all ranks agree to stop at the next poll.
        # Repeats are ignored (torchrun forwards the signal it got), SIGKILL remains for a hard stop.
        self.signum = self.signum or signum

    def record(self, loss: torch.Tensor) -> None:
        """This rank's summed loss of the step just taken (kept on device until the next poll)."""
        self.pending.append(loss.detach().reshape(()))

    def due(self, step: int, force: bool) -> bool:
        every = self.cfg.checkpoint_every
        # the same answer on every rank (never the local signal flag): a poll is a collective
        return force or step % self.every == 0 or bool(every and step % every == 0)

    def poll(self, step: int, epoch: int) -> float:
        """All-reduce the pending losses and stop flags; raise Stop on NaN/inf; the losses' sum."""
        v = self.verdict(step)
        if v.bad_step is not None:
            fields = dict(step=v.bad_step, epoch=epoch)
            if self.saved_step:
                text = _(
                    "training diverged: loss is not finite at step {step} (epoch {epoch}); kept the last good "
                    "checkpoint {path} and {state} (step {saved}); lower --lr",
                    path=self.out / "last.safetensors",
                    state=STATE,
                    saved=self.saved_step,
                    **fields,
                )
            else:
                text = _(
                    "training diverged: loss is not finite at step {step} (epoch {epoch}); no checkpoint had "
                    "been written yet; lower --lr",
                    **fields,
                )
            raise Stop(text, EXIT_DIVERGED)
        # the agreed decision, not this rank's flag: a signal that arrives during the all-reduce is
        # still in self.signum and stops the job at the next poll
        self.stop = v.signum
        return v.loss

    def verdict(self, step: int) -> Verdict:
        dev = self.dd.device
        flags = [float(self.signum == signal.SIGINT), float(self.signum == signal.SIGTERM)]
        v = torch.cat(
            [torch.stack(self.pending).double(), torch.tensor(flags, dtype=torch.float64, device=dev)]
        )
        if self.dd.world > 1:
            dist.all_reduce(v)
        *losses, n_int, n_term = v.tolist()
        self.pending = []
        bad = next((k for k, x in enumerate(losses) if not math.isfinite(x)), None)
        first = step - len(losses) + 1
        signum = int(signal.SIGTERM) if n_term else int(signal.SIGINT) if n_int else 0
        return Verdict(sum(losses), None if bad is None else first + bad, signum)

    def mid_epoch(self, prog: Progress) -> None:
        """After a poll: write the resume state if --checkpoint-every is due or a signal asks to stop."""
        every = self.cfg.checkpoint_every
        if not self.stop and not (every and prog.step % every == 0):
            return
        self.save(prog, weights=True)
        if self.stop:
            name = signal.Signals(self.stop).name
            raise Stop(
                _(
                    "stopped by {signal} after step {step} (epoch {epoch}, batch {batch}); resume state saved in "
                    "{path}; continue with: cnnlab train --resume --out {out}",
                    signal=name,
                    step=prog.step,
                    epoch=prog.epoch,
                    batch=prog.batch,
                    path=self.out / STATE,
                    out=self.out,
                ),
                128 + self.stop,
            )

    def save(self, prog: Progress, weights: bool) -> None:
        """Write state.pt (and last.safetensors when `weights`), atomically; a collective under DDP."""
        params = list(unwrap(self.parts.model).parameters())
        if not all(bool(torch.isfinite(p).all()) for p in params):
            raise Stop(
                _(
                    "training diverged: weights are not finite after step {step}; kept the last good checkpoint "
                    "(step {saved})",
                    step=prog.step,
                    saved=self.saved_step,
                ),
                EXIT_DIVERGED,
            )
        rngs = [None] * self.dd.world
        if self.dd.world > 1:
            dist.all_gather_object(rngs, rng_state(self.dd.device))
        else:
            rngs = [rng_state(self.dd.device)]
        if self.dd.main:
            self._write(prog, rngs, weights)
        self.saved_step = prog.step

    def _write(self, prog: Progress, rngs: list, weights: bool) -> None:
        if weights:
            meta = {**self.meta, "epoch": prog.epoch - 1, "step": prog.step, "batch_in_epoch": prog.batch}
            meta["metrics"] = prog.history[-1] if prog.history else None
            save_checkpoint(self.out / "last", self.parts.eval_net, meta)
        p = self.parts
        state = {
            "format": STATE_FORMAT,
            "meta": {**self.meta, "step": prog.step},
            "progress": asdict(prog),
            "world": self.dd.world,
            "model": {k: v.detach().cpu() for k, v in unwrap(p.model).state_dict().items()},
            "optimizer": p.optimizer.state_dict(),
            "scheduler": p.scheduler.state_dict(),
            "ema": p.ema.state_dict() if p.ema is not None else None,
            "rng": rngs,
        }
        atomic_write(self.out / STATE, lambda tmp: torch.save(state, tmp))

    def agree(self, flag: bool) -> bool:
        """Rank 0's decision (e.g. early stop after its evaluation), the same on every rank."""
        if self.dd.world == 1:
            return flag
        t = torch.tensor([float(flag)], device=self.dd.device)
        dist.broadcast(t, src=0)
        return bool(t.item())
