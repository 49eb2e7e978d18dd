"""The language catalogues: every key in every language, with the same {fields}; the chapter's Korean
terms where the page and `cnnlab explain --lang ko` name things; English stays the default."""

import json
import re
import string

import pytest

from cnnlab.errors import CnnlabError
from cnnlab.inside.i18n import LANGS, catalogue, t

FIELD = re.compile(r"\{(\w+)")


def fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


@pytest.mark.parametrize("lang", [lang for lang in LANGS if lang != "en"])
def test_every_key_in_every_language_with_the_same_fields(lang):
    en, other = catalogue("en"), catalogue(lang)
    assert sorted(set(en) - set(other)) == [], f"missing in {lang}.json"
    assert sorted(set(other) - set(en)) == [], "missing in en.json"
    for key in en:
        assert fields(en[key]) == fields(other[key]), key
        assert other[key].strip(), f"{lang}.json: {key} is empty"


def test_the_page_script_uses_only_known_keys():
    from cnnlab.serve.app import STATIC

    used = set()
    for js in STATIC.glob("*.js"):
        used |= set(re.findall(r"""\bt\(\s*[`"']([a-z_]+)[`"']""", js.read_text()))
    used |= set(re.findall(r'data-i18n(?:-aria)?="([a-z_]+)"', (STATIC / "index.html").read_text()))
    known = {k.removeprefix("page.") for k in catalogue("en")}
    assert used and used <= known, sorted(used - known)


def test_korean_uses_the_chapters_terms():
    ko = catalogue("ko")
    text = json.dumps(ko, ensure_ascii=False)
    for term in (
        "합성곱",
        "필터",
        "커널",
        "스트라이드",
        "패딩",
        "특성 맵",
        "풀링",
        "소프트맥스",
        "교차 엔트로피",
    ):
        assert term in text, term
    assert ko["page.kind_conv"] == "합성곱" and ko["page.kind_maxpool"] == "최대 풀링"


def test_t_fills_fields_and_rejects_unknown_languages():
    assert t("en", "page.sure", p="97.5") == "97.5% sure"
    assert t("ko", "page.sure", p="97.5") == "확률 97.5%"
    with pytest.raises(CnnlabError, match="unknown language 'xx'"):
        t("xx", "page.sure", p=1)


def test_explain_in_korean_and_english_by_default(cli):
    ko = cli("explain", "conv", "--padding", "1", "--lang", "ko").stdout
    assert "스트라이드 1, 패딩 1" in ko and "특성 맵 (4x4)" in ko and "일치" in ko
    assert "out[0,0] = " in ko  # the arithmetic itself reads the same in every language
    en = cli("explain", "conv", "--padding", "1").stdout
    assert "stride 1, padding 1" in en and "feature map (4x4)" in en
    j = json.loads(cli("explain", "cross-entropy", "--lang", "ko", "--json").stdout)
    assert j["result"][1] == pytest.approx(1.2040, abs=1e-4) and any("교차 엔트로피" in s for s in j["steps"])
    r = cli("explain", "softmax", "--lang", "xx", check=False)
    assert r.returncode == 2 and "invalid choice: 'xx'" in r.stderr
