"""`cnnlab bench [MODEL...]`: training and inference throughput as a table (library: cnnlab.bench)."""

import argparse
import json
import sys

from cnnlab.bench import DEFAULT_INPUT, DEFAULT_WIDTH, BenchOptions, bench
from cnnlab.i18n import _

DEFAULTS = BenchOptions()


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "models",
        nargs="*",
        metavar="MODEL",
        help=_("registry names (default: every model), or run folders / checkpoints: their model and input"),
    )
    p.add_argument(
        "--input",
        default=DEFAULT_INPUT,
        metavar="CxHxW",
        help=_("input shape (default {default})", default=DEFAULT_INPUT),
    )
    p.add_argument("--batch-size", type=int, default=DEFAULTS.batch_size, help=_("batch size (default 64)"))
    p.add_argument(
        "--width",
        type=float,
        default=DEFAULT_WIDTH,
        help=_("width multiplier (default {default})", default=DEFAULT_WIDTH),
    )
    p.add_argument("--classes", type=int, default=DEFAULTS.classes, help=_("number of classes (default 10)"))
    p.add_argument("--warmup", type=int, default=DEFAULTS.warmup, help=_("untimed steps first (default 2)"))
    p.add_argument(
        "--repeats",
        type=int,
        default=DEFAULTS.repeats,
        help=_("timed steps; the median is reported (default 5)"),
    )
    p.add_argument(
        "--threads", type=int, default=DEFAULTS.threads, help=_("torch intra-op threads (default: PyTorch's)")
    )
    p.add_argument("--no-channels-last", dest="channels_last", action="store_false", help=_("keep NCHW"))
    p.add_argument(
        "--precision",
        choices=("both", "fp32"),
        default=DEFAULTS.precision,
        help=_("both: fp32 and bf16 autocast (default); fp32: fp32 only"),
    )
    p.add_argument("--json", action="store_true", help=_("one JSON object on stdout"))


def run(args: argparse.Namespace) -> int:
    opts = BenchOptions(
        batch_size=args.batch_size,
        width=args.width,
        classes=args.classes,
        warmup=args.warmup,
        repeats=args.repeats,
        threads=args.threads,
        channels_last=args.channels_last,
        precision=args.precision,
    )

    def done(name: str) -> None:
        if not args.json:
            print("  " + _("{model} done", model=name), file=sys.stderr, flush=True)

    result = bench(args.models, args.input, opts, done)
    if args.json:
        print(json.dumps(result))
        return 0
    bf16 = _("native") if result["bf16_native"] else _("emulated (no AVX-512-BF16/AMX)")
    print(
        _(
            "input {input}, batch {batch}, width {width}, {threads} threads, sgemm roofline {peak:.0f} "
            "GFLOP/s (best 1-thread torch.mm x threads), bf16 {bf16}",
            input="x".join(map(str, result["input_shape"])),
            batch=result["batch_size"],
            width=result["width"],
            threads=result["threads"],
            peak=result["sgemm_peak_gflops"],
            bf16=bf16,
        )
    )
    print(format_table(result))
    return 0


def format_table(result: dict) -> str:
    """The markdown table of `cnnlab bench` (BENCHMARKS.md pastes it as it is)."""
    both = any("bf16_train_images_per_second" in r for r in result["models"])
    titles = [
        _("model"),
        _("params"),
        _("MACs/img"),
        _("train img/s"),
        _("train step ms"),
        _("train GFLOP/s"),
        _("train % roofline"),
        _("infer img/s"),
        _("infer GFLOP/s"),
        _("infer % roofline"),
    ]
    if both:
        titles += [_("train img/s bf16"), _("infer img/s bf16")]
    cols = len(titles)
    head = "| " + " | ".join(titles) + f" |\n|{'---|' * cols}"
    rows = [head]
    for r in result["models"]:
        if "error" in r:
            rows.append(f"| {r['model']} | {r['error']} |" + " |" * (cols - 2))
            continue
        bf16 = (
            f" {r['bf16_train_images_per_second']:,.0f} ({r['bf16_train_speedup']:.2f}x) "
            f"| {r['bf16_infer_images_per_second']:,.0f} ({r['bf16_infer_speedup']:.2f}x) |"
            if both
            else ""
        )
        rows.append(
            f"| {r['model']} | {r['params']:,} | {r['macs']:,} | {r['train_images_per_second']:,.0f} "
            f"| {r['train_step_ms']:.1f} | {r['train_gflops']:.1f} | {r['train_peak_share']:.0%} "
            f"| {r['infer_images_per_second']:,.0f} | {r['infer_gflops']:.1f} | {r['infer_peak_share']:.0%} |{bf16}"
        )
    return "\n".join(rows)
