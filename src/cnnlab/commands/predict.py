"""`cnnlab predict CHECKPOINT IMAGE...`: `prediction.predict_records` (what `cnnlab.predict(...)` returns),
one line per file (or JSON, or a CSV); exit 2 when any file failed, the others still predicted."""

import sys

from cnnlab.i18n import _


def add_arguments(p) -> None:
    p.add_argument(
        "checkpoint",
        help=_(
            "run folder (runs/latest), .safetensors file or its .json; or a model name with "
            "--pretrained/--weights"
        ),
    )
    p.add_argument(
        "images",
        nargs="+",
        help=_(
            "image files, folders (every image below them) or quoted patterns ('photos/**/*.jpg'); "
            "read as the run's own images were (handwriting, photos, ...)"
        ),
    )
    p.add_argument("--top", type=int, default=3, help=_("how many classes to show (default 3)"))
    p.add_argument("--save-input", metavar="DIR", help=_("also save each preprocessed input as PNG here"))
    p.add_argument("--json", action="store_true", help=_("a JSON list on stdout, one record per file"))
    p.add_argument("--csv", metavar="FILE", help=_("also write one row per file to this CSV file"))
    p.add_argument(
        "--pretrained", action="store_true", help=_("CHECKPOINT is a model name: its ImageNet weights")
    )
    p.add_argument(
        "--weights", metavar="FILE", help=_("CHECKPOINT is a model name: weights from this .pth/.safetensors")
    )
    p.add_argument(
        "--classes", metavar="FILE", help=_("class names (one per line or a JSON list) for --weights")
    )


def run(args) -> int:
    """The exit code is 2 when any file failed; the others are still predicted and printed."""
    from contextlib import nullcontext

    from cnnlab.data.files import shown  # one line per file, whatever its name holds
    from cnnlab.i18n import using
    from cnnlab.prediction import predict_records, write_csv

    checkpoint = args.checkpoint
    if args.csv:  # never the checkpoint, a record of its run or an input; before any work
        from cnnlab.core.files import output_file

        output_file(args.csv, [args.checkpoint, args.weights, *args.images])
    if args.pretrained or args.weights:  # a model name: predict from weights alone, no training
        from cnnlab.models.adapt import model_from_weights

        checkpoint = model_from_weights(args.checkpoint, args.pretrained, args.weights, args.classes)
    with (
        using("en") if args.json else nullcontext()
    ):  # JSON values (the errors too) are English in any language
        results = predict_records(checkpoint, args.images, args.top, args.save_input)
    failed = sum("error" in r for r in results)
    if args.csv:
        write_csv(args.csv, results)
    if args.json:
        from cnnlab.cli import json_text  # strict JSON: never a bare NaN

        print(json_text(results))
    else:
        for r in results:
            if "error" in r:
                print(_("cnnlab: error: {message}", message=shown(r["error"])), file=sys.stderr)
                continue
            tops = ", ".join(f"{t['label']} {t['probability']:.1%}" for t in r["top"])
            print(f"{shown(r['file'])}: {r['label']}  ({tops})", file=sys.stdout)
    if args.csv and not args.json:
        print(_("{n} row(s) written to {path}", n=len(results), path=args.csv), file=sys.stderr)
    if failed and len(results) > 1:
        print(_("cnnlab: {failed} of {n} files failed", failed=failed, n=len(results)), file=sys.stderr)
    return 2 if failed else 0
