"""The one training loop: every model, one process or many (DDP via torchrun), every recipe.

Data path (see README): the dataset sits in memory as uint8; each epoch draws a seeded permutation
(a pure function of seed and epoch, so a resumed run sees the same order); each global batch is an
index slice, split across ranks, converted to float in one fused op, optionally augmented as a batch.
"""

import math
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn as nn

from cnnlab.checkpoint import save_checkpoint, unwrap
from cnnlab.data import to_float
from cnnlab.data.augment import augment_batch
from cnnlab.errors import CnnlabError
from cnnlab.evaluation import evaluate
from cnnlab.i18n import _
from cnnlab.training.budget import start_budget
from cnnlab.training.config import TrainConfig
from cnnlab.training.data_setup import class_weights, save_run_files
from cnnlab.training.finetune import FineTune, note_text, wants_weights
from cnnlab.training.logger import Logger
from cnnlab.training.metrics import (
    append_metrics,
    draw_curves,
    save_config,
    selection_score,
    stale_epochs,
    summarize,
)
from cnnlab.training.optim import build_optimizer, build_scheduler
from cnnlab.training.phases import Phases
from cnnlab.training.process import set_up
from cnnlab.training.resume import (
    DIST_TIMEOUT,
    Guard,
    Progress,
    Trainables,
    check_free_space,
    make_deterministic,
    resume,
)
from cnnlab.training.runs import LATEST, RUNS, open_run_folder, release_runs
from cnnlab.training.schedule import evaluation_due
from cnnlab.training.start import begin, discard
from cnnlab.training.step import TrainStep, epoch_order


