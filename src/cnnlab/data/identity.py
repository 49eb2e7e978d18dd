"""Are these the files of the dataset they are used as? Local files are checked against the published
MD5s in each dataset's record (`records.py`), so Fashion-MNIST files passed as MNIST (same format, same shapes) are named for
what they are instead of silently training digits labelled as clothes.

Hashing ~55 MB costs a fraction of a second; the verdict is cached in the user cache keyed by each
file's path, size and modification time, so a second run costs a `stat` per file.
"""

import hashlib
import json
from pathlib import Path

from cnnlab.core.files import atomic_write_text
from cnnlab.data.idx import read_bytes
from cnnlab.data.records import DATASETS, FileSpec
from cnnlab.data.sources import cache_dir
from cnnlab.errors import CnnlabError
from cnnlab.i18n import _

VERDICTS = "verified-files.json"  # in the user cache: {"path|size|mtime": [md5, raw md5]}


def _known() -> dict[str, tuple[str, str]]:
    """Every published MD5 (of the served file or its decompressed bytes) -> (dataset, file name)."""
    out = {}
    for name, record in DATASETS.items():
        for spec in record.files:
            for digest in (spec.md5, spec.raw_md5):
                if digest:
                    out[digest] = (name, spec.name)
    return out


def _digests(path: Path, cache: dict) -> list[str]:
    """[MD5 of the file, MD5 of its decompressed bytes (gzip only)], from the cache when unchanged."""
    st = path.stat()
    key = f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}"
    if key in cache:
        return cache[key]
    data = path.read_bytes()
    digests = [hashlib.md5(data).hexdigest()]
    if data[:2] == b"\x1f\x8b":
        try:
            digests.append(hashlib.md5(read_bytes(path)).hexdigest())
        except CnnlabError:
            pass
    else:  # an uncompressed file: its own MD5 is the "raw" one
        digests.append(digests[0])
    cache[key] = digests
    return digests


def _load_cache() -> dict:
    try:
        return json.loads((cache_dir(VERDICTS)).read_text())
    except (OSError, ValueError):
        return {}


def _save_cache(cache: dict) -> None:
    path = cache_dir(VERDICTS)
    try:  # a cache that cannot be written only costs the hashing again next time
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(cache))
    except (OSError, CnnlabError):
        pass


def check_files(name: str, folder: Path, specs: tuple[FileSpec, ...] | None = None) -> list[str]:
    """Raise when a file of dataset `name` in folder is a known file of another dataset; returns the
    names of files that match no published checksum (used anyway: a user's own conversion)."""
    from cnnlab.data.sources import _present

    record = DATASETS.get(name)
    if record is None:
        return []
    known, cache = _known(), _load_cache()
    before = len(cache)
    unknown = []
    try:
        for spec in specs or record.files:
            path = _present(folder, spec.name)
            if path is None or path.is_dir():  # an extracted CIFAR folder: nothing single to hash
                continue
            digests = _digests(path, cache)
            if spec.md5 in digests or (spec.raw_md5 and spec.raw_md5 in digests):
                continue
            other = next((known[d] for d in digests if d in known), None)
            if other is not None and other[0] != name:
                raise CnnlabError(
                    _("{path}: these are the {other} files, not {pretty} (its published MD5 identifies it as "
                      "{dataset}'s {file}); use --dataset {dataset}, or point --data-dir at the {name} files",
                      path=path, other=DATASETS[other[0]].pretty, pretty=record.pretty, dataset=other[0],
                      file=other[1], name=name)
                )  # fmt: skip
            if other is not None:  # e.g. the training images given where the test images belong
                raise CnnlabError(
                    _("{path}: this is {name}'s {file}, not {wanted}", path=path, name=name, file=other[1],
                      wanted=spec.name)
                )  # fmt: skip
            unknown.append(path.name)
    finally:
        if len(cache) != before:
            _save_cache(cache)
    return unknown
