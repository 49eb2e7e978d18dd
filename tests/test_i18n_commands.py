"""Korean through the real CLI for eval, predict, export, summary, explain, models, bench, plot and serve
(issue 23): under LANG=ko_KR.UTF-8 (no --lang, no CNNLAB_LANG) every line a person reads has Hangul and no
English message word is left once names, paths, flags and numbers are taken out; `--lang en` is the English
of before; every option of these commands has Korean help; pictures draw Hangul with no "Glyph missing"
warning. And an AST walk of these commands' files: no error, print, help or log text outside `_()`."""

import ast
import re
import warnings
from pathlib import Path

import pytest
from conftest import run_cli, untrained_checkpoint

KO = {"CNNLAB_LANG": "", "LANGUAGE": "", "LC_ALL": "", "LC_MESSAGES": "", "LANG": "ko_KR.UTF-8"}
HANGUL = re.compile(r"[가-힣]")
# English message words that must not survive in Korean output (names, paths and flags are removed first)
ENGLISH = {
    "accuracy", "epoch", "epochs", "loss", "images", "image", "error", "train", "training", "test", "skipped",
    "file", "files", "folder", "saved", "done", "true", "pred", "predicted", "wrong", "classes", "class",
    "input", "written", "failed", "exported", "tolerance", "diff", "agree", "warning", "listening", "row",
    "rows", "most", "confidently", "probability", "picture", "matrix", "confusion", "params", "model",
    "layer", "output", "shape", "total", "trainable", "memory", "the", "of", "and", "with", "to", "at",
    "on", "is", "not", "no", "such", "cannot", "must", "default", "width", "batch", "threads", "native",
    "emulated", "infer", "step", "roofline", "multiply", "adds", "unreadable", "formula", "match",
}  # fmt: skip
NAMES = {  # kept in English in every language: formats, libraries, units, layer types, formulas
    "MACs", "TTA", "ONNX", "onnxruntime", "PyTorch", "opset", "float32", "MiB", "KiB", "GiB", "N", "x",
    "Conv2d", "MaxPool2d", "ReLU", "Linear", "Flatten", "Dropout", "floor", "ceil", "ln", "GFLOP", "bf16",
    "fp32", "sgemm", "torch", "mm", "AVX", "BF16", "AMX", "img", "CHW", "max", "min", "softmax", "exp",
    "PNG", "CSV", "JSON", "API", "TLS", "http", "MB", "Ctrl", "cnnlab", "serve", "L1", "drop_last", "True",
}  # fmt: skip


def _prose(text: str, extra=()) -> list[str]:
    """The words of `text` once names, flags, paths, 'quoted' keys, calls and numbers are taken out."""
    for name in extra:
        text = text.replace(str(name), " ")
    text = re.sub(r"'[^'\s]+'|\S*[._\-/=\\(\[]\S*|\w*\d\w*", " ", text)
    return [w for w in re.findall(r"[A-Za-z]{2,}", text) if w not in NAMES]


def english_words(text: str, extra=()) -> set[str]:
    """English message words left in `text` (names, flags, paths and numbers aside)."""
    return {w for w in _prose(text, extra) if w.lower() in ENGLISH}


def assert_korean(text: str, extra=()) -> None:
    """Every line with words in it has Hangul (a table's rows of names and numbers need none), and no English
    message word is left."""
    for line in text.splitlines():
        if _prose(line, extra) and not HANGUL.search(line):
            pytest.fail(f"a line without Hangul: {line!r}")
    assert english_words(text, extra) == set(), text


def ko(*args: str, check: bool = True, cwd=None):
    return run_cli(*args, check=check, env=KO, cwd=cwd)


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """A run folder as `cnnlab train --dataset mnist-sample` leaves it (checkpoint and metrics.csv), with an
    untrained chapter-cnn: the words are what is tested here, and training would cost a minute."""
    folder = tmp_path_factory.mktemp("ko") / "run"
    folder.mkdir()
    untrained_checkpoint(folder / "best")
    (folder / "metrics.csv").write_text(
        "epoch,train_loss,test_loss,test_accuracy,val_loss,val_accuracy,images_per_second,seconds\n"
        "1,2.02,1.35,0.79,,,155.6,51.4\n2,0.61,0.42,0.88,,,160.1,50.2\n"
    )
    return folder


