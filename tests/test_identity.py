"""Data identity: local files are checked against the published MD5s, so another dataset's files are
named for what they are; the verdict is cached by path, size and mtime."""

import hashlib
from dataclasses import replace

import numpy as np
import pytest
from test_predict_eval import write_idx

from cnnlab.data import identity, load_dataset
from cnnlab.data.records import DATASETS, FileSpec
from cnnlab.errors import CnnlabError


def fake_mnist(folder, monkeypatch):
    """Four tiny IDX files whose MD5s are made the 'published' MNIST ones for this test."""
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 30), ("t10k", 10)):
        write_idx(folder, prefix, rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), np.arange(n) % 10)
    specs = tuple(
        FileSpec(spec.name, hashlib.md5((folder / spec.name).read_bytes()).hexdigest())
        for spec in DATASETS["mnist"].files
    )
    monkeypatch.setitem(DATASETS, "mnist", replace(DATASETS["mnist"], files=specs, mirrors=()))


def test_mnist_files_given_as_fashion_are_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNLAB_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "digits"
    fake_mnist(folder, monkeypatch)
    with pytest.raises(CnnlabError, match="these are the MNIST files, not Fashion-MNIST"):
        load_dataset("fashion-mnist", str(folder), download=False)
    assert len(load_dataset("mnist", str(folder), download=False).test_y) == 10
    # the second time the verdict comes from the cache: no file is hashed again
    assert (tmp_path / "cache" / identity.VERDICTS).is_file()
    monkeypatch.setattr(identity.hashlib, "md5", lambda *a: pytest.fail("hashed again"))
    with pytest.raises(CnnlabError, match="not Fashion-MNIST"):
        load_dataset("fashion-mnist", str(folder), download=False)


def test_changed_file_is_hashed_again(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNLAB_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "digits"
    fake_mnist(folder, monkeypatch)
    identity.check_files("mnist", folder)
    labels = folder / "t10k-labels-idx1-ubyte.gz"
    labels.write_bytes(labels.read_bytes() + b"\0")  # same path, other size: a new verdict
    assert identity.check_files("mnist", folder) == ["t10k-labels-idx1-ubyte.gz"]  # matches no MD5 now


def test_real_mnist_is_not_fashion(shared_data, tmp_path, monkeypatch):
    monkeypatch.setenv("CNNLAB_CACHE", str(tmp_path / "cache"))
    with pytest.raises(CnnlabError, match="these are the MNIST files, not Fashion-MNIST"):
        load_dataset("fashion-mnist", str(shared_data / "mnist"), download=False)
    assert identity.check_files("fashion-mnist", shared_data / "fashion-mnist") == []
