"""Settings for a folder of your own images when none are given: chosen for the folder's size and its kind
of image once it is read, and said in the log (`--recipe chapter` keeps the chapter's experiment).

The chapter's settings (Adam at 2e-4, 10 epochs of batch 256, no augmentation) are made for MNIST's 60,000
images; a folder of 1,500 gets 47 optimiser steps from them and ends near 80% (BENCHMARKS.md). What works
on small data is what the `best` recipe does on MNIST -- a BatchNorm net, one-cycle learning rate,
augmentation, label smoothing, an EMA of the weights -- with batches small enough and epochs many enough
for a few hundred steps at least. The user's flags still win over every value here, as over any recipe.
"""

import math

# the values that do not depend on the folder (scratch training; airbench-style, as `best`)
BASE = {
    "model": "fastnet-bn",
    "width": 1.0,
    "optimizer": "adam",
    "betas": (0.8, 0.95),
    "weight_decay": 0.0,
    "schedule": "onecycle",
    "warmup_epochs": 0.0,
    "label_smoothing": 0.1,
    "tta": False,
    "precision": "auto",
}
EMA, EMA_MIN_STEPS = 0.99, 1_000  # an EMA of the weights, in runs long enough for it to forget the start
# fine-tuning trained weights (--weights, --pretrained): their model, fastai's fine_tune rates; no label
# smoothing (fastai's default loss): a source trained without it starts with a large smoothed loss
TRANSFER = {
    "optimizer": "adam",
    "betas": (0.9, 0.99),
    "weight_decay": 0.0,
    "label_smoothing": 0.0,
    "ema": 0.0,
    "tta": False,
    "precision": "auto",
}
IMAGE_PASSES = 40_000  # aim for about this many training images seen (epochs x images), within EPOCHS
EPOCHS = (8, 60)  # fewest and most epochs chosen
TRANSFER_EPOCHS = (4, 20)


def batch_for(n_train: int) -> int:
    """Small folders get small batches, so that even a few hundred images make enough steps."""
    return 32 if n_train < 1_000 else 64 if n_train < 4_000 else 128 if n_train < 20_000 else 256


def folder_values(n_train: int, preprocess: str, orientation_sensitive: bool, transfer: bool) -> dict:
    """TrainConfig values for a folder run from its training-set size and how its images are read."""
    batch = batch_for(n_train)
    lo, hi = TRANSFER_EPOCHS if transfer else EPOCHS
    epochs = min(hi, max(lo, math.ceil(IMAGE_PASSES / max(n_train, 1))))
    if preprocess == "digit":
        augment = "translate=2"  # handwriting: small shifts; never flips (a mirrored 7 is no 7)
    elif orientation_sensitive:
        augment = "resized-crop=0.35"
    else:
        augment = "resized-crop=0.35,flip"  # photos: Inception-style crops and mirror images
    values = {**(TRANSFER if transfer else BASE), "epochs": epochs, "batch_size": batch, "augment": augment}
    # Adam's one-cycle peak: 4e-3 at batch 256 (`best`), scaled with the square root of the batch
    values["lr"] = round((1e-3 if transfer else 4e-3) * math.sqrt(batch / 256), 6)
    return values


def ema_for(steps: int, transfer: bool) -> float:
    """The EMA decay for a run of `steps` optimiser steps: 0.99 averages about the last 100 steps, which is
    only the trained weights when the run is ten times longer; shorter runs get none (an EMA over 40 steps
    would still be mostly the random start)."""
    return EMA if steps >= EMA_MIN_STEPS and not transfer else 0.0


def describe(values: dict, n_train: int, digits: bool) -> str:
    """One log line: what was chosen and why (`digits`: the folder is read as handwriting, else photos)."""
    from cnnlab.i18n import _

    return _(
        "settings for a folder of {n} training images ({kind}), as no recipe was given: {model}, "
        "{epochs} epochs of batch {batch}, {optimizer} lr {lr} {schedule}, augment {augment}, label "
        "smoothing {smoothing}{ema} (flags you give override these; --recipe chapter for the chapter's "
        "settings)",
        n=f"{n_train:,}",
        kind=_("handwriting") if digits else _("photos"),
        model=values.get("model") or _("the weights' model"),
        epochs=values["epochs"],
        batch=values["batch_size"],
        optimizer=values["optimizer"],
        lr=f"{values['lr']:g}",
        schedule=values.get("schedule", "fine-tune"),
        augment=values["augment"],
        smoothing=f"{values['label_smoothing']:g}",
        ema=", EMA " + format(values["ema"], "g") if values.get("ema") else "",
    )
