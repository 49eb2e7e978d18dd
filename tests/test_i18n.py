"""The language catalogues and the translation API: every message the code uses (each `_()` literal, found by
walking src/ with `ast`) has a Korean text with the same {placeholders}; the chapter's terms are used
consistently; the language comes from --lang, else CNNLAB_LANG, else the locale in gettext's order; English
loads nothing."""

import argparse
import ast
import gettext
import json
import re
import subprocess
import sys

import pytest

import cnnlab
from cnnlab.errors import CnnlabError
from cnnlab.i18n import (
    LANGS,
    N_,
    _,
    _n,
    catalog,
    columns,
    current,
    from_environment,
    normalize,
    pad,
    page_catalogue,
    set_language,
    using,
)
from cnnlab.i18n import extract as ex
from cnnlab.i18n.argparse_words import in_language, wrap
from cnnlab.i18n.extract import HERE

KO = {"CNNLAB_LANG": "", "LANGUAGE": "", "LC_ALL": "", "LC_MESSAGES": "", "LANG": "ko_KR.UTF-8"}


@pytest.fixture
def korean():
    with using("ko"):
        yield


# ---------------------------------------------------------------- the catalogues against the code


def test_every_message_of_the_code_is_in_every_catalogue_with_the_same_placeholders():
    used = ex.code_messages()
    assert len(used) > 250 and "cnnlab: error: {message}" in used  # the walk finds the code's messages
    assert "passes over the training set" in used  # TrainConfig's comments: train's --help
    for lang in LANGS[1:]:
        report = ex.problems(lang)
        assert report == {"missing": [], "unused": [], "empty": [], "placeholders": []}, report


def test_the_checker_finds_a_missing_message_a_wrong_placeholder_and_an_unused_entry():
    ko = json.loads((HERE / "ko.json").read_text(encoding="utf-8"))
    ko["messages"].pop("epoch")
    ko["messages"]["Total params: {n:,}"] = "전체 파라미터: {count:,}"  # renamed field
    ko["messages"]["{title}: {count} filters, {n} input channel, {size} each"] = "{title}: 필터 {count}개"
    ko["messages"]["no longer said anywhere"] = "어디에도 없음"
    ko["argparse"]["usage: "] = "사용법 %s"
    report = ex.problems("ko", ko)
    assert report["missing"] == ["epoch"] and report["unused"] == ["no longer said anywhere"]
    wrong = " ".join(report["placeholders"])
    assert "Total params" in wrong and "input channel" in wrong and "usage: " in wrong


def test_the_walk_finds_every_kind_of_marked_literal():
    code = (
        'x = _("a {n}", n=1)\ny = N_("b")\nz = _n("{n} cat", "{n} cats", 2)\n'
        'r = Rule(str, what="thing")\nu = unknown_error("kind", v, names)\nw = f(_(dynamic))\n'
    )
    found = [(m, plural) for m, _line, plural in ex._literals(ast.parse(code))]
    assert sorted(found) == [
        ("a {n}", None),
        ("b", None),
        ("kind", None),
        ("thing", None),
        ("{n} cat", "{n} cats"),
    ]


def test_argparse_words_cover_the_running_python():
    words = catalog("ko")["argparse"]
    for msgid in ex.argparse_messages():
        assert msgid in words, msgid
    core = ("usage: ", "options", "positional arguments", "show this help message and exit")
    core += ("unrecognized arguments: %s", "invalid choice: %(value)r (choose from %(choices)s)")
    core += ("the following arguments are required: %s", "expected one argument")
    assert all(words[m] and words[m] != m for m in core)


def test_every_page_key_in_every_language_with_the_same_fields():
    en = page_catalogue("en")
    for lang in LANGS[1:]:
        other = page_catalogue(lang)
        assert sorted(set(en) ^ set(other)) == []
        for key in en:
            assert ex.fields(en[key]) == ex.fields(other[key]), key
            assert other[key].strip(), f"{lang}: page.{key} is empty"


