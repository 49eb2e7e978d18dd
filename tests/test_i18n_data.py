"""Korean for the data, checkpoint and model layers (issue 23): under LANG=ko_KR.UTF-8 with no flag, the one-line
errors and the notes that cnnlab.data, cnnlab.core, cnnlab.checkpoint* and cnnlab.models write reach the user
in Korean through the real CLI (same exit codes), and `--lang en` gives the English as before. Folders are
built from real digits (tests/folder_images.py). Plus an AST walk of these files: no message is left unwrapped."""

import ast
import os
import re
from pathlib import Path

import pytest
import torch
from conftest import ROOT, untrained_checkpoint
from folder_images import make_folder, mnist_sample_test

from cnnlab.models import list_models

KO = {"CNNLAB_LANG": "", "LANGUAGE": "", "LC_ALL": "", "LC_MESSAGES": "", "LANG": "ko_KR.UTF-8"}
HANGUL = re.compile(r"[가-힣]")
# quoted as the library or the OS wrote it (like strerror): "(Error while deserializing header: ...)",
# "(OSError: image file is truncated ...)"; what cnnlab says around it is checked
# names that read the same in every language (datasets, formats, the program, placeholders of usage)
NAMES = frozenset(
    {"cnnlab", "mnist", "MNIST", "MD5", "IDX", "FIFO", "GLOBAL", "FILE", "DIR", "ROOT", "safetensors"}
)
LIBRARY_DETAIL = re.compile(r"\((?:\w+Error|\w+Exception|Error while)[^()]*(?:\([^()]*\)[^()]*)*\)")


def english_words(text: str, allowed: frozenset = frozenset()) -> set[str]:
    """Words of English prose left in `text`: letters-only tokens, less names, flags, paths, shapes, quoted
    names, the library's own quoted details and `allowed`."""
    text = LIBRARY_DETAIL.sub(" ", text)
    text = re.sub(r"'[^']*'|`[^`]*`", " ", text)  # quoted names: 'resnt18', `cnnlab models`
    text = re.sub(r"\S*[._\-/=(<>\[]\S*|\w*\d\w*", " ", text)  # names, flags, paths, shapes, calls
    return {w for w in re.findall(r"[A-Za-z]{2,}", text)} - NAMES - set(list_models()) - set(allowed)


def korean(lines: str, allowed=frozenset()) -> None:
    """Every line has Hangul and no English message word."""
    shown = [line for line in lines.splitlines() if line.strip()]
    assert shown, "nothing was said"
    for line in shown:
        assert HANGUL.search(line), line
        assert english_words(line, allowed) == set(), line


def both(cli, *args, code: int, env: dict | None = None, cwd=None):
    """The same command under a Korean locale, then with --lang en: (Korean stderr, English stderr)."""
    ko = cli(*args, check=False, env={**KO, **(env or {})}, cwd=cwd)
    en = cli(*args, "--lang", "en", check=False, env={**KO, **(env or {})}, cwd=cwd)
    assert ko.returncode == code and en.returncode == code, (ko.stderr, en.stderr)
    assert ko.stderr.startswith("cnnlab: 오류: ") and en.stderr.startswith("cnnlab: error: ")
    assert not HANGUL.search(en.stderr) and len(ko.stderr.strip().splitlines()) == 1
    return ko.stderr.strip(), en.stderr.strip()


@pytest.fixture
def env(tmp_path):
    return {"CNNLAB_CACHE": str(tmp_path / "cache"), "TORCH_HOME": str(tmp_path / "torch")}


# ---------------------------------------------------------------- datasets


def test_missing_dataset_folder_and_missing_mnist_files(cli, tmp_path, env):
    ko, en = both(
        cli, "train", "--dataset", "folder", "--data-dir", str(tmp_path / "nowhere"), code=2, env=env
    )
    assert ko == f"cnnlab: 오류: {tmp_path / 'nowhere'}: 그런 폴더가 없습니다"
    assert en == f"cnnlab: error: {tmp_path / 'nowhere'}: no such folder"
    (tmp_path / "empty").mkdir()
    ko, en = both(cli, "train", "--dataset", "mnist", "--data-dir", str(tmp_path / "empty"), code=2, env=env)
    assert "그곳에 mnist의 파일이 없습니다" in ko and "원본 또는 .gz" in ko
    korean(ko)
    assert "mnist files not found there (need train-images-idx3-ubyte.gz, " in en


