"""`cnnlab plot KIND`: computes what a picture needs (predictions, confusion, feature maps) and hands it
to the drawing functions of `cnnlab.inside.plots`, which take results and never compute them."""

import argparse
from pathlib import Path

import torch
import torch.nn as nn

from cnnlab.errors import CnnlabError
from cnnlab.inside.plots import (
    Picture,
    first_conv,
    plot_confusion,
    plot_curves,
    plot_feature_maps,
    plot_filters,
    plot_samples,
    plot_top_losses,
)


def _checkpoint(args: argparse.Namespace):
    """(model, meta, folder of the checkpoint: where its pictures go by default)."""
    from cnnlab.checkpoint import load_checkpoint, resolve

    model, meta = load_checkpoint(args.checkpoint)
    return model, meta, resolve(args.checkpoint).parent


def _test_set(args: argparse.Namespace, meta: dict):
    """The checkpoint's own dataset, or --dataset if it has the same image shape and classes."""
    from cnnlab.data import load_dataset

    data = load_dataset(getattr(args, "dataset", None) or meta["dataset"], args.data_dir)
    if list(data.shape) != list(meta["input_shape"]) or len(data.classes) != len(meta["classes"]):
        raise CnnlabError(
            f"{data.name} images ({list(data.shape)}) do not fit a {meta['dataset']} checkpoint"
        )
    return data


def _probs(model: nn.Module, meta: dict, images: torch.Tensor) -> torch.Tensor:
    from cnnlab.evaluate import predict_logits

    return predict_logits(model, images, meta["mean"], meta["std"]).softmax(1)


def run_curves(args: argparse.Namespace) -> Picture:
    source = Path(args.source)
    folder = source if source.is_dir() else source.parent
    return plot_curves(source, args.out or folder / "curves.png")


def run_confusion(args: argparse.Namespace) -> Picture:
    from cnnlab.evaluate import confusion_matrix

    model, meta, folder = _checkpoint(args)
    data = _test_set(args, meta)
    pred = _probs(model, meta, data.test_x).argmax(1)
    conf = confusion_matrix(pred, data.test_y, len(data.classes))
    return plot_confusion(conf.tolist(), data.classes, args.out or folder / "confusion.png")


def run_top_losses(args: argparse.Namespace) -> Picture:
    model, meta, folder = _checkpoint(args)
    data = _test_set(args, meta)
    probs = _probs(model, meta, data.test_x)
    out = args.out or folder / "top-losses.png"
    return plot_top_losses(data.test_x, data.test_y, probs, data.classes, out, args.count)


def run_samples(args: argparse.Namespace) -> Picture:
    from cnnlab.data import load_dataset

    data = load_dataset(args.dataset, args.data_dir)
    x, y = (data.train_x, data.train_y) if args.split == "train" else (data.test_x, data.test_y)
    out = args.out or f"samples-{args.dataset}.png"
    return plot_samples(x, y, data.classes, out, args.count, title=f"{args.dataset} {args.split} set")


def run_filters(args: argparse.Namespace) -> Picture:
    model, meta, folder = _checkpoint(args)
    name, conv = first_conv(model)
    title = f"{meta['model']} {name}"
    return plot_filters(conv.weight, args.out or folder / "filters.png", title=title)


def run_feature_maps(args: argparse.Namespace) -> Picture:
    from cnnlab.data import to_float
    from cnnlab.inside.activations import conv_feature_maps

    model, meta, folder = _checkpoint(args)
    if args.image:
        from cnnlab.predict import load_image

        image = load_image(args.image, meta)
    else:
        test_x = _test_set(args, meta).test_x
        if not 0 <= args.index < len(test_x):
            raise CnnlabError(f"--index {args.index} is outside the test set (0..{len(test_x) - 1})")
        image = test_x[args.index]
    maps = conv_feature_maps(model, to_float(image[None], meta["mean"], meta["std"])[0])
    if args.layer:
        known = [name for name, _ in maps]
        if args.layer not in known:
            raise CnnlabError(
                f"unknown layer {args.layer!r}; conv layers of {meta['model']}: {', '.join(known)}"
            )
        maps = [(name, fmap) for name, fmap in maps if name == args.layer]
    return plot_feature_maps(maps, args.out or folder / "feature-maps.png", image, args.max_channels)


def run_gradcam(args: argparse.Namespace) -> Picture:
    from cnnlab.inside.gradcam import gradcam_for
    from cnnlab.inside.plots_gradcam import plot_gradcam

    model, meta, folder = _checkpoint(args)
    cam = gradcam_for((model, meta), args.image, args.class_, args.layer, args.top)
    out = args.out or folder / "gradcam.png"
    return plot_gradcam(cam.image, cam.maps, cam.classes, cam.probabilities, out, cam.layer)


KINDS = {
    "curves": (run_curves, "loss and accuracy per epoch from a run's metrics.csv"),
    "confusion": (run_confusion, "confusion matrix and per-class accuracy on the test set"),
    "top-losses": (run_top_losses, "the most confidently wrong test images"),
    "samples": (run_samples, "a grid of dataset images with their labels"),
    "filters": (run_filters, "the first conv layer's filters"),
    "feature-maps": (run_feature_maps, "every conv layer's feature maps for one image"),
    "gradcam": (run_gradcam, "Grad-CAM heat maps over an image, several classes side by side"),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    kinds = parser.add_subparsers(dest="kind", metavar="KIND", required=True)
    for kind, (_, help_) in KINDS.items():
        p = kinds.add_parser(kind, help=help_, description=help_)
        if kind == "curves":
            p.add_argument("source", metavar="RUN_DIR_OR_METRICS_CSV")
        elif kind == "samples":
            p.add_argument("dataset", help="e.g. mnist-sample, mnist, fashion-mnist, cifar10")
            p.add_argument("--split", choices=["train", "test"], default="train")
        else:
            p.add_argument("checkpoint", help="run folder or .safetensors file")
        if kind in ("samples", "top-losses"):
            p.add_argument(
                "--count", type=int, default=32 if kind == "samples" else 16, help="how many images"
            )
        if kind in ("confusion", "top-losses"):
            p.add_argument("--dataset", help="test set to use (default: the checkpoint's own)")
        if kind == "feature-maps":
            source = p.add_mutually_exclusive_group()
            source.add_argument("--image", help="an image file (preprocessed like `cnnlab predict`)")
            source.add_argument("--index", type=int, default=0, help="a test-set image (default 0)")
            p.add_argument("--layer", help="only this conv layer, e.g. layer.0")
            p.add_argument("--max-channels", type=int, default=64, help="at most this many maps per layer")
        if kind == "gradcam":
            p.add_argument(
                "--image", required=True, help="an image file (preprocessed like `cnnlab predict`)"
            )
            p.add_argument(
                "--class",
                dest="class_",
                action="append",
                metavar="NAME",
                help="class name or index (repeatable; default: the --top most likely)",
            )
            p.add_argument("--top", type=int, default=3, help="classes shown without --class (default 3)")
            p.add_argument(
                "--layer", help="target layer (default: the family's last conv stage, e.g. layer4.1)"
            )
        if kind not in ("curves", "filters", "gradcam"):
            p.add_argument("--data-dir", help="folder holding the dataset files")
        p.add_argument("--out", help="PNG file to write (default: next to the run / in the current folder)")


def run(args: argparse.Namespace) -> int:
    picture = KINDS[args.kind][0](args)
    print(picture.path)
    return 0
