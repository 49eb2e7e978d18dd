"""The `cnnlab` front door: each subcommand is a thin call into the module that owns it.

Every command module exposes `add_arguments(parser)` and `run(args) -> int | None`; with `--json` a
command prints exactly one JSON value on stdout and sends human text to stderr.
"""

import argparse
import errno
import gc
import importlib
import os
import re
import sys

from cnnlab import __version__
from cnnlab.errors import CnnlabError
from cnnlab.options import check_command, did_you_mean

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


def json_text(value) -> str:
    """The one JSON value a `--json` command prints, strict: NaN and Infinity are not JSON (a bare NaN
    breaks every parser but Python's), so a non-finite number is one error line naming where it is."""
    import json

    try:
        return json.dumps(value, allow_nan=False)
    except ValueError:
        from cnnlab.checkpoint import EXIT_BAD_CHECKPOINT  # torch is loaded by now: the result came from it

        raise CnnlabError(
            f"the result is not finite at {_non_finite(value) or '?'} (NaN or infinity, which JSON cannot "
            "hold): the model's outputs are not finite numbers",
            EXIT_BAD_CHECKPOINT,
        ) from None


def _non_finite(value, where: str = "") -> str | None:
    """The path ("[0].probabilities[3]") of the first NaN/inf in a JSON-able value, None if there is none."""
    import math

    if isinstance(value, float):
        return None if math.isfinite(value) else where or "the top"
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for k, v in items:
        found = _non_finite(v, f"{where}.{k}" if isinstance(k, str) else f"{where}[{k}]")
        if found:
            return found.lstrip(".")
    return None


def _module(name: str):
    module, _ = COMMANDS[name]
    return importlib.import_module(module)


class Parser(argparse.ArgumentParser):
    """argparse whose errors are one `cnnlab: error:` line with a "did you mean ...?" for a misspelt
    flag, command or choice (instead of the usage text and no suggestion)."""

    def error(self, message: str):
        hint, prog = suggestion(self, message)
        raise CnnlabError(f"{message}{hint} (see {prog} --help)")


def _options(parser: argparse.ArgumentParser) -> list[tuple[str, str]]:
    """(flag, prog of the parser that has it) for this parser and its subcommands."""
    found = []
    for action in parser._actions:
        found += [(o, parser.prog) for o in action.option_strings if o.startswith("--")]
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found += _options(sub)
    return found


def suggestion(parser: argparse.ArgumentParser, message: str) -> tuple[str, str]:
    """("; did you mean --model?" or "", the prog whose --help to point at) for argparse's `message`."""
    prog = parser.prog
    if message.startswith("unrecognized arguments:"):
        flags = [(f, p) for f, p in _options(parser) if f not in ("--help", "--version")]
        prog = flags[0][1] if flags else prog  # only the chosen command's parser has its options
        words = [w.split("=")[0] for w in message.split(":", 1)[1].split() if w.startswith("--")]
        names = [f for f, _ in flags]
    elif m := re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message):
        words, names = [m.group(1)], re.findall(r"'([^']*)'", m.group(2))
    else:
        return "", prog
    guesses = [g for g in (did_you_mean(w, names) for w in words) if g]
    return (f"; did you mean {' '.join(guesses)}?" if guesses else ""), prog


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    parser = Parser(prog="cnnlab", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"cnnlab {__version__}")
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
        check_command(args.command, args)  # every option's range before any work (cnnlab.options)
        module = _module(args.command)
        runner = getattr(module, f"run_{args.command}", None) or module.run
        code = runner(args)
    except CnnlabError as e:
        for line in str(e).splitlines() or [""]:  # several problems: one line each
            print(f"cnnlab: error: {line}", file=sys.stderr)
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
        if isinstance(e, OSError) and e.errno == errno.ENOSPC:  # a write outside atomic_write (metrics.csv)
            from cnnlab.checkpoint import EXIT_OUT_FULL

            where = f" ({e.filename})" if e.filename else ""
            print(f"cnnlab: error: disk full{where}: {e.strerror}", file=sys.stderr)
            sys.exit(EXIT_OUT_FULL)
        print(
            f"cnnlab: unexpected error: {type(e).__name__}: {e} (set CNNLAB_DEBUG=1 for a traceback)",
            file=sys.stderr,
        )
        sys.exit(1)
    sys.exit(code or 0)


def entry() -> None:
    """The `cnnlab` command and `python -m cnnlab`: main(), then an exit without the last garbage collection.

    Python's shutdown runs a full cyclic collection over every object alive, and with torch imported that
    is a few million: ~0.5 s of every command's wall time (`import torch` alone exits in ~0.6 s; 0.15 s after
    gc.freeze(), BENCHMARKS.md). gc.freeze() puts them out of the collector's reach; the process is ending,
    so the memory goes back to the OS anyway, and every file cnnlab writes is closed before this point.
    Only the command line does this: main() called from Python leaves the caller's collector alone."""
    try:
        main()
    finally:
        gc.freeze()
