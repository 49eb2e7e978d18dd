"""`cnnlab lr-find`: every `cnnlab train` flag plus the sweep's, then `training.lr_find.lr_find`; prints
the suggested rate (or the whole result as JSON)."""

import json
import sys

from cnnlab.i18n import _


def add_arguments(p) -> None:
    from cnnlab.commands.train import add_arguments as train_arguments

    train_arguments(p)
    p.add_argument("--start-lr", type=float, default=1e-7, help=_("first rate of the sweep (default 1e-7)"))
    p.add_argument("--end-lr", type=float, default=10.0, help=_("last rate of the sweep (default 10)"))
    p.add_argument("--num-steps", type=int, default=100, help=_("optimiser steps in the sweep (default 100)"))
    p.add_argument("--plot", default="lr_find.png", metavar="PNG", help=_("where to draw the curve"))


def run(args) -> int:
    from cnnlab.core.files import output_file
    from cnnlab.training.lr_find import lr_find
    from cnnlab.training.settings import config_from_args, given_fields

    cfg = config_from_args(args)
    # before the sweep: never the weights being read (a run's checkpoint, a .pth), a device or a FIFO
    output_file(args.plot, [cfg.weights])  # read_set skips None
    result = lr_find(
        cfg, given_fields(args), args.start_lr, args.end_lr, args.num_steps, args.plot, args.json
    )
    if args.json:
        print(json.dumps(result))
        return 0
    for lr, loss in list(zip(result["lrs"], result["losses"]))[:: max(1, len(result["lrs"]) // 20)]:
        print(_("lr {lr:9.2e}  loss {loss:.4f}", lr=lr, loss=loss), file=sys.stderr)
    print(
        _(
            "suggested learning rate (valley): {lr:.2e}  (steepest descent: {steepest:.2e}; swept {n} steps; "
            "curve: {path})",
            lr=result["suggestion"],
            steepest=result["steepest"],
            n=len(result["lrs"]),
            path=args.plot,
        )
    )
    return 0
