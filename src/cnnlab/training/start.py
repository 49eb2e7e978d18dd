"""The start of every run -- `train`, `train --finetune probe` and `lr-find` -- in one place, in the order
that loses nothing: settings -> weights -> data -> settings that depend on the data -> model -> run folder.

Nothing is written before the data and the model are ready: a misspelt folder, files of the wrong dataset
or weights that cannot be had end with one line and leave `runs/` and `runs/latest` as they were
(`open_run_folder`, `discard`). The data's description (`cnnlab.data.spec.DataSpec`) is printed here and
saved in every checkpoint; the commands that read a run later (eval, predict, serve, ...) take it from
there instead of working it out again.
"""

from dataclasses import dataclass, replace
from pathlib import Path

import torch
import torch.nn as nn

from cnnlab.data import Dataset
from cnnlab.data.spec import DataSpec
from cnnlab.errors import CnnlabError
from cnnlab.i18n import _
from cnnlab.training.config import TrainConfig
from cnnlab.training.data_setup import extra_meta, folder_splits, is_folder, load_run_data
from cnnlab.training.finetune import init_from_weights, limit_test, per_class_subset, wants_weights
from cnnlab.training.validate import check_train_size, check_validation_set

PRETRAINED_MIN_SIZE = 112  # ImageNet weights on small folder images: read them at this size at least


@dataclass
class Start:
    cfg: TrainConfig  # the settings, with what the data decided (folder recipe, sizes) filled in
    data: Dataset  # the dataset as read (tensors, classes, mean/std)
    split: tuple  # (train_x, train_y, val_x, val_y) the run trains and selects on
    model: nn.Module  # built for the data, starting weights loaded
    spec: DataSpec  # the one description of the data, saved in every checkpoint
    precision: str  # "fp32" or "bf16": --precision resolved for the run's device (training/precision.py)
    meta: dict  # checkpoint metadata: model, data description, settings, weights, precision


def split_validation(data: Dataset, frac: float, seed: int):
    """(train_x, train_y, val_x, val_y): a seeded fraction of the training set is held out."""
    if not 0 <= frac < 1:
        raise CnnlabError(_("--val-split must be in [0, 1), got {value}", value=frac))
    n = len(data.train_y)
    n_val = int(round(n * frac))
    if n_val == 0:
        return data.train_x, data.train_y, None, None
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed + 7919))
    tr, va = order[n_val:].sort().values, order[:n_val].sort().values
    return data.train_x[tr], data.train_y[tr], data.train_x[va], data.train_y[va]


def run_data(cfg: TrainConfig, log) -> tuple[Dataset, tuple]:
    """The dataset and the (train_x, train_y, val_x, val_y) a run trains on, after --val-split (a folder
    brings its own stratified split), --train-per-class and --limit-train."""
    data = limit_test(load_run_data(cfg, log, log.bar_ok), cfg.limit_test)  # folders: table, skipped files
    train_x, train_y, val_x, val_y = folder_splits(data) or split_validation(data, cfg.val_split, cfg.seed)
    check_validation_set(cfg, 0 if val_y is None else len(val_y))  # --patience with nothing to watch
    if cfg.train_per_class:
        train_x, train_y = per_class_subset(
            train_x, train_y, cfg.train_per_class, cfg.seed, len(data.classes)
        )
    if cfg.limit_train:
        train_x, train_y = train_x[: cfg.limit_train], train_y[: cfg.limit_train]
    check_train_size(cfg, len(train_y))  # --val-split near 1 can leave nothing to train on
    return data, (train_x, train_y, val_x, val_y)


