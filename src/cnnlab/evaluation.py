"""Evaluation on every test image (the chapter's drop_last=True silently skipped 16 of 10,000): accuracy,
per-class accuracy, confusion matrix, the worst files. `cnnlab eval` (cnnlab.commands.eval) and
`cnnlab.evaluate(...)` both call `evaluate_checkpoint`; training evaluates each epoch with `evaluate`."""

from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from cnnlab.core.autocast import autocast
from cnnlab.data import to_float
from cnnlab.i18n import _


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
    # The model's memory format is the caller's choice (load_checkpoint sets channels_last once); it is
    # never changed here, since the server calls this from several threads on one shared model.
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
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
    correct = int((logits.argmax(1) == y.cpu()).sum())
    # a ratio of counts in Python floats: 0.9891, not float32's 0.9890999794006348
    return F.cross_entropy(logits, y.cpu()).item(), correct / max(len(y), 1)


def confusion_matrix(pred: torch.Tensor, target: torch.Tensor, num_classes: int) -> torch.Tensor:
    """C x C counts; row = true class, column = predicted class."""
    return torch.bincount(target * num_classes + pred, minlength=num_classes**2).view(
        num_classes, num_classes
    )


def worst_images(logits: torch.Tensor, y: torch.Tensor, classes, files, count: int) -> list[dict]:
    """The `count` wrong predictions with the highest loss (the least probability given to the true class):
    file name (or test index), true and predicted class, the probability of each, the loss."""
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
            "true_probability": float(probs[i, y[i]]),
            "loss": float(losses[i]),
        }
        for i in order.tolist()
    ]


def eval_data(meta: dict, checkpoint, dataset: str | None, data_dir: str | None, progress: bool):
    """The test split to evaluate on: the checkpoint's dataset unless told otherwise (a folder run: its
    exact saved test split), read from --data-dir, else the folder the run itself used (when it still
    exists), else the usual places."""
    from cnnlab.data import load_for_checkpoint
    from cnnlab.data.test_split import load_test_split
    from cnnlab.errors import CnnlabError

    name = dataset or meta["dataset"]
    recorded = (meta.get("config") or {}).get("data_dir")
    if data_dir is None and name == meta["dataset"] and recorded and Path(recorded).is_dir():
        data_dir = recorded
    if dataset is None and "folder" in meta:
        path = None if isinstance(checkpoint, tuple) else checkpoint
        data = load_for_checkpoint(meta, path, None, data_dir, progress=progress)
    else:
        data = load_test_split(name, data_dir, progress=progress)
    if tuple(data.shape) != tuple(meta["input_shape"]) or list(data.classes) != list(meta["classes"]):
        raise CnnlabError(
            _(
                "the checkpoint was trained on {dataset} ({shape} images, classes {classes}); {name} has "
                "{data_shape} images, classes {data_classes}: its accuracy would mean nothing",
                dataset=meta["dataset"],
                shape=list(meta["input_shape"]),
                classes=_short(meta["classes"]),
                name=data.name,
                data_shape=list(data.shape),
                data_classes=_short(data.classes),
            )
        )
    return data


def _short(classes) -> str:
    names = ", ".join(map(str, classes[:4]))
    return f"[{names}{', ...' if len(classes) > 4 else ''}] ({len(classes)})"


def evaluate_checkpoint(
    checkpoint,
    dataset: str | None = None,
    data_dir: str | None = None,
    batch_size: int = 1024,
    tta: bool | None = None,
    plot: str | None = None,
    progress: bool = True,
    worst: int = 10,
) -> dict:
    """What `cnnlab eval --json` prints, for a run folder, checkpoint file or (model, meta) pair: accuracy,
    per-class accuracy, confusion matrix and the `worst` most confidently wrong images on every test
    image. `tta` None: as the run evaluated. `plot` = None: no picture; "": the confusion matrix as
    confusion.png next to the checkpoint; a path: there."""
    import time

    from cnnlab.checkpoint import as_loaded, resolve
    from cnnlab.checkpoint_meta import tta_of

    if plot:  # a --plot that would overwrite the checkpoint (or a device, a FIFO) is refused before any work
        from cnnlab.core.files import output_file

        output_file(plot, [checkpoint])
    model, meta = as_loaded(checkpoint)
    data = eval_data(meta, checkpoint, dataset, data_dir, progress=progress)
    tta = tta_of(meta) if tta is None else tta
    t0 = time.perf_counter()
    # in the precision it was trained in (checkpoints from before --precision existed are fp32)
    precision = meta.get("precision", "fp32")
    logits = predict_logits(model, data.test_x, meta["mean"], meta["std"], batch_size, tta, precision)
    seconds = time.perf_counter() - t0
    pred = logits.argmax(1)
    conf = confusion_matrix(pred, data.test_y, len(data.classes))
    correct, total = int(conf.diag().sum()), len(data.test_y)
    per_class = [round(c / max(n, 1), 6) for c, n in zip(conf.diag().tolist(), conf.sum(1).tolist())]
    path = None if isinstance(checkpoint, tuple) else resolve(checkpoint)
    result = {
        "checkpoint": None if path is None else str(path),
        "dataset": data.name,
        "accuracy": round(correct / max(total, 1), 6),
        "correct": correct,
        "total": total,
        "test_images": total,
        "tta": tta,
        "images_per_second": round(total / seconds, 1),
        "precision": precision,
        "per_class": dict(zip(data.classes, per_class)),
        "confusion": conf.tolist(),
        "worst": worst_images(logits, data.test_y, data.classes, data.test_files, worst),
    }
    if data.source is not None and data.source.skipped:
        result["skipped"] = [{"file": f, "reason": why} for f, why in data.source.skipped]
    if plot is not None:
        result["plot"] = str(draw_confusion(result, plot))
    return result


def draw_confusion(result: dict, plot: str) -> Path:
    from cnnlab.inside.plots import confusion_figure, save

    path = result["checkpoint"]
    png = Path(plot or (Path(path).with_name("confusion.png") if path else "confusion.png"))
    save(confusion_figure(result["confusion"], list(result["per_class"])), png, reads=[path])
    return png