def _idx(dims: list[int], body: bytes) -> bytes:
    return bytes([0, 0, 8, len(dims)]) + b"".join(d.to_bytes(4, "big") for d in dims) + body


def test_a_corrupt_idx_file(cli, tmp_path, env):
    data = tmp_path / "mnist"
    data.mkdir()
    (data / "train-images-idx3-ubyte").write_bytes(_idx([2, 28, 28], bytes(1000)))  # 1568 bytes promised
    (data / "train-labels-idx1-ubyte").write_bytes(_idx([2], bytes(2)))
    (data / "t10k-images-idx3-ubyte").write_bytes(_idx([1, 28, 28], bytes(784)))
    (data / "t10k-labels-idx1-ubyte").write_bytes(_idx([1], bytes(1)))
    ko, en = both(cli, "train", "--dataset", "mnist", "--data-dir", str(data), code=2, env=env)
    assert "IDX 본문은 1000바이트인데 헤더 [2, 28, 28]에 따르면 1568바이트여야 합니다 (잘렸거나 손상됨)" in ko
    korean(ko)
    assert en.endswith("IDX body has 1000 bytes, header [2, 28, 28] says 1568 (truncated or corrupt)")


def test_files_of_another_dataset_are_named_by_their_md5(cli, shared_data, tmp_path, env):
    ko, en = both(cli, "train", "--dataset", "mnist", "--data-dir", str(shared_data / "fashion-mnist"), code=2,
                  env=env)  # fmt: skip
    assert "MNIST이(가) 아니라 Fashion-MNIST의 파일입니다 (공개된 MD5로 보면" in ko
    korean(ko)
    assert "these are the Fashion-MNIST files, not MNIST (its published MD5 identifies it as" in en


def test_a_download_with_the_wrong_md5_is_said_in_korean(tmp_path, monkeypatch):
    """No mirror can be named on the command line: the downloader itself, from a file:// mirror."""
    from cnnlab.data.records import FileSpec
    from cnnlab.data.sources import download_file
    from cnnlab.errors import CnnlabError
    from cnnlab.i18n import using

    monkeypatch.setenv("CNNLAB_CACHE", str(tmp_path / "cache"))
    (tmp_path / "mirror").mkdir()
    (tmp_path / "mirror" / "t10k-labels-idx1-ubyte.gz").write_bytes(b"not the published file")
    spec = FileSpec("t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c")
    mirror = (tmp_path / "mirror").as_uri() + "/"
    said = {}
    for lang in ("ko", "en"):
        with using(lang), pytest.raises(CnnlabError) as e:
            download_file(spec, (mirror,), tmp_path / "dest", progress=False, dataset="mnist")
        said[lang] = str(e.value)
    assert (
        f"{mirror}t10k-labels-idx1-ubyte.gz: 체크섬 불일치 (기대한 MD5 ec29112dd5afa0611ce80d1b7f02629c)"
        in said["ko"]
    )
    assert said["ko"].startswith("t10k-labels-idx1-ubyte.gz을(를) 내려받지 못했습니다: ")
    korean(said["ko"], allowed=frozenset({"MD5", "DIR", "CNNLAB_DATA"}))
    assert (
        "t10k-labels-idx1-ubyte.gz: checksum mismatch (expected MD5 ec29112dd5afa0611ce80d1b7f02629c)"
        in said["en"]
    )
    assert not list((tmp_path / "dest").iterdir())  # nothing wrong was kept


# ---------------------------------------------------------------- folders of images


def _digits(root: Path, per_class: int, classes=("zero", "one", "two")) -> Path:
    x, y = mnist_sample_test(per_class)
    keep = y < len(classes)
    make_folder(root, x[keep], y[keep], list(classes), junk=False)
    return root


