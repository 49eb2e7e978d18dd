"""Image folders as datasets: layouts, hygiene, conversions, stratified and stable splits, the cache,
errors. Fixture folders are real MNIST digits written in every format and mode (see folder_images.py)."""

import json
import os
import shutil

import numpy as np
import pytest
import torch
from folder_images import VARIANTS, make_folder, mnist_sample_test, save_variant
from PIL import Image

from cnnlab.data import load_dataset
from cnnlab.data.folder import FolderOptions, natural_key, scan, stratified_split
from cnnlab.data.images import decode, inspect
from cnnlab.errors import CnnlabError

DIGITS = [str(i) for i in range(10)]


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNLAB_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def digits():
    return mnist_sample_test(12)  # 120 real digits


@pytest.fixture
def folder(tmp_path, digits):
    x, y = digits
    written = make_folder(tmp_path / "digits", x, y, DIGITS)
    return tmp_path / "digits", written


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_format_and_mode_decodes_to_the_original_pixels(tmp_path, digits, variant):
    a = digits[0][3]
    path = save_variant(a, tmp_path / "img", variant)
    got = decode(path, 28, 1)[0].astype(int)
    lossy = "jpeg" in variant
    assert np.abs(got - a.astype(int)).mean() < (
        1.5 if lossy else 1e-9
    )  # EXIF rotation undone, 16-bit scaled
    assert inspect(path).grey and inspect(path).short == 28


def test_alpha_is_composited_on_white_and_cmyk_colour_kept(tmp_path):
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 0] = 200  # red, fully transparent except one pixel
    rgba[0, 0, 3] = 255
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    got = decode(tmp_path / "a.png", 4, 3)
    assert got[:, 0, 0].tolist() == [200, 0, 0] and got[:, 3, 3].tolist() == [255, 255, 255]
    Image.new("RGB", (6, 4), (255, 0, 0)).convert("CMYK").save(tmp_path / "c.jpg", quality=100)
    red = decode(tmp_path / "c.jpg", 4, 3)
    assert red[0].min() > 240 and red[1].max() < 15 and not inspect(tmp_path / "c.jpg").grey


def test_shorter_side_resized_then_centre_cropped(tmp_path):
    a = np.zeros((40, 80), np.uint8)
    a[:, 20:60] = 255  # the centre 40x40 is white, the sides black
    Image.fromarray(a).save(tmp_path / "wide.png")
    got = decode(tmp_path / "wide.png", 20, 1)[0]
    assert got.shape == (20, 20) and got[:, 1:-1].min() > 250


def test_natural_class_order_and_classes_flag():
    assert sorted(["10", "2", "1", "b", "A"], key=natural_key) == ["1", "2", "10", "A", "b"]
    assert sorted(["img10", "img9", "img9a"], key=natural_key) == ["img9", "img9a", "img10"]


def test_scan_finds_classes_and_ignores_hidden_junk(folder):
    root, written = folder
    sc = scan(root)
    assert sc.classes == DIGITS and not sc.given  # .ipynb_checkpoints is no class
    files = [p for p, _ in sc.files["all"]]
    assert len(files) == 121  # 120 images + the corrupt one; hidden, AppleDouble, .DS_Store, .txt left out
    assert not any("/." in f or f.startswith(".") or f.endswith(".txt") for f in files)
    assert any("/sub/" in f for f in files)  # images anywhere below the class folder
    assert [c for c in scan(root, "7,3").classes] == ["7", "3"]
    with pytest.raises(CnnlabError, match="no folder cat"):
        scan(root, "3,cat")


def test_load_skips_and_reports_the_corrupt_file(folder):
    root, written = folder
    lines = []
    data = load_dataset(str(root), log=lines.append)
    assert data.classes == DIGITS and data.shape == (1, 28, 28)  # all greyscale -> 1 channel
    assert len(data.train_y) + len(data.test_y) == 120
    assert [f for f, _ in data.source.skipped] == ["0/broken.png"]
    text = "\n".join(lines)
    assert "skipped 1 unreadable" in text and "class" in text and "total" in text
    assert data.preprocess == "digit" and data.orientation_sensitive
    assert data.train_x.dtype == torch.uint8 and abs(data.mean[0] - 0.13) < 0.03
    with pytest.raises(CnnlabError, match="broken.png"):
        load_dataset(str(root), options=FolderOptions(strict=True))


