"""`cnnlab train`: flags map one-to-one onto TrainConfig fields (defaults = the chapter's experiment)."""

import json
import os
from dataclasses import fields
from pathlib import Path

from cnnlab.errors import CnnlabError
from cnnlab.training.config import TrainConfig


def add_arguments(p) -> None:
    from cnnlab.training.flags import add_config_arguments

    add_config_arguments(p)  # one flag per TrainConfig field, help from its comment, --X/--no-X for booleans
    p.add_argument("--json", action="store_true", help="print one JSON summary on stdout; progress on stderr")
    # a launcher option, not a TrainConfig field: the global batch, not the process count, defines the maths
    p.add_argument(
        "--nproc", type=int, default=1, help="processes on this machine: re-runs this command under torchrun"
    )


def config_from_args(args) -> TrainConfig:
    """Defaults, then the named recipe (if any), then every flag the user actually gave. With --resume
    the base is the run's own config.json, so `--resume --out OUT` alone continues it unchanged."""
    values = TrainConfig().to_dict()
    if getattr(args, "resume", None):
        values.update(saved_config(Path(args.out or values["out"])))
        values["overwrite"] = False  # the first run's --overwrite is history, not a request to replace it
    elif getattr(args, "recipe", None):
        from cnnlab.training.recipes import recipe_values

        values.update(recipe_values(args.recipe))
    values.update(
        {f.name: getattr(args, f.name) for f in fields(TrainConfig) if getattr(args, f.name) is not None}
    )
    return TrainConfig.from_dict(values)


def saved_config(out: Path) -> dict:
    path = out / "config.json"
    if not path.is_file():
        return {}
    try:
        saved = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise CnnlabError(f"{path}: unreadable ({e}); cannot resume this run") from None
    if not isinstance(saved, dict):
        raise CnnlabError(f"{path}: not a cnnlab config (a JSON object of settings); cannot resume this run")
    try:  # the saved settings pass the same checks as typed ones, and errors name the file
        TrainConfig.from_dict({**TrainConfig().to_dict(), **saved, "overwrite": False, "resume": True})
    except CnnlabError as e:
        raise CnnlabError("\n".join(f"{path}: {line}" for line in str(e).splitlines())) from None
    return saved


def run(args) -> int:
    from cnnlab.training.loop import train
    from cnnlab.training.resume import Stop

    cfg = config_from_args(args)  # checked before torchrun starts N copies of a bad command
    if args.nproc > 1:
        from cnnlab.training.launch import launch

        return launch(args)
    try:
        summary = train(cfg, json_mode=args.json)
    except Stop:
        if int(os.environ.get("RANK", "0")) != 0:
            return 0  # rank 0 reports the stop all ranks agreed on, and exits with its code
        raise
    except RuntimeError as e:  # e.g. adaptive pooling's backward on CUDA has no deterministic kernel
        if "deterministic" not in str(e):
            raise
        first = str(e).strip().splitlines()[0]
        raise CnnlabError(f"--deterministic is not possible here: {first}") from None
    if args.json and summary is not None:
        print(json.dumps(summary))
    elif summary is not None and summary.get("test_accuracy") is not None:
        print(
            f"done: test accuracy {summary['test_accuracy']:.4%} on {summary['test_images']} images in "
            f"{summary['train_seconds']:.1f}s; checkpoint {summary['checkpoint']}"
        )
    return 0