def test_one_class_and_two_images_a_class(cli, tmp_path, env):
    one = _digits(tmp_path / "one", 3, classes=("zero",))
    ko, en = both(cli, "train", "--dataset", str(one), code=2, env=env)
    assert ko == f"cnnlab: 오류: {one}: 클래스 폴더가 1개뿐입니다 (zero). 두 개 이상 있어야 합니다"
    assert en == f"cnnlab: error: {one}: found only 1 class folder(s) (zero); need two or more"
    two = _digits(tmp_path / "two", 2)
    ko, en = both(cli, "train", "--dataset", str(two), code=2, env=env)
    assert "테스트 이미지가 없습니다: --test-split 0.2은(는) 반올림하면" in ko
    korean(ko)
    assert "no test images: --test-split 0.2 rounds to no test image in any class" in en


def _hostile(root: Path) -> Path:
    """Digits in three class folders, a truncated PNG and a text file among them, a FIFO named like an image,
    and a link back to the class folder's parent (a loop)."""
    x, y = mnist_sample_test(5)
    keep = y < 3
    make_folder(root, x[keep], y[keep], ["zero", "one", "two"])
    os.mkfifo(root / "one" / "pipe.png")
    (root / "two" / "loop").symlink_to(root)
    return root


def test_skipped_files_fifo_and_link_loop_notes_in_korean(cli, tmp_path, env):
    root = _hostile(tmp_path / "d")
    args = ["train", "--dataset", str(root), "--epochs", "1", "--batch-size", "8"]
    ko = cli(*args, "--out", str(tmp_path / "ko"), env={**KO, **env})
    said = ko.stdout + ko.stderr
    lines = {key: next((line for line in said.splitlines() if key in line), "") for key in (
        "폴더 ", "읽을 수 없는 파일 ", "경로 1개를 뺐습니다", "건너뛰었습니다. 목록:", "클래스  ", "합계")}  # fmt: skip
    assert all(lines.values()), said
    assert f"폴더 {root}: 클래스 3개, 이미지 1x28x28, 분할: cnnlab이 나눔 (층화, 시드 0)" in said
    assert "읽을 수 없는 파일 2개를 건너뛰었습니다. 예: " in said and "일반 파일이 아닙니다 (FIFO" in said
    assert "위쪽 폴더" in said and "(고리): 따라가지 않습니다" in said
    for line in lines.values():
        korean(line, allowed=frozenset({"FIFO", "zero", "one", "two"}))
    skipped = (tmp_path / "ko" / "skipped.txt").read_text()
    assert (
        "일반 파일이 아닙니다 (FIFO, 소켓 또는 장치)" in skipped
        and "읽을 수 있는 이미지가 아닙니다" in skipped
    )
    en = cli(*args, "--out", str(tmp_path / "en"), "--lang", "en", env={**KO, **env})  # the cache is warm now
    said = en.stdout + en.stderr
    assert not HANGUL.search(said)
    assert (
        "skipped 2 unreadable file(s), e.g. " in said
        and "not a regular file (a FIFO, socket or device)" in said
    )
    assert "a folder above it (a loop): not followed" in said and "file(s) skipped; list in " in said
    assert f"folder {root}: 3 classes, 1x28x28 images, split made by cnnlab (stratified, seed 0)" in said
    assert "not a regular file (a FIFO, socket or device)" in (tmp_path / "en" / "skipped.txt").read_text()


# ---------------------------------------------------------------- checkpoints and weights


