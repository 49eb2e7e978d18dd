"""Named training recipes: `cnnlab train --recipe NAME` applies these TrainConfig values, then the recipe's
variant for the chosen dataset (VARIANTS: `--recipe best --dataset fashion-mnist` adds flips, which digits
never get), then any flag given on the command line (so `--recipe fast --seed 3 --epochs 2` works).

The tables are data, not code. Measured times and accuracies, and how to reproduce them, are in
BENCHMARKS.md and docs/speed.md (`python benchmarks/recipes.py`).

| recipe  | model          | what it is                                                                 |
|---------|----------------|----------------------------------------------------------------------------|
| chapter | chapter-cnn    | the chapter's experiment exactly, fp32: Adam lr 2e-4, batch 256, 10 epochs |
| fast    | s2dnet         | least wall time to >= 99.0% on MNIST: a space-to-depth BN net with         |
|         |                | tuomaso/train_mnist_fast's optimiser (Adam betas (0.7, 0.9), one-cycle),   |
|         |                | one epoch                                                                  |
| best    | s2dnet x2      | >= 99.5% on MNIST in seconds: airbench-style BN net, translate             |
|         |                | augmentation, label smoothing, EMA of weights, test-time augmentation     |
|         |                | (Fashion-MNIST variant: fastnet-bn, 4 epochs, + flips)                     |
| long    | fastnet-bn x1.5| the most accuracy in minutes: `best`'s settings on a 1.5x wider fastnet-bn, |
|         |                | epochs (MNIST >= 99.65% target); Fashion-MNIST variant: 20 epochs, flips   |

`precision` "auto" uses bf16 on hardware that computes it natively, for the recipes in BF16_VERIFIED.
"""

from cnnlab.errors import CnnlabError
from cnnlab.i18n import _
from cnnlab.options import unknown_error

RECIPES: dict[str, dict] = {
    # The chapter's settings, every field spelt out so the recipe does not depend on TrainConfig defaults.
    "chapter": {
        "model": "chapter-cnn",
        "width": 1.0,
        "epochs": 10,
        "batch_size": 256,
        "lr": 2e-4,
        "optimizer": "adam",
        "betas": (0.9, 0.999),
        "weight_decay": 0.0,
        "schedule": "constant",
        "warmup_epochs": 0.0,
        "label_smoothing": 0.0,
        "ema": 0.0,
        "augment": "none",
        "tta": False,
        "precision": "fp32",  # identical maths to the chapter's script, whatever the hardware
    },
    # tuomaso/train_mnist_fast's optimiser (Adam with betas (0.7, 0.9): the lower beta2 adapts the step sizes
    # within a run of a few hundred steps; one-cycle; batch 256; ONE epoch) on s2dnet, a quarter of fastnet's
    # multiply-adds (space-to-depth stem, BN). BN takes twice fastnet's learning rate, and label smoothing 0.1
    # adds a tenth of a point: 99.10/99.14/99.24% (seeds 0/1/2) in 4.7-5.4 CPU-s of one-thread training on
    # a 2-core Zen 3 in fp32, against fastnet's 99.05/99.13% in 11.5-12.3 CPU-s (BENCHMARKS.md, round 4).
    "fast": {
        "model": "s2dnet",
        "width": 1.0,
        "epochs": 1,
        "batch_size": 256,
        "lr": 2e-2,
        "optimizer": "adam",
        "betas": (0.7, 0.9),
        "weight_decay": 0.0,
        "schedule": "onecycle",
        "warmup_epochs": 0.0,
        "label_smoothing": 0.1,
        "ema": 0.0,
        "augment": "none",
        "tta": False,
        "precision": "auto",  # bf16 where native (BF16_VERIFIED)
    },
    # airbench ideas on MNIST: BN without scale lets one-cycle run hot; translate=2 (random 2-px shifts,
    # never flips for digits) against over-fitting; label smoothing 0.1 (Szegedy et al. 2016); an EMA of the
    # weights for evaluation (Polyak averaging; airbench's lookahead-EMA); 1-px shift TTA at test time; one
    # evaluation, after the last epoch (the record is judged on it). On s2dnet at width 2 (1.1 M MACs, a
    # seventh of fastnet-bn's 7.5 M), 5 epochs: 99.55/99.50/99.55% (seeds 0/1/2) in 52-56 CPU-s of one-thread
    # training on a 2-core Zen 3 in fp32, where fastnet-bn's 4 epochs take ~190 CPU-s; 4 epochs gave
    # 99.56/99.51/99.49%, and lr 4e-3 (fastnet-bn's) 99.51/99.45/99.48% (BENCHMARKS.md, round 4).
    "best": {
        "model": "s2dnet",
        "width": 2.0,
        "epochs": 5,
        "batch_size": 256,
        "lr": 1e-2,
        "optimizer": "adam",
        "betas": (0.8, 0.95),
        "weight_decay": 0.0,
        "schedule": "onecycle",
        "warmup_epochs": 0.0,
        "label_smoothing": 0.1,
        "ema": 0.99,
        "augment": "translate=2",
        "tta": True,
        "eval_every": 0,
        "precision": "auto",
    },
    # `best`'s settings as they were for fastnet-bn (lr 4e-3) on a 1.5x wider fastnet-bn (48-96-192 channels:
    # 2.25x the multiply-adds) for 10 epochs, with a slower EMA (0.995) for the longer run: "wider nets
    # only where the time allows". Measured in bf16 on MNIST (BENCHMARKS.md): 99.64/99.64% (seeds 1/2) in
    # 260-267 s; width 1.0 for 12 epochs: 99.66/99.59/99.60% in 166 s; width 1.5 for 12 epochs: 99.66%
    # (seed 1) in 315 s, over the 5-minute target.
    "long": {
        "model": "fastnet-bn",
        "width": 1.5,
        "epochs": 10,
        "batch_size": 256,
        "lr": 4e-3,
        "optimizer": "adam",
        "betas": (0.8, 0.95),
        "weight_decay": 0.0,
        "schedule": "onecycle",
        "warmup_epochs": 0.0,
        "label_smoothing": 0.1,
        "ema": 0.995,
        "augment": "translate=2",
        "tta": True,
        "precision": "auto",
    },
}


