"""Evaluation on every test image (the chapter's drop_last=True silently skipped 16 of 10,000),
and the `cnnlab eval` command: accuracy, per-class accuracy, confusion matrix, the worst files."""

import json
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

from cnnlab.data import to_float


@torch.inference_mode()
def predict_logits(
    model: nn.Module, x: torch.Tensor, mean, std, batch_size: int = 1024, tta: bool = False
) -> torch.Tensor:
    """Logits for all of uint8 x (N x C x H x W) in large batches; tta also averages a 1-px shift pair."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    if not was_training and device.type == "cpu":
        # A model handed over in eval mode (`cnnlab eval`/`predict`, a loaded checkpoint) runs channels_last:
        # oneDNN's NHWC convolutions gave 2.4x the images per CPU-second on fastnet (see BENCHMARKS.md).
        # A model mid-training keeps the layout its trainer chose (DDP's gradient buckets depend on it).
        model.to(memory_format=torch.channels_last)
    outs = []
    for i in range(0, len(x), batch_size):
        xb = to_float(x[i : i + batch_size].to(device), mean, std)
        logits = model(xb)
        if tta:
            # translations by one pixel each way: cheap TTA that never flips (digits are not symmetric)
            shifted = [model(torch.roll(xb, s, dims=d)) for s, d in ((1, 3), (-1, 3))]
            logits = (logits.softmax(1) * 2 + sum(o.softmax(1) for o in shifted)).div(4).log()
        outs.append(logits.float().cpu())
    model.train(was_training)
    return torch.cat(outs) if outs else torch.empty(0)


def evaluate(model, x, y, mean, std, batch_size: int = 1024, tta: bool = False) -> tuple[float, float]:
    """(mean cross-entropy, accuracy 0..1) over every image in x."""
    logits = predict_logits(model, x, mean, std, batch_size, tta)
    return F.cross_entropy(logits, y.cpu()).item(), (logits.argmax(1) == y.cpu()).float().mean().item()


def confusion_matrix(pred: torch.Tensor, target: torch.Tensor, num_classes: int) -> torch.Tensor:
    """C x C counts; row = true class, column = predicted class."""
    return torch.bincount(target * num_classes + pred, minlength=num_classes**2).view(
        num_classes, num_classes
    )


def worst_images(logits: torch.Tensor, y: torch.Tensor, classes, files, count: int) -> list[dict]:
    """The `count` wrong predictions with the highest loss: file name (or test index), true and predicted
    class, the probability given to the wrong class, the loss."""
    losses = F.cross_entropy(logits, y.cpu(), reduction="none")
    probs = logits.softmax(1)
    pred = logits.argmax(1)
    wrong = (pred != y.cpu()).nonzero().flatten()
    order = wrong[losses[wrong].argsort(descending=True)][: max(count, 0)]
    return [
        {
            "file": files[i] if files else f"test[{i}]",
            "index": int(i),
            "true": classes[int(y[i])],
            "predicted": classes[int(pred[i])],
            "probability": float(probs[i, pred[i]]),
            "loss": float(losses[i]),
        }
        for i in order.tolist()
    ]


def format_confusion(conf: torch.Tensor, classes: list[str]) -> str:
    names = [c[:6] for c in classes]
    w = max(6, len(str(int(conf.max()))) + 1)
    lines = ["true \\ pred".ljust(12) + "".join(n.rjust(w) for n in names)]
    for name, row in zip(names, conf.tolist()):
        lines.append(name.ljust(12) + "".join(str(v).rjust(w) for v in row))
    return "\n".join(lines)


def add_arguments(p) -> None:
    p.add_argument("checkpoint", help="run folder or .safetensors file")
    p.add_argument("--dataset", help="dataset to evaluate on (default: the checkpoint's own)")
    p.add_argument("--data-dir", help="folder holding the dataset files")
    p.add_argument("--batch-size", type=int, default=1024)
    p.add_argument("--tta", action="store_true", help="test-time augmentation (1-px shifts)")
    p.add_argument("--plot", metavar="PNG", nargs="?", const="", help="also draw the confusion matrix (PNG)")
    p.add_argument(
        "--worst", type=int, default=10, help="list this many most confidently wrong images (default 10)"
    )
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")


def run(args) -> int:
    import time
    from pathlib import Path

    from cnnlab.checkpoint import load_checkpoint, resolve
    from cnnlab.data import load_for_checkpoint
    from cnnlab.errors import CnnlabError

    model, meta = load_checkpoint(args.checkpoint)
    data = load_for_checkpoint(meta, args.checkpoint, args.dataset, args.data_dir, progress=not args.json)
    if tuple(data.shape) != tuple(meta["input_shape"]) or len(data.classes) != len(meta["classes"]):
        raise CnnlabError(
            f"checkpoint expects {meta['input_shape']} images with {len(meta['classes'])} classes; "
            f"{data.name} has {list(data.shape)} with {len(data.classes)}"
        )
    t0 = time.perf_counter()
    logits = predict_logits(model, data.test_x, meta["mean"], meta["std"], args.batch_size, args.tta)
    seconds = time.perf_counter() - t0
    pred = logits.argmax(1)
    conf = confusion_matrix(pred, data.test_y, len(data.classes))
    per_class = (conf.diag().float() / conf.sum(1).clamp(min=1)).tolist()
    result = {
        "checkpoint": str(resolve(args.checkpoint)),
        "dataset": data.name,
        "accuracy": (pred == data.test_y).float().mean().item(),
        "test_images": len(data.test_y),
        "images_per_second": len(data.test_y) / seconds,
        "per_class": dict(zip(data.classes, per_class)),
        "confusion": conf.tolist(),
        "worst": worst_images(logits, data.test_y, data.classes, data.test_files, args.worst),
    }
    if data.source is not None and data.source.skipped:
        result["skipped"] = [{"file": f, "reason": why} for f, why in data.source.skipped]
    if args.plot is not None:
        from cnnlab.inside.plots import plot_confusion

        png = Path(args.plot or Path(result["checkpoint"]).with_name("confusion.png"))
        plot_confusion(conf.tolist(), data.classes, png)
        result["plot"] = str(png)
    if args.json:
        print(json.dumps(result))
        return 0
    out = sys.stdout
    print(
        f"{data.name} test: accuracy {result['accuracy']:.4%} on {result['test_images']} images "
        f"({result['images_per_second']:.0f} images/s)",
        file=out,
    )
    for name, acc in result["per_class"].items():
        print(f"  {name:>12}: {acc:.4%}", file=out)
    print(format_confusion(conf, data.classes), file=out)
    if result["worst"]:
        print(f"most confidently wrong ({len(result['worst'])}):", file=out)
        for w in result["worst"]:
            print(
                f"  {w['file']}: true {w['true']}, predicted {w['predicted']} ({w['probability']:.1%})",
                file=out,
            )
    if "plot" in result:
        print(f"confusion matrix picture: {result['plot']}", file=out)
    return 0