def test_a_truncated_safetensors_and_an_unsafe_pickle(cli, tmp_path, env):
    ckpt = untrained_checkpoint(tmp_path / "ck")
    data = ckpt.read_bytes()
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(data[: len(data) // 2])
    ko, en = both(cli, "eval", str(cut), code=7, env=env)
    assert ko.startswith(
        f"cnnlab: 오류: {cut}: 읽을 수 있는 safetensors 체크포인트가 아닙니다. 잘렸거나 손상되었습니다 ("
    )
    korean(ko)
    assert f"{cut}: not a readable safetensors checkpoint, truncated or corrupt (" in en

    class Exploit:
        def __reduce__(self):
            return (os.system, ("true",))

    evil = tmp_path / "evil.pt"
    torch.save({"meta": {"model": "chapter-cnn"}, "model": Exploit()}, evil)
    ko, en = both(cli, "eval", str(evil), code=8, env=env)
    assert ko.startswith(f"cnnlab: 오류: {evil}: 불러오기를 거부했습니다: 허용되지 않은 GLOBAL ")
    korean(ko, allowed=frozenset({"GLOBAL", "cnnlab"}))
    assert f"{evil}: refused to load: unsupported GLOBAL " in en and "could run code when unpickled" in en


def test_pretrained_offline_says_the_url_the_cache_and_weights(cli, tmp_path, env):
    img = tmp_path / "digit.png"
    from PIL import Image

    Image.fromarray(mnist_sample_test(1)[0][0]).save(img)
    offline = {**env, "CNNLAB_WEIGHTS_URL": "http://127.0.0.1:9/"}  # the discard port: refused at once
    ko, en = both(cli, "predict", "resnet18", "--pretrained", str(img), code=2, env=offline)
    target = Path(env["CNNLAB_CACHE"]) / "weights" / "resnet18-f37072fd.pth"
    assert "http://127.0.0.1:9/resnet18-f37072fd.pth: 내려받을 수 없습니다 (" in ko
    assert f"직접 {target}에 내려받거나 --weights FILE을 주세요" in ko
    korean(ko, allowed=frozenset({"Errno", "Connection", "refused", "FILE"}))
    assert f"download it yourself into {target} or pass --weights FILE" in en


def test_weights_that_do_not_fit_and_a_new_classifier_note(cli, tmp_path, env):
    from cnnlab.checkpoint import save_checkpoint
    from cnnlab.models import get_model

    wide = tmp_path / "wide.pth"
    torch.save(
        get_model("chapter-cnn", num_classes=10, in_channels=1, input_size=28, width=2.0).state_dict(), wide
    )
    args = ["train", "--dataset", "mnist-sample", "--weights", str(wide), "--epochs", "1"]
    ko, en = both(cli, *args, "--out", str(tmp_path / "no"), code=7, env=env)
    assert f"가중치 {wide}이(가) chapter-cnn에 맞지 않습니다: 모양 불일치 " in ko and ", 처음: " in ko
    korean(ko)
    assert f"weights {wide} do not fit chapter-cnn: " in en and " shape mismatch(es), first " in en

    kw = {"num_classes": 3, "in_channels": 1, "input_size": 28, "width": 1.0}
    meta = {"model": "chapter-cnn", "model_kwargs": kw, "dataset": "folder", "classes": ["a", "b", "c"],
            "input_shape": [1, 28, 28], "mean": [0.13], "std": [0.31]}  # fmt: skip
    save_checkpoint(tmp_path / "three", get_model("chapter-cnn", **kw), meta)
    args = ["train", "--dataset", "mnist-sample", "--weights", str(tmp_path / "three.safetensors")]
    args += ["--train-per-class", "4", "--epochs", "1", "--batch-size", "40"]
    ko = cli(*args, "--out", str(tmp_path / "ko"), env={**KO, **env})
    note = "클래스 10개용 새 분류기 fc_layer.2 (가중치의 분류기는 클래스 3개용)"
    assert note in ko.stdout + ko.stderr
    en = cli(*args, "--out", str(tmp_path / "en"), "--lang", "en", env={**KO, **env})
    assert (
        "new classifier fc_layer.2 for 10 classes (the weights' was for 3 classes)" in en.stdout + en.stderr
    )


def test_an_unknown_model_with_did_you_mean(cli, tmp_path, env):
    ko, en = both(cli, "train", "--model", "resnt18", code=2, env=env)
    assert ko.startswith(
        "cnnlab: 오류: --model: 알 수 없는 모델 'resnt18'; 혹시 resnet18인가요? 고를 수 있는 값: "
    )
    korean(ko)
    assert en.startswith(
        "cnnlab: error: --model: unknown model 'resnt18'; did you mean resnet18? choose from: "
    )
    ko, en = both(cli, "predict", "resnt18", "--pretrained", str(tmp_path / "x.png"), code=2, env=env)
    assert (
        ko
        == "cnnlab: 오류: 알 수 없는 모델 'resnt18' (--pretrained/--weights에는 모델 이름을 주세요. `cnnlab models` 참고)"
    )
    assert en == (
        "cnnlab: error: unknown model 'resnt18' (with --pretrained/--weights give a model name, see `cnnlab models`)"
    )


# ---------------------------------------------------------------- nothing left unwrapped

SRC = ROOT / "src" / "cnnlab"
MINE = [
    *(p for p in sorted((SRC / "data").glob("*.py")) if p.name != "spec.py"),  # spec.py: the training side's
    *sorted((SRC / "core").glob("*.py")),
    SRC / "checkpoint.py",
    SRC / "checkpoint_meta.py",
    SRC / "errors.py",
    *sorted((SRC / "models").glob("*.py")),
]
SAYS = {"CnnlabError", "BadImage", "ValueError", "print", "log", "bad", "warn"}  # their first text argument
ADDS = {"notes", "parts", "errors", "lines"}  # x.append(text): lists of what is said
MARKED = {"_", "_n", "N_"}
# (file, line text) a person never reads as prose, or reads from elsewhere: the reason is the comment
ALLOWED = {
    ("folder_cache.py", 'f"rank 0: {type(e).__name__}: {e}"'),  # an unexpected crash's own words, under DDP
    ("core/files.py", 'f"os error {errno.ENOSPC}"'),  # matched against Rust's message, never shown
}


def _text(node: ast.expr) -> bool:
    """A literal or f-string with prose in it (a space between letters), not a name or a path."""
    if isinstance(node, ast.JoinedStr):
        body = "".join(v.value for v in node.values if isinstance(v, ast.Constant))
    elif isinstance(node, ast.Constant) and isinstance(node.value, str):
        body = node.value
    elif isinstance(node, ast.BinOp):
        return _text(node.left) or _text(node.right)
    else:
        return False
    return bool(re.search(r"[A-Za-z]{2,}[^{}]*\s[^{}]*[A-Za-z]{2,}", body))


def _unwrapped(path: Path, root: Path = SRC) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    lines = path.read_text(encoding="utf-8").splitlines()
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
        said = []
        if name in SAYS:
            said = node.args[2:3] if name == "bad" else node.args[:1]
        elif name == "append" and isinstance(func.value, ast.Name) and func.value.id in ADDS:
            said = node.args[:1]
        said += [kw.value for kw in node.keywords if kw.arg == "help"]
        for arg in said:
            if isinstance(arg, ast.Call) and getattr(arg.func, "id", "") in MARKED:
                continue
            for a in [arg.body, arg.orelse] if isinstance(arg, ast.IfExp) else [arg]:
                if _text(a) and not any(
                    str(path).endswith(f) and text in lines[a.lineno - 1] for f, text in ALLOWED
                ):
                    found.append(f"{path.relative_to(root)}:{a.lineno}: {lines[a.lineno - 1].strip()}")
    return found


def test_no_message_of_these_files_is_left_unwrapped():
    assert len(MINE) > 25 and all(p.is_file() for p in MINE)
    problems = [line for p in MINE for line in _unwrapped(p)]
    assert problems == [], "\n".join(problems)


def test_the_walk_finds_an_unwrapped_message(tmp_path):
    bad = tmp_path / "x.py"
    bad.write_text(
        'raise CnnlabError(f"{p}: no such folder")\nprint("checking images")\nnotes.append("a new head")\n'
        'raise CnnlabError(_("{p}: fine", p=p))\nx = CnnlabError(name)\nlog(f"{a}x{b}")\n'
    )
    found = [line.split(": ", 1)[1] for line in _unwrapped(bad, tmp_path)]
    assert found == ['raise CnnlabError(f"{p}: no such folder")', 'print("checking images")',
                     'notes.append("a new head")']  # fmt: skip


def test_reasons_kept_in_english_are_said_in_the_current_language():
    """The inspect pass caches a file's reason in English (the cache is shared by every language)."""
    from cnnlab.data.images import BadImage, reason
    from cnnlab.i18n import using

    with using("ko"):
        e = BadImage(
            "too large ({width}x{height}, over {limit} pixels)", width=9000, height=9000, limit="1,000"
        )
        assert str(e) == "너무 큽니다 (9000x9000, 1,000픽셀 초과)"
        assert e.english == "too large (9000x9000, over 1,000 pixels)"
        assert reason(e.english) == str(e)
        assert reason("not a readable image (OSError: broken data stream)") == (
            "읽을 수 있는 이미지가 아닙니다 (OSError: broken data stream)"
        )
        assert reason("blank: no ink found") == "빈 이미지: 잉크(글씨)가 없습니다"
        assert reason("something cnnlab never said") == "something cnnlab never said"
    assert reason("blank: no ink found") == "blank: no ink found"
