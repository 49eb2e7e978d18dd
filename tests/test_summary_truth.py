"""What a finished run reports: the accuracy of the checkpoint it names (with --val-split that need not
be the last epoch), the last epoch's separately, clean JSON numbers, one percentage format."""

import json
import re
from types import SimpleNamespace

import torch

from cnnlab.commands.train import done_line
from cnnlab.training.config import TrainConfig
from cnnlab.training.metrics import summarize


def row(epoch, test, val):
    return {
        "epoch": epoch,
        "test_accuracy": test,
        "val_accuracy": val,
        "images_per_second": 100.0,
        "seconds": 1.0,
    }


def test_summary_names_the_checkpoints_own_accuracy(tmp_path):
    history = [row(1, 0.9, 0.91), row(2, 0.95, 0.97), row(3, 0.96, 0.96)]  # best on validation: epoch 2
    (tmp_path / "best.json").write_text(json.dumps({"epoch": 2, "metrics": history[1]}))
    data = SimpleNamespace(name="mnist", test_y=torch.zeros(10000))
    s = summarize(TrainConfig(val_split=0.1), data, history, 12.345678, tmp_path)
    assert s["checkpoint"].endswith("best.safetensors") and s["checkpoint_epoch"] == 2
    assert s["test_accuracy"] == 0.95 and s["val_accuracy"] == 0.97
    assert s["last_epoch"] == 3 and s["last_test_accuracy"] == 0.96
    assert s["train_seconds"] == 12.35
    line = done_line(s)
    assert "(epoch 2): test acc 95.00%, val acc 97.00%" in line and "last epoch 3: test acc 96.00%" in line


def test_train_output_formats(cli, tmp_path):
    proc = cli(
        "train", "--dataset", "mnist-sample", "--limit-train", "256", "--epochs", "1", "--val-split", "0.1",
        "--out", str(tmp_path / "r"),
    )  # fmt: skip
    assert re.search(r"test acc \d+\.\d\d%, val acc \d+\.\d\d%", proc.stdout), proc.stdout
    rows = (tmp_path / "r" / "metrics.csv").read_text().splitlines()[1]
    acc = rows.split(",")[3]
    assert len(acc) <= 8, (
        acc
    )  # 2000 test images: a ratio of counts, no float32 tail (0.1515, not 0.15150000154)
