"""`cnnlab lr-find`: every `cnnlab train` flag plus the sweep's, then `training.lr_find.lr_find`; prints
the suggested rate (or the whole result as JSON)."""

import json
import sys


def add_arguments(p) -> None:
    from cnnlab.commands.train import add_arguments as train_arguments

    train_arguments(p)
    p.add_argument("--start-lr", type=float, default=1e-7, help="first rate of the sweep (default 1e-7)")
    p.add_argument("--end-lr", type=float, default=10.0, help="last rate of the sweep (default 10)")
    p.add_argument("--num-steps", type=int, default=100, help="optimiser steps in the sweep (default 100)")
    p.add_argument("--plot", default="lr_find.png", metavar="PNG", help="where to draw the curve")


def run(args) -> int:
    from cnnlab.training.lr_find import lr_find
    from cnnlab.training.settings import config_from_args, given_fields

    cfg = config_from_args(args)
    result = lr_find(
        cfg, given_fields(args), args.start_lr, args.end_lr, args.num_steps, args.plot, args.json
    )
    if args.json:
        print(json.dumps(result))
        return 0
    for lr, loss in list(zip(result["lrs"], result["losses"]))[:: max(1, len(result["lrs"]) // 20)]:
        print(f"lr {lr:9.2e}  loss {loss:.4f}", file=sys.stderr)
    print(
        f"suggested learning rate (valley): {result['suggestion']:.2e}  (steepest descent: "
        f"{result['steepest']:.2e}; swept {len(result['lrs'])} steps; curve: {args.plot})"
    )
    return 0
