"""The chapter's experiment through the real CLI, on a tiny slice of the bundled sample."""

import csv
import json

import pytest
from PIL import Image, ImageDraw


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One tiny training run shared by the tests below (~10 s on 2 cores)."""
    from conftest import run_cli

    out = tmp_path_factory.mktemp("run") / "r"
    proc = run_cli(
        "train",
        "--dataset",
        "mnist-sample",
        "--limit-train",
        "3000",
        "--epochs",
        "3",
        "--lr",
        "2e-3",
        "--batch-size",
        "128",
        "--out",
        str(out),
        "--json",
    )
    return out, json.loads(proc.stdout), proc


def test_train_json_and_files(run):
    out, summary, proc = run
    assert set(summary) >= {
        "test_accuracy",
        "test_images",
        "epochs",
        "train_seconds",
        "images_per_second",
        "checkpoint",
    }
    assert summary["test_images"] == 2000 and summary["epochs"] == 3
    assert summary["test_accuracy"] > 0.85  # chance is 0.10
    for name in (
        "config.json",
        "metrics.csv",
        "last.safetensors",
        "last.json",
        "best.safetensors",
        "best.json",
    ):
        assert (out / name).is_file(), name
    meta = json.loads((out / "best.json").read_text())
    assert meta["model"] == "chapter-cnn" and meta["classes"][3] == "3" and meta["mean"] == [0.1307]
    assert "epoch" in proc.stderr  # human text went to stderr under --json


def test_loss_falls(run):
    out, _, _ = run
    rows = list(csv.DictReader(open(out / "metrics.csv")))
    losses = [float(r["train_loss"]) for r in rows]
    assert len(rows) == 3 and losses[-1] < losses[0] * 0.6


def test_eval_reproduces_train_accuracy(run, cli):
    out, summary, _ = run
    result = json.loads(cli("eval", str(out), "--json").stdout)
    assert result["accuracy"] == summary["test_accuracy"]  # the checkpoint it names, exactly
    assert result["test_images"] == 2000 and len(result["confusion"]) == 10
    assert sum(map(sum, result["confusion"])) == 2000


def test_eval_text(run, cli):
    out, _, _ = run
    text = cli("eval", str(out / "last.safetensors")).stdout
    assert "accuracy" in text and "true \\ pred" in text


def test_predict_drawn_digit(run, cli, tmp_path):
    out, _, _ = run
    img = Image.new("RGB", (200, 300), "white")  # dark-on-light, not square, colour: all must be handled
    ImageDraw.Draw(img).line([(100, 40), (100, 260)], fill="navy", width=22)
    img.save(tmp_path / "one.png")
    res = json.loads(cli("predict", str(out), str(tmp_path / "one.png"), "--json").stdout)
    assert res[0]["label"] == "1" and res[0]["prediction"] == 1
    assert sum(res[0]["probabilities"]) == pytest.approx(1, abs=1e-4) and len(res[0]["probabilities"]) == 10


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "--model", "alexnet"], "unknown model 'alexnet'; choose from: chapter-cnn"),
        (["train", "--dataset", "imagenet"], "unknown dataset 'imagenet'"),
        (["eval", "/nonexistent/ckpt.safetensors"], "does not exist"),
        (["predict", "/nonexistent", "x.png"], "does not exist"),
    ],
)
def test_bad_input_one_line(cli, tmp_path, args, message):
    proc = cli(*args, check=False, cwd=tmp_path)
    assert proc.returncode == 2
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_not_an_image(run, cli, tmp_path):
    out, _, _ = run
    (tmp_path / "x.png").write_text("not a png")
    proc = cli("predict", str(out), str(tmp_path / "x.png"), check=False)
    assert proc.returncode == 2 and "not a readable image" in proc.stderr


def test_corrupt_checkpoint(run, cli, tmp_path):
    out, _, _ = run
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes((out / "last.safetensors").read_bytes()[:1000])
    proc = cli("eval", str(bad), check=False)
    assert proc.returncode == 7 and "Traceback" not in proc.stderr and str(bad) in proc.stderr


def test_checkpoint_dataset_mismatch(run, cli, tmp_path):
    """The data really loads (a t10k-only Fashion-MNIST-shaped folder), so only the mismatch check refuses."""
    from test_predict_eval import t10k_folder

    out, _, _ = run
    data = t10k_folder(tmp_path / "fashion")
    proc = cli("eval", str(out), "--dataset", "fashion-mnist", "--data-dir", str(data), check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "trained on mnist-sample" in proc.stderr and "T-shirt/top" in proc.stderr


def test_refuses_existing_out(run, cli):
    out, _, _ = run
    proc = cli("train", "--dataset", "mnist-sample", "--out", str(out), check=False)
    assert proc.returncode == 6 and "already holds a run" in proc.stderr  # exit codes: docs/scale.md


def test_unwritable_out(cli, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    proc = cli("train", "--dataset", "mnist-sample", "--out", str(blocker / "sub"), check=False)
    assert proc.returncode == 4 and "not writable" in proc.stderr


def test_partial_last_batch(cli, tmp_path):
    """1000 images in batches of 256: the last batch has 232; the chapter's view(256, -1) broke here."""
    proc = cli(
        "train",
        "--dataset",
        "mnist-sample",
        "--limit-train",
        "1000",
        "--epochs",
        "1",
        "--out",
        str(tmp_path / "p"),
        "--json",
    )
    assert json.loads(proc.stdout)["test_images"] == 2000


def test_models_lists_registry(cli):
    assert "chapter-cnn" in cli("models").stdout


def test_tensorboard_scalars(cli, tmp_path):
    pytest.importorskip("tensorboard", reason="tensorboard not installed (it is in the dev extra)")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "tb"
    cli(
        "train",
        "--dataset",
        "mnist-sample",
        "--limit-train",
        "512",
        "--epochs",
        "2",
        "--tensorboard",
        "--out",
        str(out),
    )
    acc = EventAccumulator(str(out / "tensorboard"))
    acc.Reload()
    points = acc.Scalars("test_accuracy")
    assert [p.step for p in points] == [1, 2] and all(0 <= p.value <= 1 for p in points)
