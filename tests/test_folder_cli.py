"""A folder of images through the real CLI: train (learns), rerun (cache hit), eval (class names, worst
files, the saved test split), predict (digit vs photo preprocessing), serve's API, export, plots."""

import json
import os
from pathlib import Path

import numpy as np
import pytest
from conftest import run_cli
from folder_images import make_folder, mnist_sample_test, pick
from PIL import Image

DIGITS = [str(i) for i in range(10)]
NAMES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
FAST = ["--epochs", "4", "--lr", "3e-3", "--batch-size", "32", "--threads", "1"]


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    return {"CNNLAB_CACHE": str(tmp_path_factory.mktemp("cache"))}


@pytest.fixture(scope="module")
def digit_run(tmp_path_factory, env):
    """400 real digits in PNG/JPEG/BMP, every colour mode, plus junk; chapter-cnn trained 4 epochs."""
    base = tmp_path_factory.mktemp("digits")
    x, y = mnist_sample_test(40)
    make_folder(base / "data", x, y, DIGITS)
    proc = run_cli("train", "--dataset", "folder", "--data-dir", str(base / "data"), *FAST, "--balance",
                   "--out", str(base / "run"), "--json", env=env)  # fmt: skip
    return base / "data", base / "run", proc


def cache_entries(env) -> dict[str, float]:
    root = Path(env["CNNLAB_CACHE"]) / "decoded"
    return {p.name: p.stat().st_mtime for p in root.iterdir()}


def test_training_on_a_folder_learns_and_writes_the_split(digit_run):
    root, run, proc = digit_run
    summary = json.loads(proc.stdout)
    assert summary["dataset"] == "folder" and summary["test_accuracy"] > 0.6  # chance is 0.1
    assert "skipped 1 unreadable file" in proc.stderr and "total" in proc.stderr  # the per-class table
    assert (run / "skipped.txt").read_text().startswith(str(root / "0" / "broken.png"))
    split = json.loads((run / "split.json").read_text())
    assert len(split["test"]) == summary["test_images"] == 80  # 20% of each class of 40
    assert {y for _, y in split["test"]} == set(range(10))
    meta = json.loads((run / "best.json").read_text())
    assert meta["classes"] == DIGITS and meta["preprocess"] == "digit" and meta["input_shape"] == [1, 28, 28]


def test_rerun_hits_the_cache(digit_run, env, tmp_path):
    root, _, _ = digit_run
    before = cache_entries(env)
    run_cli(
        "train",
        "--dataset",
        str(root),
        "--max-steps",
        "1",
        "--epochs",
        "1",
        "--out",
        str(tmp_path / "r"),
        env=env,
    )
    assert cache_entries(env) == before  # no new entry, none rewritten


def test_eval_names_classes_and_worst_files_on_the_saved_split(digit_run, env):
    root, run, proc = digit_run
    # an image added after training must not enter the test set
    Image.open(root / "5" / "0000.png").save(root / "5" / "added-later.png")
    out = json.loads(run_cli("eval", str(run), "--json", "--worst", "5", env=env).stdout)
    assert out["accuracy"] == pytest.approx(json.loads(proc.stdout)["test_accuracy"])
    assert list(out["per_class"]) == DIGITS and out["test_images"] == 80
    assert 0 < len(out["worst"]) <= 5 and all((root / w["file"]).is_file() for w in out["worst"])
    losses = [w["loss"] for w in out["worst"]]
    assert losses == sorted(losses, reverse=True) and all(w["true"] != w["predicted"] for w in out["worst"])
    (root / "5" / "added-later.png").unlink()


def test_predict_plot_and_export_a_folder_model(digit_run, env, tmp_path):
    root, run, _ = digit_run
    files = [str(p) for p in sorted((root / "3").glob("*.png"))[:2]]
    pred = json.loads(run_cli("predict", str(run), *files, "--json", env=env).stdout)
    assert all(p["label"] in DIGITS for p in pred)
    for kind in ("confusion", "top-losses"):
        png = tmp_path / f"{kind}.png"
        run_cli("plot", kind, str(run), "--out", str(png), env=env)
        assert Image.open(png).size[0] > 100
    run_cli("plot", "samples", str(root), "--out", str(tmp_path / "s.png"), env=env)
    onnx = json.loads(run_cli("export", str(run), str(tmp_path / "m.onnx"), "--json", env=env).stdout)
    assert onnx["predictions_agree"] == onnx["images"] == 64 and "test images of" in onnx["checked_on"]


@pytest.fixture(scope="module")
def photo_run(tmp_path_factory, env):
    """Named classes as RGB JPEGs of another size: a "photo" folder (3 channels, photo preprocessing)."""
    base = tmp_path_factory.mktemp("photos")
    x, y = mnist_sample_test(6)
    big = np.stack([np.asarray(Image.fromarray(a).resize((40, 48))) for a in x])
    make_folder(base / "data", big, y, NAMES, ("jpeg-RGB",), junk=False)
    run_cli("train", "--dataset", str(base / "data"), "--preprocess", "photo", "--channels", "3", "--image-size", "32", "--classes", ",".join(NAMES),
            "--max-steps", "2", "--epochs", "1", "--out", str(base / "run"), env=env)  # fmt: skip
    return base / "data", base / "run"


