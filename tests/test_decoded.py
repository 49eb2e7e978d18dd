"""The built-in datasets through the decode cache: the second load is a memory map of the same arrays,
a changed source file is decoded again, a user's write never reaches the cache, no cache still works."""

import gzip
import os
import time

import numpy as np
import pytest
import torch

from cnnlab.data import cache, load_dataset
from cnnlab.data.decoded import source_files


def idx_bytes(a: np.ndarray) -> bytes:
    header = (0x800 | a.ndim).to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in a.shape)
    return header + a.astype(np.uint8).tobytes()


@pytest.fixture
def mnist_dir(tmp_path, monkeypatch):
    """A tiny but valid MNIST folder (gzipped IDX, like the real one) and a private cache."""
    monkeypatch.setenv("CNNLAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("CNNLAB_NO_DECODE_CACHE", raising=False)
    rng = np.random.default_rng(0)
    folder = tmp_path / "mnist"
    folder.mkdir()
    for prefix, n in (("train", 12), ("t10k", 5)):
        (folder / f"{prefix}-images-idx3-ubyte.gz").write_bytes(
            gzip.compress(idx_bytes(rng.integers(0, 256, (n, 28, 28))))
        )
        (folder / f"{prefix}-labels-idx1-ubyte.gz").write_bytes(
            gzip.compress(idx_bytes(rng.integers(0, 10, n)))
        )
    return folder


def entries(tmp_path):
    root = tmp_path / "cache" / "decoded"
    return sorted(p.name for p in root.iterdir() if not p.name.startswith(".")) if root.is_dir() else []


def test_second_load_is_a_memory_map_of_the_same_arrays(mnist_dir, tmp_path, monkeypatch):
    first = load_dataset("mnist", str(mnist_dir))
    assert len(entries(tmp_path)) == 1
    seen = []
    real_load = cache.load
    monkeypatch.setattr(cache, "load", lambda *a, **k: seen.append(r := real_load(*a, **k)) or r)
    second = load_dataset("mnist", str(mnist_dir))
    assert seen and isinstance(seen[0]["train_x"], np.memmap)  # a hit, memory-mapped
    for name in ("train_x", "train_y", "test_x", "test_y"):
        a, b = getattr(first, name), getattr(second, name)
        assert a.dtype == b.dtype and torch.equal(a, b)
    assert second.train_x.shape == (12, 1, 28, 28) and second.train_y.dtype == torch.int64


def test_changed_source_file_is_decoded_again(mnist_dir, tmp_path):
    load_dataset("mnist", str(mnist_dir))
    f = mnist_dir / "t10k-labels-idx1-ubyte.gz"
    f.write_bytes(gzip.compress(idx_bytes(np.array([9, 9, 9, 9, 9]))))
    later = time.time() + 5
    os.utime(f, (later, later))
    d = load_dataset("mnist", str(mnist_dir))
    assert d.test_y.tolist() == [9] * 5 and len(entries(tmp_path)) == 2


def test_writes_to_the_tensors_never_reach_the_cache(mnist_dir):
    load_dataset("mnist", str(mnist_dir))
    d = load_dataset("mnist", str(mnist_dir))  # from the cache
    before = d.train_x[0].clone()
    d.train_x[0] = 255 - before  # copy-on-write: allowed, private to this process
    again = load_dataset("mnist", str(mnist_dir))
    assert torch.equal(again.train_x[0], before)


def test_no_cache_when_turned_off_or_unwritable(mnist_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("CNNLAB_NO_DECODE_CACHE", "1")
    assert len(load_dataset("mnist", str(mnist_dir)).train_y) == 12
    assert entries(tmp_path) == []
    monkeypatch.delenv("CNNLAB_NO_DECODE_CACHE")
    blocker = tmp_path / "blocked"
    blocker.write_text("a file where the cache folder would go")
    monkeypatch.setenv("CNNLAB_CACHE", str(blocker))
    assert len(load_dataset("mnist", str(mnist_dir)).train_y) == 12  # decoded, just not cached


def test_source_files_idx_and_cifar(mnist_dir, tmp_path):
    assert [p.name for p in source_files(mnist_dir, "idx")] == sorted(p.name for p in mnist_dir.iterdir())
    sub = tmp_path / "c" / "cifar-10-batches-py"
    sub.mkdir(parents=True)
    (sub / "data_batch_1").write_bytes(b"x")
    (sub / "readme.html").write_bytes(b"x")
    assert [p.name for p in source_files(tmp_path / "c", "cifar")] == ["data_batch_1"]
