"""What a folder's files hold: a digest of every file's bytes, and exact duplicates (the same bytes under
two names) that sit in more than one split.

The digests key the folder decode cache (`folder_cache.folder_key`): an image changed in place is never
served stale, whatever its size and mtime (a key of path, size and mtime missed a same-size change with the
mtime kept: a retrain said 100% on pixels it had never seen). Reading and hashing the bytes of 20,000
small PNGs takes about 0.4 s on a loaded 2-core machine, against about 8 s to decode them (BENCHMARKS.md);
threads or processes did not make it faster there (the time is per-file system calls under the GIL).

Duplicates are the commonest silent leak of a real folder (a photo saved twice, a dataset merged with a
copy of itself): a test image whose exact copy was trained on measures memory, not generalisation.
"""

import hashlib
import os

from cnnlab.data.images import BadImage, open_regular

UNREADABLE = "!"  # a digest starting with this is the reason the file could not be read


def digest(path: str) -> str:
    """A 128-bit BLAKE2b hex digest of the file's bytes, or UNREADABLE + why (a FIFO, a looping link, a
    folder, a missing file: only regular files are read, so this never blocks)."""
    try:
        with open_regular(path) as f:
            size = os.fstat(f.fileno()).st_size
            data = f.read(size + 1)  # one read for the usual small image; a file growing meanwhile goes on
            h = hashlib.blake2b(data, digest_size=16)
            if len(data) > size:
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
            return h.hexdigest()
    except BadImage as e:
        return UNREADABLE + e.english
    except OSError as e:
        return UNREADABLE + (e.strerror or str(e))


def digests(root: str, rels: list[str]) -> dict[str, str]:
    """{path relative to root: digest} for every file."""
    base = str(root) + os.sep
    return {r: digest(base + r) for r in rels}


def copy_groups(found: dict[str, str]) -> dict[str, str]:
    """{path: its digest} for every readable file whose exact bytes another file has too."""
    count: dict[str, int] = {}
    for d in found.values():
        count[d] = count.get(d, 0) + 1
    return {p: d for p, d in found.items() if count[d] > 1 and not d.startswith(UNREADABLE)}


def copies(splits: dict[str, list[tuple[str, int]]], found: dict[str, str]) -> list[list[tuple[str, str]]]:
    """Groups of files with the same bytes that sit in more than one split: [[(split, path), ...], ...],
    each group and the groups in a fixed order (by split, then path). Unreadable files are never copies."""
    by_digest: dict[str, list[tuple[str, str]]] = {}
    for split, files in splits.items():
        for path, _label in files:
            d = found.get(path, UNREADABLE)
            if not d.startswith(UNREADABLE):
                by_digest.setdefault(d, []).append((split, path))
    groups = [sorted(g, key=_order) for g in by_digest.values() if len({s for s, _ in g}) > 1]
    return sorted(groups, key=lambda g: _order(g[0]))


SPLIT_ORDER = {"train": 0, "val": 1, "test": 2}


def _order(item: tuple[str, str]) -> tuple[int, str]:
    return SPLIT_ORDER.get(item[0], 3), item[1]


def tested_copies(groups: list[list[tuple[str, str]]]) -> int:
    """How many test images have an exact copy in train or val."""
    return sum(1 for g in groups for s, _ in g if s == "test")
