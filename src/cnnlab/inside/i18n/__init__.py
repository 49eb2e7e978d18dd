"""The strings of the page and of `cnnlab explain`, one JSON catalogue per language (en.json, ko.json).

Keys are flat: "page.*" for the web page (served as /i18n/LANG.json), "explain.*" for `cnnlab explain
--lang`. Templates use {name} fields (str.format on the Python side, the same syntax in app.js). Korean
uses the chapter's own terms: 합성곱, 필터/커널, 스트라이드, 패딩, 특성 맵, 풀링, 소프트맥스, 교차 엔트로피.
tests/test_i18n.py fails when a key exists in one catalogue and not in another.
"""

import json
from functools import cache
from pathlib import Path

from cnnlab.errors import CnnlabError

HERE = Path(__file__).parent
LANGS = ("en", "ko")
DEFAULT = "en"


@cache
def catalogue(lang: str) -> dict[str, str]:
    if lang not in LANGS:
        raise CnnlabError(f"unknown language {lang!r}; choose one of: {', '.join(LANGS)}")
    return json.loads((HERE / f"{lang}.json").read_text(encoding="utf-8"))


def page_catalogue(lang: str) -> dict[str, str]:
    """The page's strings, without their "page." prefix."""
    return {k[5:]: v for k, v in catalogue(lang).items() if k.startswith("page.")}


def t(lang: str, key: str, **fields) -> str:
    """The string `key` in `lang` with its {fields} filled in (English if `lang` lacks it)."""
    text = catalogue(lang).get(key) or catalogue(DEFAULT)[key]
    return text.format(**fields) if fields else text
