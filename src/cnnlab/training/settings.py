"""A run's settings from what the user gave: the flags of `cnnlab train` / `lr-find`, or the keywords of
`cnnlab.train(...)` -- both come here, so a flag and a keyword mean the same thing.

Order: defaults, then the named recipe (if any), then the model of a run given as --weights, then every
setting the user actually gave. With --resume the base is the run's own saved settings, so `--resume --out
OUT` alone continues it unchanged.
"""

from dataclasses import fields
from pathlib import Path

from cnnlab.errors import CnnlabError
from cnnlab.i18n import _
from cnnlab.training.config import TrainConfig
from cnnlab.training.runs import resume_dir


def given_fields(args) -> set[str]:
    """The TrainConfig fields the user set (a flag, or a keyword of the Python API): not None."""
    return {f.name for f in fields(TrainConfig) if getattr(args, f.name, None) is not None}


def config_from_args(args) -> TrainConfig:
    """The TrainConfig for `args` (an argparse namespace or any object with TrainConfig's field names as
    attributes, None = not given); see the module docstring for the order. `--data-dir ROOT` alone, ROOT
    a folder of images in class folders, is `--dataset ROOT`."""
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
            raise CnnlabError(
                _(
                    "--resume: {path} does not exist; pass --out RUN (a run folder with {state})",
                    path=out,
                    state=STATE,
                )
            )
        raise CnnlabError(
            _(
                "--resume: nothing to continue in {path} (no {state}: the run never saved a checkpoint); "
                "start it again without --resume",
                path=out,
                state=STATE,
            )
        )
    try:
        TrainConfig.from_dict({**TrainConfig().to_dict(), **saved, "overwrite": False, "resume": True})
    except CnnlabError as e:
        raise CnnlabError("\n".join(f"{out / STATE}: {line}" for line in str(e).splitlines())) from None
    return saved
