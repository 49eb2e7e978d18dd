"""predict and eval on real files: bold digits, deep images, per-file errors, --save-input names; eval
reads only the test split, uses the run's data folder and TTA, refuses other classes, keeps its numbers
when --plot cannot be written; export to an unwritable place; JSON numbers and one % format."""

import gzip
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import MNIST_META, untrained_checkpoint
from PIL import Image, ImageDraw

from cnnlab.prediction import mnist_style

UNWRITABLE = "/proc/cnnlab-test/out"  # /proc refuses new entries, also for root


def write_idx(folder: Path, prefix: str, x: np.ndarray, y: np.ndarray) -> None:
    """IDX files as the MNIST mirrors serve them (gzip), from uint8 images N x H x W and labels N."""
    folder.mkdir(parents=True, exist_ok=True)
    n, h, w = x.shape
    images = (0x803).to_bytes(4, "big") + b"".join(v.to_bytes(4, "big") for v in (n, h, w)) + x.tobytes()
    labels = (0x801).to_bytes(4, "big") + n.to_bytes(4, "big") + y.astype(np.uint8).tobytes()
    (folder / f"{prefix}-images-idx3-ubyte.gz").write_bytes(gzip.compress(images))
    (folder / f"{prefix}-labels-idx1-ubyte.gz").write_bytes(gzip.compress(labels))


def t10k_folder(folder: Path, n: int = 40) -> Path:
    """A t10k-only folder (no training files at all) of n bundled-sample digits."""
    from cnnlab.data import load_dataset

    d = load_dataset("mnist-sample")
    write_idx(folder, "t10k", d.test_x[:n, 0].numpy(), d.test_y[:n].numpy())
    return folder


def mnist_checkpoint(stem: Path, **config) -> Path:
    """An untrained checkpoint that says it was trained on full MNIST with `config`."""
    return untrained_checkpoint(stem, width=0.5, dataset="mnist", config=config)


# ---- predict ------------------------------------------------------------------------------------


def bold_digit(size=100) -> Image.Image:
    """A dark '1' on white paper so bold that ink covers more than half of the image."""
    img = Image.new("L", (size, size), 255)
    ImageDraw.Draw(img).rectangle([20, 4, 80, 95], fill=0)  # 61 x 92 of 100 x 100: 56% ink
    return img


def test_bold_digit_is_not_blank():
    x = mnist_style(bold_digit())
    assert x.shape == (1, 28, 28) and int(x.max()) == 255
    assert (x > 127).sum() > 100  # the ink survived, centred in the 20 x 20 box


def test_deep_images_scaled_by_bit_depth():
    base = np.full((60, 60), 255, dtype=np.uint8)
    base[10:50, 25:35] = 0  # dark stroke on white
    want = mnist_style(Image.fromarray(base))
    sixteen = Image.fromarray(base.astype(np.uint16) * 257)  # 16-bit, same picture
    assert sixteen.mode.startswith("I;16")
    floats = Image.fromarray(base.astype(np.float32) / 255.0, mode="F")  # float 0..1
    for img in (sixteen, floats):
        got = mnist_style(img)
        assert (got.int() - want.int()).abs().max() <= 2


def test_one_bad_file_does_not_stop_the_batch(cli, tmp_path):
    ckpt = untrained_checkpoint(tmp_path / "c")
    good, bad, blank = tmp_path / "a" / "7.png", tmp_path / "b" / "7.png", tmp_path / "blank.png"
    for p in (good, bad):
        p.parent.mkdir()
    bold_digit().save(good)
    bad.write_text("not a png")
    Image.new("L", (30, 30), 255).save(blank)
    proc = cli(
        "predict",
        str(ckpt),
        str(good),
        str(bad),
        str(blank),
        "--json",
        "--save-input",
        str(tmp_path / "in"),
        check=False,
    )
    assert proc.returncode == 2
    res = json.loads(proc.stdout)
    assert [("error" in r) for r in res] == [False, True, True]
    assert "not a readable image" in res[1]["error"] and "blank" in res[2]["error"]
    assert res[0]["label"] in MNIST_META["classes"] and len(res[0]["probabilities"]) == 10
    assert sorted(p.name for p in (tmp_path / "in").iterdir()) == ["7.png"]  # only the good one was made
    text = cli("predict", str(ckpt), str(good), str(good), "--save-input", str(tmp_path / "in2"))
    assert sorted(p.name for p in (tmp_path / "in2").iterdir()) == ["7-2.png", "7.png"]  # kept apart
    assert text.stdout.count("7.png: ") == 2