@pytest.fixture(scope="module")
def digit_png(tmp_path_factory) -> Path:
    from PIL import Image

    from cnnlab.data import load_dataset

    path = tmp_path_factory.mktemp("img") / "digit.png"
    Image.fromarray(load_dataset("mnist-sample").test_x[0, 0].numpy()).save(path)
    return path


# ---------------------------------------------------------------- eval


def test_eval_is_korean_and_english_with_lang_en(run, tmp_path):
    r = ko("eval", str(run), "--plot", str(tmp_path / "confusion.png"))
    out = r.stdout
    assert "mnist-sample 테스트: 정확도 " in out and "정답 \\ 예측" in out
    assert "가장 자신 있게 틀린 예측 (10개" in out and "테스트[" in out and "혼동 행렬 그림: " in out
    assert_korean(out, [run, tmp_path, "mnist-sample"])
    assert (tmp_path / "confusion.png").stat().st_size > 10_000
    en = run_cli("eval", str(run), "--lang", "en", env=KO).stdout
    first = en.splitlines()[0]
    assert re.fullmatch(r"mnist-sample test: accuracy [\d.]+% \(\d+/\d+ images, \d+ images/s\)", first), first
    assert (
        "true \\ pred" in en
        and "most confidently wrong (10, least probability on the true class first):" in en
    )
    assert re.search(r"  test\[\d+\]: true \d \([\d.]+%\), predicted \d \([\d.]+%\)", en)
    assert not HANGUL.search(en)


def test_eval_skipped_note_and_a_wide_class_name_table():
    from cnnlab.commands.eval import format_confusion, print_result
    from cnnlab.i18n import columns, using

    result = {
        "dataset": "folder",
        "accuracy": 0.5,
        "correct": 1,
        "total": 2,
        "images_per_second": 10.0,
        "tta": True,
        "per_class": {"고양이": 1.0, "dog": 0.0},
        "confusion": [[1, 0], [1, 0]],
        "worst": [],
        "skipped": [{"file": "a.png", "reason": "x"}],
    }
    import contextlib
    import io

    with using("ko"), contextlib.redirect_stdout(io.StringIO()) as buf:
        print_result(result)
    text = buf.getvalue()
    assert "읽을 수 없는 파일 1개를 건너뛰었습니다" in text and "TTA 사용" in text
    assert_korean(text, ["folder", "고양이", "dog"])
    table = format_confusion(result["confusion"], list(result["per_class"])).splitlines()
    assert len({columns(line) for line in table}) == 1  # Hangul names keep the columns aligned
    with using("en"):
        assert format_confusion([[3]], ["0"]) == "true \\ pred      0\n0                3"


# ---------------------------------------------------------------- predict


def test_predict_one_file_a_folder_a_missing_file_and_csv(run, digit_png, tmp_path):
    one = ko("predict", str(run), str(digit_png))
    assert one.stdout.startswith(f"{digit_png}: ") and "%" in one.stdout
    folder = tmp_path / "pics"
    folder.mkdir()
    (folder / "a.png").write_bytes(digit_png.read_bytes())
    (folder / "broken.png").write_bytes(b"not an image")
    csv = tmp_path / "out.csv"
    r = ko("predict", str(run), str(folder), str(tmp_path / "missing.png"), "--csv", str(csv), check=False)
    assert r.returncode == 2 and str(folder / "a.png") in r.stdout
    err = r.stderr
    assert "cnnlab: 오류: " in err and "파일 3개 중 2개 실패" in err and f"{csv}에 3행을 썼습니다" in err
    assert "파일이 없습니다" in err and "읽을 수 있는 이미지가 아닙니다" in err
    assert_korean(err, [tmp_path, "UnidentifiedImageError"])
    en = run_cli(
        "predict",
        str(run),
        str(tmp_path / "missing.png"),
        str(digit_png),
        "--lang",
        "en",
        env=KO,
        check=False,
    )
    assert (
        "cnnlab: error: " in en.stderr and "no such file" in en.stderr and "1 of 2 files failed" in en.stderr
    )
    assert not HANGUL.search(en.stderr)


