"""Evaluation on every test image (the chapter's drop_last=True silently skipped 16 of 10,000),
and the `cnnlab eval` command: accuracy, per-class accuracy, confusion matrix."""

import json
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

from cnnlab.data import to_float
from cnnlab.training.precision import autocast


@torch.inference_mode()
def predict_logits(
    model: nn.Module,
    x: torch.Tensor,
    mean,
    std,
    batch_size: int = 1024,
    tta: bool = False,
    precision: str = "fp32",
) -> torch.Tensor:
    """Logits for all of uint8 x (N x C x H x W) in large batches; tta also averages a 1-px shift pair.
    `precision` "bf16" runs the forward passes under bf16 autocast (a model trained that way is evaluated
    the way it was trained); the logits come back as float32 either way."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    if not was_training and device.type == "cpu":
        # A model handed over in eval mode (`cnnlab eval`/`predict`, a loaded checkpoint) runs channels_last:
        # oneDNN's NHWC convolutions gave 2.4x the images per CPU-second on fastnet (see BENCHMARKS.md).
        # A model mid-training keeps the layout its trainer chose (DDP's gradient buckets depend on it).
        model.to(memory_format=torch.channels_last)
    with autocast(precision, device):
        outs = _batches(model, x, mean, std, batch_size, tta, device)
    model.train(was_training)
    return torch.cat(outs) if outs else torch.empty(0)


def _batches(model, x, mean, std, batch_size, tta, device) -> list[torch.Tensor]:
    outs = []
    for i in range(0, len(x), batch_size):
        xb = to_float(x[i : i + batch_size].to(device), mean, std)
        logits = model(xb)
        if tta:
            # translations by one pixel each way: cheap TTA that never flips (digits are not symmetric)
            shifted = [model(torch.roll(xb, s, dims=d)) for s, d in ((1, 3), (-1, 3))]
            probs = logits.float().softmax(1) * 2 + sum(o.float().softmax(1) for o in shifted)
            logits = probs.div(4).log()
        outs.append(logits.float().cpu())
    return outs


def evaluate(
    model, x, y, mean, std, batch_size: int = 1024, tta: bool = False, precision: str = "fp32"
) -> tuple[float, float]:
    """(mean cross-entropy, accuracy 0..1) over every image in x."""
    logits = predict_logits(model, x, mean, std, batch_size, tta, precision)
    return F.cross_entropy(logits, y.cpu()).item(), (logits.argmax(1) == y.cpu()).float().mean().item()


def confusion_matrix(pred: torch.Tensor, target: torch.Tensor, num_classes: int) -> torch.Tensor:
    """C x C counts; row = true class, column = predicted class."""
    return torch.bincount(target * num_classes + pred, minlength=num_classes**2).view(
        num_classes, num_classes
    )


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
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")


def run(args) -> int:
    import time
    from pathlib import Path

    from cnnlab.checkpoint import load_checkpoint, resolve
    from cnnlab.data import load_dataset
    from cnnlab.errors import CnnlabError

    model, meta = load_checkpoint(args.checkpoint)
    data = load_dataset(args.dataset or meta["dataset"], args.data_dir, progress=not args.json)
    if tuple(data.shape) != tuple(meta["input_shape"]) or len(data.classes) != len(meta["classes"]):
        raise CnnlabError(
            f"checkpoint expects {meta['input_shape']} images with {len(meta['classes'])} classes; "
            f"{data.name} has {list(data.shape)} with {len(data.classes)}"
        )
    t0 = time.perf_counter()
    # in the precision it was trained in (checkpoints from before --precision existed are fp32)
    precision = meta.get("precision", "fp32")
    logits = predict_logits(
        model, data.test_x, meta["mean"], meta["std"], args.batch_size, args.tta, precision
    )
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
        "precision": precision,
        "per_class": dict(zip(data.classes, per_class)),
        "confusion": conf.tolist(),
    }
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
    if "plot" in result:
        print(f"confusion matrix picture: {result['plot']}", file=out)
    return 0
