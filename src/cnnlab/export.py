"""A checkpoint as ONNX with a dynamic batch dimension, checked with onnxruntime: what `cnnlab export
CHECKPOINT OUT.onnx` does (the command: cnnlab.commands.export).

The ONNX model takes what the PyTorch model takes: float32 N x C x H x W, normalised as
(pixel / 255 - mean) / std with the checkpoint's mean and std, and returns N x classes logits. Those
constants, the class names and the rest of the checkpoint's metadata are stored in the file's
`metadata_props["cnnlab"]` (JSON), so a consumer needs nothing else.

After writing, the file is loaded in onnxruntime and its logits compared with PyTorch's on real test
images of the checkpoint's dataset (the bundled mnist-sample when those files are not here, random
images as a last resort), once as a batch and once as a single image, which exercises the dynamic batch
dimension. A max abs diff over the tolerance is an error.
"""

import contextlib
import inspect
import io
import json
import logging
import os
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from cnnlab.checkpoint import load_checkpoint
from cnnlab.core.files import atomic_write, output_file
from cnnlab.data import load_dataset, to_float
from cnnlab.errors import EXIT_OUT_UNWRITABLE, CnnlabError
from cnnlab.i18n import _

TOLERANCE = 1e-3  # float32 kernels differ in summation order: ~1e-6 is typical, 1e-3 is a real bug
CHECK_IMAGES = 64


@contextlib.contextmanager
def quiet_exporter():
    """The dynamo exporter prints progress lines, FutureWarnings from torch internals and a note that
    torchvision is absent: noise for this command. It is captured, and shown only if the export fails."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    loggers = [logging.getLogger(name) for name in ("torch.onnx", "onnxscript")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.ERROR)  # torch attaches its own handler to torch.onnx: filter at the source
        logger.propagate = False
    try:
        with contextlib.redirect_stdout(out), warnings.catch_warnings():
            warnings.simplefilter("ignore", (FutureWarning, DeprecationWarning, UserWarning))
            yield out
    finally:
        for logger, level in zip(loggers, levels):
            logger.removeHandler(handler)
            logger.setLevel(level)
            logger.propagate = True


def export_onnx(model: nn.Module, meta: dict, out: Path, opset: int | None = None) -> int:
    """Write `model` to `out` with a dynamic batch dimension; returns the opset used."""
    arg = next(iter(inspect.signature(model.forward).parameters))  # dynamic_shapes is keyed by its name
    # an example batch of 1 would be specialised to the constant 1; 2 keeps the dimension symbolic
    example = torch.randn(2, *meta["input_shape"])
    with quiet_exporter() as log:
        try:
            program = torch.onnx.export(
                model,
                (example,),
                input_names=["input"],
                output_names=["logits"],
                dynamic_shapes={arg: {0: torch.export.Dim("batch")}},
                opset_version=opset,
                dynamo=True,
            )
        except Exception as e:
            first = (str(e).strip().splitlines() or [type(e).__name__])[0]
            tail = " | ".join(log.getvalue().strip().splitlines()[-3:])
            raise CnnlabError(
                _(
                    "ONNX export of {model} failed: {kind}: {first} [{tail}]",
                    model=meta["model"],
                    kind=type(e).__name__,
                    first=first,
                    tail=tail,
                )
            ) from None
    used = int(program.model.opset_imports.get("", 0))
    if opset is not None and used != opset:  # the exporter falls back to its own opset when it cannot convert
        raise CnnlabError(
            _(
                "{model} cannot be exported at opset {opset} (the exporter produced opset {used})",
                model=meta["model"],
                opset=opset,
                used=used,
            )
        )
    program.model.metadata_props["cnnlab"] = json.dumps({k: v for k, v in meta.items() if k != "config"})
    program.model.doc_string = (
        "input: float32 N x C x H x W, (pixel/255 - mean)/std; output: N x classes logits"
    )
    atomic_write(out, lambda tmp: program.save(tmp))
    return used


def check_images(
    meta: dict, data_dir: str | None, count: int = CHECK_IMAGES, checkpoint=None
) -> tuple[torch.Tensor, str]:
    """uint8 test images for the comparison, and what they are (for the report)."""
    shape = tuple(meta["input_shape"])
    if "folder" in meta:  # a folder run: its own images, when the folder is still there
        from cnnlab.data import load_for_checkpoint

        try:
            data = load_for_checkpoint(meta, checkpoint, None, data_dir, progress=False)
            n = min(count, len(data.test_x))
            return data.test_x[:count], _("{n} test images of {folder}", n=n, folder=meta["folder"]["root"])
        except CnnlabError:
            pass
    for name in dict.fromkeys((meta["dataset"], "mnist-sample")):
        try:
            data = load_dataset(
                name, data_dir if name == meta["dataset"] else None, download=False, progress=False
            )
        except CnnlabError:
            continue  # not on this machine: the check must not download
        if data.shape == shape:
            n = min(count, len(data.test_x))
            return data.test_x[:count], _("{n} {dataset} test images", n=n, dataset=name)
    g = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (count, *shape), dtype=torch.uint8, generator=g), _(
        "{n} random images", n=count
    )


def compare(model: nn.Module, meta: dict, path: Path, images: torch.Tensor) -> tuple[float, int]:
    """(max abs logit diff between onnxruntime and PyTorch, predictions that agree) over a batch and
    a single image."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    x = to_float(images, meta["mean"], meta["std"])
    with torch.inference_mode():
        expected = model(x).numpy()
    name = session.get_inputs()[0].name
    got = session.run(None, {name: x.numpy()})[0]
    single = session.run(None, {name: x[:1].numpy()})[0]  # a batch size the export never saw
    diff = max(float(np.abs(got - expected).max()), float(np.abs(single - expected[:1]).max()))
    return diff, int((got.argmax(1) == expected.argmax(1)).sum())