# ---------------------------------------------------------------- summary, explain, models, bench


def test_summary_models_and_explain_in_korean():
    from cnnlab.inside.explain import TOPICS, explain
    from cnnlab.models import list_models

    table = ko("summary", "chapter-cnn").stdout
    assert "곱셈-덧셈" in table and "MACs" not in table.splitlines()[1]  # the header has no English word
    assert_korean(table, ["chapter-cnn"])
    models = ko("models").stdout
    assert models.splitlines()[1].split()[:3] == ["모델", "파라미터", "곱셈-덧셈"]
    assert_korean(models, sorted(list_models(), key=len, reverse=True))  # model names are names
    walk = ko("explain", "output-size", "--model", "chapter-cnn").stdout
    assert "마지막 특성 맵 64x3x3" in walk
    assert_korean(walk, ["chapter-cnn"])
    values = {"parameters": ["chapter-cnn"]}
    for topic in TOPICS:  # every topic in-process: the same steps the command prints
        steps = "\n".join(explain(topic, *values.get(topic, []), lang="ko")["steps"])
        assert HANGUL.search(steps) and english_words(steps, ["chapter-cnn"]) == set(), (topic, steps)


def test_bench_in_korean():
    r = ko(
        "bench", "chapter-cnn", "--batch-size", "8", "--warmup", "0", "--repeats", "1", "--precision", "fp32"
    )
    assert "곱셈-덧셈/이미지" in r.stdout and "학습 이미지/초" in r.stdout
    assert english_words(r.stdout + r.stderr, ["chapter-cnn"]) == set(), r.stdout + r.stderr


# ---------------------------------------------------------------- export


def test_export_in_korean(run, tmp_path, monkeypatch, capsys):
    """The report of `cnnlab export` (the export itself, minutes of tracing, is tested in test_export.py),
    and its early error through the real CLI."""
    import argparse

    import cnnlab.export
    from cnnlab.commands import export
    from cnnlab.i18n import _, using

    report = {
        "onnx": str(tmp_path / "out.onnx"),
        "model": "chapter-cnn",
        "opset": 18,
        "bytes": 2**19,
        "checked_on": "64 test images",
        "max_abs_diff": 1e-6,
        "tolerance": 1e-3,
        "predictions_agree": 64,
        "images": 64,
    }
    monkeypatch.setattr(cnnlab.export, "export_checkpoint", lambda *a: report)
    args = argparse.Namespace(
        checkpoint=str(run), out=report["onnx"], opset=None, tolerance=1e-3, data_dir=None
    )
    args.json = False
    with using("ko"):
        report["checked_on"] = _("{n} {dataset} test images", n=64, dataset="mnist-sample")
        export.run(args)
    out = capsys.readouterr().out
    assert "chapter-cnn을(를) " in out and "내보냈습니다" in out and "예측 일치 64/64" in out
    assert "mnist-sample 테스트 이미지 64장" in out
    assert_korean(out, [tmp_path, "chapter-cnn", "mnist-sample"])
    bad = ko("export", str(run), str(tmp_path / "no" / "such" / "out.onnx"), check=False)
    assert bad.returncode == 4 and bad.stderr.startswith("cnnlab: 오류: ")
    assert_korean(bad.stderr, [tmp_path])


# ---------------------------------------------------------------- plot


def test_every_plot_kind_in_korean_with_no_glyph_warning(run, digit_png, tmp_path):
    from cnnlab.i18n import using
    from cnnlab.inside import pictures

    with warnings.catch_warnings(), using("ko"):
        warnings.simplefilter("error", UserWarning)  # a "Glyph ... missing" warning fails the test
        figures = {
            "curves": pictures.plot_curves(run),
            "confusion": pictures.plot_confusion(run),
            "top-losses": pictures.plot_top_losses(run, 8),
            "samples": pictures.plot_samples("mnist-sample", "train", 8),
            "filters": pictures.plot_filters(run),
            "feature-maps": pictures.plot_feature_maps(run, index=0, max_channels=4),
            "gradcam": pictures.plot_gradcam(run, str(digit_png)),
        }
        for kind, fig in figures.items():
            texts = [fig._suptitle] + [t for sub in fig.subfigs for t in [sub._suptitle]]
            for ax in fig.axes:
                texts += [ax.title, ax.xaxis.label, ax.yaxis.label]
                legend = ax.get_legend()
                texts += legend.get_texts() if legend else []
            words = " ".join(t.get_text() for t in texts if t is not None)
            assert HANGUL.search(words), kind
            assert english_words(words, ["chapter-cnn", "mnist-sample", run.name, "Grad-CAM"]) == set(), (
                kind,
                words,
            )
            fig.savefig(tmp_path / f"{kind}.png")  # drawing too: tick labels are made then