def test_the_page_script_uses_only_known_keys():
    from cnnlab.serve.app import STATIC

    used = set()
    for js in STATIC.glob("*.js"):
        used |= set(re.findall(r"""\bt\(\s*[`"']([a-z_]+)[`"']""", js.read_text()))
    used |= set(re.findall(r'data-i18n(?:-aria)?="([a-z_]+)"', (STATIC / "index.html").read_text()))
    assert used and used <= set(page_catalogue("en")), sorted(used - set(page_catalogue("en")))


# English term (a regex on the English text; flags and identifiers such as --stride, batch_size are not
# words) -> the chapter's Korean term that every translation of such a text must contain (GLOSSARY.md).
TERMS = {
    r"conv(olution)?s?": "합성곱",
    r"feature maps?": "특성 맵",
    r"pool(ing)?": "풀링",
    r"stride": "스트라이드",
    r"(zero[- ])?padd(ing|ed)": "패딩",
    r"ReLU": "렐루",
    r"softmax": "소프트맥스",
    r"cross[- ]entropy": "교차 엔트로피",
    r"epochs?": "에폭",
    r"batch(es)?": "배치",
    r"filters?": "필터",
    r"kernels?": "커널",
    r"dense|fully connected": "완전 연결",
    r"accuracy": "정확도",
    r"loss(es)?": "손실",
    r"learning rates?": "학습률",
    r"checkpoints?": "체크포인트",
}


def english_terms(text: str) -> list[str]:
    """The glossary's English terms used as words in `text` (not inside flags, names or code)."""
    words = re.sub(
        r"(--|\.|\w=)[\w.-]+|\w+[([][^)\]]*[)\]]|\w+_\w+|`[^`]*`", " ", text
    )  # flags, calls, names
    return [t for t in TERMS if re.search(rf"(?<![\w-]){t}(?![\w-])", words, re.IGNORECASE)]


def test_korean_uses_the_chapters_terms_consistently():
    ko = catalog("ko")
    pairs = list(ko["messages"].items()) + [(page_catalogue("en")[k], v) for k, v in ko["page"].items()]
    wrong = [
        f"{english!r}: {TERMS[t]}"
        for english, korean in pairs
        for t in english_terms(english)
        if TERMS[t] not in korean
    ]
    assert wrong == []
    glossary = (HERE / "GLOSSARY.md").read_text(encoding="utf-8")
    for term in (*TERMS.values(), "합성곱", "특성 맵", "렐루", "평탄화", "검증", "테스트"):
        assert term in glossary, term
    assert english_terms("--batch-size 64, batch_size=2 and stride 2") == [r"stride"]  # flags are not words


# ---------------------------------------------------------------- the API


def test_underscore_formats_named_fields_in_the_current_language(korean):
    assert _("epoch") == "에폭" and _("Total params: {n:,}", n=123456) == "전체 파라미터: 123,456"
    assert _("not a message of cnnlab {x}", x=1) == "not a message of cnnlab 1"  # unknown: the English
    assert _n("{n} MISMATCH", "{n} MISMATCHES", 3) == "불일치 3개"
    assert N_("epoch") == "epoch"
    with using("en"):
        assert _("epoch") == "epoch" and _n("{n} MISMATCH", "{n} MISMATCHES", 1) == "1 MISMATCH"
        assert _n("{n} MISMATCH", "{n} MISMATCHES", 2) == "2 MISMATCHES"
    assert current() == "ko"