def test_split_is_stratified_stable_and_cached(folder, monkeypatch):
    root, _ = folder
    opts = FolderOptions(val_split=0.25, test_split=0.25)
    a = load_dataset("folder", str(root), options=opts)
    assert torch.bincount(a.test_y).tolist() == [3] * 10  # 12 per class (11 for the one with the bad file)
    assert torch.bincount(a.val_y).tolist() == [3] * 10
    other = load_dataset("folder", str(root), options=FolderOptions(split_seed=1, test_split=0.25))
    assert other.test_files != a.test_files
    t0 = os.times()
    b = load_dataset("folder", str(root), options=opts)  # rerun: both passes are cache hits
    assert a.test_files == b.test_files and torch.equal(a.test_x, b.test_x)
    import cnnlab.data.folder_cache as fc

    monkeypatch.setattr(fc, "decode_chunk", lambda *a: pytest.fail("decoded again on a cache hit"))
    monkeypatch.setattr(fc, "inspect_chunk", lambda *a: pytest.fail("inspected again on a cache hit"))
    c = load_dataset("folder", str(root), options=opts)
    assert torch.equal(a.train_x, c.train_x) and os.times()[0] - t0[0] < 5


def test_stratified_split_adds_files_without_moving_old_ones():
    files = [(f"{c}/{i}.png", c) for c in range(3) for i in range(20)]
    a = stratified_split(files, {"test": 0.2}, seed=0)
    assert [sum(1 for _, y in a["test"] if y == c) for c in range(3)] == [4, 4, 4]
    b = stratified_split(files + [("0/new.png", 0)], {"test": 0.2}, seed=0)
    assert len(set(a["test"]) & set(b["test"])) >= 11  # one file in or out at most
    tiny = stratified_split([("0/a.png", 0), ("1/a.png", 1)], {"test": 0.5}, 0)
    assert len(tiny["train"]) == 2  # every class keeps a training image


def test_given_split_layout_and_colour(tmp_path, digits):
    x, y = digits
    rgb = ("png-RGB",)
    part = np.arange(len(y)) % 6  # 12 per class: 8 train, 2 valid, 2 test
    for name, sel in (("train", part < 4), ("valid", part == 4), ("test", part == 5)):
        make_folder(tmp_path / "d" / name, x[sel], y[sel], DIGITS, rgb, junk=False)
    # tint one image so the folder is no longer all grey
    p = next((tmp_path / "d" / "train" / "0").glob("*.png"))
    Image.new("RGB", (28, 28), (255, 0, 0)).save(p)
    # digits by name, and nearly all grey: handwriting (one channel); the red square has no ink: skipped
    data = load_dataset(str(tmp_path / "d"))
    assert data.shape == (1, 28, 28) and data.preprocess == "digit" and data.orientation_sensitive
    assert (len(data.train_y), len(data.val_y), len(data.test_y)) == (79, 20, 20)
    assert data.source.skipped == [(str(p.relative_to(tmp_path / "d")), "blank: no ink found")]
    # read as photos, one colour image makes the folder RGB
    data = load_dataset(str(tmp_path / "d"), options=FolderOptions(preprocess="photo"))
    assert data.shape == (3, 28, 28) and data.preprocess == "photo" and not data.orientation_sensitive
    assert (len(data.train_y), len(data.val_y), len(data.test_y)) == (80, 20, 20)
    one = load_dataset(
        str(tmp_path / "d"), options=FolderOptions(channels=1, image_size=16, preprocess="photo")
    )
    assert one.shape == (1, 16, 16)
    # the valid/ folder is the validation set: a fraction on top would be silently ignored, so it is refused
    with pytest.raises(CnnlabError, match=r"--val-split 0.1: .* has its own val/ folder.*drop --val-split"):
        load_dataset(str(tmp_path / "d"), options=FolderOptions(val_split=0.1))


