"""The messages the package uses, found in its source (what Babel's `extract` does for gettext), and a
check of a catalogue against them: `make i18n` (python -m cnnlab.i18n.extract) lists what is missing
from ko.json, what it holds that nothing uses, and placeholders that differ; `--write` adds the missing
ids with an empty text (the tests fail until someone writes it) and drops the unused ones.

Messages are found by walking every .py file under src/cnnlab with `ast`:
- the literal first argument of `_()` and `N_()`, the first two of `_n()` (keyed by the singular);
- the first argument of `unknown()` / `unknown_error()` and `Rule(what=...)`: the kind of name in
  "unknown model 'x'", translated where the message is written (cnnlab.options);
- the one-line field comments and section comments of TrainConfig (the help of `cnnlab train`'s flags);
argparse's own words are every `_()` / `ngettext()` literal of the running Python's argparse module.
"""

import argparse
import ast
import inspect
import json
import string
import sys
from collections.abc import Iterator
from pathlib import Path

from cnnlab.i18n import HERE as FOLDER
from cnnlab.i18n import LANGS

HERE = Path(FOLDER)
PACKAGE = HERE.parent
MARKERS = {"_": (0,), "N_": (0,), "_n": (0,), "unknown": (0,), "unknown_error": (0,)}  # arg positions
KEYWORDS = {"Rule": "what"}  # calls whose keyword argument is a message


def _name(func: ast.expr) -> str | None:
    if isinstance(func, ast.Name):
        return func.id
    return func.attr if isinstance(func, ast.Attribute) else None


def _literals(tree: ast.AST) -> Iterator[tuple[str, int, str | None]]:
    """(msgid, line, plural or None) of every marked literal in `tree`."""
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = _name(node.func)
        for i in MARKERS.get(name, ()):
            if (
                len(node.args) > i
                and isinstance(node.args[i], ast.Constant)
                and isinstance(node.args[i].value, str)
            ):
                plural = node.args[1] if name == "_n" and len(node.args) > 1 else None
                other = plural.value if isinstance(plural, ast.Constant) else None
                yield node.args[i].value, node.lineno, other
        for kw in node.keywords:
            if (
                KEYWORDS.get(name) == kw.arg
                and isinstance(kw.value, ast.Constant)
                and isinstance(kw.value.value, str)
            ):
                yield kw.value.value, node.lineno, None


PLURALS: dict[str, str] = {}  # singular msgid -> its English plural (filled as the source is walked)


def code_messages() -> dict[str, list[str]]:
    """{msgid: ["path:line", ...]} for every message of the package; a plural is listed under its singular
    (its English plural form goes to PLURALS, so both are checked for placeholders)."""
    found: dict[str, list[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        where = path.relative_to(PACKAGE.parent).as_posix()
        for msgid, line, plural in _literals(ast.parse(path.read_text(encoding="utf-8"))):
            found.setdefault(msgid, []).append(f"{where}:{line}")
            if plural is not None:
                PLURALS[msgid] = plural
    for text in config_comments():
        found.setdefault(text, []).append("cnnlab/training/config.py (TrainConfig comment)")
    return found


def config_comments() -> list[str]:
    """TrainConfig's field and section comments: `cnnlab train --help` shows them translated."""
    from cnnlab.training.flags import field_docs, section_notes

    texts = [text for pair in field_docs().values() for text in pair if text]
    return list(dict.fromkeys(texts + list(section_notes().values())))


def argparse_messages() -> list[str]:
    """Every message argparse itself writes through gettext, in the running Python's argparse."""
    found = []
    for node in ast.walk(ast.parse(inspect.getsource(argparse))):
        if isinstance(node, ast.Call) and _name(node.func) in ("_", "ngettext"):
            found += [a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
    return list(dict.fromkeys(found))


def fields(text: str) -> list[tuple[str, str]]:
    """The named {fields} of a str.format template with their format specs, sorted."""
    return sorted(
        (name, spec or "") for _, name, spec, _ in string.Formatter().parse(text) if name is not None
    )


def percent_fields(text: str) -> list[str]:
    """The %-fields of an argparse message: "%(value)r", "%s", sorted."""
    import re

    return sorted(re.findall(r"%(?:\(\w+\))?[rsd]", text))


def problems(lang: str, catalog: dict | None = None) -> dict[str, list[str]]:
    """What is wrong with `lang`'s catalogue (or `catalog`, read from it): missing, unused and empty
    messages, and placeholders that differ from the English."""
    if catalog is None:
        catalog = json.loads((HERE / f"{lang}.json").read_text(encoding="utf-8"))
    messages, words = catalog.get("messages", {}), catalog.get("argparse", {})
    used = code_messages()
    report: dict[str, list[str]] = {"missing": [], "unused": [], "empty": [], "placeholders": []}
    report["missing"] = [m for m in used if m not in messages]
    report["missing"] += [f"argparse: {m}" for m in argparse_messages() if m not in words]
    report["unused"] = [m for m in messages if m not in used]
    report["empty"] = [m for m, t in {**messages, **words}.items() if not t.strip()]
    for msgid, text in messages.items():
        english = [msgid, PLURALS[msgid]] if msgid in PLURALS else [msgid]
        if text.strip() and any(fields(e) != fields(text) for e in english):
            report["placeholders"].append(f"{msgid!r}: {fields(english[0])} vs {fields(text)}")
    for msgid, text in words.items():
        if text.strip() and percent_fields(msgid) != percent_fields(text):
            report["placeholders"].append(
                f"argparse {msgid!r}: {percent_fields(msgid)} vs {percent_fields(text)}"
            )
    return report


def write_missing(lang: str) -> None:
    """Add missing ids with "" (to be written) and drop unused ones, keeping the order of the rest."""
    path = HERE / f"{lang}.json"
    catalog = json.loads(path.read_text(encoding="utf-8"))
    used = code_messages()
    messages = {m: t for m, t in catalog.get("messages", {}).items() if m in used}
    messages.update({m: "" for m in used if m not in messages})
    words = catalog.get("argparse", {})
    words.update({m: "" for m in argparse_messages() if m not in words})
    catalog.update(messages=messages, argparse=words)
    path.write_text(json.dumps(catalog, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m cnnlab.i18n.extract", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--write", action="store_true", help="add missing ids (empty) and drop unused ones")
    args = parser.parse_args(argv)
    bad = 0
    for lang in LANGS[1:]:
        if args.write:
            write_missing(lang)
        for kind, items in problems(lang).items():
            for item in items:
                print(f"{lang}.json {kind}: {item}")
            bad += len(items)
    print(f"{bad} problem(s)" if bad else "catalogues complete", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
