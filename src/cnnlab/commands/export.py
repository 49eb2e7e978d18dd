"""`cnnlab export CHECKPOINT OUT.onnx`: `export.export_checkpoint`, then what was written and how well
onnxruntime agrees with PyTorch (or the same as JSON)."""

import argparse
import json

from cnnlab.export import TOLERANCE


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", help="run folder or .safetensors file")
    p.add_argument("out", help="the .onnx file to write")
    p.add_argument("--opset", type=int, help="ONNX opset version (default: the exporter's, 18 or newer)")
    p.add_argument(
        "--tolerance",
        type=float,
        default=TOLERANCE,
        help=f"max abs logit diff allowed (default {TOLERANCE:g})",
    )
    p.add_argument("--data-dir", help="folder holding the checkpoint's dataset, for the check images")
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")


def run(args: argparse.Namespace) -> int:
    from cnnlab.checkpoint import read_meta, resolve
    from cnnlab.export import export_checkpoint

    r = export_checkpoint(args.checkpoint, args.out, args.opset, args.tolerance, args.data_dir)
    if args.json:
        print(json.dumps(r))
        return 0
    shape = "x".join(map(str, read_meta(resolve(args.checkpoint))["input_shape"]))
    print(
        f"exported {r['model']} to {r['onnx']} (opset {r['opset']}, {r['bytes'] / 2**20:.2f} MiB): "
        f"input N x {shape} float32, dynamic batch"
    )
    print(
        f"onnxruntime vs PyTorch on {r['checked_on']} (a batch and a single image): max abs diff "
        f"{r['max_abs_diff']:.3g} (tolerance {r['tolerance']:g}), predictions agree on "
        f"{r['predictions_agree']}/{r['images']}"
    )
    return 0
