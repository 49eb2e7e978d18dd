"""`cnnlab train` and `cnnlab lr-find` in Korean (issue 23): under LANG=ko_KR.UTF-8 (CNNLAB_LANG unset) every
line a person reads -- the data line, the run folder, "training ... on ...", epoch lines, done, curves, the
folder recipe, lr-find's sweep, every --help option and group, the one-line errors of resume, --overwrite,
a taken run folder, an unwritable one and a full disk -- is Korean with no English message word left; the
same commands with --lang en print the English they always printed. An AST walk of the training files fails
on a message literal that is not passed through `_()`."""

import ast
import re
import shutil
import sys
from pathlib import Path

import pytest

from cnnlab.i18n import _, using

sys.path.insert(0, str(Path(__file__).parent))
from folder_images import make_folder, mnist_sample_test  # noqa: E402

KO = {"CNNLAB_LANG": "", "LANGUAGE": "", "LC_ALL": "", "LC_MESSAGES": "", "LANG": "ko_KR.UTF-8"}
HANGUL = re.compile(r"[가-힣]")
# English message words that must not survive in a Korean line (names, paths and flags are removed first)
ENGLISH = {
    "accuracy", "acc", "epoch", "epochs", "loss", "images", "image", "error", "train", "training", "test",
    "skipped", "file", "files", "folder", "saved", "done", "curves", "data", "classes", "because", "read",
    "run", "batch", "process", "settings", "suggested", "learning", "rate", "steps", "mean", "std", "grey",
    "handwriting", "photos", "resume", "resuming", "exists", "already", "holds", "writable", "free", "need",
    "weights", "cannot", "must", "use", "steepest", "lr", "note", "warning", "not", "the", "and",
}  # fmt: skip
# names that stay as they are in both languages
NAMES = {
    "MNIST",
    "RGB",
    "MiB",
    "cpu",
    "fp32",
    "bf16",
    "adam",
    "onecycle",
    "EMA",
    "pid",
    "RUN",
    "ROOT",
    "FILE",
}
QUICK = (
    "--limit-train",
    "512",
    "--limit-test",
    "256",
    "--batch-size",
    "64",
)  # the same lines as a whole run, in seconds


def english_words(text: str) -> set[str]:
    """Words of `text` from the ENGLISH list once names, flags, paths, shapes and numbers are removed."""
    text = re.sub(r"\(\w*(Error|Exception)\b[^)]*\)", " ", text)  # a library's own words (Pillow's), quoted
    text = re.sub(r"\S*[._\-/=]\S*|\w*\d\w*", " ", text)
    return {w for w in re.findall(r"[A-Za-z]{2,}", text) if w.lower() in ENGLISH and w not in NAMES}


def korean_lines(text: str, allowed: tuple[str, ...] = ()) -> list[str]:
    """The lines of `text`; fails on one with no Hangul or with an English message word."""
    lines = [line for line in text.splitlines() if line.strip()]
    for line in lines:
        if any(line.startswith(a) for a in allowed) or re.fullmatch(r"\s*\S+(\s+\d+)+\s*", line):
            continue  # a class table's row: a class name (the user's) and counts, nothing to translate
        assert HANGUL.search(line), f"not Korean: {line!r}"
        assert not english_words(line), f"English words {english_words(line)} in {line!r}"
    return lines


# ---------------------------------------------------------------- train and lr-find end to end


