"""The pictures of a run, a checkpoint or a dataset as matplotlib Figures: each function computes what its
picture needs (predictions, confusion, feature maps) and hands it to a drawing function of
`cnnlab.inside.plots`. `cnnlab plot KIND` saves these Figures as PNGs; the Python API returns them, so
they show inline in Jupyter (`cnnlab.plot_curves(run)`, ...)."""

from pathlib import Path

import torch
import torch.nn as nn
from PIL import Image

from cnnlab.checkpoint import as_loaded
from cnnlab.errors import CnnlabError
from cnnlab.i18n import _
from cnnlab.inside import plots
from cnnlab.inside.plots import Figure

Checkpoint = (
    str | Path | tuple[nn.Module, dict]
)  # a run folder, a checkpoint file, or load_checkpoint()'s pair


def test_set(meta: dict, dataset: str | None = None, data_dir: str | None = None, checkpoint=None):
    """The checkpoint's own dataset (a folder run: its exact saved test split), or `dataset` if it has
    the same image shape and classes."""
    from cnnlab.data import load_for_checkpoint

    path = None if isinstance(checkpoint, tuple) else checkpoint
    data = load_for_checkpoint(meta, path, dataset, data_dir)
    if list(data.shape) != list(meta["input_shape"]) or len(data.classes) != len(meta["classes"]):
        raise CnnlabError(
            _(
                "{data} images ({shape}) do not fit a {dataset} checkpoint",
                data=data.name,
                shape=list(data.shape),
                dataset=meta["dataset"],
            )
        )
    return data


def _probs(model: nn.Module, meta: dict, images: torch.Tensor) -> torch.Tensor:
    from cnnlab.evaluation import predict_logits

    return predict_logits(model, images, meta["mean"], meta["std"]).softmax(1)


def plot_curves(run: str | Path) -> Figure:
    """Loss and accuracy per epoch of a run (its folder or its metrics.csv)."""
    return plots.curves_figure(run)


def plot_confusion(checkpoint: Checkpoint, dataset: str | None = None, data_dir: str | None = None) -> Figure:
    """Confusion matrix and per-class accuracy of a checkpoint on every test image."""
    from cnnlab.evaluation import confusion_matrix

    model, meta = as_loaded(checkpoint)
    data = test_set(meta, dataset, data_dir, checkpoint)
    conf = confusion_matrix(_probs(model, meta, data.test_x).argmax(1), data.test_y, len(data.classes))
    return plots.confusion_figure(conf.tolist(), data.classes)


def plot_top_losses(
    checkpoint: Checkpoint, count: int = 16, dataset: str | None = None, data_dir: str | None = None
) -> Figure:
    """The `count` test images the checkpoint is most confidently wrong about."""
    model, meta = as_loaded(checkpoint)
    data = test_set(meta, dataset, data_dir, checkpoint)
    probs = _probs(model, meta, data.test_x)
    return plots.top_losses_figure(data.test_x, data.test_y, probs, data.classes, count)


def plot_samples(dataset: str, split: str = "train", count: int = 32, data_dir: str | None = None) -> Figure:
    """`count` random images (seed 0) of a dataset's train or test split, with their labels."""
    from cnnlab.data import load_dataset

    if split not in ("train", "test"):
        raise CnnlabError(_("split must be 'train' or 'test', got {split}", split=repr(split)))
    data = load_dataset(dataset, data_dir)
    x, y = (data.train_x, data.train_y) if split == "train" else (data.test_x, data.test_y)
    label = Path(dataset).name or dataset  # a folder path: its name
    title = _("{name} train set", name=label) if split == "train" else _("{name} test set", name=label)
    return plots.samples_figure(x, y, data.classes, count, title=title)


def plot_filters(checkpoint: Checkpoint) -> Figure:
    """The first conv layer's filters of a checkpoint."""
    model, meta = as_loaded(checkpoint)
    name, conv = plots.first_conv(model)
    return plots.filters_figure(conv.weight, title=f"{meta['model']} {name}")


def plot_feature_maps(
    checkpoint: Checkpoint,
    image: str | Path | Image.Image | None = None,
    index: int = 0,
    layer: str | None = None,
    max_channels: int = 64,
    data_dir: str | None = None,
) -> Figure:
    """Every conv layer's feature maps (before ReLU) for one image: an image file or PIL image
    (preprocessed like `cnnlab predict`), else test image number `index`; `layer` picks one conv layer."""
    from cnnlab.data import to_float
    from cnnlab.inside.activations import conv_feature_maps
    from cnnlab.prediction import load_image, prepare

    model, meta = as_loaded(checkpoint)
    if isinstance(image, Image.Image):
        pixels = prepare(image, meta)
    elif image is not None:
        pixels = load_image(image, meta)
    else:
        test_x = test_set(meta, data_dir=data_dir, checkpoint=checkpoint).test_x
        if not 0 <= index < len(test_x):
            raise CnnlabError(
                _("--index {index} is outside the test set (0..{last})", index=index, last=len(test_x) - 1)
            )
        pixels = test_x[index]
    maps = conv_feature_maps(model, to_float(pixels[None], meta["mean"], meta["std"])[0])
    if layer:
        known = [name for name, _fmap in maps]
        if layer not in known:
            raise CnnlabError(
                _(
                    "unknown layer {layer}; conv layers of {model}: {names}",
                    layer=repr(layer),
                    model=meta["model"],
                    names=", ".join(known),
                )
            )
        maps = [(name, fmap) for name, fmap in maps if name == layer]
    return plots.feature_maps_figure(maps, pixels, max_channels)


def plot_gradcam(
    checkpoint: Checkpoint, image, classes: list | None = None, layer: str | None = None, top: int = 3
) -> Figure:
    """Grad-CAM heat maps over `image` (a path, bytes or PIL image) for `classes` (names or indices; by
    default the `top` most likely), at `layer` (default: the family's last conv block)."""
    from cnnlab.inside.gradcam import gradcam_for
    from cnnlab.inside.plots_gradcam import gradcam_figure

    cam = gradcam_for(as_loaded(checkpoint), image, classes, layer, top)
    return gradcam_figure(cam.image, cam.maps, cam.classes, cam.probabilities, cam.layer)
