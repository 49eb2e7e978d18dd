"""argparse's own words ("usage: ", "options", "invalid choice: ...") in the current language.

argparse writes them through its module-level `_` and `ngettext` (gettext's, default domain), looked up
at call time. `in_language()` points those two names at the catalogue's "argparse" section for the span
of building and running a parser, and puts them back afterwards: nothing changes at import time, and a
program that uses argparse itself after calling `cnnlab.cli.main()` gets argparse as it was.

`HelpFormatter` wraps help text by terminal columns: a Hangul syllable takes two, which argparse's own
textwrap (counting characters) does not know, so Korean help would run past the terminal's edge.
"""

import argparse
import re
from collections.abc import Iterator
from contextlib import contextmanager

from cnnlab.i18n import DEFAULT, argparse_word, columns, current


@contextmanager
def in_language() -> Iterator[None]:
    """argparse speaks the current language inside the block (English: nothing is touched)."""
    if current() == DEFAULT:
        yield
        return
    saved = argparse._, argparse.ngettext
    argparse._ = argparse_word
    argparse.ngettext = lambda singular, plural, n: argparse_word(singular if n == 1 else plural)
    try:
        yield
    finally:
        argparse._, argparse.ngettext = saved


def pattern(msgid: str, groups: dict[str, str]) -> re.Pattern:
    """A regex that matches argparse's message `msgid` as written in the current language, with each
    %(name)r / %(name)s / %s field replaced by the regex in `groups` (keyed "name", or "s" for %s)."""
    text = re.escape(argparse_word(msgid))
    for name, group in groups.items():
        field = "%s" if name == "s" else f"%({name})"
        for conversion in ("r", "s") if name != "s" else ("",):
            text = text.replace(re.escape(field + conversion), group)
    return re.compile(text)


def wrap(text: str, width: int) -> list[str]:
    """Words of `text` in lines of at most `width` terminal columns (a longer word gets a line of its own)."""
    lines, line = [], ""
    for word in text.split():
        longer = f"{line} {word}" if line else word
        if line and columns(longer) > width:
            lines.append(line)
            line = word
        else:
            line = longer
    return lines + [line] if line else lines


class HelpFormatter(argparse.HelpFormatter):
    """argparse's formatter, wrapping wide (Hangul) text by columns; text without any is wrapped as before."""

    def _split_lines(self, text: str, width: int) -> list[str]:
        flat = self._whitespace_matcher.sub(" ", text).strip()
        return super()._split_lines(text, width) if columns(flat) == len(flat) else wrap(flat, width)

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        flat = self._whitespace_matcher.sub(" ", text).strip()
        if columns(flat) == len(flat):
            return super()._fill_text(text, width, indent)
        return "\n".join(indent + line for line in wrap(flat, width - len(indent)))


class RawDescriptionHelpFormatter(argparse.RawDescriptionHelpFormatter, HelpFormatter):
    """Description and epilog as written (line by line), option help wrapped by columns."""
