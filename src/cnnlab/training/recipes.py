"""Named training recipes: `cnnlab train --recipe NAME` applies these TrainConfig values, then the recipe's
variant for the chosen dataset (VARIANTS: `--recipe best --dataset fashion-mnist` adds flips, which digits
never get), then any flag given on the command line (so `--recipe fast --seed 3 --epochs 2` works).

The tables are data, not code. Measured times and accuracies, and how to reproduce them, are in
BENCHMARKS.md and docs/speed.md (`python benchmarks/recipes.py`).

| recipe  | model          | what it is                                                                 |
|---------|----------------|----------------------------------------------------------------------------|
| chapter | chapter-cnn    | the chapter's experiment exactly, fp32: Adam lr 2e-4, batch 256, 10 epochs |
| fast    | fastnet        | least wall time to >= 99.0% on MNIST: tuomaso/train_mnist_fast's net and   |
|         |                | optimiser (Adam betas (0.7, 0.9), one-cycle), one epoch                    |
| best    | fastnet-bn     | >= 99.5% on MNIST in seconds: airbench-style BN net, translate             |
|         |                | augmentation, label smoothing, EMA of weights, test-time augmentation     |
|         |                | (Fashion-MNIST variant: + flips, more epochs)                              |
| long    | fastnet-bn x1.5| the most accuracy in minutes: the `best` recipe on a 1.5x wider net, 10    |
|         |                | epochs (MNIST >= 99.65% target); Fashion-MNIST variant: 20 epochs, flips   |

`precision` "auto" uses bf16 on hardware that computes it natively, for the recipes in BF16_VERIFIED.
"""

from cnnlab.errors import CnnlabError
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
    # tuomaso/train_mnist_fast, final notebook: Adam lr 1e-2 with betas (0.7, 0.9) (lower beta2 adapts the
    # step sizes faster in a run of a few hundred steps), one-cycle LR, batch 256, small net, ONE epoch
    # (BENCHMARKS.md: 99.12/99.08/99.20% for seeds 0/1/2, mean 99.13%; 1.5 epochs was no better).
    "fast": {
        "model": "fastnet",
        "width": 1.0,
        "epochs": 1,
        "batch_size": 256,
        "lr": 1e-2,
        "optimizer": "adam",
        "betas": (0.7, 0.9),
        "weight_decay": 0.0,
        "schedule": "onecycle",
        "warmup_epochs": 0.0,
        "label_smoothing": 0.0,
        "ema": 0.0,
        "augment": "none",
        "tta": False,
        "precision": "auto",  # bf16 where native: 99.10/99.13/99.07% (seeds 0/1/2, BENCHMARKS.md)
    },
    # airbench ideas on MNIST: BN without scale lets one-cycle run hot; translate=2 (random 2-px shifts,
    # never flips for digits) against over-fitting; label smoothing 0.1 (Szegedy et al. 2016); an EMA of the
    # weights for evaluation (Polyak averaging; airbench's lookahead-EMA); 1-px shift TTA at test time.
    # fp32, 4 epochs: 99.60/99.50/99.58% (seeds 0/1/2) in 82-93 s, 99.52% (mean) after epoch 3. 3 epochs in
    # bf16 (for a 30 s target) gave 99.46/99.50/99.47% in ~50 s on a quiet machine, and 99.51/99.45/99.48% at
    # width 0.75 in 36-40 s (BENCHMARKS.md): below 99.5%, so `best` keeps its 4 epochs: 99.57/99.51/99.51% in
    # bf16, 60 s.
    "best": {
        "model": "fastnet-bn",
        "width": 1.0,
        "epochs": 4,
        "batch_size": 256,
        "lr": 4e-3,
        "optimizer": "adam",
        "betas": (0.8, 0.95),
        "weight_decay": 0.0,
        "schedule": "onecycle",
        "warmup_epochs": 0.0,
        "label_smoothing": 0.1,
        "ema": 0.99,
        "augment": "translate=2",
        "tta": True,
        "precision": "auto",
    },
    # `best` on a 1.5x wider net (48-96-192 channels: 2.25x the multiply-adds) for 10 epochs, with a slower
    # EMA (0.995) for the longer run: "wider nets only where the time allows". Measured in bf16 on MNIST
    # (BENCHMARKS.md): 99.64/99.64% (seeds 1/2) in 260-267 s; width 1.0 for 12 epochs: 99.66/99.59/99.60% in
    # 166 s; width 1.5 for 12 epochs: 99.66% (seed 1) in 315 s, over the 5-minute target.
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
    # 4 epochs: what fits the one-minute target (91.57% in 64 s; 6 epochs gave 92.00% in 107 s)
    ("best", "fashion-mnist"): {"epochs": 4, "augment": "flip,translate=2"},
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
            raise CnnlabError(f"--recipe {FOLDER} is for folders of your own images, not {dataset}")
        return {"recipe": FOLDER}  # its values wait for the folder (training/start.py settle)
    if name not in RECIPES:
        raise unknown_error("recipe", name, list_recipes(), "--recipe")
    return {**RECIPES[name], **VARIANTS.get((name, dataset or ""), {}), "recipe": name}