def test_plot_curves_cli_draws_hangul_with_warnings_as_errors(run, tmp_path):
    r = run_cli(
        "plot", "curves", str(run), "--out", str(tmp_path / "c.png"),
        env={**KO, "PYTHONWARNINGS": "error::UserWarning"},
    )  # fmt: skip
    assert "Glyph" not in r.stderr and r.stderr == "" and (tmp_path / "c.png").stat().st_size > 10_000


# ---------------------------------------------------------------- help and errors


COMMANDS = ["eval", "predict", "export", "serve", "models", "plot", "bench", "summary", "explain"]


def help_entries(text: str) -> list[tuple[str, str]]:
    """(the option or argument as --help writes it, its help) of each entry of an argparse --help."""
    entries: list[list[str]] = []
    body = text[text.index("\n\n") :]  # past the usage lines
    for line in body.splitlines():
        if re.match(r"^ {2,4}\S", line):
            entries.append((re.split(r"\s{2,}", line.strip(), maxsplit=1) + [""])[:2])
        elif line.startswith(" " * 5) and entries:
            entries[-1][1] = (entries[-1][1] + " " + line.strip()).strip()
    return [(flag, help_) for flag, help_ in entries]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_option_has_korean_help(command):
    """Every option and argument of the command (and of each plot kind) has Korean help, argparse's own
    -h included, and no English message word in it."""
    from cnnlab.cli import build_parser
    from cnnlab.i18n import using
    from cnnlab.i18n.argparse_words import in_language

    with using("ko"), in_language():
        parser = build_parser(command)
        sub = next(a for a in parser._actions if a.dest == "command").choices[command]
        kinds = [a for a in sub._actions if a.dest == "kind"]
        parsers = [sub, *(kinds[0].choices.values() if kinds else [])]
        texts = {p.prog: p.format_help() for p in parsers}
    for prog, text in texts.items():
        entries = [e for e in help_entries(text) if e[0] != "KIND"]  # plot's group of kinds: no help line
        assert len(entries) >= 3, (prog, text)
        for flag, help_ in entries:
            assert HANGUL.search(help_), (prog, flag, help_)
            choices = [c for group in re.findall(r"\{([^}]*)\}", flag) for c in group.split(",")]
            assert english_words(help_, choices) == set(), (prog, flag, help_)  # "기본값 train": a value


def test_help_through_the_cli_is_korean():
    text = ko("eval", "--help").stdout
    assert text.startswith("사용법: ") and "옵션:" in text and "혼동 행렬 그림(PNG)도 그립니다" in text
    assert "혼동 행렬 그림(PNG)도 그립니다" not in run_cli("eval", "--help", "--lang", "en", env=KO).stdout


def test_errors_of_these_commands_are_korean_lines(run):
    r = ko("serve", str(run), "--port", "70000", check=False)
    assert r.returncode == 2 and r.stderr.startswith("cnnlab: 오류: --port 70000")
    r = ko("predict", str(run), str(run), check=False)  # a folder with no image in it
    assert (
        r.returncode == 2 and r.stderr.strip() == f"cnnlab: 오류: {run}: 이 폴더에는 이미지 파일이 없습니다"
    )


