"""Recipes: the table is valid, each recipe trains end to end through the real CLI, flags override it;
--time-budget ends on time."""

import json
from dataclasses import fields
from pathlib import Path

import pytest

from cnnlab.data.augment import check_spec
from cnnlab.errors import CnnlabError
from cnnlab.models import list_models
from cnnlab.training.config import TrainConfig
from cnnlab.training.optim import OPTIMIZERS, SCHEDULES
from cnnlab.training.recipes import RECIPES, recipe_values

FIELDS = {f.name for f in fields(TrainConfig)}


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_recipe_values_are_valid_config(name):
    values = recipe_values(name)
    assert set(values) <= FIELDS and values["recipe"] == name
    cfg = TrainConfig.from_dict({**TrainConfig().to_dict(), **values})
    assert cfg.model in list_models()
    assert cfg.optimizer in OPTIMIZERS and cfg.schedule in SCHEDULES
    check_spec(cfg.augment, "mnist")  # every recipe is for digits: no flips


def test_chapter_recipe_is_the_chapter():
    v = recipe_values("chapter")
    assert (v["model"], v["optimizer"], v["lr"], v["batch_size"], v["epochs"]) == (
        "chapter-cnn",
        "adam",
        2e-4,
        256,
        10,
    )
    assert v["schedule"] == "constant" and v["augment"] == "none" and not v["tta"]


def test_unknown_recipe_lists_names():
    with pytest.raises(CnnlabError, match="choose from: best, chapter, fast"):
        recipe_values("fastest")


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_recipe_trains_end_to_end(cli, tmp_path, name):
    out = tmp_path / name
    proc = cli(
        "train", "--recipe", name, "--dataset", "mnist-sample", "--limit-train", "512",
        "--epochs", "1", "--out", str(out), "--json",
    )  # fmt: skip
    summary = json.loads(proc.stdout)
    assert summary["epochs"] == 1 and 0 <= summary["test_accuracy"] <= 1
    cfg = json.loads((out / "config.json").read_text())
    want = recipe_values(name)
    assert cfg["recipe"] == name and cfg["model"] == want["model"] and cfg["lr"] == want["lr"]
    assert cfg["epochs"] == 1  # the explicit flag overrides the recipe


def test_flags_override_recipe(cli, tmp_path):
    out = tmp_path / "r"
    cli(
        "train", "--recipe", "chapter", "--lr", "1e-3", "--dataset", "mnist-sample", "--max-steps", "2",
        "--epochs", "1", "--out", str(out), "--json",
    )  # fmt: skip
    cfg = json.loads(Path(out / "config.json").read_text())
    assert cfg["lr"] == 1e-3 and cfg["model"] == "chapter-cnn" and cfg["recipe"] == "chapter"


def test_unknown_recipe_exits_2_with_one_line(cli, tmp_path):
    proc = cli("train", "--recipe", "nope", "--out", str(tmp_path / "r"), check=False)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "unknown recipe 'nope'" in lines[0] and "fast" in lines[0]


def test_time_budget_ends_on_time(cli, tmp_path):
    budget = 6.0
    out = tmp_path / "b"
    proc = cli(
        "train", "--model", "fastnet", "--dataset", "mnist-sample", "--batch-size", "64", "--lr", "3e-3",
        "--schedule", "onecycle", "--epochs", "1000", "--time-budget", str(budget), "--out", str(out), "--json",
    )  # fmt: skip
    summary = json.loads(proc.stdout)
    # ends on time (some slack for a machine shared with other jobs) but uses most of the budget, and the
    # budget, not --epochs, decided the length
    assert 0.5 * budget <= summary["train_seconds"] <= 1.25 * budget
    assert 1 <= summary["epochs"] < 1000


def test_variants_are_valid_and_chosen_by_dataset():
    from cnnlab.data import DATASETS
    from cnnlab.training.recipes import BF16_VERIFIED, VARIANTS

    assert BF16_VERIFIED <= set(RECIPES) and "chapter" not in BF16_VERIFIED
    for (name, dataset), extra in VARIANTS.items():
        assert name in RECIPES and dataset in DATASETS and set(extra) <= FIELDS
        values = recipe_values(name, dataset)
        check_spec(values["augment"], dataset)
        assert values == {**recipe_values(name), **extra}
    fashion, digits = recipe_values("best", "fashion-mnist"), recipe_values("best", "mnist")
    assert "flip" in fashion["augment"] and "flip" not in digits["augment"]
    assert recipe_values("best", "kmnist") == digits  # no variant: the base recipe


@pytest.mark.parametrize(
    "argv, augment",
    [
        (["--recipe", "best", "--dataset", "fashion-mnist"], "flip,translate=2"),
        (["--recipe", "best"], "translate=2"),
        (["--recipe", "best", "--dataset", "fashion-mnist", "--augment", "none"], "none"),  # flag wins
    ],
)
def test_cli_picks_the_dataset_variant(argv, augment):
    from cnnlab.cli import build_parser
    from cnnlab.training.settings import config_from_args

    cfg = config_from_args(build_parser("train").parse_args(["train", *argv]))
    assert cfg.augment == augment and cfg.recipe == "best"
