"""Korean through the real command line and in pictures: under LANG=ko_KR.UTF-8 commands, help, argparse's own
words and the one-line errors are Korean (same exit codes); --lang beats the environment; pictures draw
Hangul with a Hangul font and no "Glyph ... missing" warning, and fall back to English with one warning
when no such font can be had."""

import json
import re
import warnings

import pytest
from matplotlib import font_manager
from matplotlib.ft2font import FT2Font

from cnnlab.i18n import columns, fonts, using
from cnnlab.inside import plots

KO = {"CNNLAB_LANG": "", "LANGUAGE": "", "LC_ALL": "", "LC_MESSAGES": "", "LANG": "ko_KR.UTF-8"}
HANGUL = re.compile(r"[가-힣]")


def english_words(text: str, allowed: set[str]) -> set[str]:
    """Words of English prose left in `text`: letters-only tokens, less names and `allowed`."""
    text = re.sub(r"\S*[._\-/=(]\S*|\w*\d\w*", " ", text)  # names, flags, paths, shapes, calls
    return {w for w in re.findall(r"[A-Za-z]{2,}", text)} - allowed


def test_train_epochs_0_is_a_korean_error_with_exit_2(cli):
    r = cli("train", "--epochs", "0", check=False, env=KO)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.strip() == "cnnlab: 오류: --epochs 0: 잘못된 값입니다 (허용: 1 이상의 정수)"
    en = cli("train", "--epochs", "0", "--lang", "en", check=False, env=KO)  # the flag beats the locale
    assert (
        en.returncode == 2 and en.stderr.strip() == "cnnlab: error: --epochs 0: must be a whole number >= 1"
    )


def test_summary_and_explain_in_korean_with_no_english_message_words(cli):
    table = cli("summary", "chapter-cnn", env=KO).stdout
    assert "전체 파라미터: 123,222" in table and "모두 일치" in table
    assert english_words(table, {"MACs", "KiB", "floor", "Conv2d", "ReLU", "MaxPool2d", "Linear"}) == set()
    steps = cli("explain", "output-size", env=KO).stdout
    assert "마지막 특성 맵 64x3x3 = 값 576개" in steps
    assert english_words(steps, {"floor", "Conv2d", "MaxPool2d"}) == set()
    en = cli("summary", "chapter-cnn", "--lang", "en", env=KO).stdout
    assert "Total params: 123,222" in en and not HANGUL.search(en)
    ko = cli("--lang", "ko", "explain", "conv", env={"CNNLAB_LANG": "en"}).stdout  # before the command too
    assert "스트라이드 1, 패딩 0" in ko


def test_explain_steps_in_korean_and_english(cli):
    ko = cli("explain", "conv", "--padding", "1", "--lang", "ko").stdout
    assert "스트라이드 1, 패딩 1" in ko and "특성 맵 (4x4)" in ko and "일치" in ko
    assert "out[0,0] = " in ko  # the arithmetic itself reads the same in every language
    en = cli("explain", "conv", "--padding", "1").stdout
    assert "stride 1, padding 1" in en and "feature map (4x4)" in en
    j = json.loads(cli("explain", "cross-entropy", "--json", env=KO).stdout)
    assert j["result"][1] == pytest.approx(1.2040, abs=1e-4) and any("교차 엔트로피" in s for s in j["steps"])


def test_help_is_korean_train_options_too(cli):
    top = cli("--help", env=KO).stdout
    assert top.startswith("사용법: cnnlab [-h] [--version] [--lang {en,ko}] COMMAND ...")
    assert "합성곱 신경망(CNN) 이미지 분류기를" in top and "옵션:" in top and "모델을 학습합니다" in top
    train = cli("train", "--help", env=KO).stdout
    flat = re.sub(r"\s+", " ", train)  # argparse wraps lines
    assert "--epochs EPOCHS 학습 세트를 도는 횟수 (에폭 수); 1 이상의 정수; 기본값: 10" in flat
    assert "최적화 (책: Adam, 학습률 2e-4, 배치 256, 10 에폭" in train  # a section title
    assert "나만의 이미지 폴더" in train and "클래스별로 나눔" in train  # a section title with its note
    assert "이 도움말을 보여 주고 끝냅니다" in train
    assert "학습 세트를 도는 횟수" not in cli("train", "--help", "--lang", "en", env=KO).stdout
    options = [line for line in train[train.index("\n\n") :].splitlines() if line.startswith(" ")]
    assert max(columns(line) for line in options) <= 80  # Hangul takes two columns: wrapped by columns