@pytest.mark.parametrize(
    "setup, message",
    [
        (lambda r: None, "no class folders"),
        (lambda r: [(r / c).mkdir() for c in "ab"], "no images in this class folder"),
        (lambda r: (r / "a").mkdir(), "no images"),
    ],
)
def test_empty_folders_are_one_line_errors(tmp_path, setup, message):
    root = tmp_path / "empty"
    root.mkdir()
    setup(root)
    with pytest.raises(CnnlabError, match=message):
        load_dataset(str(root))


def test_saved_split_is_reused_for_evaluation(folder, tmp_path):
    from cnnlab.data import load_for_checkpoint
    from cnnlab.data.folder_cache import write_run_files

    root, _ = folder
    data = load_dataset(str(root), options=FolderOptions(test_split=0.3))
    run = tmp_path / "run"
    run.mkdir()
    write_run_files(run, data.source)
    (run / "best.safetensors").write_bytes(b"")  # resolve() needs a checkpoint file in the run folder
    split = json.loads((run / "split.json").read_text())
    assert [p for p, _ in split["test"]] == data.test_files
    meta = {"folder": {"root": str(root), "options": data.source.options}, "input_shape": [1, 28, 28]}
    meta |= {"classes": DIGITS, "dataset": "folder"}
    # images added after training do not leak into the test set
    shutil.copy(root / "3" / "0000.png", root / "3" / "added.png")
    again = load_for_checkpoint(meta, run / "best.safetensors")
    assert again.test_files == data.test_files and torch.equal(again.test_x, data.test_x)


def test_a_changed_file_is_decoded_again(folder):
    root, _ = folder
    opts = FolderOptions(test_split=0.5, preprocess="photo")  # as photos: a white image is no blank digit
    a = load_dataset(str(root), options=opts)
    i = next(i for i, f in enumerate(a.test_files) if f.endswith(".png") and "broken" not in f)
    name, label = a.test_files[i], int(a.test_y[i])
    assert int(a.test_x[i].min()) == 0  # a digit: black background
    Image.new("L", (28, 28), 255).save(root / name)  # same path, new content (and size, mtime)
    b = load_dataset(str(root), options=opts)
    row = b.test_files.index(name)
    assert int(b.test_y[row]) == label and int(b.test_x[row].min()) == 255


def test_channel_stats_stream_in_bounded_chunks():
    from cnnlab.data.folder_cache import channel_stats

    x = np.random.default_rng(0).integers(0, 256, (37, 3, 9, 9), dtype=np.uint8)
    want = x.astype(np.float64).transpose(1, 0, 2, 3).reshape(3, -1) / 255
    for budget in (10, 300, 2**22):  # 1 image, a few images, everything per chunk
        mean, std = channel_stats(x, budget)
        np.testing.assert_allclose(mean, want.mean(1), rtol=1e-9)
        np.testing.assert_allclose(std, want.std(1), rtol=1e-7)


def test_imbalance_warning_and_balance_weights():
    from types import SimpleNamespace

    from cnnlab.data.folder import class_table
    from cnnlab.training.data_setup import class_weights

    splits = {"train": [("a", 0)] * 50 + [("b", 1)] * 9 + [("c", 2)] * 10, "test": [("t", 0)]}
    table, warnings = class_table(["a", "b", "c"], splits)
    assert "total" in table and len(warnings) == 1 and "'b' has 9" in warnings[0]  # 9 < 50/5, 10 is not
    y = torch.tensor([0] * 50 + [1] * 9 + [2] * 10)
    w = class_weights(SimpleNamespace(balance=True), y, 3)
    assert torch.allclose(w, torch.tensor([69 / 150, 69 / 27, 69 / 30]))
    assert torch.allclose((w[y]).mean(), torch.tensor(1.0))  # the average weight per image stays 1
    assert class_weights(SimpleNamespace(balance=False), y, 3) is None
