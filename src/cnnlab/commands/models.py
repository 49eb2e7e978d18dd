"""`cnnlab models`: `inside.summary.model_table`, params and MACs of every registered model, as a table
or JSON."""

import argparse
import json

from cnnlab.commands.summary import add_common
from cnnlab.i18n import _, columns, pad
from cnnlab.inside.summary import DEFAULT_INPUT


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_common(parser, _("input shape the counts are for (default {default})", default=DEFAULT_INPUT))


def run(args: argparse.Namespace) -> int:
    from cnnlab.inside.summary import model_table

    table = model_table(args.input, args.classes, args.width)
    if args.json:
        print(json.dumps(table))
        return 0
    rows = table["models"]
    w = max([len(r["name"]) for r in rows] + [columns(_("Model"))])
    print(
        _(
            "{input} input, {classes} classes, width {width}",
            input="x".join(map(str, table["input_shape"])),
            classes=args.classes,
            width=args.width,
        )
    )
    print(f"{pad(_('Model'), w)}  {pad(_('Params'), 13, True)}  {pad(_('MACs'), 16, True)}")
    for r in rows:
        if "error" in r:
            print(f"{r['name']:<{w}}  " + _("input too small: {error}", error=r["error"]))
        else:
            print(f"{r['name']:<{w}}  {r['params']:>13,}  {r['macs']:>16,}")
    return 0