# Recipes whose accuracy was measured in bf16 (3 seeds, BENCHMARKS.md): `--precision auto` may use bf16 for
# them on hardware that computes it natively (cnnlab.training.precision). The chapter is not among them.
BF16_VERIFIED = frozenset({"fast", "best", "long"})

# Per-dataset variants: `--recipe best --dataset fashion-mnist` applies RECIPES["best"], then these values.
# Fashion-MNIST's classes are mirror-symmetric (a shirt flipped is a shirt), so its variants add flips; the
# texture-rich images also over-fit later than digits, so they train longer.
VARIANTS: dict[tuple[str, str], dict] = {
    # fastnet-bn (round 3's `best`) for 4 epochs: what fits the one-minute target (91.57/91.42/91.27% in 64 s
    # with an evaluation after every epoch; now one, at the end; 6 epochs gave 92.00% in 107 s). s2dnet x2
    # and two small residual nets (s2d stem, 3 stages) were no better at the same CPU time (BENCHMARKS.md,
    # round 4): Fashion-MNIST needs more capacity than a minute of 2 cores gives.
    ("best", "fashion-mnist"): {
        "model": "fastnet-bn",
        "width": 1.0,
        "epochs": 4,
        "lr": 4e-3,
        "augment": "flip,translate=2",
    },
    # 20 epochs: 93.43% in 517 s in bf16 (seed 0); the curve flattens near 93.4% (BENCHMARKS.md)
    ("long", "fashion-mnist"): {"epochs": 20, "augment": "flip,translate=2"},
}


# `folder`: settings for a folder of your own images, chosen once the folder is read (its size, its kind of
# image): training/folder_recipe.py. The default for folders when no recipe is named.
FOLDER = "folder"


def list_recipes() -> list[str]:
    return sorted([*RECIPES, FOLDER])


def recipe_values(name: str, dataset: str | None = None) -> dict:
    """The TrainConfig values of recipe `name` (plus `recipe=name`), with its variant for `dataset` if it
    has one; CnnlabError for an unknown name."""
    if name == FOLDER:
        from cnnlab.data import DATASETS

        if dataset in DATASETS:
            raise CnnlabError(
                _(
                    "--recipe {name} is for folders of your own images, not {dataset}",
                    name=FOLDER,
                    dataset=dataset,
                )
            )
        return {"recipe": FOLDER}  # its values wait for the folder (training/start.py settle)
    if name not in RECIPES:
        raise unknown_error("recipe", name, list_recipes(), "--recipe")
    return {**RECIPES[name], **VARIANTS.get((name, dataset or ""), {}), "recipe": name}