@dataclass
class Dist:
    rank: int = 0  # global rank of this process
    world: int = 1  # number of processes
    device: torch.device = torch.device("cpu")  # where this rank computes

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_distributed() -> Dist:
    """torchrun sets WORLD_SIZE/RANK/LOCAL_RANK; nccl on GPUs, gloo on CPU."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    cuda = torch.cuda.is_available()
    local = int(os.environ.get("LOCAL_RANK", "0"))
    device = torch.device("cuda", local) if cuda else torch.device("cpu")
    if world == 1:
        return Dist(device=device)
    if cuda:
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if cuda else "gloo", timeout=DIST_TIMEOUT)
    return Dist(dist.get_rank(), dist.get_world_size(), device)


def train(
    cfg: TrainConfig, json_mode: bool = False, on_summary=None, given: set[str] | None = None
) -> dict | None:
    """Train per cfg (`--finetune probe`: training/transfer.py); returns the summary that `cnnlab train
    --json` prints (None on ranks > 0). `on_summary(summary)` is called as soon as it is known, before the
    curves picture is drawn. `given`: the settings the user chose (a folder run fills the others for its
    data; None: cfg as it is). The CLI (`cnnlab.commands.train`) and the API (`cnnlab.train`) call this."""
    opened: list = []  # (folder, created, where runs/latest pointed): undone if no checkpoint was written
    try:
        if cfg.finetune == "probe":  # frozen body, features computed once, a linear head
            from cnnlab.training.transfer import train_probe

            return train_probe(cfg, json_mode, on_summary, given, opened)
        return _train(cfg, json_mode, on_summary, given, opened)
    except BaseException:
        if opened and not cfg.resume:
            discard(*opened)
        raise
    finally:
        release_runs()  # the run folder's lock (training/runs.py), also after an error or a stop


def _train(cfg: TrainConfig, json_mode: bool, on_summary, given, opened: list) -> dict | None:
    phases = Phases()
    phases.mark("start-up")  # Python, torch and cnnlab imports, argument parsing
    dd = init_distributed()
    log = Logger(dd.main, json_mode)
    set_up(cfg.threads)  # threads; no page faults for freed activations on glibc (training/process.py)
    make_deterministic(cfg)
    torch.manual_seed(cfg.seed)
    run = begin(cfg, log, given, dd.device)  # settings -> weights -> data -> model; nothing written yet
    cfg, data, model, meta, precision = run.cfg, run.data, run.model, run.meta, run.precision
    train_x, train_y, val_x, val_y = run.split
    phases.mark("data")
    if dd.main:
        opened[:] = open_run_folder(cfg)  # locked; a new numbered folder (and runs/latest) if no --out
        out = opened[0]
    else:
        out = Path(cfg.out or RUNS / LATEST)
    cfg = replace(cfg, out=str(out))  # a copy: config.json and messages name the real folder
    meta["config"] = cfg.to_dict()
    log(_("run folder: {path}", path=out))
    if cfg.tensorboard:
        log.open_tensorboard(out / "tensorboard")
    model = model.to(dd.device)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    class_weight = class_weights(cfg, train_y, len(data.classes), dd.device)  # --balance
    if dd.world > 1:
        if cfg.sync_bn and dd.device.type == "cpu":
            raise CnnlabError(_("--sync-bn needs GPUs: PyTorch's SyncBatchNorm has no CPU implementation"))
        if cfg.sync_bn:
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        model = nn.parallel.DistributedDataParallel(model)
    steps_per_epoch = math.ceil(len(train_y) / cfg.batch_size)
    total_steps = (
        steps_per_epoch * cfg.epochs
        if not cfg.max_steps
        else min(cfg.max_steps, steps_per_epoch * cfg.epochs)
    )
    tuned = (
        FineTune(cfg, unwrap(model), steps_per_epoch, total_steps, dd.world) if wants_weights(cfg) else None
    )
    optimizer = tuned.optimizer if tuned else build_optimizer(cfg, model)
    budget = start_budget(cfg, steps_per_epoch, total_steps, len(train_y), len(data.test_y))  # --time-budget
    scheduler = tuned.scheduler if tuned else build_scheduler(cfg, optimizer, total_steps, budget)
    ema = build_ema(cfg, model)
    parts = Trainables(model, optimizer, scheduler, ema)
    train_step = TrainStep(model, optimizer, precision, dd.device, cfg.label_smoothing, class_weight)
    prog = resume(out, cfg, parts, dd, log) if cfg.resume else Progress()
    if dd.main:
        check_free_space(out, cfg, model)
        save_config(out, cfg)
        save_run_files(out, data, log)  # folders: split.json, skipped.txt
        (out / "metrics.csv").unlink(missing_ok=True)  # rewritten from the resume state: no duplicate rows
        for row in prog.history:
            append_metrics(out / "metrics.csv", row)
        log(
            _(
                "training {model} on {data}: {train} train / {test} test images, {epochs} epochs, "
                "batch {batch}, {precision}, {world} process(es) on {device}",
                model=cfg.model,
                data=_("folder") if data.name == "folder" else data.name,  # a folder: said as a word
                train=len(train_y),
                test=len(data.test_y),
                epochs=cfg.epochs,
                batch=cfg.batch_size,
                precision=precision,
                world=dd.world,
                device=dd.device,
            )
        )
        for note in getattr(unwrap(model), "cnnlab_weights", {}).get("notes", []):
            log(_("weights: {note}", note=note_text(note)))

    train_x, train_y = train_x.to(dd.device), train_y.to(dd.device)
    phases.mark("setup")
    n_before = len(prog.history)
    best, step, history, t_start = prog.best, prog.step, prog.history, time.perf_counter()
    max_steps = cfg.max_steps  # the step limit; --time-budget re-plans this copy, never the config
    with Guard(cfg, out, parts, meta, dd, prog.step) as guard:
        for epoch in range(cfg.epochs + 1 if prog.finished else prog.epoch, cfg.epochs + 1):
            first = prog.batch if epoch == prog.epoch else 0  # resuming mid-epoch
            t0 = time.perf_counter() - (prog.seconds if first else 0.0)
            loss_sum, seen = (prog.loss_sum, prog.seen) if first else (0.0, 0)
            model.train()
            order = epoch_order(cfg.seed, epoch, len(train_y)).to(dd.device)
            bar = log.bar(steps_per_epoch - first, _("epoch {n}/{total}", n=epoch, total=cfg.epochs))
            for i in range(first, steps_per_epoch):
                if budget is not None:
                    max_steps = budget.update(step)  # --time-budget: re-plans the step limit, checked next
                if max_steps and step >= max_steps:
                    break
                if tuned is not None:
                    tuned.set_step(step)  # --finetune full: body frozen for the first --freeze-epochs
                idx = order[i * cfg.batch_size : (i + 1) * cfg.batch_size]
                mine = idx[dd.rank :: dd.world]  # this rank's share of the global batch
                x = to_float(train_x[mine], data.mean, data.std)
                if cfg.channels_last:
                    x = x.contiguous(memory_format=torch.channels_last)
                if cfg.augment != "none":
                    x = augment_batch(x, cfg.augment, step_generator(cfg.seed, step, dd))
                y = train_y[mine]
                # sum / global batch * world: DDP's gradient averaging then yields the global-batch mean
                # (also for an uneven last batch: the shares' sums add up to the global sum)
                loss = train_step(x, y, dd.world / len(idx))
                scheduler.step()
                if ema is not None:
                    ema.update_parameters(unwrap(model))
                step += 1
                seen += len(idx)
                bar.update(1)
                guard.record(loss.detach() * len(idx) / dd.world)  # this rank's summed loss
                if guard.due(step, i == steps_per_epoch - 1 or step == max_steps):
                    loss_sum += guard.poll(step, epoch)  # raises Stop on NaN/inf, on every rank
                    at = Progress(epoch, i + 1, step, best, history, loss_sum, seen, time.perf_counter() - t0)
                    guard.mid_epoch(at)  # checkpoint if due; raises Stop after a signal
            bar.close()
            seconds = time.perf_counter() - t0
            row = {
                "epoch": epoch,
                "train_loss": loss_sum / max(seen, 1),
                "images_per_second": seen / seconds,
                "seconds": seconds,
            }
            last = epoch == cfg.epochs or bool(max_steps and step >= max_steps)
            if dd.main:
                due = evaluation_due(cfg.eval_every, epoch, last)  # --eval-every
                best = end_of_epoch(
                    cfg,
                    ema.module if ema else model,
                    data,
                    val_x,
                    val_y,
                    row,
                    best,
                    out,
                    meta,
                    log,
                    precision,
                    due,
                )
                history.append(row)
            early = bool(cfg.patience and dd.main and stale_epochs(history) >= cfg.patience)
            if early:
                log(_("early stop: no validation improvement for {n} epochs", n=cfg.patience))
            done = guard.agree(early) or last
            guard.save(Progress(epoch + 1, 0, step, best, history, finished=done), weights=False)
            if done:
                break
    if dd.world > 1:
        dist.barrier()
    phases.mark("training")
    summary = summarize(cfg, data, history, time.perf_counter() - t_start, out) if dd.main else None
    if dd.main:
        summary.update(precision=precision, phases=phases.fit_split(history[n_before:]))
        if on_summary is not None:
            on_summary(summary)
        draw_curves(out, log)
        summary["phases"]["curves"] = phases.since_last()
    if dd.world > 1:
        dist.destroy_process_group()
    return summary


def build_ema(cfg: TrainConfig, model: nn.Module):
    """Exponential moving average of the weights (and BN buffers), PyTorch's own AveragedModel."""
    if not cfg.ema:
        return None
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    return AveragedModel(unwrap(model), multi_avg_fn=get_ema_multi_avg_fn(cfg.ema), use_buffers=True)


