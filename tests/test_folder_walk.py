"""Hostile folders, in process (issue 22): the walk follows links only inside the dataset and stops at loops,
each real file counts once, FIFOs and looping links are skipped and listed, the decode cache is keyed by
content (a same-size change with the mtime kept is seen) and can be off or unwritable, exact copies stay on
one side of the split cnnlab makes and are reported across the user's own splits, file names with control
characters stay on one line, and the two one-line errors say what really happened. Fixtures are real MNIST
digits from the bundled sample (folder_images.py)."""

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from folder_images import make_folder, mnist_sample_test

from cnnlab.data import load_dataset
from cnnlab.data.folder import FolderOptions, scan, stratified_split
from cnnlab.data.folder_cache import load_folder
from cnnlab.data.folder_run import write_run_files
from cnnlab.data.walk import walk
from cnnlab.errors import CnnlabError


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNLAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("CNNLAB_NO_DECODE_CACHE", raising=False)


@pytest.fixture(scope="module")
def digits():
    x, y = mnist_sample_test(12)
    return x[y < 3], y[y < 3]  # 12 real digits of each of 0, 1, 2


@pytest.fixture
def deadline():
    """A FIFO opened the plain way blocks forever: fail after a minute instead of hanging the suite."""
    import signal

    def fail(*_args):
        raise TimeoutError("blocked for 60 s (a FIFO opened as a file?)")

    old = signal.signal(signal.SIGALRM, fail)
    signal.alarm(60)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


def two_classes(root: Path, digits, variants=("png-L",)) -> Path:
    x, y = digits
    make_folder(root, x[y < 2], y[y < 2], ["0", "1"], variants=variants, junk=False)
    return root


def test_links_are_followed_inside_the_dataset_only_and_loops_are_not_entered(tmp_path, digits):
    root = two_classes(tmp_path / "d", digits)
    elsewhere = tmp_path / "elsewhere" / "2"  # a class folder that is itself a link to another disk: fine
    x, y = digits
    make_folder(elsewhere.parent, x[y == 2], y[y == 2] - 2, ["2"], variants=("png-L",), junk=False)
    (root / "2").symlink_to(elsewhere)
    (root / "0" / "all").symlink_to("/")  # would walk the whole filesystem
    (root / "1" / "up").symlink_to("..")  # a loop back to the dataset folder
    (root / "1" / "sub" / "again").symlink_to("../..")  # a loop back to the class folder
    (root / "0" / "ones").symlink_to("../1")  # inside the dataset: followed, but the files are class 1's
    (root / "2" / "out").symlink_to(tmp_path)  # above the linked class folder and outside the dataset
    (root / "0" / "loop.png").symlink_to("loop.png")  # a file link to itself
    sc = scan(root)
    files = dict(sc.files["all"])
    assert sorted({y for y in files.values()}) == [0, 1, 2]
    assert [sum(y == c for y in files.values()) for c in range(3)] == [13, 12, 12]  # 12 each + loop.png
    assert "0/loop.png" in files and not any(p.startswith("0/ones/") for p in files)  # class 1's files once
    assert all(not p.startswith(("0/all", "1/up", "2/out")) for p in files)
    notes = dict(sc.notes)
    assert "not followed" in notes["0/all"] and "outside the dataset" in notes["0/all"]
    assert "loop" in notes["1/up"] and "loop" in notes["1/sub/again"] and "outside" in notes["2/out"]
    assert "counted once" in notes["0/ones/0000.png"] and "1/0000.png" in notes["0/ones/0000.png"]
    # the walk alone, as `predict FOLDER` uses it: bounded the same way
    w = walk(root / "0", root / "0")  # bounded by the folder named: ../1 is outside it too
    assert len(w.files) == 13 and {rel for rel, _ in w.notes} == {"./all", "./ones"}


def test_a_class_folder_made_only_of_another_class_folders_files_is_an_error(tmp_path, digits):
    root = two_classes(tmp_path / "d", digits)
    shutil.copytree(root / "1", root / "one")
    (root / "3").mkdir()
    (root / "3" / "zeros").symlink_to("../0")
    with pytest.raises(CnnlabError, match=r"3: its images are files of another class folder"):
        scan(root)


