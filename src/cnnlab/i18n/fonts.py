"""Hangul in pictures: a font that has it, for matplotlib, found when a picture is drawn.

matplotlib's default DejaVu Sans has no Hangul: Korean labels would come out as boxes, with a "Glyph ...
missing" warning each. `hangul_font()` finds a font that has it, in this order: one matplotlib already
knows (Debian's fonts-nanum or fonts-noto-cjk, as scanned into its font cache), the same packages' files
(installed after that cache was built), then the NanumGothic that PyPI's koreanize-matplotlib ships (a
dependency of cnnlab). That package is never imported: its import changes matplotlib's global settings
and needs distutils; only its font file is read, and registered with matplotlib's font manager.

`picture_text()` wraps the building and the drawing of a picture: the fonts set before (matplotlib's
DejaVu Sans, unless a style changed it) come first, so Latin text and digits look as they always did, and
the Hangul font is matplotlib's fallback for the glyphs they lack, through a temporary rc_context, so
nothing global changes. With Korean and no such font at all, the
picture's words fall back to English, with one warning per process.
"""

import importlib.util
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path

from cnnlab.i18n import DEFAULT, _, current, using

FAMILIES = ("NanumGothic", "NanumBarunGothic", "Noto Sans CJK KR", "Noto Sans KR", "Noto Sans CJK JP")
SYSTEM_FILES = (
    "/usr/share/fonts/truetype/nanum/NanumGothic.ttf",  # Debian/Ubuntu fonts-nanum
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",  # Debian/Ubuntu fonts-noto-cjk
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",  # Arch, Fedora
)
_warned = False


def koreanize_file() -> Path | None:
    """The NanumGothic.ttf inside the installed koreanize-matplotlib package, without importing it."""
    try:
        spec = importlib.util.find_spec("koreanize_matplotlib")
    except (ImportError, ValueError):
        return None
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = Path(folder) / "fonts" / "NanumGothic.ttf"
        if path.is_file():
            return path
    return None


@cache
def hangul_font() -> str | None:
    """The family name of a font with Hangul, registered with matplotlib's font manager; None if none."""
    from matplotlib import font_manager

    known = {f.name for f in font_manager.fontManager.ttflist}
    for family in FAMILIES:
        if family in known:
            return family
    for path in (*map(Path, SYSTEM_FILES), koreanize_file()):
        if path is not None and path.is_file():
            font_manager.fontManager.addfont(str(path))
            return font_manager.FontProperties(fname=str(path)).get_name()
    return None


def _fall_back_to_english() -> None:
    global _warned
    if not _warned:
        _warned = True
        warnings.warn(
            _(
                "no font with Hangul found (install fonts-nanum, or pip install koreanize-matplotlib): "
                "picture labels are in English"
            ),
            stacklevel=4,
        )


@contextmanager
def picture_text() -> Iterator[str]:
    """Build or draw a picture inside this block: Hangul renders (yields the language of its words)."""
    from matplotlib import rc_context, rcParams

    family = hangul_font()
    lang = current()
    if family is None:
        if lang != DEFAULT:
            _fall_back_to_english()
        with using(DEFAULT):
            yield DEFAULT
        return
    first = [f for f in rcParams["font.family"] if f != family]
    with rc_context({"font.family": [*first, family]}):
        yield lang