def export_checkpoint(
    checkpoint, out: str | Path, opset: int | None = None, tolerance: float = TOLERANCE, data_dir=None
) -> dict:
    """Export `checkpoint` (run folder or file) to `out` and compare onnxruntime with PyTorch on real test
    images; what `cnnlab export --json` prints. More than `tolerance` apart is an error (the file is kept
    for inspection); an unwritable `out` fails before minutes of tracing."""
    if tolerance < 0:
        raise CnnlabError(_("--tolerance must be >= 0, got {value}", value=tolerance))
    out = Path(out)
    # never the checkpoint being read or another file of its run, a device or a FIFO; a link is written through
    target = output_file(out, reads=[checkpoint])
    if not target.parent.is_dir():
        raise CnnlabError(
            _("cannot write {out}: {folder} is not a folder", out=out, folder=target.parent),
            EXIT_OUT_UNWRITABLE,
        )
    if not os.access(target.parent, os.W_OK):  # before minutes of tracing: one line, the write exit code
        raise CnnlabError(
            _("cannot write {out}: {folder} is not writable", out=out, folder=target.parent),
            EXIT_OUT_UNWRITABLE,
        )
    model, meta = load_checkpoint(checkpoint)
    used = export_onnx(model, meta, out, opset)
    images, what = check_images(meta, data_dir, checkpoint=checkpoint)
    diff, agree = compare(model, meta, out, images)
    if diff > tolerance or not np.isfinite(diff):
        raise CnnlabError(
            _(
                "{out}: onnxruntime and PyTorch disagree on {what}: max abs diff {diff:.3g} > tolerance "
                "{tolerance:g} (file kept for inspection)",
                out=out,
                what=what,
                diff=diff,
                tolerance=tolerance,
            )
        )
    return {
        "onnx": str(out),
        "model": meta["model"],
        "opset": used,
        "bytes": out.stat().st_size,
        "checked_on": what,
        "max_abs_diff": diff,
        "tolerance": tolerance,
        "predictions_agree": agree,
        "images": len(images),
    }
