"""TrainConfig's fields as `cnnlab train` flags: each flag's help is its field's own one-line comment in
config.py (a folder setting's: in data/folder.py's FolderOptions, where it is declared; read from the source
with ast/tokenize, so the comment is the one documentation), grouped by the section comments; choices come from the validation rules; every boolean has --X and --no-X.

In Korean the help comes from the catalogue, keyed by the English comment (cnnlab.i18n: the comments are
messages like any `_()` literal, and the tests fail when one has no translation).

Every flag defaults to None (= not given), so a recipe or a resumed run's config.json fills what the
user did not type (`cnnlab.training.settings.config_from_args`).
"""

import argparse
import ast
import inspect
import io
import tokenize
from dataclasses import MISSING, fields
from functools import lru_cache

from cnnlab.i18n import N_, _
from cnnlab.training import config
from cnnlab.training.config import TrainConfig
from cnnlab.training.validate import RULES

SETTINGS = N_("settings")  # the group of a field with no section comment above it


def class_comments(module, name: str) -> tuple[dict[str, tuple[str, str]], dict[str, str]]:
    """({field: (section, own comment)}, {section: the further comment lines under its title}) of the
    dataclass `name` in `module`, read from its source."""
    try:
        src = inspect.getsource(module)
    except (OSError, TypeError):  # no source shipped: flags still work, with plainer help
        return {}, {}
    lines = src.splitlines()
    comments = {
        t.start[0]: t.string.lstrip("#").strip()
        for t in tokenize.generate_tokens(io.StringIO(src).readline)
        if t.type == tokenize.COMMENT
    }
    cls = next(n for n in ast.parse(src).body if isinstance(n, ast.ClassDef) and n.name == name)
    docs, notes, section, prev_end = {}, {}, "", cls.lineno
    for node in cls.body:
        if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)):
            prev_end = node.end_lineno  # a docstring: not part of the next field's comments
            continue
        # whole-line comments between fields: the first is a section title, any further ones its note
        block = [
            comments[n]
            for n in range(prev_end + 1, node.lineno)
            if n in comments and lines[n - 1].strip().startswith("#")
        ]
        if block:
            section = block[0]
            if block[1:]:
                notes[section] = " ".join(block[1:])
        own = " ".join(comments[n] for n in range(node.lineno, node.end_lineno + 1) if n in comments)
        docs[node.target.id] = (section, own)
        prev_end = node.end_lineno
    return docs, notes


@lru_cache(maxsize=1)
def _comments() -> tuple[dict[str, tuple[str, str]], dict[str, str]]:
    """TrainConfig's comments; a folder setting (`FOLDER.<name>`, no comment of its own) has the comment of
    its declaration in `cnnlab.data.folder.FolderOptions`."""
    from cnnlab.data import folder

    docs, notes = class_comments(config, "TrainConfig")
    folder_docs, _notes = class_comments(folder, "FolderOptions")
    for name, (_section, own) in folder_docs.items():
        if name in docs and not docs[name][1]:
            docs[name] = (docs[name][0], own)
    return docs, notes


def field_docs() -> dict[str, tuple[str, str]]:
    """{field name: (section comment above it, its own comment)} from TrainConfig's source."""
    return _comments()[0]


def section_notes() -> dict[str, str]:
    """{section title: the comment lines under it} (e.g. how --val-split works for image folders)."""
    return _comments()[1]


def _default(f) -> object:
    return f.default if f.default is not MISSING else f.default_factory()  # type: ignore[misc]


def _shown(value: object) -> str:
    if isinstance(value, bool):
        return _("on") if value else _("off")
    if isinstance(value, tuple):
        return " ".join(map(str, value))
    return _("none") if value is None else str(value)


def help_text(name: str, default: object) -> str:
    """The field's comment, its choices and its default, in the current language; '%' escaped for argparse."""
    own = field_docs().get(name, ("", ""))[1]
    parts = [_(own) if own else name.replace("_", " ")]
    rule = RULES.get(name)
    if rule is not None and rule.choices is not None:
        parts.append(_("choices: {names}", names=", ".join(rule.names())))
    elif rule is not None and rule.kind in (int, float):
        parts.append(rule.allowed())
    parts.append(_("default: {value}", value=_shown(default)))
    return "; ".join(parts).replace("%", "%%")


def add_config_arguments(p: argparse.ArgumentParser) -> None:
    """One flag per TrainConfig field, in argument groups named by config.py's section comments."""
    groups: dict[str, argparse._ArgumentGroup] = {}
    for f in fields(TrainConfig):
        section = field_docs().get(f.name, ("",))[0] or SETTINGS
        if section not in groups:
            note = section_notes().get(section)
            groups[section] = p.add_argument_group(_(section), _(note) if note else None)
        group = groups[section]
        flag, default = "--" + f.name.replace("_", "-"), _default(f)
        help_ = help_text(f.name, default)
        rule = RULES.get(f.name)
        kind = rule.kind if rule is not None else type(default)
        if kind is bool:
            group.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=help_)
        elif rule is not None and rule.size:
            metavars = tuple(f"{f.name[0].upper()}{i + 1}" for i in range(rule.size))  # --betas B1 B2
            nargs = rule.size if rule.size > 0 else "+"
            group.add_argument(
                flag, type=kind, nargs=nargs, default=None, metavar=metavars or None, help=help_
            )
        else:
            metavar = "NAME" if rule is not None and rule.choices is not None else None
            group.add_argument(flag, type=kind, default=None, metavar=metavar, help=help_)


def flags_for(values: dict) -> list[str]:
    """The command line that gives these TrainConfig values (None = not given): for re-launching."""
    argv: list[str] = []
    for name, value in values.items():
        flag = "--" + name.replace("_", "-")
        if value is None:
            continue
        if isinstance(value, bool):
            argv.append(flag if value else "--no-" + name.replace("_", "-"))
        elif isinstance(value, (tuple, list)):
            argv += [flag, *map(str, value)]
        else:
            argv += [flag, str(value)]
    return argv
