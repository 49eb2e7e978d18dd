"""`cnnlab train`: flags map one-to-one onto TrainConfig fields (defaults = the chapter's experiment)."""

import json
import os
import sys
from dataclasses import fields
from pathlib import Path

from cnnlab.errors import CnnlabError
from cnnlab.training.config import TrainConfig
from cnnlab.training.runs import resume_dir


def add_arguments(p) -> None:
    from cnnlab.training.flags import add_config_arguments

    add_config_arguments(p)  # one flag per TrainConfig field, help from its comment, --X/--no-X for booleans
    p.add_argument("--json", action="store_true", help="print one JSON summary on stdout; progress on stderr")
    p.add_argument(
        "--profile-startup",
        action="store_true",
        help="print where the wall time went, from process start (start-up, data, training, ...)",
    )
    # a launcher option, not a TrainConfig field: the global batch, not the process count, defines the maths
    p.add_argument(
        "--nproc", type=int, default=1, help="processes on this machine: re-runs this command under torchrun"
    )


def given_fields(args) -> set[str]:
    """The TrainConfig fields the user set (a flag, or a keyword of the Python API)."""
    return {f.name for f in fields(TrainConfig) if getattr(args, f.name, None) is not None}


def config_from_args(args) -> TrainConfig:
    """Defaults, then the named recipe (if any), then the model of a run given as --weights, then every
    flag the user actually gave. With --resume the base is the run's own saved settings, so
    `--resume --out OUT` alone continues it unchanged. `--data-dir ROOT` alone, ROOT a folder of images
    in class folders, is `--dataset ROOT`."""
    values = TrainConfig().to_dict()
    given = given_fields(args)
    if getattr(args, "resume", None):
        values.update(saved_config(resume_dir(args.out)))
        values["overwrite"] = False  # the first run's --overwrite is history, not a request to replace it
    elif getattr(args, "recipe", None):
        from cnnlab.training.recipes import recipe_values

        values.update(recipe_values(args.recipe, args.dataset or values["dataset"]))
    if getattr(args, "weights", None) and "model" not in given and not getattr(args, "resume", None):
        from cnnlab.models.weights import run_settings

        values.update(run_settings(args.weights))  # a cnnlab run: its model, unless --model says otherwise
    values.update({name: getattr(args, name) for name in given})
    if "dataset" not in given and values.get("data_dir") and not getattr(args, "resume", None):
        from cnnlab.data.folder import is_image_folder

        if is_image_folder(values["data_dir"]):
            values["dataset"] = "folder"
    return TrainConfig.from_dict(values)


def saved_config(out: Path) -> dict:
    """The run's settings from its resume state, not config.json (which may be edited or missing),
    passed through the same checks as typed ones, with errors naming the file."""
    from cnnlab.training.resume_rules import STATE, saved_run_config

    saved = saved_run_config(out)
    if not saved:
        if not out.is_dir():
            raise CnnlabError(f"--resume: {out} does not exist; pass --out RUN (a run folder with {STATE})")
        raise CnnlabError(
            f"--resume: nothing to continue in {out} (no {STATE}: the run never saved a checkpoint); "
            "start it again without --resume"
        )
    try:
        TrainConfig.from_dict({**TrainConfig().to_dict(), **saved, "overwrite": False, "resume": True})
    except CnnlabError as e:
        raise CnnlabError("\n".join(f"{out / STATE}: {line}" for line in str(e).splitlines())) from None
    return saved


def run(args) -> int:
    from cnnlab.training.loop import train
    from cnnlab.training.resume import Stop

    cfg = config_from_args(args)  # checked before torchrun starts N copies of a bad command
    if args.nproc > 1:
        from cnnlab.training.launch import check_nproc, launch

        check_nproc(args.nproc)  # before a run folder is made for the workers

        if args.out or args.resume:
            return launch(args)
        from cnnlab.training.runs import data_label, forget, latest_target, new_run_dir
        from cnnlab.training.start import planned_model

        before = latest_target()  # the workers write into one new numbered folder, made here
        out = new_run_dir(planned_model(cfg, given_fields(args)), data_label(cfg.dataset, cfg.data_dir))
        args.out = str(out)
        code = launch(args)
        if code and not any((out / f).exists() for f in ("last.safetensors", "state.pt")):
            forget(out, True, before)  # failed before its first checkpoint: leave nothing
        return code
    try:
        if cfg.finetune == "probe":  # refuses to run without --pretrained / --weights
            from cnnlab.training.transfer import train_probe  # frozen body, cached features, linear head

            summary = train_probe(cfg, json_mode=args.json, given=given_fields(args))
            if summary is not None:
                report(summary, args.json)
        else:
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
        raise CnnlabError(f"--deterministic is not possible here: {first}") from None
    if getattr(args, "profile_startup", False) and summary is not None:
        from cnnlab.training.phases import describe

        print(describe(summary["phases"]), file=sys.stderr)
    return 0


def report(summary: dict, json_mode: bool) -> None:
    if json_mode:
        print(json.dumps(summary), flush=True)
    elif summary.get("test_accuracy") is not None:
        print(done_line(summary), flush=True)


def done_line(s: dict) -> str:
    """The final line: the named checkpoint's own accuracy, then the last epoch's when that differs."""
    val = f", val acc {s['val_accuracy']:.2%}" if s.get("val_accuracy") is not None else ""
    line = (
        f"done: {s['checkpoint']} (epoch {s['checkpoint_epoch']}): test acc {s['test_accuracy']:.2%}{val} "
        f"on {s['test_images']} images; {s['train_seconds']:.1f}s"
    )
    if s.get("last_epoch") != s.get("checkpoint_epoch") and s.get("last_test_accuracy") is not None:
        line += f"; last epoch {s['last_epoch']}: test acc {s['last_test_accuracy']:.2%}"
    return line