def test_train_prints_only_korean_and_english_with_lang_en(cli, tmp_path):
    r = cli(
        "train", "--dataset", "mnist-sample", "--epochs", "1", "--out", "r1", *QUICK, env=KO, cwd=tmp_path
    )
    lines = korean_lines(r.stdout + r.stderr)
    assert lines[0].startswith(
        "데이터: 클래스 10개 (0, 1, 2, 3, 4, 5, 6, 7, 8, 9); 1x28x28 흑백; 손글씨로 읽음"
    )
    assert "이유: mnist-sample은(는) 손글씨임" in lines[0]
    assert "실행 폴더: r1" in lines
    assert any(
        line.startswith("mnist-sample로 chapter-cnn 학습: 학습 이미지 512장 / 테스트 이미지 256장")
        for line in lines
    )
    assert any(
        re.match(r"에폭   1: 학습 손실 \d\.\d{4}, 테스트 손실 \d\.\d{4}, 테스트 정확도 ", line)
        for line in lines
    )
    assert any(
        re.match(r"완료: r1/best\.safetensors \(에폭 1\): 테스트 정확도 [\d.]+% \(이미지 256장\)", line)
        for line in lines
    )
    assert "곡선: r1/curves.png" in lines
    en = cli(
        "train",
        "--dataset",
        "mnist-sample",
        "--epochs",
        "1",
        "--out",
        "e1",
        *QUICK,
        "--lang",
        "en",
        env=KO,
        cwd=tmp_path,
    )
    out = en.stdout + en.stderr
    assert not HANGUL.search(out)
    assert (
        "data: 10 classes (0, 1, 2, 3, 4, 5, 6, 7, 8, 9); 1x28x28 grey; read as handwriting (ink centred"
        in out
    )
    assert "because mnist-sample is handwriting; mean 0.131, std 0.308" in out
    assert (
        "run folder: e1\ntraining chapter-cnn on mnist-sample: 512 train / 256 test images, 1 epochs, batch 64"
        in out
    )
    assert re.search(
        r"epoch   1: train loss \d\.\d{4}, test loss \d\.\d{4}, test acc [\d.]+%, \d+ img/s, [\d.]+s", out
    )
    assert re.search(r"done: e1/best\.safetensors \(epoch 1\): test acc [\d.]+% on 256 images; [\d.]+s", out)
    assert "curves: e1/curves.png" in out


def test_train_epochs_0_and_bad_combinations_are_korean_errors(cli, tmp_path):
    r = cli("train", "--epochs", "0", check=False, env=KO, cwd=tmp_path)
    assert r.returncode == 2 and r.stderr.startswith("cnnlab: 오류: ")
    korean_lines(r.stderr)
    bad = ("train", "--patience", "2", "--warmup-epochs", "20", "--epochs", "5", "--channels", "2")
    r = cli(*bad, check=False, env=KO, cwd=tmp_path)
    assert r.returncode == 2 and len(r.stderr.splitlines()) >= 3  # every problem, one line each
    assert "--warmup-epochs 20: 실행(--epochs 5 에폭)보다 짧아야 합니다" in r.stderr
    assert "--patience 2: 조기 종료는 검증 정확도를 보므로 --val-split > 0 이 필요합니다" in r.stderr
    korean_lines(r.stderr)
    en = cli(*bad, "--lang", "en", check=False, env=KO, cwd=tmp_path)
    assert (
        "--warmup-epochs 20: must be shorter than the run (--epochs 5); the learning rate would" in en.stderr
    )
    assert not HANGUL.search(en.stderr)


def test_resume_with_overwrite_is_a_korean_error():
    from cnnlab.errors import CnnlabError
    from cnnlab.training.config import TrainConfig

    with using("ko"), pytest.raises(CnnlabError) as e:
        TrainConfig(dataset="mnist-sample", resume=True, overwrite=True)
    assert (
        str(e.value)
        == "--resume과 --overwrite는 함께 쓸 수 없습니다: --out의 실행을 이어 가거나, 바꾸거나 중 하나입니다"
    )
    with pytest.raises(CnnlabError, match="--resume and --overwrite exclude each other"):
        TrainConfig(dataset="mnist-sample", resume=True, overwrite=True)


def test_run_folder_errors_are_korean_with_their_exit_codes(cli, tmp_path):
    args = ("train", "--dataset", "mnist-sample", "--epochs", "1", "--max-steps", "1", "--limit-test", "64")
    cli(*args, "--out", "r1", env=KO, cwd=tmp_path)
    taken = cli(*args, "--out", "r1", check=False, env=KO, cwd=tmp_path)  # a run is there
    assert taken.returncode == 6
    assert (
        "cnnlab: 오류: --out r1에 이미 실행이 있습니다; 이어서 하려면 --resume, 바꾸려면 --overwrite를 쓰세요"
        in taken.stderr
    )
    (tmp_path / "afile").write_text("x")
    notdir = cli(*args, "--out", "afile", check=False, env=KO, cwd=tmp_path)  # exit 4: not a folder
    assert notdir.returncode == 4 and "--out afile: 이미 있고 폴더가 아닙니다" in notdir.stderr
    missing = cli("train", "--resume", "--out", "nothere", check=False, env=KO, cwd=tmp_path)
    assert missing.returncode == 2 and "--resume: nothere이(가) 없습니다" in missing.stderr
    finished = cli("train", "--resume", "--out", "r1", "--epochs", "1", env=KO, cwd=tmp_path)
    assert "r1의 실행은 이미 끝났습니다; 더 학습할 것이 없습니다" in finished.stdout
    shorter = cli(
        "train",
        "--resume",
        "--out",
        "r1",
        "--max-steps",
        "0",
        "--lr",
        "0.1",
        check=False,
        env=KO,
        cwd=tmp_path,
    )
    assert (
        shorter.returncode == 2
        and "다른 설정으로 저장되었습니다: --lr 0.1 (저장된 값: 0.0002)" in shorter.stderr
    )
    for r in (taken, notdir, missing, shorter):
        korean_lines(r.stderr)
    en = cli(*args, "--out", "r1", "--lang", "en", check=False, env=KO, cwd=tmp_path)
    assert (
        "--out r1 already holds a run; use --resume to continue it or --overwrite to replace it" in en.stderr
    )