def test_argparse_errors_in_korean_keep_did_you_mean_and_exit_2(cli):
    r = cli("trian", check=False, env=KO)
    assert r.returncode == 2
    assert r.stderr.startswith("cnnlab: 오류: 인수 COMMAND: 잘못된 선택: 'trian' (고를 수 있는 값: 'train',")
    assert "; 혹시 이것인가요: train (cnnlab --help 참고)" in r.stderr
    r = cli("summary", "chapter-cnn", "--widht", "2", check=False, env=KO)
    assert r.returncode == 2 and "알 수 없는 인수: --widht 2; 혹시 이것인가요: --width" in r.stderr
    r = cli("explain", "softmax", "--lang", "xx", check=False, env=KO)
    assert r.returncode == 2 and "잘못된 선택: 'xx'" in r.stderr
    r = cli("summary", check=False, env=KO)
    assert r.returncode == 2 and "다음 인수가 필요합니다: model" in r.stderr
    r = cli("summary", "resnt18", check=False, env=KO)
    assert r.returncode == 2 and "cnnlab: 오류: 알 수 없는 모델 'resnt18'; 혹시 resnet18인가요?" in r.stderr


def test_a_wrong_cnnlab_lang_is_one_line_exit_2(cli):
    r = cli("models", check=False, env={"CNNLAB_LANG": "fr"})
    assert r.returncode == 2 and r.stderr.strip() == (
        "cnnlab: error: CNNLAB_LANG='fr': unknown language; choose one of: en, ko"
    )


# ---------------------------------------------------------------- pictures


def has_hangul(path: str) -> bool:
    return FT2Font(path).get_char_index(ord("손")) != 0


def test_korean_curves_draw_hangul_with_no_glyph_warning(tmp_path):
    (tmp_path / "metrics.csv").write_text(
        "epoch,train_loss,test_loss,test_accuracy\n1,0.9,0.5,0.8\n2,0.4,0.3,0.9\n"
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a "Glyph ... missing" warning fails the test
        with using("ko"):
            fig = plots.curves_figure(tmp_path)
        plots.save(fig, tmp_path / "curves.png")
    loss_ax = fig.axes[0]
    assert loss_ax.get_title() == "교차 엔트로피 손실" and loss_ax.get_xlabel() == "에폭"
    used = font_manager.fontManager._find_fonts_by_props(loss_ax.title.get_fontproperties())
    assert any(has_hangul(str(f)) for f in used), used  # the fallback chain reaches a font with Hangul
    assert used[0].endswith("DejaVuSans.ttf")  # Latin text and digits as before


def test_the_pypi_font_is_found_without_system_fonts(monkeypatch):
    path = fonts.koreanize_file()
    assert path is not None and has_hangul(str(path))  # koreanize-matplotlib's NanumGothic
    monkeypatch.setattr(fonts, "FAMILIES", ())
    monkeypatch.setattr(fonts, "SYSTEM_FILES", ())
    fonts.hangul_font.cache_clear()
    try:
        assert fonts.hangul_font() == "NanumGothic"
        assert "koreanize_matplotlib" in font_manager.findfont("NanumGothic") or fonts.FAMILIES == ()
    finally:
        fonts.hangul_font.cache_clear()


def test_no_hangul_font_means_english_labels_and_one_warning(monkeypatch, tmp_path):
    (tmp_path / "metrics.csv").write_text("epoch,train_loss,test_loss,test_accuracy\n1,0.9,0.5,0.8\n")
    monkeypatch.setattr(fonts, "hangul_font", lambda: None)
    monkeypatch.setattr(fonts, "_warned", False)
    with using("ko"), pytest.warns(UserWarning, match="한글 글꼴을 찾지 못했습니다") as caught:
        first = plots.curves_figure(tmp_path)
        second = plots.curves_figure(tmp_path)
    assert len(caught) == 1  # once per process
    assert first.axes[0].get_title() == second.axes[0].get_title() == "cross-entropy loss"


def test_plot_curves_in_korean_through_the_cli(cli, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.csv").write_text(
        "epoch,train_loss,test_loss,test_accuracy\n1,0.9,0.5,0.8\n2,0.4,0.3,0.9\n"
    )
    r = cli("plot", "curves", str(run), "--lang", "ko", env={"PYTHONWARNINGS": "error::UserWarning"})
    assert r.stdout.strip() == str(run / "curves.png") and "Glyph" not in r.stderr
    assert (run / "curves.png").stat().st_size > 10_000