def settle(cfg: TrainConfig, data: Dataset, n_train: int, given: set[str] | None, log) -> TrainConfig:
    """Settings that wait for the data: a folder run with no recipe gets settings for its size and kind of
    image (training/folder_recipe.py) under the flags the user gave (`given`; None: take cfg as it is)."""
    if given is None or cfg.recipe not in (None, "folder") or cfg.resume or not is_folder(cfg):
        return cfg
    from cnnlab.training.folder_recipe import describe, ema_for, folder_values

    values = folder_values(n_train, data.preprocess, data.orientation_sensitive, wants_weights(cfg))
    epochs, batch = (given_or(cfg, given, values, k) for k in ("epochs", "batch_size"))
    values["ema"] = ema_for(-(-n_train // batch) * epochs, wants_weights(cfg))
    if wants_weights(cfg):
        values["model"] = cfg.model  # the weights' model (a run's own, or --model)
    if cfg.finetune == "probe":  # features are computed once per image: nothing to augment or average
        values.update(augment="none", ema=0.0)
    chosen = {k: v for k, v in values.items() if k not in given}
    log(describe({**values, **chosen}, n_train, data.preprocess == "digit"))
    return replace(cfg, **chosen, recipe="folder")


def planned_model(cfg: TrainConfig, given: set[str] | None) -> str:
    """The model a run will train, known before its data is read (the folder recipe picks fastnet-bn)."""
    from cnnlab.training.folder_recipe import BASE

    folder = given is not None and cfg.recipe in (None, "folder") and not cfg.resume and is_folder(cfg)
    return BASE["model"] if folder and "model" not in given and not wants_weights(cfg) else cfg.model


def given_or(cfg: TrainConfig, given: set[str], values: dict, name: str):
    """The value the run will have: the user's, else the recipe's."""
    return getattr(cfg, name) if name in given else values[name]


def input_size(cfg: TrainConfig) -> int:
    """The image size a folder is read at: --image-size; else the size of the run whose weights start
    this one; for ImageNet weights at least PRETRAINED_MIN_SIZE (their full model form); 0: from the data."""
    if cfg.image_size or not is_folder(cfg):
        return cfg.image_size
    if cfg.pretrained:
        return PRETRAINED_MIN_SIZE
    if cfg.weights:
        from cnnlab.models.weights import run_input

        found = run_input(cfg.weights)
        return found[1] if found else 0
    return 0


def build_model(cfg: TrainConfig, data: Dataset) -> nn.Module:
    from cnnlab.inside.summary import check_input
    from cnnlab.models import get_model, model_facts

    c, h, _w = data.shape
    extra = {} if cfg.aux or not model_facts(cfg.model).aux_heads else {"aux_logits": False}
    kwargs = dict(num_classes=len(data.classes), in_channels=c, input_size=h, width=cfg.width, **extra)
    try:
        model = get_model(cfg.model, **kwargs)
        check_input(model, (c, h, h))  # names the layer where a too-small input would shrink to zero
    except CnnlabError as e:
        least = smallest_input(cfg.model, kwargs, c, h + 1) if is_folder(cfg) and h < 256 else None
        if least is None:
            raise
        hint = _("the images are read at {size}x{size}: pass --image-size {least} or more (the smallest input "
                 "{model} takes)", size=h, least=least, model=cfg.model)  # fmt: skip
        raise CnnlabError(_("{error}; {hint}", error=e, hint=hint)) from None
    model.cnnlab_kwargs = kwargs  # saved in checkpoints so `load_checkpoint` can rebuild it
    if wants_weights(cfg):  # --pretrained / --weights: new classifier, adapted first conv, rest strict
        model.cnnlab_weights = init_from_weights(model, cfg, data)
    return model


def smallest_input(name: str, kwargs: dict, channels: int, start: int) -> int | None:
    """The smallest square input size from `start` up to 8 x `start` that model `name` takes, or None;
    models are built on the meta device (no memory, no arithmetic: a few milliseconds each)."""
    from cnnlab.inside.summary import check_input
    from cnnlab.models import get_model, list_models

    if name not in list_models():
        return None
    for size in range(start, min(8 * start, 1024) + 1):
        try:
            with torch.device("meta"):
                check_input(get_model(name, **{**kwargs, "input_size": size}), (channels, size, size))
            return size
        except CnnlabError:
            continue
        except Exception:  # a model that cannot be built on the meta device: no hint rather than a wrong one
            return None
    return None


def checkpoint_meta(cfg: TrainConfig, model: nn.Module, data: Dataset, precision: str) -> dict:
    """What every checkpoint of the run says about itself: the model, the data's description, the
    settings, the number format it computed in (eval runs it the same way) and where the weights started."""
    return {
        "model": cfg.model,
        "model_kwargs": model.cnnlab_kwargs,
        **data.spec().to_meta(),
        "config": cfg.to_dict(),
        "precision": precision,
        **({"weights": model.cnnlab_weights} if hasattr(model, "cnnlab_weights") else {}),
        **extra_meta(data),
    }


def fetch_weights(cfg: TrainConfig) -> None:
    """--pretrained: have the file before any scanning (offline, the error comes at once)."""
    if cfg.pretrained:
        from cnnlab.models.weights import pretrained_file

        pretrained_file(cfg.model)


def begin(cfg: TrainConfig, log, given: set[str] | None = None, device=torch.device("cpu")) -> Start:
    """Settings -> weights -> data -> settings from the data -> model; nothing written yet. The names in
    cfg were checked when it was made (TrainConfig, training/validate.py); `device`: where the run
    computes, which decides what `--precision auto` means."""
    from cnnlab.data.augment import check_spec
    from cnnlab.training.precision import resolve

    check_spec(cfg.augment, cfg.dataset)
    fetch_weights(cfg)
    size = input_size(cfg)
    if size != cfg.image_size:
        cfg = replace(cfg, image_size=size)
        if cfg.pretrained:
            log(
                _(
                    "images read at {size}x{size}: ImageNet weights fit their full model form (over 64 px)",
                    size=size,
                )
            )
        else:
            log(
                _(
                    "images read at {size}x{size}: the size of the run {path} starts from",
                    size=size,
                    path=cfg.weights,
                )
            )
    data, split = run_data(cfg, log)
    cfg = settle(cfg, data, len(split[1]), given, log)
    if data.orientation_sensitive:
        check_spec(cfg.augment, data.name, orientation_sensitive=True)
    model = build_model(cfg, data)  # after settle: the folder recipe may choose the model
    spec = data.spec()
    log(spec.describe())
    precision = resolve(cfg.precision, cfg.recipe, device)  # after settle: the folder recipe is a recipe
    return Start(cfg, data, split, model, spec, precision, checkpoint_meta(cfg, model, data, precision))


def discard(out: Path | None, created: bool, latest_before: str | None) -> None:
    """A run that failed before its first checkpoint leaves nothing: the folder it made is removed and
    runs/latest points where it pointed before (training/runs.py)."""
    from cnnlab.training.runs import forget

    if out is not None and not any((out / f).exists() for f in ("last.safetensors", "state.pt")):
        forget(out, created, latest_before)
