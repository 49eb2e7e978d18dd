"""`cnnlab train`: one flag per TrainConfig field (training/flags.py), then `training.loop.train`, the
function `cnnlab.train(...)` calls too; `--nproc N` re-runs this command under torchrun."""

import json
import os
import sys

from cnnlab.errors import CnnlabError
from cnnlab.i18n import _
from cnnlab.training.settings import config_from_args, given_fields


def add_arguments(p) -> None:
    from cnnlab.training.flags import add_config_arguments

    add_config_arguments(p)  # one flag per TrainConfig field, help from its comment, --X/--no-X for booleans
    p.add_argument(
        "--json", action="store_true", help=_("print one JSON summary on stdout; progress on stderr")
    )
    p.add_argument(
        "--profile-startup",
        action="store_true",
        help=_("print where the wall time went, from process start (start-up, data, training, ...)"),
    )
    # a launcher option, not a TrainConfig field: the global batch, not the process count, defines the maths
    p.add_argument(
        "--nproc",
        type=int,
        default=1,
        help=_("processes on this machine: re-runs this command under torchrun"),
    )


def run(args) -> int:
    from cnnlab.training.loop import train
    from cnnlab.training.resume import Stop

    cfg = config_from_args(args)  # checked before torchrun starts N copies of a bad command
    if args.nproc > 1:
        return run_workers(args, cfg)
    try:
        # the summary is printed before the curves picture is drawn (matplotlib costs ~1 s to import)
        report_now = lambda s: report(s, args.json)  # noqa: E731
        summary = train(cfg, json_mode=args.json, on_summary=report_now, given=given_fields(args))
    except Stop:
        if int(os.environ.get("RANK", "0")) != 0:
            return 0  # rank 0 reports the stop all ranks agreed on, and exits with its code
        raise
    except RuntimeError as e:  # e.g. adaptive pooling's backward on CUDA has no deterministic kernel
        if "deterministic" not in str(e):
            raise
        first = str(e).strip().splitlines()[0]
        raise CnnlabError(_("--deterministic is not possible here: {why}", why=first)) from None
    if getattr(args, "profile_startup", False) and summary is not None and "phases" in summary:
        from cnnlab.training.phases import describe

        print(describe(summary["phases"]), file=sys.stderr)
    return 0


def run_workers(args, cfg) -> int:
    """--nproc N: the same command under torchrun; without --out the workers write into one new numbered
    folder, made here (and removed again when they fail before their first checkpoint)."""
    from cnnlab.training.launch import check_nproc, launch

    check_nproc(args.nproc)  # before a run folder is made for the workers
    if args.out or args.resume:
        return launch(args)
    from cnnlab.training.runs import data_label, forget, latest_target, new_run_dir
    from cnnlab.training.start import planned_model

    before = latest_target()
    out = new_run_dir(planned_model(cfg, given_fields(args)), data_label(cfg.dataset, cfg.data_dir))
    args.out = str(out)
    code = launch(args)
    if code and not any((out / f).exists() for f in ("last.safetensors", "state.pt")):
        forget(out, True, before)  # failed before its first checkpoint: leave nothing
    return code


def report(summary: dict, json_mode: bool) -> None:
    if json_mode:
        print(json.dumps(summary), flush=True)
    elif summary.get("test_accuracy") is not None:
        print(done_line(summary), flush=True)


def done_line(s: dict) -> str:
    """The final line: the named checkpoint's own accuracy, then the last epoch's when that differs."""
    fields = dict(
        path=s["checkpoint"],
        epoch=s["checkpoint_epoch"],
        acc=s["test_accuracy"],
        n=s["test_images"],
        seconds=s["train_seconds"],
    )
    if s.get("val_accuracy") is not None:
        line = _(
            "done: {path} (epoch {epoch}): test acc {acc:.2%}, val acc {val:.2%} on {n} images; {seconds:.1f}s",
            val=s["val_accuracy"],
            **fields,
        )
    else:
        line = _("done: {path} (epoch {epoch}): test acc {acc:.2%} on {n} images; {seconds:.1f}s", **fields)
    if s.get("last_epoch") != s.get("checkpoint_epoch") and s.get("last_test_accuracy") is not None:
        line += _(
            "; last epoch {epoch}: test acc {acc:.2%}", epoch=s["last_epoch"], acc=s["last_test_accuracy"]
        )
    return line
