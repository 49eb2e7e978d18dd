"""The `cnnlab` command: parse, settle the language, run one command module, turn errors into one line.

Every command is a module of `cnnlab.commands` (listed in COMMANDS) with `add_arguments(parser)` and
`run(args) -> int`; with `--json` a command prints exactly one JSON value on stdout and sends human text
to stderr. The commands call the same library functions as the Python API (`cnnlab.__init__`).

Language: help texts are translated when the parsers are built, so the language is settled first, from
argv's `--lang` (every command has it) or else the environment (`cnnlab.i18n.from_environment`);
argparse's own words follow it (`cnnlab.i18n.argparse_words`), and so does the `cnnlab: error:` line.
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
from cnnlab.i18n import DEFAULT, LANGS, N_, _, set_language
from cnnlab.i18n.argparse_words import HelpFormatter, in_language, pattern
from cnnlab.options import check_command, did_you_mean

DESCRIPTION = N_("Train, measure, look inside and serve convolutional image classifiers (CNNs).")

# subcommand -> (module, one-line help). Modules are imported only when their command runs.
COMMANDS = {
    "train": ("cnnlab.commands.train", N_("train a model (the chapter's experiment by default)")),
    "lr-find": ("cnnlab.commands.lr_find", N_("learning-rate range test: loss vs. rate, a suggested rate")),
    "eval": ("cnnlab.commands.eval", N_("accuracy, per-class accuracy and confusion matrix of a checkpoint")),
    "predict": (
        "cnnlab.commands.predict",
        N_("top classes for image files, folders or patterns, read as the run's images were"),
    ),
    "models": ("cnnlab.commands.models", N_("list registered models with params and MACs")),
    "summary": ("cnnlab.commands.summary", N_("layer table: output shapes, params, multiply-adds")),
    "explain": ("cnnlab.commands.explain", N_("the chapter's computations, step by step")),
    "plot": (
        "cnnlab.commands.plot",
        N_("pictures: curves, confusion, top losses, samples, filters, feature maps"),
    ),
    "bench": ("cnnlab.commands.bench", N_("train/inference throughput of registered models")),
    "serve": ("cnnlab.commands.serve", N_("web page + prediction API for a checkpoint")),
    "export": ("cnnlab.commands.export", N_("export a checkpoint to ONNX and check it with onnxruntime")),
}
LANG_FLAGS = ("--lang", "--lan")  # --lan: argparse accepts an unambiguous abbreviation, so must the pre-scan


def json_text(value) -> str:
    """The one JSON value a `--json` command prints, strict: NaN and Infinity are not JSON (a bare NaN
    breaks every parser but Python's), so a non-finite number is one error line naming where it is."""
    import json

    try:
        return json.dumps(value, allow_nan=False)
    except ValueError:
        from cnnlab.errors import EXIT_BAD_CHECKPOINT  # torch is loaded by now: the result came from it

        raise CnnlabError(
            _(
                "the result is not finite at {where} (NaN or infinity, which JSON cannot hold): the model's "
                "outputs are not finite numbers",
                where=_non_finite(value) or "?",
            ),
            EXIT_BAD_CHECKPOINT,
        ) from None


def _non_finite(value, where: str = "") -> str | None:
    """The path ("[0].probabilities[3]") of the first NaN/inf in a JSON-able value, None if there is none."""
    import math

    if isinstance(value, float):
        return None if math.isfinite(value) else where or _("the top")
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for k, v in items:
        found = _non_finite(v, f"{where}.{k}" if isinstance(k, str) else f"{where}[{k}]")
        if found:
            return found.lstrip(".")
    return None


def _module(name: str):
    module, _help = COMMANDS[name]
    return importlib.import_module(module)


def scan(argv: list[str]) -> tuple[str | None, str | None]:
    """(the --lang value, the command) from argv before it is parsed: the language must be known before the
    parsers are built (their help is translated then), and only the command's own parser is built in full."""
    lang = command = None
    words = iter(argv)
    for word in words:
        if word == "--":
            break
        if word in LANG_FLAGS:
            lang = next(words, None)
        elif word.startswith(tuple(f + "=" for f in LANG_FLAGS)):
            lang = word.split("=", 1)[1]
        elif command is None and not word.startswith("-"):
            command = word
    return lang, command


class Parser(argparse.ArgumentParser):
    """argparse whose errors are one `cnnlab: error:` line with a "did you mean ...?" for a misspelt
    flag, command or choice (instead of the usage text and no suggestion)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", HelpFormatter)  # Korean help wrapped by terminal columns
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        hint, prog = suggestion(self, message)
        raise CnnlabError(_("{message}{hint} (see {prog} --help)", message=message, hint=hint, prog=prog))


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
    prog = parser.prog  # argparse's message is in the current language: matched as that language writes it
    unrecognized = pattern("unrecognized arguments: %s", {"s": "(.*)"}).search(message)
    choice = pattern(
        "invalid choice: %(value)r (choose from %(choices)s)", {"value": "'([^']*)'", "choices": "(.*)"}
    )
    if unrecognized:
        flags = [(f, p) for f, p in _options(parser) if f not in ("--help", "--version", "--lang")]
        prog = flags[0][1] if flags else prog  # only the chosen command's parser has its options
        words = [w.split("=")[0] for w in unrecognized.group(1).split() if w.startswith("--")]
        names = [f for f, _prog in flags]
    elif m := choice.search(message):
        words, names = [m.group(1)], re.findall(r"'([^']*)'", m.group(2))
    else:
        return "", prog
    guesses = [g for g in (did_you_mean(w, names) for w in words) if g]
    return (_("; did you mean {guesses}?", guesses=" ".join(guesses)) if guesses else ""), prog


def _add_lang(parser: argparse.ArgumentParser) -> None:
    """--lang on `parser` and on every parser under it (`cnnlab plot curves RUN --lang ko` too). Its value was
    already used by `scan()`; argparse checks it and shows it in --help."""
    parser.add_argument(
        "--lang",
        choices=LANGS,
        default=argparse.SUPPRESS,
        help=_("language of messages, help and pictures: en or ko (default: $CNNLAB_LANG, else the locale)"),
    )
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                _add_lang(sub)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser, in the current language; only `command`'s own arguments are added (imports its module)."""
    parser = Parser(prog="cnnlab", description=_(DESCRIPTION))
    parser.add_argument(
        "--version", action="version", version=f"cnnlab {__version__}", help=_("show the version and exit")
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title=_("commands"))
    for name, (_module_name, help_) in COMMANDS.items():
        p = sub.add_parser(name, help=_(help_), description=_(help_))
        if name == command:
            _module(name).add_arguments(p)
    _add_lang(parser)
    return parser


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    try:
        lang, command = scan(argv)
        try:  # a wrong --lang: argparse says so below, in the environment's language
            set_language(lang if lang in LANGS else None)
        except CnnlabError:  # a wrong CNNLAB_LANG: said in English
            set_language(DEFAULT)
            raise
        with in_language():
            parser = build_parser(command if command in COMMANDS else None)
            args = parser.parse_args(argv)
            if args.command is None:
                parser.print_help()
                sys.exit(0)
        check_command(args.command, args)  # every option's range before any work (cnnlab.options)
        code = _module(args.command).run(args)
    except CnnlabError as e:
        for line in str(e).splitlines() or [""]:  # several problems: one line each
            print(_("cnnlab: error: {message}", message=line), file=sys.stderr)
        sys.exit(e.exit_code)
    except BrokenPipeError:  # `cnnlab ... | head` closed the pipe: not an error worth a message
        sys.stderr.close()
        sys.exit(0)
    except KeyboardInterrupt:
        print(_("cnnlab: interrupted"), file=sys.stderr)
        sys.exit(130)
    except Exception as e:  # last resort: one readable line; CNNLAB_DEBUG=1 shows the traceback
        if os.environ.get("CNNLAB_DEBUG"):
            raise
        if isinstance(e, OSError) and e.errno == errno.ENOSPC:  # a write outside atomic_write (metrics.csv)
            from cnnlab.core.files import write_error
            from cnnlab.errors import EXIT_OUT_FULL

            line = str(write_error(e.filename, e)) if e.filename else str(e.strerror)
            print(_("cnnlab: error: {message}", message=line), file=sys.stderr)
            sys.exit(EXIT_OUT_FULL)
        print(
            _(
                "cnnlab: unexpected error: {kind}: {error} (set CNNLAB_DEBUG=1 for a traceback)",
                kind=type(e).__name__,
                error=e,
            ),
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
