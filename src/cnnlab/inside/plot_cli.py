"""`cnnlab plot KIND`: saves the Figures of `cnnlab.inside.pictures` as PNGs, by default next to the run."""

import argparse
from pathlib import Path

from cnnlab.i18n import N_, _
from cnnlab.inside import pictures
from cnnlab.inside.plots import Picture, save


def _folder(args: argparse.Namespace) -> Path:
    """Where a checkpoint's pictures go by default: the folder of the checkpoint."""
    from cnnlab.checkpoint import resolve

    return resolve(args.checkpoint).parent


def run_curves(args: argparse.Namespace) -> Picture:
    source = Path(args.source)
    folder = source if source.is_dir() else source.parent
    return save(pictures.plot_curves(source), args.out or folder / "curves.png", reads(args))


def run_confusion(args: argparse.Namespace) -> Picture:
    fig = pictures.plot_confusion(args.checkpoint, args.dataset, args.data_dir)
    return save(fig, args.out or _folder(args) / "confusion.png", reads(args))


def run_top_losses(args: argparse.Namespace) -> Picture:
    fig = pictures.plot_top_losses(args.checkpoint, args.count, args.dataset, args.data_dir)
    return save(fig, args.out or _folder(args) / "top-losses.png", reads(args))


def run_samples(args: argparse.Namespace) -> Picture:
    fig = pictures.plot_samples(args.dataset, args.split, args.count, args.data_dir)
    return save(fig, args.out or f"samples-{Path(args.dataset).name or args.dataset}.png", reads(args))


def run_filters(args: argparse.Namespace) -> Picture:
    return save(
        pictures.plot_filters(args.checkpoint), args.out or _folder(args) / "filters.png", reads(args)
    )


def run_feature_maps(args: argparse.Namespace) -> Picture:
    fig = pictures.plot_feature_maps(
        args.checkpoint, args.image, args.index, args.layer, args.max_channels, args.data_dir
    )
    return save(fig, args.out or _folder(args) / "feature-maps.png", reads(args))


def run_gradcam(args: argparse.Namespace) -> Picture:
    fig = pictures.plot_gradcam(args.checkpoint, args.image, args.class_, args.layer, args.top)
    return save(fig, args.out or _folder(args) / "gradcam.png", reads(args))


KINDS = {
    "curves": (run_curves, N_("loss and accuracy per epoch from a run's metrics.csv")),
    "confusion": (run_confusion, N_("confusion matrix and per-class accuracy on the test set")),
    "top-losses": (run_top_losses, N_("the most confidently wrong test images")),
    "samples": (run_samples, N_("a grid of dataset images with their labels")),
    "filters": (run_filters, N_("the first conv layer's filters")),
    "feature-maps": (run_feature_maps, N_("every conv layer's feature maps for one image")),
    "gradcam": (run_gradcam, N_("Grad-CAM heat maps over an image, several classes side by side")),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    kinds = parser.add_subparsers(dest="kind", metavar="KIND", required=True, title=_("pictures"))
    for kind, (_run, help_) in KINDS.items():
        p = kinds.add_parser(kind, help=_(help_), description=_(help_))
        if kind == "curves":
            p.add_argument(
                "source", metavar="RUN_DIR_OR_METRICS_CSV", help=_("a run folder or its metrics.csv")
            )
        elif kind == "samples":
            p.add_argument(
                "dataset", help=_("e.g. mnist-sample, mnist, fashion-mnist, cifar10, or an image folder")
            )
            p.add_argument(
                "--split", choices=["train", "test"], default="train", help=_("which split (default train)")
            )
        else:
            p.add_argument("checkpoint", help=_("run folder or .safetensors file"))
        if kind in ("samples", "top-losses"):
            p.add_argument(
                "--count", type=int, default=32 if kind == "samples" else 16, help=_("how many images")
            )
        if kind in ("confusion", "top-losses"):
            p.add_argument("--dataset", help=_("test set to use (default: the checkpoint's own)"))
        if kind == "feature-maps":
            source = p.add_mutually_exclusive_group()
            source.add_argument("--image", help=_("an image file (preprocessed like `cnnlab predict`)"))
            source.add_argument("--index", type=int, default=0, help=_("a test-set image (default 0)"))
            p.add_argument("--layer", help=_("only this conv layer, e.g. layer.0"))
            p.add_argument("--max-channels", type=int, default=64, help=_("at most this many maps per layer"))
        if kind == "gradcam":
            p.add_argument(
                "--image", required=True, help=_("an image file (preprocessed like `cnnlab predict`)")
            )
            p.add_argument(
                "--class",
                dest="class_",
                action="append",
                metavar="NAME",
                help=_("class name or index (repeatable; default: the --top most likely)"),
            )
            p.add_argument("--top", type=int, default=3, help=_("classes shown without --class (default 3)"))
            p.add_argument(
                "--layer", help=_("target layer (default: the family's last conv stage, e.g. layer4.1)")
            )
        if kind not in ("curves", "filters", "gradcam"):
            p.add_argument("--data-dir", help=_("folder holding the dataset files"))
        p.add_argument(
            "--out", help=_("PNG file to write (default: next to the run / in the current folder)")
        )


def reads(args: argparse.Namespace) -> list:
    """What this plot reads, so that --out can never overwrite it (`cnnlab.checkpoint.output_file`)."""
    return [getattr(args, name, None) for name in ("checkpoint", "source", "image")]


def run(args: argparse.Namespace) -> int:
    if args.out:  # refused before the (slow) drawing; save() checks again
        from cnnlab.checkpoint import output_file

        output_file(args.out, reads(args))
    picture = KINDS[args.kind][0](args)
    print(picture.path)
    return 0
