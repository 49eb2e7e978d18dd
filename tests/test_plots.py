"""Pictures: each PNG is decoded and its size and panel count checked; feature maps via forward hooks."""

import csv

import pytest
import torch
import torch.nn as nn
from conftest import untrained_checkpoint
from PIL import Image

from cnnlab.data import load_dataset, to_float
from cnnlab.errors import CnnlabError
from cnnlab.inside import plots
from cnnlab.inside.activations import conv_feature_maps
from cnnlab.models import get_model

HEADER = "epoch,train_loss,test_loss,test_accuracy,val_loss,val_accuracy,images_per_second,seconds"


def png_size(path) -> tuple[int, int]:
    with Image.open(path) as img:
        assert img.format == "PNG"
        img.load()  # decodes every pixel: a truncated file fails here
        return img.size


@pytest.fixture(scope="module")
def sample():
    return load_dataset("mnist-sample")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """An untrained chapter-cnn saved like `cnnlab train` does: enough to draw every picture."""
    folder = tmp_path_factory.mktemp("run")
    untrained_checkpoint(folder / "best")
    return folder


# ---------------------------------------------------------------- feature maps (activations.py)


def test_conv_feature_maps_one_map_per_filter():
    model = get_model("chapter-cnn").train()
    maps = conv_feature_maps(model, torch.randn(1, 28, 28))
    assert [(name, tuple(m.shape)) for name, m in maps] == [
        ("layer.0", (16, 24, 24)),
        ("layer.2", (32, 20, 20)),
        ("layer.5", (64, 6, 6)),
    ]
    assert (maps[0][1] < 0).any()  # taken before the ReLU
    assert model.training and not any(m._forward_hooks for m in model.modules())  # model left as it was
    batch = conv_feature_maps(model, torch.randn(3, 1, 28, 28))
    assert batch[0][1].shape == (3, 16, 24, 24)


def test_conv_feature_maps_survive_inplace_relu():
    torch.manual_seed(1)
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(inplace=True), nn.Conv2d(2, 2, 1))
    x = torch.randn(1, 8, 8)
    (_, first), _ = conv_feature_maps(net, x)
    with torch.no_grad():
        assert torch.equal(first, net[0](x[None])[0])  # negatives kept, not overwritten by the ReLU
    assert (first < 0).any()


# ---------------------------------------------------------------- library functions


@pytest.mark.parametrize("with_val", [False, True])
def test_curves(tmp_path, with_val):
    rows = [
        [e, 1 / e, 1.1 / e, 0.9 + e / 100, *((1.2 / e, 0.91 + e / 100) if with_val else ("", "")), 900, 3]
        for e in (1, 2, 3)
    ]
    metrics = tmp_path / "metrics.csv"
    with open(metrics, "w", newline="") as f:
        csv.writer(f).writerows([HEADER.split(","), *rows])
    picture = plots.save(plots.curves_figure(metrics), tmp_path / "curves.png")
    assert picture.panels == 2 and png_size(picture.path) == (1000, 400)
    assert plots.curves_figure(tmp_path).panels == 2  # a run folder works too


def test_curves_bad_input(tmp_path):
    with pytest.raises(CnnlabError, match="does not exist"):
        plots.curves_figure(tmp_path / "nope.csv")
    (tmp_path / "metrics.csv").write_text(HEADER + "\n")
    with pytest.raises(CnnlabError, match="no epochs"):
        plots.curves_figure(tmp_path)


def test_confusion(tmp_path):
    conf = (torch.eye(10, dtype=torch.long) * 90 + torch.randint(0, 5, (10, 10))).tolist()
    picture = plots.save(plots.confusion_figure(conf, [str(i) for i in range(10)]), tmp_path / "c.png")
    width, height = png_size(picture.path)
    assert picture.panels == 2 and (width, height) == (1050, 600)
    with pytest.raises(CnnlabError, match="expected 3x3"):
        plots.confusion_figure(conf, ["a", "b", "c"])


def test_top_losses_picks_the_most_confident_mistakes(tmp_path, sample):
    labels = torch.tensor([0, 1, 0, 1])
    probs = torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.4, 0.6], [0.99, 0.01]])  # 2 and 3 are wrong
    assert plots.top_losses(probs, labels, 5).tolist() == [3, 2]
    x, y = sample.test_x[:200], sample.test_y[:200]
    probs = torch.softmax(torch.randn(200, 10), 1)
    picture = plots.save(plots.top_losses_figure(x, y, probs, sample.classes, count=12), tmp_path / "t.png")
    assert picture.panels == 12 and png_size(picture.path)[0] == 8 * 145


def test_samples_and_filters(tmp_path, sample):
    picture = plots.save(
        plots.samples_figure(sample.train_x, sample.train_y, sample.classes, count=20), tmp_path / "s.png"
    )
    assert picture.panels == 20 and png_size(picture.path) == (880, 415)
    filters = plots.save(plots.filters_figure(get_model("chapter-cnn").layer[0].weight), tmp_path / "f.png")
    assert filters.panels == 16 and png_size(filters.path) == (920, 290)
    rgb = plots.save(
        plots.filters_figure(torch.randn(8, 3, 3, 3)), tmp_path / "rgb.png"
    )  # colour filters, e.g. CIFAR-10
    assert rgb.panels == 8 and png_size(rgb.path)[0] == 920


def test_feature_maps_of_chapter_cnn_have_16_32_64_panels(tmp_path, sample):
    image = sample.test_x[0]
    maps = conv_feature_maps(get_model("chapter-cnn"), to_float(image[None], sample.mean, sample.std)[0])
    picture = plots.save(plots.feature_maps_figure(maps, image), tmp_path / "fm.png")
    assert picture.panels == 16 + 32 + 64
    width, height = png_size(picture.path)
    assert (width, height) == (16 * 70, (2 + 1 + 2 + 4) * 70 + 3 * 60)  # input, then rows of 16 maps
    assert plots.feature_maps_figure(maps, max_channels=8).panels == 3 * 8


# ---------------------------------------------------------------- the `cnnlab plot` command


def test_plot_cli_on_a_checkpoint(cli, checkpoint, tmp_path):
    out = tmp_path / "maps.png"
    proc = cli("plot", "feature-maps", str(checkpoint), "--index", "3", "--out", str(out))
    assert proc.stdout.strip() == str(out) and png_size(out)[0] == 16 * 70
    proc = cli("plot", "confusion", str(checkpoint / "best.safetensors"))
    assert proc.stdout.strip() == str(checkpoint / "confusion.png")  # default: next to the checkpoint
    assert png_size(checkpoint / "confusion.png") == (1050, 600)


@pytest.mark.parametrize(
    "args, message",
    [
        (["feature-maps", "{ckpt}", "--layer", "layer.9"], "unknown layer 'layer.9'"),
        (["feature-maps", "{ckpt}", "--index", "5000"], "outside the test set"),
        (["filters", "{ckpt}/missing.safetensors"], "does not exist"),
        (["curves", "{ckpt}"], "metrics.csv does not exist"),
        (["samples", "no-such-data"], "unknown dataset"),
    ],
)
def test_plot_cli_bad_input_gives_one_line(cli, checkpoint, args, message):
    proc = cli("plot", *(a.format(ckpt=checkpoint) for a in args), check=False)
    # 2 for bad input; a missing checkpoint has its own code (errors.EXIT_BAD_CHECKPOINT)
    assert proc.returncode not in (0, 1) and "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("cnnlab: error:") and message in lines[0], proc.stderr