def test_a_full_disk_and_a_taken_lock_are_korean(tmp_path, monkeypatch):
    """The disk check and the lock's owner in Korean (in process: a full disk cannot be made for a test)."""
    import torch

    from cnnlab.errors import EXIT_OUT_FULL, CnnlabError
    from cnnlab.training import resume, runs
    from cnnlab.training.config import TrainConfig

    monkeypatch.setattr(resume.shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(1, 1, 1024))
    with using("ko"), pytest.raises(CnnlabError) as e:
        resume.check_free_space(tmp_path, TrainConfig(dataset="mnist-sample"), torch.nn.Linear(100, 100))
    assert e.value.exit_code == EXIT_OUT_FULL
    assert str(e.value).startswith(
        f"--out {tmp_path}: 남은 공간이 0.0 MiB뿐입니다. 이 실행의 체크포인트에는 약"
    )
    with using("ko"):
        assert runs._owner(tmp_path / "nothing") == "소유자 알 수 없음"


def test_lr_find_in_korean_and_english(cli, tmp_path):
    args = (
        "lr-find",
        "--dataset",
        "mnist-sample",
        "--num-steps",
        "20",
        "--limit-train",
        "512",
        "--batch-size",
        "32",
    )
    r = cli(*args, env=KO, cwd=tmp_path)
    lines = korean_lines(r.stdout + r.stderr)
    assert lines[1].startswith(
        "lr-find: chapter-cnn을(를) 28x28 (채널 1개)로 mnist-sample의 이미지 512장에서 학습"
    )
    assert sum(line.startswith("학습률 ") and "  손실 " in line for line in lines) >= 10
    assert re.search(
        r"추천 학습률 \(골짜기 valley\): [\d.e+-]+ {2}\(가장 가파르게 내려가는 곳: .*; 20 스텝 탐색; 곡선: lr_find.png\)",
        r.stdout,
    )
    en = cli(*args, "--lang", "en", env=KO, cwd=tmp_path)
    assert not HANGUL.search(en.stdout + en.stderr)
    assert re.search(
        r"suggested learning rate \(valley\): \S+  \(steepest descent: \S+; swept 20 steps; curve: lr_find.png\)",
        en.stdout,
    )
    assert re.search(r"lr  1\.00e-07  loss \d\.\d{4}", en.stderr)


def test_a_folder_run_says_its_recipe_and_notes_in_korean(cli, tmp_path):
    x, y = mnist_sample_test(12)
    make_folder(tmp_path / "digits", x, y, [str(i) for i in range(10)])  # with a broken PNG among them
    shutil.copy(tmp_path / "digits" / "3" / "0000.png", tmp_path / "digits" / "3" / "copy.png")  # a duplicate
    r = cli("train", "--dataset", "digits", "--epochs", "1", "--out", "r1", env=KO, cwd=tmp_path)
    out = r.stdout + r.stderr
    assert "레시피가 없어 학습 이미지 100장(손글씨) 폴더에 맞춘 설정: fastnet-bn, 배치 32로 " in out
    assert "이유: 클래스 이름이 숫자(0..9)이고 이미지가 흑백임" in out
    # the folder's own notes (table, skipped files, duplicates) come from cnnlab.data, translated in its
    # files: all lines are checked once their messages are in the catalogue, until then the training lines
    with using("ko"):
        notes_translated = _("{n} file(s) skipped; list in {path}") != "{n} file(s) skipped; list in {path}"
    if notes_translated:
        korean_lines(out, allowed=("class ", "total "))
    else:
        mine = ("레시피가", "데이터:", "실행 폴더", "폴더로", "에폭", "완료:", "곡선:")
        korean_lines("\n".join(line for line in out.splitlines() if line.startswith(mine)))
    en = cli(
        "train", "--dataset", "digits", "--epochs", "1", "--out", "en", "--lang", "en", env=KO, cwd=tmp_path
    )
    assert not HANGUL.search(en.stdout + en.stderr)
    assert (
        "settings for a folder of 100 training images (handwriting), as no recipe was given: fastnet-bn"
        in en.stdout
    )
    assert "because the class names are digits (0..9) and the images are grey" in en.stdout


