"""`cnnlab export CHECKPOINT OUT.onnx`: `export.export_checkpoint`, then what was written and how well
onnxruntime agrees with PyTorch (or the same as JSON)."""

import argparse
import json

from cnnlab.export import TOLERANCE
from cnnlab.i18n import _


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", help=_("run folder or .safetensors file"))
    p.add_argument("out", help=_("the .onnx file to write"))
    p.add_argument("--opset", type=int, help=_("ONNX opset version (default: the exporter's, 18 or newer)"))
    p.add_argument(
        "--tolerance",
        type=float,
        default=TOLERANCE,
        help=_("max abs logit diff allowed (default {tolerance:g})", tolerance=TOLERANCE),
    )
    p.add_argument("--data-dir", help=_("folder holding the checkpoint's dataset, for the check images"))
    p.add_argument("--json", action="store_true", help=_("one JSON object on stdout"))


def run(args: argparse.Namespace) -> int:
    from cnnlab.checkpoint import read_meta, resolve
    from cnnlab.export import export_checkpoint

    r = export_checkpoint(args.checkpoint, args.out, args.opset, args.tolerance, args.data_dir)
    if args.json:
        print(json.dumps(r))
        return 0
    shape = "x".join(map(str, read_meta(resolve(args.checkpoint))["input_shape"]))
    print(
        _(
            "exported {model} to {onnx} (opset {opset}, {mib:.2f} MiB): input N x {shape} float32, dynamic batch",
            model=r["model"],
            onnx=r["onnx"],
            opset=r["opset"],
            mib=r["bytes"] / 2**20,
            shape=shape,
        )
    )
    print(
        _(
            "onnxruntime vs PyTorch on {checked} (a batch and a single image): max abs diff {diff:.3g} "
            "(tolerance {tolerance:g}), predictions agree on {agree}/{images}",
            checked=r["checked_on"],
            diff=r["max_abs_diff"],
            tolerance=r["tolerance"],
            agree=r["predictions_agree"],
            images=r["images"],
        )
    )
    return 0