def test_save_input_that_is_a_file(cli, tmp_path):
    ckpt = untrained_checkpoint(tmp_path / "c")
    bold_digit().save(tmp_path / "x.png")
    (tmp_path / "f").write_text("")
    proc = cli(
        "predict", str(ckpt), str(tmp_path / "x.png"), "--save-input", str(tmp_path / "f"), check=False
    )
    assert proc.returncode == 2 and "is a file, not a folder" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


# ---- eval ---------------------------------------------------------------------------------------


def test_eval_needs_only_the_test_split_and_uses_the_runs_data_dir(cli, tmp_path):
    data = t10k_folder(tmp_path / "mnist-t10k")
    ckpt = mnist_checkpoint(tmp_path / "c", data_dir=str(data))
    env = {"CNNLAB_CACHE": str(tmp_path / "empty-cache"), "CNNLAB_DATA": str(tmp_path / "nothing")}
    res = json.loads(cli("eval", str(ckpt), "--json", env=env).stdout)  # no --data-dir: the run's own
    assert res["total"] == 40 and res["test_images"] == 40 and isinstance(res["correct"], int)
    assert res["accuracy"] == round(res["correct"] / 40, 6) and len(repr(res["accuracy"])) <= 8


def test_eval_uses_the_checkpoints_tta(cli, tmp_path):
    from cnnlab.checkpoint import load_checkpoint
    from cnnlab.data.test_split import load_test_split
    from cnnlab.evaluation import predict_logits

    data = t10k_folder(tmp_path / "t", n=200)
    ckpt = mnist_checkpoint(tmp_path / "c", tta=True)
    res = json.loads(cli("eval", str(ckpt), "--data-dir", str(data), "--json").stdout)
    model, meta = load_checkpoint(ckpt)
    d = load_test_split("mnist", str(data))
    with_tta = (
        predict_logits(model, d.test_x, meta["mean"], meta["std"], tta=True).argmax(1) == d.test_y
    ).sum()
    without = (predict_logits(model, d.test_x, meta["mean"], meta["std"]).argmax(1) == d.test_y).sum()
    assert with_tta != without  # the test can tell the two apart
    assert res["tta"] is True and res["correct"] == int(with_tta)
    off = json.loads(cli("eval", str(ckpt), "--data-dir", str(data), "--no-tta", "--json").stdout)
    assert off["tta"] is False and off["correct"] == int(without)


def test_eval_refuses_a_dataset_with_other_classes(cli, tmp_path):
    """Fashion-MNIST test files that really load (same shape): the class check itself must refuse."""
    data = t10k_folder(tmp_path / "fashion")
    ckpt = mnist_checkpoint(tmp_path / "c")
    proc = cli("eval", str(ckpt), "--dataset", "fashion-mnist", "--data-dir", str(data), check=False)
    assert proc.returncode == 2, proc.stderr
    assert "T-shirt/top" in proc.stderr and "would mean nothing" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_eval_prints_numbers_before_an_unwritable_plot(cli, tmp_path):
    data = t10k_folder(tmp_path / "t")
    ckpt = mnist_checkpoint(tmp_path / "c")
    proc = cli("eval", str(ckpt), "--data-dir", str(data), "--plot", UNWRITABLE + ".png", check=False)
    assert proc.returncode == 4, proc.stderr
    assert re.search(r"mnist test: accuracy \d+\.\d\d% \(\d+/40 images", proc.stdout)
    assert "cannot write" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_predict_logits_leaves_the_callers_model_alone():
    """The memory format is the caller's choice (load_checkpoint sets channels_last once): predict_logits
    never changes it, since the server calls it from several threads on one shared model."""
    from cnnlab.evaluation import predict_logits
    from cnnlab.models import get_model

    model = get_model("chapter-cnn", num_classes=10, in_channels=1, input_size=28, width=0.25).eval()
    weight = next(p for p in model.parameters() if p.dim() == 4 and p.shape[1] > 1)
    before = weight.stride()
    predict_logits(model, torch.zeros(2, 1, 28, 28, dtype=torch.uint8), (0.1,), (0.3,))
    weight = next(p for p in model.parameters() if p.dim() == 4 and p.shape[1] > 1)
    assert weight.stride() == before and not weight.is_contiguous(memory_format=torch.channels_last)


def test_export_to_an_unwritable_place(cli, tmp_path):
    ckpt = untrained_checkpoint(tmp_path / "c")
    proc = cli("export", str(ckpt), UNWRITABLE + ".onnx", check=False)
    assert proc.returncode == 4, proc.stderr
    assert "cannot write" in proc.stderr and "unexpected" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "dense, conv, text", [(4000, 40, "100x more"), (10, 40, "4.0x fewer"), (80, 40, "2.0x more")]
)
def test_explain_parameters_ratio_words(dense, conv, text):
    from cnnlab.inside.explain import times
    from cnnlab.inside.explain_text import Explanation

    assert times(Explanation("parameters"), dense, conv) == text