def test_serve_lines_are_korean_and_api_errors_english(run):
    import json
    import os
    import urllib.error
    import urllib.request

    from cnnlab.serve.launch import running_server

    saved = {k: os.environ.get(k) for k in KO}
    os.environ.update(KO)
    try:
        with running_server(run) as server:
            log = server.log_text()
            request = urllib.request.Request(
                f"{server.url}/api/predict", data=b"\x89PNG not really", headers={"content-type": "image/png"}
            )
            with pytest.raises(urllib.error.HTTPError) as caught:
                urllib.request.urlopen(request, timeout=30)
            body = json.loads(caught.value.read())
    finally:
        for k, v in saved.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
    first = next(line for line in log.splitlines() if line.startswith("cnnlab serve:"))
    assert "주소 http://127.0.0.1:" in first and "Ctrl-C로 멈춤" in first
    assert (
        "서버 프로세스를 시작했습니다 [" in log and "애플리케이션을 시작했습니다." in log
    )  # uvicorn's lines
    assert "Started server process" not in log and "startup complete" not in log
    assert body["error"].startswith("upload: not a readable image") and not HANGUL.search(body["error"])


# ---------------------------------------------------------------- nothing left unwrapped


SRC = Path(__file__).resolve().parents[1] / "src" / "cnnlab"
FILES = [
    *("evaluation.py", "prediction.py", "export.py", "bench.py", "api.py", "cli.py", "options.py"),
    *(f"commands/{name}.py" for name in COMMANDS),
    *(p.relative_to(SRC).as_posix() for p in sorted((SRC / "inside").glob("*.py"))),
    *(p.relative_to(SRC).as_posix() for p in sorted((SRC / "serve").glob("*.py"))),
]
CALLS = {"CnnlabError", "print", "log", "warn", "exception", "info", "warning", "suptitle", "set_title"}
KEYWORDS = {"help", "description", "title", "epilog", "xlabel", "ylabel", "label"}
ALLOWED = {  # (file, line text) of literals that are no message, with the reason
    ("serve/app.py", 'FastAPI(title="cnnlab serve"'): "the OpenAPI title, a name",
}
WORD = re.compile(r"[A-Za-z]{2,}")


def wording(node: ast.AST) -> bool:
    """A string literal, f-string or sum of them with English words in it (not a `_()` call)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return bool(WORD.search(node.value))
    if isinstance(node, ast.JoinedStr):
        return any(wording(v) for v in node.values if isinstance(v, ast.Constant))
    if isinstance(node, ast.BinOp):
        return wording(node.left) or wording(node.right)
    if isinstance(node, ast.IfExp):
        return wording(node.body) or wording(node.orelse)
    return False


def test_no_message_of_these_files_is_left_outside_underscore():
    found = []
    for name in FILES:
        source = (SRC / name).read_text(encoding="utf-8")
        lines = source.splitlines()
        for node in ast.walk(ast.parse(source)):
            if not isinstance(node, ast.Call):
                continue
            func = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", None)
            bad = func in CALLS and node.args and wording(node.args[0])
            bad = bad or any(kw.arg in KEYWORDS and wording(kw.value) for kw in node.keywords)
            if bad and not any(f == name and text in lines[node.lineno - 1] for f, text in ALLOWED):
                found.append(f"{name}:{node.lineno}: {lines[node.lineno - 1].strip()}")
    assert found == [], "\n".join(found)


def test_the_check_finds_an_unwrapped_message():
    """The AST check itself: an unwrapped CnnlabError, print and help= are each found."""
    sample = 'raise CnnlabError(f"bad {x}")\nprint("done")\np.add_argument("--a", help="an option")\n'
    nodes = [n for n in ast.walk(ast.parse(sample)) if isinstance(n, ast.Call)]
    flagged = [
        n for n in nodes if (n.args and wording(n.args[0])) or any(wording(k.value) for k in n.keywords)
    ]
    assert len(flagged) == 3
    assert not wording(ast.parse('_("done")').body[0].value)


def test_no_code_of_these_files_rebinds_underscore():
    """`for _, x in ...` makes `_` a local (or rebinds the module's): its `_()` calls would then fail."""
    found = []
    for name in FILES:
        for node in ast.walk(ast.parse((SRC / name).read_text(encoding="utf-8"))):
            if isinstance(node, ast.Name) and node.id == "_" and isinstance(node.ctx, ast.Store):
                found.append(f"{name}:{node.lineno}")
    assert found == [], found