def test_english_reads_no_catalogue_and_korean_one_file():
    code = (
        "import cnnlab.i18n as i; i.set_language('en'); i._('epoch'); i._('a {x}', x=1); "
        "assert i.catalog.cache_info().currsize == 0; i.set_language('ko'); assert i._('epoch') == '에폭'; "
        "assert i.catalog.cache_info().currsize == 1; import sys; assert 'torch' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_python_api_takes_lang_and_leaves_the_language_alone():
    before = current()
    s = cnnlab.summary("chapter-cnn", lang="ko")
    assert "전체 파라미터: 123,222" in str(s) and "Total params" not in str(s)
    assert "Total params: 123,222" in str(cnnlab.summary("chapter-cnn", lang="en"))
    steps = cnnlab.explain("output-size", lang="ko")["steps"]
    assert steps[0].startswith("chapter-cnn, 입력 1x28x28") and "값 576개" in steps[-2]
    en = cnnlab.explain("conv", padding=1, lang="en")
    assert en["result"][0] == [7, 12, 10, 2] and "stride 1, padding 1" in en["steps"][0]
    with pytest.raises(CnnlabError, match="알 수 없는 옵션 'paddin'; 혹시 padding인가요"):
        cnnlab.explain("conv", paddin=1, lang="ko")
    with pytest.raises(CnnlabError, match="unknown language 'xx'"):
        cnnlab.summary("chapter-cnn", lang="xx")
    assert current() == before


# ---------------------------------------------------------------- which language


@pytest.mark.parametrize(
    "env, lang",
    [
        ({}, "en"),
        ({"LANG": "ko_KR.UTF-8"}, "ko"),
        ({"LANG": "ko_KR"}, "ko"),
        ({"LANG": "ko"}, "ko"),
        ({"LANG": "C.UTF-8"}, "en"),
        ({"LANG": "fr_FR.UTF-8"}, "en"),  # no catalogue: English
        ({"LC_MESSAGES": "ko_KR.UTF-8", "LANG": "en_US.UTF-8"}, "ko"),  # gettext's order
        ({"LC_ALL": "en_US.UTF-8", "LC_MESSAGES": "ko_KR.UTF-8"}, "en"),
        ({"LANGUAGE": "ko", "LC_ALL": "en_US.UTF-8"}, "ko"),
        ({"LANGUAGE": "fr:ko_KR:en", "LANG": "en_US.UTF-8"}, "ko"),  # the first listed one we have
        ({"LANGUAGE": "", "LANG": "ko_KR.UTF-8"}, "ko"),  # empty = unset
        ({"CNNLAB_LANG": "en", "LANG": "ko_KR.UTF-8"}, "en"),  # CNNLAB_LANG beats the locale
        ({"CNNLAB_LANG": "ko", "LC_ALL": "C"}, "ko"),
        ({"CNNLAB_LANG": "ko_KR.UTF-8"}, "ko"),
        ({"CNNLAB_LANG": "", "LANG": "ko_KR.UTF-8"}, "ko"),
    ],
)
def test_language_from_the_environment(env, lang):
    assert from_environment(env) == lang


def test_a_wrong_cnnlab_lang_is_an_error_and_names_normalise():
    with pytest.raises(CnnlabError, match="CNNLAB_LANG='fr': unknown language; choose one of: en, ko"):
        from_environment({"CNNLAB_LANG": "fr"})
    assert [normalize(v) for v in ("ko_KR.UTF-8", "ko-KR", "KO", "C", "POSIX", "", None)] == [
        "ko",
        "ko",
        "ko",
        "en",
        "en",
        None,
        None,
    ]


def test_set_language_and_using(monkeypatch):
    monkeypatch.setenv("CNNLAB_LANG", "ko")
    try:
        assert set_language() == "ko" and _("loss") == "손실"
        assert set_language("en") == "en" and _("loss") == "loss"
        with using("ko"):
            assert _("loss") == "손실"
        assert _("loss") == "loss"
    finally:
        set_language("en")


def test_argparse_speaks_korean_only_inside_the_block(korean):
    parser = argparse.ArgumentParser(prog="p")
    parser.add_argument("--n", type=int)
    with in_language():
        parser2 = argparse.ArgumentParser(prog="p")
        parser2.add_argument("--n", type=int, choices=[1, 2])
        text = parser2.format_help()
    assert text.startswith("사용법: p [-h]") and "옵션:" in text and "이 도움말을 보여 주고 끝냅니다" in text
    assert argparse._ is gettext.gettext and parser.format_help().startswith("usage: p")


def test_korean_help_is_wrapped_by_terminal_columns():
    assert columns("합성곱 layer") == 12 and pad("층", 4) == "층  " and pad("층", 4, right=True) == "  층"
    assert wrap("합성곱 층의 특성 맵 크기", 11) == ["합성곱 층의", "특성 맵", "크기"]  # 11, 7, 4 columns
    assert wrap("averyveryverylongword x", 5) == ["averyveryverylongword", "x"]
