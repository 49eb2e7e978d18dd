"""Every human-facing string in English or Korean: one JSON catalogue per language, for the CLI, the pictures
and the web page alike.

    from cnnlab.i18n import _
    print(_("epoch {n}: train loss {loss:.4f}", n=3, loss=0.1234))   # in the current language

The message id is the English text itself (as gettext's msgid): English needs no catalogue and costs nothing,
and the code reads as what it prints. `ko.json` maps each id to its Korean text, with the same named
{placeholders} (str.format, named only; the format spec travels with the name). Its sections:

- "messages": the `_()`, `_n()` and `N_()` ids of the package (found by walking src/ with `ast`: see
  `cnnlab.i18n.extract`, and `make i18n` to list what is missing or no longer used);
- "argparse": argparse's own words ("usage: ", "invalid choice: ..."), %-style as argparse formats them;
- "page": the web page's strings by key (served as /i18n/LANG.json; en.json holds their English).

Why JSON and not gettext .po/.mo: the page is a JavaScript client that needs its strings by key, and
Python needs them by English text; one JSON file per language serves both directly, with no compile
step and no binary .mo that can go stale against its .po. What gettext tooling would check (missing
messages, placeholders that differ, unused entries) tests/test_i18n.py checks. Loading: English reads
nothing; Korean parses one ~70 KB file once, on first use (about 1 ms).

Which language: `set_language()` (the CLI calls it with --lang), else $CNNLAB_LANG, else the locale the
environment gives (LANGUAGE, LC_ALL, LC_MESSAGES, LANG, in gettext's order; "ko_KR.UTF-8", "ko_KR" and
"ko" all mean Korean, and the locale need not be installed), else English. `using(lang)` switches it for
a block (the Python API's `lang=` arguments). The chapter's terms are in GLOSSARY.md beside this file.
"""

import os
import re
import unicodedata
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from functools import cache

from cnnlab.errors import CnnlabError

HERE = os.path.dirname(__file__)  # a str, not a Path: pathlib costs every command ~15 ms of imports
LANGS = ("en", "ko")
DEFAULT = "en"
LOCALE_VARIABLES = ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG")  # gettext's order: the first set one wins

_process: str | None = None  # the process's language once set or resolved (None: not yet)
_block: ContextVar[str | None] = ContextVar("cnnlab_lang", default=None)  # using(lang) inside a block


@cache
def catalog(lang: str) -> dict[str, dict[str, str]]:
    """The catalogue of `lang`: {"messages": {...}, "argparse": {...}, "page": {...}} (en: "page" only)."""
    import json  # only when a catalogue is read: English messages never need it

    with open(os.path.join(HERE, f"{check(lang)}.json"), encoding="utf-8") as f:
        return json.load(f)


def check(lang: str) -> str:
    if lang not in LANGS:
        raise CnnlabError(f"unknown language {lang!r}; choose one of: {', '.join(LANGS)}")
    return lang


def normalize(value: str | None) -> str | None:
    """A locale or language name as a language code: "ko_KR.UTF-8", "ko-KR", "ko" -> "ko"; "C", "POSIX"
    -> "en" (no translation); "" or None -> None; any other name -> its language part ("fr_FR" -> "fr")."""
    if not value or not value.strip():
        return None
    text = value.strip()
    if text in ("C", "POSIX") or text.startswith("C."):
        return DEFAULT
    return re.split(r"[_.@-]", text, maxsplit=1)[0].lower() or None


def from_environment(environ: Mapping[str, str] | None = None) -> str:
    """$CNNLAB_LANG (an unknown value is an error), else the first set locale variable in gettext's order:
    its first listed language we have (LANGUAGE may list several, "fr:ko"), else English."""
    env = os.environ if environ is None else environ
    explicit = env.get("CNNLAB_LANG", "")
    if explicit.strip():
        lang = normalize(explicit)
        if lang not in LANGS:
            raise CnnlabError(
                f"CNNLAB_LANG={explicit!r}: unknown language; choose one of: {', '.join(LANGS)}"
            )
        return lang
    for variable in LOCALE_VARIABLES:
        value = env.get(variable)
        if value:
            listed = [normalize(item) for item in value.split(":")]
            return next((lang for lang in listed if lang in LANGS), DEFAULT)
    return DEFAULT


def set_language(lang: str | None = None) -> str:
    """Set the language of this process ("en" or "ko"); None: from $CNNLAB_LANG or the locale again.
    Returns the language now in use. `cnnlab --lang` and the Python API's `lang=` arguments use this."""
    global _process
    _process = check(lang) if lang is not None else from_environment()
    return _process


def current() -> str:
    """The language messages are written in now: a `using()` block's, else the process's."""
    global _process
    lang = _block.get()
    if lang is not None:
        return lang
    if _process is None:
        _process = from_environment()
    return _process


@contextmanager
def using(lang: str | None) -> Iterator[str]:
    """Messages inside the block are in `lang` (None: unchanged); for the Python API's `lang=` arguments."""
    if lang is None:
        yield current()
        return
    token = _block.set(check(lang))
    try:
        yield lang
    finally:
        _block.reset(token)


def _messages(lang: str) -> dict[str, str]:
    return catalog(lang).get("messages", {})


def _(msgid: str, /, **fields) -> str:
    """`msgid` (English text) in the current language, its named {fields} filled in with str.format.
    Without fields the text is returned as it is (braces need no escaping then)."""
    lang = current()
    text = msgid if lang == DEFAULT else _messages(lang).get(msgid) or msgid
    return text.format(**fields) if fields else text


def _n(singular: str, plural: str, n: int, /, **fields) -> str:
    """A count: English picks `singular` for n == 1, else `plural`; Korean has one form (keyed by
    `singular`). `n` is one of the fields: _n("{n} image", "{n} images", 3) -> "3 images" / "이미지 3장"."""
    lang = current()
    english = singular if n == 1 else plural
    text = english if lang == DEFAULT else _messages(lang).get(singular) or english
    return text.format(n=n, **fields)


def N_(msgid: str, /) -> str:
    """Marks `msgid` as a message without translating it (for tables built at import time): translate
    it with `_(text)` where it is shown. `make i18n` and the tests find N_() literals like _() ones."""
    return msgid


def argparse_word(msgid: str) -> str:
    """argparse's own message `msgid` in the current language (still %-style: argparse formats it)."""
    lang = current()
    return msgid if lang == DEFAULT else catalog(lang).get("argparse", {}).get(msgid) or msgid


def page_catalogue(lang: str) -> dict[str, str]:
    """The web page's strings by key (served as /i18n/LANG.json)."""
    return catalog(lang)["page"]


def columns(text: str) -> int:
    """Terminal columns `text` takes: Hangul (and every East Asian wide character) takes two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def pad(text: str, width: int, right: bool = False) -> str:
    """`text` padded with spaces to `width` terminal columns (on the left with `right`): tables in Korean."""
    fill = " " * max(width - columns(text), 0)
    return fill + text if right else text + fill