# ---------------------------------------------------------------- --help


@pytest.mark.parametrize("command", ["train", "lr-find"])
def test_every_option_and_group_has_korean_help(cli, command):
    text = cli(command, "--help", env=KO).stdout
    body = text[text.index("\n\n") :]
    entries = re.split(r"\n(?=  -)", body)  # one entry per option, its help wrapped onto further lines
    options = [e for e in entries if e.startswith("  -")]
    assert len(options) > 50
    for entry in options:
        head, _sep, rest = entry.partition("\n\n")  # the last option of a group: the next group follows
        flat = " ".join(head.split())
        assert HANGUL.search(flat), f"{command} --help: no Korean help: {flat!r}"
        prose = re.sub(r"^-\S*( [A-Z_0-9]+)*(, -\S*( [A-Z_0-9]+)*)*|선택지: [^;]*", "", flat)  # less names
        assert not english_words(prose), flat
    groups = [line for line in body.splitlines() if line and not line.startswith(" ")]
    assert len(groups) >= 6 and all(HANGUL.search(g) for g in groups), groups
    flat = " ".join(text.split())
    assert "--json JSON 요약 하나를 stdout에 출력 (진행 상황은 stderr)" in flat
    assert "--nproc NPROC 이 컴퓨터에서 쓸 프로세스 수" in flat
    en = " ".join(cli(command, "--help", "--lang", "en", env=KO).stdout.split())
    assert "--json print one JSON summary on stdout; progress on stderr" in en and not HANGUL.search(en)


# ---------------------------------------------------------------- no message left unwrapped

SRC = Path(__file__).parents[1] / "src" / "cnnlab"
FILES = sorted(
    [
        *(SRC / "training").glob("*.py"),
        SRC / "commands" / "train.py",
        SRC / "commands" / "lr_find.py",
        SRC / "data" / "spec.py",
    ]
)
CALLS = {"CnnlabError", "Stop", "print", "log", "bad_state"}  # their first argument is a message
ALLOWED: dict[tuple[str, str], str] = {}  # (file, literal) -> why it stays as it is (none needed so far)


def _literal(node: ast.expr) -> str | None:
    """The text of a str literal or f-string (None for anything else: a call such as _(...), a name)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return ast.unparse(node)
    return None


def unwrapped(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.Call):
            continue
        name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", None)
        args = []
        if name in CALLS and node.args:
            args.append(node.args[0])
        if name == "bad_state" and len(node.args) > 2:
            args = [node.args[2]]
        args += [k.value for k in node.keywords if k.arg == "help"]
        for arg in args:
            text = _literal(arg)
            if text is not None and (path.name, text) not in ALLOWED:
                found.append(f"{path.name}:{node.lineno}: {text[:70]}")
    return found


def test_no_message_of_the_training_files_is_left_unwrapped():
    assert len(FILES) > 25
    found = [line for path in FILES for line in unwrapped(path)]
    assert found == [], "\n".join(found)


def test_the_walk_finds_an_unwrapped_message(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text(
        'raise CnnlabError(f"no {x}")\nprint("hello")\nlog(_("fine"))\np.add_argument("-x", help="h")\n'
    )
    assert len(unwrapped(bad)) == 3


def test_reasons_and_notes_saved_in_english_are_said_in_korean():
    from cnnlab.data.spec import WHY, decide, why_text
    from cnnlab.training.finetune import NORMALISED, note_text

    reading = decide([str(i) for i in range(10)], 1.0, 0.0)
    assert reading.why == "the class names are digits (0..9) and the images are grey"  # kept in English
    note = NORMALISED.format(mean=[0.485], std=[0.229])
    with using("ko"):
        assert why_text(reading.why) == "클래스 이름이 숫자(0..9)이고 이미지가 흑백임"
        assert why_text("--preprocess digit") == "--preprocess digit"
        assert why_text("something else") == "something else"  # unknown: as it is
        assert note_text(note) == "입력을 가중치가 학습된 대로 정규화: 평균 [0.485], 표준편차 [0.229]"
        assert all(HANGUL.search(_(w)) for w in WHY[1:])
    assert why_text(reading.why) == reading.why and note_text(note) == note
