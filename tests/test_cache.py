"""The decode cache: a hit returns the same arrays memory-mapped; any change of a source file or a
setting is a miss; an interrupted write leaves nothing behind; a damaged entry is rebuilt."""

import os

import numpy as np
import pytest

from cnnlab.data import cache


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNLAB_CACHE", str(tmp_path / "cache"))


def make_source(tmp_path, text="abc"):
    src = tmp_path / "a.bin"
    src.write_text(text)
    return src


def test_round_trip_is_a_memory_map(tmp_path):
    key = cache.cache_key([make_source(tmp_path)], {"size": 28})
    assert cache.load(key) is None
    x = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 1, 3, 4)
    with cache.Writer(key) as w:
        w.put("x", x)
        big = w.array("y", (5,), np.int64)
        big[:] = [1, 2, 3, 4, 5]
        w.meta["classes"] = ["a", "b"]
    got = cache.load(key)
    assert isinstance(got["x"], np.memmap) and not got["x"].flags.writeable
    np.testing.assert_array_equal(got["x"], x)
    assert got["y"].tolist() == [1, 2, 3, 4, 5]
    assert got["meta"] == {"classes": ["a", "b"]}


def test_key_changes_with_files_and_settings(tmp_path):
    src = make_source(tmp_path)
    key = cache.cache_key([src], {"size": 28})
    assert cache.cache_key([src], {"size": 32}) != key
    src.write_text("abcd")  # new size
    assert cache.cache_key([src], {"size": 28}) != key
    st = src.stat()
    os.utime(src, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))  # same size, new mtime
    assert cache.cache_key([src], {"size": 28}) != cache.cache_key([make_source(tmp_path, "abcd")], {})


def test_failed_write_leaves_no_entry(tmp_path):
    key = cache.cache_key([make_source(tmp_path)], {})
    with pytest.raises(RuntimeError), cache.Writer(key) as w:
        w.put("x", np.zeros(3, np.uint8))
        raise RuntimeError("interrupted")
    assert cache.load(key) is None
    assert list(cache.cache_root().iterdir()) == []


def test_damaged_entry_is_a_miss_and_removed(tmp_path):
    key = cache.cache_key([make_source(tmp_path)], {})
    with cache.Writer(key) as w:
        w.put("x", np.zeros(3, np.uint8))
    (cache.entry_path(key) / "x.npy").write_bytes(b"not an npy file")
    assert cache.load(key) is None
    assert not cache.entry_path(key).exists()
