"""README.ko.md is a full Korean README that cannot drift from README.md: the same `## ` sections in the same
order (each heading in Hangul), the same `### ` tasks under "What most people do", every command line of
README.md's bash blocks, a map that names every package folder, and links that resolve (anchors are checked
for every page by tests/test_docs.py)."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EN = (ROOT / "README.md").read_text()
KO = (ROOT / "README.ko.md").read_text()
HANGUL = re.compile(r"[\uac00-\ud7a3]")
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)
COMMAND = re.compile(r"^(cnnlab|make|pip|\.venv/bin/cnnlab) ")
LINK = re.compile(r"!?\[(?:[^\]]|\][^(])*\]\(([^)\s]+)\)")  # [text](target) and ![alt](target)


def headings(text: str, level: str) -> list[str]:
    """The headings of one level, outside code blocks."""
    outside = FENCE.sub("", text)
    return [line[len(level) + 1 :] for line in outside.splitlines() if line.startswith(level + " ")]


def commands(text: str) -> list[str]:
    """The command lines of the ```bash blocks, comments and trailing spaces dropped (the comments are prose
    and are translated; the commands are not)."""
    out = []
    for lang, body in FENCE.findall(text):
        if lang == "bash":
            for line in body.splitlines():
                if COMMAND.match(line):
                    out.append(re.sub(r"\s+#.*$", "", line).rstrip())
    return out


def section(text: str, start: str) -> str:
    """From heading line `start` to the next `## ` heading."""
    body = text[text.index(start) + len(start) :]
    return body[: body.index("\n## ")] if "\n## " in body else body


def test_korean_readme_is_full_and_names_the_chapters_topics():
    lines = [line for line in KO.splitlines() if line.strip()]
    assert len(KO.splitlines()) >= 150 and len(lines) >= 120, "a full README, not a pointer to the English"
    for word in ["폴더", "전이 학습", "미세 조정", "합성곱", "특성 맵", "에폭", "배치"]:
        assert word in KO, word
    # every command speaks Korean now: no sentence may say that some output is "still English"
    still = [s for s in re.split(r"[.!?\n]\s", FENCE.sub("", KO)) if "아직" in s and "영어" in s]
    assert still == [], still


def test_every_section_of_the_english_readme_has_a_korean_counterpart():
    en, ko = headings(EN, "##"), headings(KO, "##")
    assert len(en) >= 6, "README.md's sections not found (is the pattern broken?)"
    assert len(ko) == len(en), f"README.md has {en}, README.ko.md has {ko}: map them one to one, in order"
    assert [h for h in ko if not HANGUL.search(h)] == [], "each Korean heading in Korean"
    # the tasks of "What most people do", one to one as well
    en_tasks = headings(section(EN, "## What most people do"), "###")
    ko_tasks = headings(section(KO, "## " + ko[en.index("What most people do")]), "###")
    assert len(en_tasks) >= 5 and len(ko_tasks) == len(en_tasks), (en_tasks, ko_tasks)
    assert [h for h in ko_tasks if not HANGUL.search(h)] == []


def test_every_command_of_the_english_readme_is_in_the_korean_one():
    en, ko = commands(EN), set(commands(KO))
    assert len(en) >= 15 and "make demo" in en, "README.md's commands not found (is the pattern broken?)"
    missing = [c for c in en if c not in ko]
    assert missing == [], "copy these command lines of README.md's bash blocks into README.ko.md unchanged"


def test_every_command_of_the_english_table_is_in_the_korean_one():
    def table_examples(text):
        return [
            m
            for row in text.splitlines()
            if row.startswith("| `")
            for m in re.findall(r"`(cnnlab [^`]*)`", row)
        ]

    en, ko = table_examples(section(EN, "## Commands")), set(table_examples(KO))
    assert len(en) >= 10
    assert [c for c in en if c not in ko] == []


def test_korean_map_names_every_package_folder():
    folders = [p.name for p in (ROOT / "src" / "cnnlab").iterdir() if (p / "__init__.py").is_file()]
    assert folders and [f for f in folders if f"  {f}/" not in KO] == [], "add a line to README.ko.md's map"


def test_korean_links_resolve_and_reach_the_korean_resources():
    outside = re.sub(r"`[^`\n]*`", "``", FENCE.sub("", KO))
    targets = LINK.findall(outside)
    assert len(targets) >= 15
    broken = [
        t
        for t in targets
        if not re.match(r"[a-z][a-z0-9+.-]*:", t) and not (ROOT / t.partition("#")[0]).exists()
    ]
    assert broken == []
    for korean in ["docs/chapter5.ko.ipynb", "src/cnnlab/i18n/GLOSSARY.md", "README.md"]:
        assert korean in targets, korean