def test_a_fifo_and_a_looping_link_are_skipped_and_listed_with_each_image_once(tmp_path, digits, deadline):
    root = two_classes(tmp_path / "d", digits)
    os.mkfifo(root / "0" / "fifo.png")
    (root / "1" / "loop.png").symlink_to("loop.png")
    (root / "1" / "up").symlink_to("..")
    (root / "0" / "bad\nname.png").write_bytes(b"not an image")  # a newline in a file name
    data = load_dataset(str(root), options=FolderOptions(decode_workers=1))
    fd = data.source
    assert sum(fd.counts.values()) == 24 and fd.counts["test"] <= 6  # each real image once
    skipped = dict(fd.skipped)
    assert "not a regular file" in skipped["0/fifo.png"]
    assert "Too many levels of symbolic links" in skipped["1/loop.png"]
    run = tmp_path / "run"
    run.mkdir()
    write_run_files(run, fd)
    lines = (run / "skipped.txt").read_text().splitlines()
    assert len(lines) == 4 and all(line.count("\t") == 1 for line in lines)  # one line per file
    assert (
        f"{root}/0/bad\\nname.png\t" in "\n".join(lines) and f"{root}/0/fifo.png\tnot a regular" in lines[1]
    )
    assert any(line.startswith(f"{root}/1/up\t") and "loop" in line for line in lines)


def test_the_cache_is_keyed_by_content_a_same_size_change_with_the_mtime_kept_is_seen(tmp_path, digits):
    root = two_classes(tmp_path / "d", digits, variants=("bmp-L",))  # uncompressed: every file the same size
    opts = FolderOptions(test_split=0.5)
    before = load_folder(str(root), None, opts)
    a, b = root / "0" / "0000.bmp", root / "1" / "0000.bmp"
    stamps = [(p.stat().st_atime_ns, p.stat().st_mtime_ns) for p in (a, b)]
    old_a, old_b = a.read_bytes(), b.read_bytes()
    assert len(old_a) == len(old_b) and old_a != old_b
    a.write_bytes(old_b)  # the pixels swapped, size and mtime as they were
    b.write_bytes(old_a)
    for p, ns in zip((a, b), stamps):
        os.utime(p, ns=ns)
    after = load_folder(str(root), None, opts)

    def row(fd, name):
        for s in ("train", "val", "test"):
            if name in fd.files[s]:
                x, _ = fd.part(s)
                return x[fd.files[s].index(name)]

    assert np.array_equal(row(after, "0/0000.bmp"), row(before, "1/0000.bmp"))
    assert np.array_equal(row(after, "1/0000.bmp"), row(before, "0/0000.bmp"))
    assert not np.array_equal(row(after, "0/0000.bmp"), row(before, "0/0000.bmp"))


def test_no_decode_cache_covers_folders_and_an_unwritable_cache_falls_back_once(
    tmp_path, digits, monkeypatch, capsys
):
    import tempfile

    root = two_classes(tmp_path / "d", digits)
    cache, temporary = tmp_path / "cache", tmp_path / "tmp"
    temporary.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temporary))
    monkeypatch.setenv("CNNLAB_NO_DECODE_CACHE", "1")
    data = load_dataset(str(root))
    assert len(data.train_y) + len(data.test_y) == 24 and int(data.train_x.max()) > 0
    assert not cache.exists() and list(temporary.iterdir()) == []  # nothing kept anywhere, maps still read
    monkeypatch.delenv("CNNLAB_NO_DECODE_CACHE")
    blocker = tmp_path / "blocked"
    blocker.write_text("a file where the cache folder would go")
    monkeypatch.setenv("CNNLAB_CACHE", str(blocker))
    import cnnlab.data.cache as cache_module

    monkeypatch.setattr(cache_module, "_warned", [])
    again = load_dataset(str(root))  # two passes, two entries: one warning
    assert np.array_equal(np.asarray(again.test_x), np.asarray(data.test_x))
    err = capsys.readouterr().err
    assert err.count("warning: cannot write the decode cache") == 1 and "decoding without it" in err


