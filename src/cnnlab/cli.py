"""The `cnnlab` front door: each subcommand is a thin call into the module that owns it.

Every command module exposes `add_arguments(parser)` and `run(args) -> int | None`; with `--json` a
command prints exactly one JSON value on stdout and sends human text to stderr.
"""

import argparse
import importlib
import os
import sys

from cnnlab.errors import CnnlabError

# subcommand -> (module, one-line help). Modules are imported only when their command runs.
COMMANDS = {
    "train": ("cnnlab.training.cli", "train a model (the chapter's experiment by default)"),
    "lr-find": ("cnnlab.training.lr_find", "learning-rate range test: loss vs. rate, a suggested rate"),
    "eval": ("cnnlab.evaluate", "accuracy, per-class accuracy and confusion matrix of a checkpoint"),
    "predict": ("cnnlab.predict", "top-3 classes for image files, MNIST-style preprocessing"),
    "models": ("cnnlab.inside.summary", "list registered models with params and MACs"),
    "summary": ("cnnlab.inside.summary", "layer table: output shapes, params, multiply-adds"),
    "explain": ("cnnlab.inside.explain", "the chapter's computations, step by step"),
    "plot": (
        "cnnlab.inside.plot_cli",
        "pictures: curves, confusion, top losses, samples, filters, feature maps",
    ),
    "bench": ("cnnlab.bench", "train/inference throughput of registered models"),
    "serve": ("cnnlab.serve.app", "web page + prediction API for a checkpoint"),
    "export": ("cnnlab.export", "export a checkpoint to ONNX and check it with onnxruntime"),
}


def _module(name: str):
    module, _ = COMMANDS[name]
    return importlib.import_module(module)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cnnlab", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, help_) in COMMANDS.items():
        p = sub.add_parser(name, help=help_, description=help_)
        if name == command:
            adder = getattr(_module(name), f"add_{name}_arguments", None) or _module(name).add_arguments
            adder(p)
    return parser


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    command = next((a for a in argv if not a.startswith("-")), None)
    try:
        parser = build_parser(command if command in COMMANDS else None)
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            sys.exit(0)
        module = _module(args.command)
        runner = getattr(module, f"run_{args.command}", None) or module.run
        code = runner(args)
    except CnnlabError as e:
        print(f"cnnlab: error: {e}", file=sys.stderr)
        sys.exit(e.exit_code)
    except BrokenPipeError:  # `cnnlab ... | head` closed the pipe: not an error worth a message
        sys.stderr.close()
        sys.exit(0)
    except KeyboardInterrupt:
        print("cnnlab: interrupted", file=sys.stderr)
        sys.exit(130)
    except Exception as e:  # last resort: one readable line; CNNLAB_DEBUG=1 shows the traceback
        if os.environ.get("CNNLAB_DEBUG"):
            raise
        print(
            f"cnnlab: unexpected error: {type(e).__name__}: {e} (set CNNLAB_DEBUG=1 for a traceback)",
            file=sys.stderr,
        )
        sys.exit(1)
    sys.exit(code or 0)