def step_generator(seed: int, step: int, dd: Dist) -> torch.Generator:
    """Augmentation randomness as a pure function of (seed, step, rank): reproducible and resumable."""
    return torch.Generator(dd.device).manual_seed((seed * 1_000_003 + step) * 1009 + dd.rank)


def end_of_epoch(cfg, model, data, val_x, val_y, row, best, out, meta, log, precision: str, due: bool = True):
    """Evaluate on all test images (and val), append metrics, save last/best checkpoints. An epoch that is
    not `due` (--eval-every) is not evaluated: blank test/val columns, `last` saved, `best` unchanged."""
    net = unwrap(model)
    if not due:
        row.update(test_loss="", test_accuracy="", val_loss="", val_accuracy="")
        append_metrics(out / "metrics.csv", row)
        log.scalars(row)  # blanks are skipped
        save_checkpoint(out / "last", net, {**meta, "epoch": row["epoch"], "metrics": row})
        log(
            _(
                "epoch {epoch:>3}: train loss {loss:.4f} (not evaluated: --eval-every {every}), "
                "{speed:.0f} img/s, {seconds:.1f}s",
                epoch=row["epoch"],
                loss=row["train_loss"],
                every=cfg.eval_every,
                speed=row["images_per_second"],
                seconds=row["seconds"],
            )
        )
        return best
    row["test_loss"], row["test_accuracy"] = evaluate(
        net, data.test_x, data.test_y, data.mean, data.std, cfg.eval_batch_size, cfg.tta, precision
    )
    row["val_loss"], row["val_accuracy"] = ("", "")
    if val_x is not None:
        row["val_loss"], row["val_accuracy"] = evaluate(
            net, val_x, val_y, data.mean, data.std, cfg.eval_batch_size, precision=precision
        )
    append_metrics(out / "metrics.csv", row)
    log.scalars(row)
    score = selection_score(row, val_x is not None)  # validation, never the test set (training/metrics.py)
    meta = {**meta, "epoch": row["epoch"], "metrics": row}
    save_checkpoint(out / "last", net, meta)
    if score > best:
        save_checkpoint(out / "best", net, meta)
        best = score
    fields = dict(
        epoch=row["epoch"],
        loss=row["train_loss"],
        test_loss=row["test_loss"],
        acc=row["test_accuracy"],
        speed=row["images_per_second"],
        seconds=row["seconds"],
    )
    if val_x is not None:
        log(
            _(
                "epoch {epoch:>3}: train loss {loss:.4f}, test loss {test_loss:.4f}, test acc {acc:.2%}, "
                "val acc {val:.2%}, {speed:.0f} img/s, {seconds:.1f}s",
                val=row["val_accuracy"],
                **fields,
            )
        )
    else:
        log(
            _(
                "epoch {epoch:>3}: train loss {loss:.4f}, test loss {test_loss:.4f}, test acc {acc:.2%}, "
                "{speed:.0f} img/s, {seconds:.1f}s",
                **fields,
            )
        )
    return best
