"""`cnnlab eval CHECKPOINT`: `evaluation.evaluate_checkpoint` (what `cnnlab.evaluate(...)` returns),
printed as accuracy, per-class accuracy, the confusion matrix and the worst files, or as JSON."""

import argparse
import sys


def add_arguments(p) -> None:
    p.add_argument("checkpoint", help="run folder (runs/latest), .safetensors file or its .json")
    p.add_argument("--dataset", help="dataset to evaluate on (default: the checkpoint's own)")
    p.add_argument("--data-dir", help="folder holding the dataset files (default: the one the run used)")
    p.add_argument(
        "--batch-size",
        type=int,
        default=1024,
        help="images per forward pass (default 1024; memory, not result)",
    )
    p.add_argument(
        "--tta",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="test-time augmentation, 1-px shifts (default: as the run evaluated)",
    )
    p.add_argument("--plot", metavar="PNG", nargs="?", const="", help="also draw the confusion matrix (PNG)")
    p.add_argument(
        "--worst", type=int, default=10, help="list this many most confidently wrong images (default 10)"
    )
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")


def run(args) -> int:
    from cnnlab.cli import json_text  # strict JSON: never a bare NaN
    from cnnlab.evaluation import draw_confusion, evaluate_checkpoint

    result = evaluate_checkpoint(
        args.checkpoint,
        args.dataset,
        args.data_dir,
        args.batch_size,
        args.tta,
        None,
        not args.json,
        args.worst,
    )
    if not args.json:  # the numbers first: a plot that cannot be written must not lose them
        print_result(result)
    if args.plot is not None:
        try:
            result["plot"] = str(draw_confusion(result, args.plot))
        except Exception:
            if args.json:
                print(json_text(result))
            raise
        if not args.json:
            print(f"confusion matrix picture: {result['plot']}")
    if args.json:
        print(json_text(result))
    return 0


def print_result(result: dict) -> None:
    from cnnlab.data.files import shown  # one line per file, whatever its name holds

    tta = ", with TTA" if result["tta"] else ""
    print(
        f"{result['dataset']} test: accuracy {result['accuracy']:.2%} ({result['correct']}/{result['total']} "
        f"images{tta}, {result['images_per_second']:.0f} images/s)"
    )
    for name, acc in result["per_class"].items():
        print(f"  {name:>12}: {acc:.2%}")
    print(format_confusion(result["confusion"], list(result["per_class"])))
    if result["worst"]:
        print(f"most confidently wrong ({len(result['worst'])}, least probability on the true class first):")
        for w in result["worst"]:
            print(
                f"  {shown(w['file'])}: true {w['true']} ({w['true_probability']:.1%}), "
                f"predicted {w['predicted']} ({w['probability']:.1%})"
            )
    if result.get("skipped"):
        print(f"{len(result['skipped'])} unreadable file(s) were skipped (listed under 'skipped' in --json)")
    sys.stdout.flush()


def format_confusion(conf: list[list[int]], classes: list[str]) -> str:
    """The confusion matrix as a text table: a row per true class, a column per predicted class."""
    names = [c[:6] for c in classes]
    w = max(6, len(str(max((v for row in conf for v in row), default=0))) + 1)
    lines = ["true \\ pred".ljust(12) + "".join(n.rjust(w) for n in names)]
    for name, row in zip(names, conf):
        lines.append(name.ljust(12) + "".join(str(v).rjust(w) for v in row))
    return "\n".join(lines)
