"""`--eval-every N`: which epochs are evaluated (pure), the validation rule, and a real run whose first epoch
is not evaluated (blank metrics, `last` saved) while the last one is (the summary and `best` name it)."""

import csv
import json

import pytest

from cnnlab.errors import CnnlabError
from cnnlab.training.config import TrainConfig
from cnnlab.training.schedule import evaluation_due


@pytest.mark.parametrize(
    "every, epochs, due",
    [
        (1, 4, [1, 2, 3, 4]),
        (2, 5, [2, 4, 5]),  # the last epoch always
        (0, 3, [3]),  # only the last
        (3, 3, [3]),
    ],
)
def test_evaluation_due(every, epochs, due):
    assert [e for e in range(1, epochs + 1) if evaluation_due(every, e, e == epochs)] == due


def test_patience_needs_every_epoch_evaluated():
    with pytest.raises(CnnlabError, match="--patience 2 counts epochs without validation improvement"):
        TrainConfig(patience=2, val_split=0.1, eval_every=0)
    TrainConfig(patience=2, val_split=0.1, eval_every=1)  # fine
    with pytest.raises(CnnlabError, match="--eval-every -1: must be a whole number >= 0"):
        TrainConfig(eval_every=-1)


def test_only_the_last_epoch_is_evaluated(cli, tmp_path):
    out = tmp_path / "r"
    proc = cli(
        "train", "--model", "s2dnet", "--dataset", "mnist-sample", "--limit-train", "512", "--epochs", "2",
        "--eval-every", "0", "--val-split", "0.25", "--threads", "1", "--out", str(out), "--json",
    )  # fmt: skip
    rows = list(csv.DictReader((out / "metrics.csv").open()))
    assert [r["epoch"] for r in rows] == ["1", "2"]
    assert rows[0]["test_accuracy"] == rows[0]["val_accuracy"] == "" and rows[0]["train_loss"]
    assert float(rows[1]["test_accuracy"]) > 0 and rows[1]["val_accuracy"]
    assert "not evaluated: --eval-every 0" in proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["checkpoint_epoch"] == summary["last_epoch"] == 2
    assert summary["test_accuracy"] == float(rows[1]["test_accuracy"])
    assert json.loads((out / "last.json").read_text())["epoch"] == 2
