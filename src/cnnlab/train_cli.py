"""`cnnlab train`: flags map one-to-one onto TrainConfig fields (defaults = the chapter's experiment)."""

import json
from dataclasses import fields

from cnnlab.config import TrainConfig

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


def config_from_args(args) -> TrainConfig:
    """Defaults, then the named recipe (if any), then every flag the user actually gave."""
    values = TrainConfig().to_dict()
    if getattr(args, "recipe", None):
        from cnnlab.recipes import recipe_values

        values.update(recipe_values(args.recipe))
    values.update(
        {f.name: getattr(args, f.name) for f in fields(TrainConfig) if getattr(args, f.name) is not None}
    )
    return TrainConfig.from_dict(values)


def run(args) -> int:
    from cnnlab.train import train

    cfg = config_from_args(args)
    summary = train(cfg, json_mode=args.json)
    if args.json and summary is not None:
        print(json.dumps(summary))
    elif summary is not None and summary.get("test_accuracy") is not None:
        print(
            f"done: test accuracy {summary['test_accuracy']:.4%} on {summary['test_images']} images in "
            f"{summary['train_seconds']:.1f}s; checkpoint {summary['checkpoint']}"
        )
    return 0
