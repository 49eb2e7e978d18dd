"""Every TrainConfig field checked when the config is made (CLI, Python API, config.json on --resume):
a rule per field (type, range, allowed names) and the combinations that cannot work. All problems are
reported at once, one line each naming the flag, the value and what is allowed; exit code 2.

A new TrainConfig field needs a rule in RULES (a test fails otherwise); a check that spans fields goes
into COMBINATIONS with the fields it reads (skipped when one of them already failed its own rule).
"""

from collections.abc import Callable

from cnnlab.errors import CnnlabError
from cnnlab.i18n import _
from cnnlab.options import BIG, Rule, problems, raise_problems

# the names build_optimizer / lr_factor / precision.resolve know, checked here and nowhere else (here, not
# in optim.py or precision.py: config -> validate must not reach torch code that imports config back)
OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("constant", "onecycle", "cosine", "step")
PRECISIONS = ("auto", "fp32", "bf16")


def _models() -> list[str]:
    from cnnlab.models import list_models

    return list_models()


def _datasets() -> list[str]:
    from cnnlab.data import list_datasets

    return list_datasets()


def _recipes() -> list[str]:
    from cnnlab.training.recipes import list_recipes

    return list_recipes()


UNIT = dict(low=0, high=1, high_open=True)  # [0, 1)
RULES: dict[str, Rule] = {
    "model": Rule(str, choices=_models, what="model"),
    "dataset": Rule(str),  # a built-in name, "folder" or a folder path: checked in COMBINATIONS (_dataset)
    "data_dir": Rule(str, optional=True),
    "width": Rule(float, 0, 16, low_open=True),  # > 16x the published widths is a typo, not a model
    "aux": Rule(bool),
    "epochs": Rule(int, 1, BIG),
    "batch_size": Rule(int, 1, BIG),
    "lr": Rule(float, 0, 1e6, low_open=True),  # 1e6 still lets a test force a divergence; more is a typo
    "optimizer": Rule(str, choices=OPTIMIZERS, what="optimizer"),
    "betas": Rule(float, size=2, **UNIT),
    "momentum": Rule(float, **UNIT),
    "weight_decay": Rule(float, 0, 1e6),
    "schedule": Rule(str, choices=SCHEDULES, what="schedule"),
    "warmup_epochs": Rule(float, 0, BIG),
    "label_smoothing": Rule(float, **UNIT),
    "ema": Rule(float, **UNIT),
    "augment": Rule(str),  # its terms are checked by cnnlab.data.augment.check_spec (COMBINATIONS)
    "tta": Rule(bool),
    "time_budget": Rule(float, 0, 7 * 24 * 3600),  # a week: the planner walks epoch by epoch up to it
    "recipe": Rule(str, choices=_recipes, what="recipe", optional=True),
    "val_split": Rule(float, **UNIT),
    "patience": Rule(int, 0, BIG),
    "seed": Rule(int, 0, 2**32 - 1),  # the data-order/augmentation generators mix it into a 64-bit seed
    "out": Rule(str, optional=True),  # None: a new numbered folder under runs/
    "overwrite": Rule(bool),
    "resume": Rule(bool),
    "checkpoint_every": Rule(int, 0, BIG),
    "deterministic": Rule(bool),
    "threads": Rule(int, 0, 1024),
    "channels_last": Rule(bool),
    "sync_bn": Rule(bool),
    "eval_batch_size": Rule(int, 1, BIG),
    "eval_every": Rule(int, 0, BIG),
    "tensorboard": Rule(bool),
    "max_steps": Rule(int, 0, BIG),
    "limit_train": Rule(int, 0, BIG),
    "precision": Rule(str, choices=PRECISIONS, what="precision"),
    # transfer learning
    "pretrained": Rule(bool),
    "weights": Rule(str, optional=True),
    "finetune": Rule(str, choices=("full", "probe"), what="fine-tuning mode"),
    "freeze_epochs": Rule(int, 0, BIG),
    "lr_mult": Rule(float, 1, 1e6),
    "train_per_class": Rule(int, 0, BIG),
    "limit_test": Rule(int, 0, BIG),
    # image folders
    "image_size": Rule(int, 0, 4096),
    "preprocess": Rule(str, choices=("auto", "digit", "photo"), what="way to read images"),
    "channels": Rule(int, 0, 3),
    "classes": Rule(str, empty_ok=True),
    "test_split": Rule(float, **UNIT),
    "split_seed": Rule(int, 0, 2**32 - 1),
    "strict": Rule(bool),
    "balance": Rule(bool),
    "decode_workers": Rule(int, 0, 256),
}


def _dataset(c) -> str | None:
    from cnnlab.options import unknown
    from cnnlab.training.data_setup import is_folder

    names = _datasets()
    if c.dataset in names or is_folder(c):
        if c.dataset == "folder" and not c.data_dir:
            return _("--dataset folder needs --data-dir ROOT (a folder with one subfolder per class)")
        return None
    return unknown("dataset", c.dataset, [*names, "folder", _("a folder path")], "--dataset")


