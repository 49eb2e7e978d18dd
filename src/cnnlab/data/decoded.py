"""The built-in datasets (IDX, CIFAR-10) through the decode cache (`cnnlab.data.cache`).

The first `load_dataset("mnist")` gunzips and validates the IDX files (~1 s for MNIST) and stores the
decoded uint8 images and int64 labels as .npy files in the user cache; every later load memory-maps them
(milliseconds). The entry's key is the source files' paths, sizes and mtimes plus a reader version, so a
replaced or touched file is decoded again. A cache that cannot be written (read-only home, full disk) is
not an error: the decoded arrays are used directly. `CNNLAB_NO_DECODE_CACHE=1` turns the cache off.
"""

import os
from collections.abc import Callable
from pathlib import Path

import torch

from cnnlab.data import cache
from cnnlab.data.cifar import TEST_BATCHES, TRAIN_BATCHES
from cnnlab.errors import CnnlabError

READER_VERSION = 1  # bump when a reader's output changes: old entries are then never hit
NAMES = ("train_x", "train_y", "test_x", "test_y")


def source_files(folder: Path, kind: str) -> list[Path]:
    """The files whose size and mtime key the entry: the IDX files, or CIFAR's archive or batches."""
    if kind == "cifar":
        archive = folder / "cifar-10-python.tar.gz"
        if archive.is_file():
            return [archive]
        sub = folder / "cifar-10-batches-py"
        batches = sub if sub.is_dir() else folder
        return [batches / n for n in (*TRAIN_BATCHES, *TEST_BATCHES) if (batches / n).is_file()]
    return sorted(
        p for p in folder.iterdir() if "idx" in p.name and p.is_file()
    )  # also train-images.idx3-ubyte


def cached(name: str, folder: Path, kind: str, decode: Callable[[], tuple]) -> tuple[torch.Tensor, ...]:
    """(train_x, train_y, test_x, test_y): from the cache if there is an entry for these files, else
    `decode()`d and stored for next time."""
    if os.environ.get("CNNLAB_NO_DECODE_CACHE"):
        return decode()
    files = source_files(folder, kind)
    if not files:
        return decode()  # let the reader report what is missing
    key = cache.cache_key(files, {"dataset": name, "kind": kind, "reader": READER_VERSION})
    hit = cache.load(key, mode="c")  # copy-on-write: a user may change the tensors, never the file
    if hit is not None and all(n in hit for n in NAMES):
        return tuple(torch.from_numpy(hit[n]) for n in NAMES)
    parts = decode()
    try:
        with cache.Writer(key) as w:
            for n, t in zip(NAMES, parts):
                w.put(n, t.numpy())
            w.meta["dataset"] = name
    except CnnlabError:
        pass  # no cache this time; the arrays in memory are just as good
    return parts