def test_photo_model_predicts_with_its_training_preprocessing(photo_run, env, tmp_path):
    from cnnlab.data.images import decode

    root, run = photo_run
    meta = json.loads((run / "best.json").read_text())
    assert meta["preprocess"] == "photo" and meta["input_shape"] == [3, 32, 32]
    assert meta["classes"] == NAMES  # --classes fixed the order (natural order would start with "eight")
    f = next((root / "seven").glob("*.jpg"))
    out = json.loads(
        run_cli("predict", str(run), str(f), "--json", "--save-input", str(tmp_path), env=env).stdout
    )
    assert out[0]["label"] in NAMES
    seen = np.asarray(Image.open(tmp_path / (f.stem + ".png"))).transpose(2, 0, 1)
    assert np.array_equal(seen, decode(f, 32, 3))  # exactly what training saw, not MNIST's ink-centring


def test_summary_and_export_at_the_folder_input_size(photo_run, env):
    _, run = photo_run
    out = json.loads(run_cli("summary", "chapter-cnn", "--input", str(run), "--json", env=env).stdout)
    assert out["input_shape"] == [3, 32, 32]
    onnx = json.loads(run_cli("export", str(run), str(run / "m.onnx"), "--json", env=env).stdout)
    assert onnx["max_abs_diff"] < 1e-3 and "test images of" in onnx["checked_on"]


def test_serve_api_answers_with_the_folder_class_names(photo_run, env, monkeypatch):
    from fastapi.testclient import TestClient

    from cnnlab.serve.app import create_app

    root, run = photo_run
    monkeypatch.setenv("CNNLAB_CACHE", env["CNNLAB_CACHE"])
    client = TestClient(create_app(run))
    assert client.get("/api/model").json()["preprocess"] == "photo"
    data = next((root / "two").glob("*.jpg")).read_bytes()
    body = client.post("/api/predict", files={"file": ("p.jpg", data, "image/jpeg")}).json()
    assert body["classes"] == NAMES and body["label"] in NAMES and body["input_shape"] == [3, 32, 32]


def test_fashion_mnist_photos_learn(shared_data, env, tmp_path):
    """Real Fashion-MNIST test images (named classes, not digits) as a 3-channel photo folder."""
    from cnnlab.data import idx

    fm = shared_data / "fashion-mnist"
    x = idx.read_images(fm / "t10k-images-idx3-ubyte.gz")[:, 0].numpy()
    y = idx.read_labels(fm / "t10k-labels-idx1-ubyte.gz", 10).numpy()
    names = ["tshirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "boot"]
    xs, ys = pick(x, y, 40)
    make_folder(tmp_path / "fm", xs, ys, names, ("png-RGB", "jpeg-L", "png-palette"), junk=False)
    proc = run_cli("train", "--dataset", str(tmp_path / "fm"), "--channels", "3", *FAST,
                   "--out", str(tmp_path / "run"), "--json", env=env)  # fmt: skip
    assert json.loads(proc.stdout)["test_accuracy"] > 0.5
    assert json.loads((tmp_path / "run" / "best.json").read_text())["preprocess"] == "photo"


def test_folder_errors_are_one_line(cli, tmp_path, env):
    (tmp_path / "empty" / "a").mkdir(parents=True)
    (tmp_path / "empty" / "b").mkdir()
    for args, message in (
        (["--dataset", "folder"], "needs --data-dir"),
        (["--dataset", "folder", "--data-dir", str(tmp_path / "nope")], "no such folder"),
        (["--dataset", str(tmp_path / "empty")], "no images in this class folder"),
    ):
        proc = cli("train", *args, "--out", str(tmp_path / "o"), "--overwrite", check=False, env=env)
        assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert os.environ.get("CNNLAB_CACHE") != env["CNNLAB_CACHE"]


def test_patience_watches_a_folders_own_val_split_and_asks_for_one_without_it(cli, tmp_path, env):
    x, y = mnist_sample_test(12)  # 120 real digits: 8 train, 2 val, 2 test per class
    part = np.arange(len(y)) % 6
    for name, sel in (("train", part < 4), ("val", part == 4), ("test", part == 5)):
        make_folder(tmp_path / "split" / name, x[sel], y[sel], DIGITS, junk=False)
    make_folder(tmp_path / "flat", x, y, DIGITS, junk=False)
    common = ["--epochs", "2", "--patience", "1", "--batch-size", "32", "--threads", "1", "--overwrite"]
    proc = cli(
        "train",
        "--dataset",
        str(tmp_path / "split"),
        *common,
        "--out",
        str(tmp_path / "a"),
        "--json",
        env=env,
    )
    assert json.loads(proc.stdout)["val_accuracy"] is not None  # the val/ folder was watched, no --val-split
    proc = cli(
        "train",
        "--dataset",
        str(tmp_path / "flat"),
        *common,
        "--out",
        str(tmp_path / "b"),
        check=False,
        env=env,
    )
    assert proc.returncode == 2 and "has no val/ folder; add --val-split" in proc.stderr, proc.stderr
    proc = cli("train", "--dataset", str(tmp_path / "split"), *common, "--val-split", "0.1",
               "--out", str(tmp_path / "c"), check=False, env=env)  # fmt: skip
    assert proc.returncode == 2 and "has its own val/ folder" in proc.stderr, proc.stderr
