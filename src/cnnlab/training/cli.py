"""`cnnlab train`: flags map one-to-one onto TrainConfig fields (defaults = the chapter's experiment)."""

import json
import os
from dataclasses import fields
from pathlib import Path

from cnnlab.errors import CnnlabError
from cnnlab.training.config import TrainConfig

_HELP = {
    "model": "model name (see `cnnlab models`)",
    "dataset": "mnist | mnist-sample | fashion-mnist | kmnist | cifar10",
    "data_dir": "folder holding the dataset files",
    "out": "run folder for config, metrics, checkpoints, curves",
}


def add_arguments(p) -> None:
    for f in fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        default = f.default
        help_ = _HELP.get(f.name, f.name.replace("_", " "))
        if f.name == "aux":
            p.add_argument(
                "--no-aux",
                dest="aux",
                action="store_false",
                default=None,
                help="turn off GoogLeNet aux heads",
            )
        elif f.name == "channels_last":
            p.add_argument(
                "--no-channels-last",
                dest="channels_last",
                action="store_false",
                default=None,
                help="keep NCHW memory format",
            )
        elif isinstance(default, bool):
            p.add_argument(flag, action="store_true", default=None, help=help_)
        elif f.name == "betas":
            p.add_argument(
                flag, type=float, nargs=2, default=None, metavar=("B1", "B2"), help=f"Adam betas ({default})"
            )
        else:
            kind = type(default) if default is not None else str
            p.add_argument(flag, type=kind, default=None, help=f"{help_} (default: {default})")
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
        return json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise CnnlabError(f"{path}: unreadable ({e}); cannot resume this run") from None


def run(args) -> int:
    from cnnlab.training.loop import train
    from cnnlab.training.resume import Stop

    if args.nproc < 1:
        raise CnnlabError(f"--nproc must be at least 1, got {args.nproc}")
    if args.nproc > 1:
        from cnnlab.training.launch import launch

        return launch(args)
    cfg = config_from_args(args)
    try:
        if cfg.finetune == "probe":  # refuses to run without --pretrained / --weights
            from cnnlab.training.transfer import train_probe  # frozen body, cached features, linear head

            summary = train_probe(cfg, json_mode=args.json)
        else:
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
