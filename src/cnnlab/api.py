"""The verbs of cnnlab's Python API that are more than a re-export: `train`, `evaluate`, `predict` and
`summary`. Each returns what the matching `cnnlab ... --json` command prints: the commands
(cnnlab.commands) call the same library functions, so a notebook and a shell script see the same numbers. Import them from the top package:
`import cnnlab; cnnlab.train(model="chapter-cnn", dataset="mnist-sample", epochs=2)`."""

from dataclasses import fields, replace
from pathlib import Path
from types import SimpleNamespace

from cnnlab.errors import CnnlabError
from cnnlab.i18n import _, check


def train(config=None, /, **settings) -> dict:
    """Train a model and return the summary `cnnlab train --json` prints (test accuracy, checkpoint, ...).

    Pass a `TrainConfig`, or its fields as keyword arguments (`cnnlab.train(dataset="mnist-sample",
    epochs=2, out="runs/nb")`), or both (keywords override the config's fields). Keywords behave exactly
    like the CLI's flags: defaults are the chapter's experiment (a folder of your own images gets settings
    for its size unless a recipe is named), `recipe="fast"` applies a recipe under them and `resume=True`
    continues the run in `out`. Progress is printed; bad settings raise CnnlabError.
    `deterministic=True` and `threads=N` change torch's global settings in this process, as in the CLI.
    """
    from cnnlab.training.config import TrainConfig
    from cnnlab.training.loop import train as run_training
    from cnnlab.training.settings import config_from_args

    names = {f.name for f in fields(TrainConfig)}
    unknown = sorted(set(settings) - names)
    if unknown:
        raise CnnlabError(
            _("unknown TrainConfig field(s): {names}; see cnnlab.TrainConfig", names=", ".join(unknown))
        )
    given = None  # a TrainConfig is taken as it is; keywords are like flags (a folder fills the rest)
    if config is None:
        cfg = config_from_args(SimpleNamespace(**{name: settings.get(name) for name in names}))
        given = {name for name, value in settings.items() if value is not None}
    elif isinstance(config, TrainConfig):
        cfg = replace(config, **settings)
    else:
        raise CnnlabError(
            _("train() takes a TrainConfig or keyword arguments, not {kind}", kind=type(config).__name__)
        )
    return run_training(cfg, given=given)


def evaluate(
    checkpoint,
    dataset: str | None = None,
    data_dir: str | None = None,
    batch_size: int = 1024,
    tta: bool | None = None,
    plot: bool | str | Path = False,
) -> dict:
    """Accuracy, per-class accuracy and confusion matrix on every test image: what `cnnlab eval --json`
    prints. `checkpoint` is a run folder (its best checkpoint), a .safetensors file or the pair
    `load_checkpoint` returns; `dataset` defaults to the checkpoint's own; `tta` None = as the run evaluated. `plot=True` also writes
    confusion.png next to the checkpoint (a path: there) and adds its path under "plot"."""
    from cnnlab.evaluation import evaluate_checkpoint

    where = None if plot is False or plot is None else ("" if plot is True else str(plot))
    return evaluate_checkpoint(checkpoint, dataset, data_dir, batch_size, tta, where)


def predict(checkpoint, images, top: int = 3, save_input: str | Path | None = None) -> list[dict]:
    """Top classes for images: what `cnnlab predict --json` prints, one record per image with "file",
    "prediction", "label", "probabilities" and "top". `images` is a file path, a PIL image, or a list of
    them (a PIL image's "file" is None); each is preprocessed as the checkpoint's dataset was made."""
    from PIL import Image

    from cnnlab.prediction import predict_records

    if isinstance(images, (str, Path, Image.Image)):
        images = [images]
    if not images:
        raise CnnlabError(_("predict needs at least one image"))
    return predict_records(checkpoint, list(images), top, save_input)


def summary(
    model,
    input_shape: str | tuple[int, int, int] = "1x28x28",
    classes: int = 10,
    width: float = 1.0,
    device: str = "cpu",
    lang: str | None = None,
):
    """Layer table of a registry model name, a run folder / checkpoint (its own model and input) or any
    `nn.Module` for one C x H x W input: a `Summary` with output shapes, params, MACs and the formula
    check; `print()` it (or show it in Jupyter) for the table `cnnlab summary` prints (in `lang`, "en" or
    "ko"; None: the current language), `.to_json()` for its --json. `device="meta"` builds a named model
    without memory or arithmetic (as `cnnlab models` does): same shapes and counts, even for VGG16; a
    module given as such runs on its own device."""
    from cnnlab.inside.summary import summary_of

    result, _about = summary_of(model, input_shape, classes, width, device)
    result.lang = None if lang is None else check(lang)
    return result