def test_exact_copies_stay_on_one_side_of_cnnlabs_split_and_are_reported_across_given_splits(
    tmp_path, digits
):
    root = two_classes(tmp_path / "d", digits)
    for i in range(4):  # four images of class 0 saved again under other names
        for k in range(3):
            shutil.copy(root / "0" / f"{i:04d}.png", root / "0" / f"copy{k}-{i}.png")
    fd = load_folder(str(root), None, FolderOptions(test_split=0.5))
    side = {p: s for s in ("train", "test") for p in fd.files[s]}
    for i in range(4):
        assert len({side[f"0/copy{k}-{i}.png"] for k in range(3)} | {side[f"0/{i:04d}.png"]}) == 1
    assert fd.copies == [] and fd.together == 16
    given = tmp_path / "given"
    x, y = digits
    make_folder(given / "train", x[y < 2], y[y < 2], ["0", "1"], variants=("png-L",), junk=False)
    make_folder(given / "test", x[y < 2][::4], y[y < 2][::4], ["0", "1"], variants=("png-L",), junk=False)
    logged: list[str] = []
    fd = load_folder(str(given), None, FolderOptions(), log=logged.append)
    assert len(fd.copies) == 6 and all({s for s, _ in g} == {"train", "test"} for g in fd.copies)
    assert any("warning: 6 test image(s) have an exact copy" in line for line in logged)
    run = tmp_path / "run"
    run.mkdir()
    write_run_files(run, fd)
    lines = (run / "duplicates.txt").read_text().splitlines()
    assert (
        len(lines) == 12 and lines[0].split("\t")[:2] == ["1", "train"] and lines[1].split("\t")[1] == "test"
    )


def test_split_with_copies_keeps_every_group_whole_and_leaves_other_files_where_they_were():
    files = [(f"{c}/{i:03d}.png", c) for c in range(3) for i in range(50)]
    alone = stratified_split(files, {"test": 0.2, "val": 0.1}, seed=1)
    groups = {p: f"g{int(p[2:5]) // 5}" for p, c in files if c == 1 and int(p[2:5]) < 30}  # 6 groups of 5
    split = stratified_split(files, {"test": 0.2, "val": 0.1}, seed=1, together=groups)
    side = {p: s for s, v in split.items() for p, _ in v}
    for g in set(groups.values()):
        assert len({side[p] for p, h in groups.items() if h == g}) == 1
    for s in split:  # classes 0 and 2 have no copies: split exactly as without `together`
        assert [f for f in split[s] if f[1] != 1] == [f for f in alone[s] if f[1] != 1]
    assert sum(len(v) for v in split.values()) == 150 and any(y == 1 for _, y in split["train"])


def test_two_images_a_class_say_the_rounding_left_no_test_image(tmp_path, digits):
    x, y = digits
    root = tmp_path / "d"
    make_folder(root, x[y < 2][[0, 1, 12, 13]], y[y < 2][[0, 1, 12, 13]], ["a", "b"], variants=("png-L",),
                junk=False)  # fmt: skip
    with pytest.raises(CnnlabError) as e:
        load_folder(str(root), None, FolderOptions())
    message = str(e.value)
    assert "--test-split 0.2 rounds to no test image" in message and "largest has 2 images" in message
    assert "use --test-split 0.3 or more" in message and "ROOT/test/<class>/" in message
    fd = load_folder(str(root), None, FolderOptions(test_split=0.3))  # the suggestion works
    assert fd.counts["test"] == 2
    with pytest.raises(CnnlabError, match=r"use --test-split > 0"):
        load_folder(str(root), None, FolderOptions(test_split=0))


def test_smallest_input_is_the_first_size_the_model_takes():
    from cnnlab.inside.summary import check_input
    from cnnlab.models import get_model
    from cnnlab.training.start import smallest_input

    kwargs = dict(num_classes=2, in_channels=3, width=1.0)
    least = smallest_input("chapter-cnn", {**kwargs, "input_size": 8}, 3, 9)
    check_input(get_model("chapter-cnn", **kwargs, input_size=least), (3, least, least))
    with pytest.raises(CnnlabError):
        check_input(get_model("chapter-cnn", **kwargs, input_size=least - 1), (3, least - 1, least - 1))


def test_shown_keeps_one_line_per_file():
    from cnnlab.data.files import shown

    assert shown("a\nb\tc.png") == "a\\nb\\tc.png" and shown("평범한 이름.png") == "평범한 이름.png"
