"""`cnnlab summary MODEL`: `inside.summary.summary_of` (what `cnnlab.summary(...)` returns) as the layer
table or JSON; exit 1 when the size formula and PyTorch disagree on a layer (a bug, named on stderr)."""

import argparse
import json
import sys

from cnnlab.i18n import _
from cnnlab.inside.summary import DEFAULT_INPUT


def add_common(parser: argparse.ArgumentParser, input_help: str) -> None:
    """The flags `cnnlab summary` and `cnnlab models` share."""
    parser.add_argument("--input", default=DEFAULT_INPUT, metavar="CxHxW", help=input_help)
    parser.add_argument(
        "--classes", type=int, default=10, help=_("number of classes (default 10; ImageNet 1000)")
    )
    parser.add_argument("--width", type=float, default=1.0, help=_("channel-width multiplier (default 1.0)"))
    parser.add_argument("--json", action="store_true", help=_("print one JSON object on stdout"))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "model",
        help=_("registry name (see `cnnlab models`), or a run folder / checkpoint: its model and input"),
    )
    add_common(
        parser,
        _(
            "input shape, e.g. 3x224x224 (default {default}); > 64 px selects the ImageNet form",
            default=DEFAULT_INPUT,
        ),
    )


def run(args: argparse.Namespace) -> int:
    from cnnlab.inside.summary import format_table, summary_of

    s, about = summary_of(args.model, args.input, args.classes, args.width)
    if args.json:
        print(json.dumps({**about, **s.to_json()}))
    else:
        print(format_table(s.model, s))
    for m in s.mismatches:  # the formula and PyTorch disagree: a bug in the model or in cnnlab.core.sizes
        print(_("cnnlab: BUG: {problem}", problem=m), file=sys.stderr)
    return 1 if s.mismatches else 0
