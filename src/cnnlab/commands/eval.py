"""`cnnlab eval CHECKPOINT`: `evaluation.evaluate_checkpoint` (what `cnnlab.evaluate(...)` returns),
printed as accuracy, per-class accuracy, the confusion matrix and the worst files, or as JSON."""

import argparse
import sys

from cnnlab.i18n import _, columns, pad


def add_arguments(p) -> None:
    p.add_argument("checkpoint", help=_("run folder (runs/latest), .safetensors file or its .json"))
    p.add_argument("--dataset", help=_("dataset to evaluate on (default: the checkpoint's own)"))
    p.add_argument("--data-dir", help=_("folder holding the dataset files (default: the one the run used)"))
    p.add_argument(
        "--batch-size",
        type=int,
        default=1024,
        help=_("images per forward pass (default 1024; memory, not result)"),
    )
    p.add_argument(
        "--tta",
        action=argparse.BooleanOptionalAction,
        default=None,
        help=_("test-time augmentation, 1-px shifts (default: as the run evaluated)"),
    )
    p.add_argument(
        "--plot", metavar="PNG", nargs="?", const="", help=_("also draw the confusion matrix (PNG)")
    )
    p.add_argument(
        "--worst", type=int, default=10, help=_("list this many most confidently wrong images (default 10)")
    )
    p.add_argument("--json", action="store_true", help=_("one JSON object on stdout"))


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
            print(_("confusion matrix picture: {path}", path=result["plot"]))
    if args.json:
        print(json_text(result))
    return 0


def print_result(result: dict) -> None:
    from cnnlab.data.files import shown  # one line per file, whatever its name holds

    fields = dict(
        dataset=result["dataset"],
        accuracy=result["accuracy"],
        correct=result["correct"],
        total=result["total"],
        speed=result["images_per_second"],
    )
    if result["tta"]:
        line = _(
            "{dataset} test: accuracy {accuracy:.2%} ({correct}/{total} images, with TTA, {speed:.0f} images/s)",
            **fields,
        )
    else:
        line = _(
            "{dataset} test: accuracy {accuracy:.2%} ({correct}/{total} images, {speed:.0f} images/s)",
            **fields,
        )
    print(line)
    for name, acc in result["per_class"].items():
        print(f"  {pad(str(name), 12, right=True)}: {acc:.2%}")
    print(format_confusion(result["confusion"], list(result["per_class"])))
    if result["worst"]:
        print(
            _(
                "most confidently wrong ({n}, least probability on the true class first):",
                n=len(result["worst"]),
            )
        )
        for w in result["worst"]:
            # a built-in test set has no files: its images are named test[i] (in JSON: as they are)
            unnamed = w["file"] == f"test[{w['index']}]"
            print(
                "  "
                + _(
                    "{file}: true {true} ({true_p:.1%}), predicted {predicted} ({p:.1%})",
                    file=_("test[{i}]", i=w["index"]) if unnamed else shown(w["file"]),
                    true=w["true"],
                    true_p=w["true_probability"],
                    predicted=w["predicted"],
                    p=w["probability"],
                )
            )
    if result.get("skipped"):
        n = len(result["skipped"])
        print(_("{n} unreadable file(s) were skipped (listed under 'skipped' in --json)", n=n))
    sys.stdout.flush()


def format_confusion(conf: list[list[int]], classes: list[str]) -> str:
    """The confusion matrix as a text table: a row per true class, a column per predicted class."""
    names = [str(c)[:6] for c in classes]
    digits = len(str(max((v for row in conf for v in row), default=0)))
    wide = [columns(n) + 1 for n in names if columns(n) > len(n)]  # Hangul names: two columns a letter
    w = max(6, digits + 1, *wide)
    corner = _("true \\ pred")
    left = max(12, columns(corner) + 1)
    lines = [pad(corner, left) + "".join(pad(n, w, right=True) for n in names)]
    for name, row in zip(names, conf):
        lines.append(pad(name, left) + "".join(str(v).rjust(w) for v in row))
    return "\n".join(lines)