def _channels(c) -> str | None:
    if c.channels == 2:
        return _("--channels 2: must be 0 (from the data), 1 (greyscale) or 3 (RGB)")


def _splits(c) -> str | None:
    from cnnlab.training.data_setup import is_folder

    if is_folder(c) and c.val_split + c.test_split >= 1:  # only folders use --test-split
        return _(
            "--val-split {val:g} and --test-split {test:g} leave no training images (their sum must be below 1)",
            val=c.val_split,
            test=c.test_split,
        )


def _pretrained(c) -> str | None:
    from cnnlab.models import canonical_name
    from cnnlab.models.weights import pretrained_names

    if c.pretrained and c.weights:
        return _("--pretrained and --weights exclude each other: ImageNet's weights, or the ones in FILE")
    if c.pretrained and canonical_name(c.model) not in pretrained_names():
        return _(
            "--pretrained: no published ImageNet weights for {model}; they exist for: {names}; or pass "
            "--weights FILE",
            model=repr(c.model),
            names=", ".join(pretrained_names()),
        )


def _probe(c) -> str | None:
    if c.finetune == "probe" and not (c.pretrained or c.weights):
        return _(
            "--finetune probe trains a head on frozen trained weights: pass --pretrained or --weights FILE"
        )


def _resume_overwrite(c) -> str | None:
    if c.resume and c.overwrite:
        return _("--resume and --overwrite exclude each other: continue the run in --out, or replace it")


def _sync_bn(c) -> str | None:
    if c.sync_bn:
        import torch

        if not torch.cuda.is_available():
            return _("--sync-bn needs GPUs: PyTorch's SyncBatchNorm has no CPU implementation")


def _warmup(c) -> str | None:
    if c.warmup_epochs and c.warmup_epochs >= c.epochs:
        return _(
            "--warmup-epochs {warmup:g}: must be shorter than the run (--epochs {epochs}); the learning rate "
            "would never reach its peak",
            warmup=c.warmup_epochs,
            epochs=c.epochs,
        )


def _patience(c) -> str | None:
    from cnnlab.training.data_setup import is_folder

    # a folder may bring its own val/ folder: whether it has validation images is known once it is read
    # (check_validation_set)
    if c.patience and not c.val_split and not is_folder(c):
        return _(
            "--patience {n}: early stopping watches validation accuracy, so it needs --val-split > 0 "
            "(e.g. --val-split 0.1)",
            n=c.patience,
        )


def _eval_every(c) -> str | None:
    if c.patience and c.eval_every != 1:
        return _(
            "--patience {n} counts epochs without validation improvement, so every epoch must be evaluated: "
            "drop --eval-every {every} (or give --eval-every 1)",
            n=c.patience,
            every=c.eval_every,
        )


def _augment(c) -> str | None:
    from cnnlab.data.augment import check_spec

    try:
        check_spec(c.augment, c.dataset)
    except CnnlabError as e:
        return str(e)


# (fields a check reads, the check): the check runs only when each of those fields passed its own rule
COMBINATIONS: list[tuple[tuple[str, ...], Callable]] = [
    (("dataset", "data_dir"), _dataset),
    (("pretrained", "weights", "model"), _pretrained),
    (("finetune", "pretrained", "weights"), _probe),
    (("channels",), _channels),
    (("val_split", "test_split", "dataset"), _splits),  # is_folder reads the dataset
    (("resume", "overwrite"), _resume_overwrite),
    (("sync_bn",), _sync_bn),
    (("warmup_epochs", "epochs"), _warmup),
    (("patience", "val_split", "dataset"), _patience),
    (("augment", "dataset"), _augment),
    (("patience", "eval_every"), _eval_every),
]


def validate(cfg) -> None:
    """Check and normalise cfg in place (1 -> 1.0 for float fields, a list of betas -> tuple); raise
    one CnnlabError (exit 2) listing every problem."""
    values = {name: getattr(cfg, name) for name in RULES if hasattr(cfg, name)}
    fixed, found = problems(RULES, values)
    for name, value in fixed.items():
        object.__setattr__(cfg, name, value)
    lines = list(found.values())
    for names, check in COMBINATIONS:
        if not any(n in found for n in names):
            problem = check(cfg)
            if problem:
                lines.append(problem)
    raise_problems(lines)


def check_train_size(cfg, n_train: int) -> None:
    """After --val-split and --limit-train: there must be something left to train on."""
    if n_train < 1:
        raise CnnlabError(
            _(
                "no training images left after --val-split {val:g} and --limit-train {limit}; lower --val-split",
                val=cfg.val_split,
                limit=cfg.limit_train,
            )
        )


def check_validation_set(cfg, n_val: int) -> None:
    """After the data is read: --patience needs validation images (--val-split, or a folder's val/)."""
    if cfg.patience and n_val < 1:
        raise CnnlabError(
            _(
                "--patience {n}: early stopping watches validation accuracy, but {dataset} has no val/ folder; "
                "add --val-split (e.g. --val-split 0.1)",
                n=cfg.patience,
                dataset=cfg.dataset,
            )
        )
