"""`cnnlab explain TOPIC [VALUES...]`: `inside.explain.explain_topic` (what `cnnlab.explain(...)` returns),
printed step by step or as JSON."""

import argparse
import json
import re
from dataclasses import fields

from cnnlab.i18n import _
from cnnlab.i18n.argparse_words import RawDescriptionHelpFormatter
from cnnlab.inside.explain import TOPICS
from cnnlab.inside.explain_text import Options

DEFAULTS = Options()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = RawDescriptionHelpFormatter  # the topics table as written; Korean help wrapped
    topics = "\n".join(f"  {name + ' ' + values:<30}{_(what)}" for name, (_f, values, what) in TOPICS.items())
    parser.epilog = _(
        "topics:\n{topics}\n\nWithout values a topic uses the chapter's numbers. Matrices: rows separated"
        ' by ";",\nvalues by "," or spaces, e.g. "1,2,0;0,1,2;2,0,1" (a leading minus sign is fine).',
        topics=topics,
    )
    # Let values such as "-1,1;1,-1" count as values, not unknown options: argparse only treats plain
    # negative numbers that way. A private attribute, hence the guard; "--" before the values always works.
    if hasattr(parser, "_negative_number_matcher"):
        parser._negative_number_matcher = re.compile(r"^-\.?\d")
    parser.add_argument("topic", choices=list(TOPICS), metavar="TOPIC", help=_("one of the topics below"))
    parser.add_argument("values", nargs="*", help=_("the topic's inputs: numbers, matrices or a model name"))
    parser.add_argument("--stride", type=int, help=_("step of the filter/window (default 1; pool: --size)"))
    parser.add_argument(
        "--padding", type=int, default=DEFAULTS.padding, help=_("zero padding for conv/output-size")
    )
    parser.add_argument(
        "--bias", type=float, default=DEFAULTS.bias, help=_("bias added to every conv output cell")
    )
    parser.add_argument("--size", type=int, default=DEFAULTS.size, help=_("pool window size"))
    parser.add_argument("--model", help=_("registered model for output-size (size walk) or parameters"))
    parser.add_argument(
        "--input", default=DEFAULTS.input, help=_("input shape CxHxW for --model (default 1x28x28)")
    )
    parser.add_argument("--layer", help=_("parameters: only this conv layer (a name from the size walk)"))
    parser.add_argument(
        "--target", default=DEFAULTS.target, help=_("cross-entropy target distribution (default 0,1)")
    )
    parser.add_argument("--pred", action="append", help=_("cross-entropy prediction (repeatable)"))
    parser.add_argument("--json", action="store_true", help=_("print one JSON object instead of the steps"))


def run(args: argparse.Namespace) -> int:
    from cnnlab.inside.explain import explain_topic

    ex = explain_topic(args.topic, Options(**{f.name: getattr(args, f.name) for f in fields(Options)}))
    print(json.dumps(ex.as_json()) if args.json else "\n".join(ex.steps))
    return 0
