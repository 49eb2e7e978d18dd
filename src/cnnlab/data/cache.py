"""Decoded images cached as uint8 `.npy` files and memory-mapped on the next start (no gunzip, no decode).

One entry is a folder under `<user cache>/decoded/` named by a hash of its key: the source files'
absolute paths, sizes and mtimes, plus the settings that shaped the arrays (image size, channels, ...).
A changed, added or removed source file or setting gives another key, so a stale entry is never read.
An entry is written into a temporary folder and renamed into place, so a crash or a full disk mid-write
leaves no half entry; two processes racing to write the same entry both end with a complete one.
Arrays are written incrementally through `numpy.lib.format.open_memmap`, so a dataset larger than RAM
is cached (and later trained on) with bounded memory.

`CNNLAB_NO_DECODE_CACHE=1` turns the cache off: nothing is read from it, and `writer()` then (or when the
cache cannot be written: a read-only `CNNLAB_CACHE`, with one warning) builds the entry in a temporary
folder that `load_written` maps and deletes at once (a mapped file outlives its name), so the same code
decodes a larger-than-RAM folder with or without the cache.

    key = cache_key(files, {"image_size": 64})
    arrays = load(key)                      # {"train_x": memmap, ...} or None on a miss
    if arrays is None:
        with Writer(key) as w:
            x = w.array("train_x", (n, 3, 64, 64), np.uint8)   # fill x[i] = ...
            w.meta["classes"] = [...]
        arrays = load(key)
"""

import hashlib
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from cnnlab.errors import CnnlabError
from cnnlab.i18n import _

VERSION = 1  # bump when the layout of an entry changes: old entries are then simply never hit
META = "meta.json"  # written last: an entry without it is incomplete
_warned: list[str] = []  # the unwritable-cache warning, once per process


def cache_root() -> Path:
    """`$CNNLAB_CACHE/decoded`, else the user cache (`~/.cache/cnnlab/decoded` on Linux)."""
    from cnnlab.data.sources import cache_dir  # lazy: only runs that touch the cache pay for it

    return cache_dir("decoded")


def cache_key(files: Iterable[Path], settings: dict) -> str:
    """A hex digest of (path, size, mtime_ns) of every file plus the JSON of `settings`."""
    h = hashlib.sha256(f"cnnlab-cache-v{VERSION}".encode())
    for f in sorted(Path(p).resolve() for p in files):
        st = f.stat()
        h.update(f"{f}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    h.update(json.dumps(settings, sort_keys=True, default=str).encode())
    return h.hexdigest()[:32]


def entry_path(key: str) -> Path:
    return cache_root() / key


def disabled() -> bool:
    """CNNLAB_NO_DECODE_CACHE is set: decode every time, keep nothing."""
    return bool(os.environ.get("CNNLAB_NO_DECODE_CACHE"))


def load(key: str, mmap: bool = True, mode: str = "r") -> dict[str, np.ndarray] | None:
    """The arrays of a complete entry (read-only memory maps), with its meta under "meta"; None on a miss
    (always, when the cache is `disabled`). `mode="c"` maps copy-on-write: writable arrays whose changes
    stay in memory, never reach the file.

    A damaged entry (unreadable meta or array) counts as a miss and is removed, so it is rebuilt."""
    return None if disabled() else _load(entry_path(key), mmap, mode)


def _load(folder: Path, mmap: bool = True, mode: str = "r") -> dict[str, np.ndarray] | None:
    if not (folder / META).is_file():
        return None
    try:
        meta = json.loads((folder / META).read_text())
        arrays = {
            name: np.load(folder / f"{name}.npy", mmap_mode=mode if mmap else None, allow_pickle=False)
            for name in meta["arrays"]
        }
    except (OSError, ValueError, KeyError):
        shutil.rmtree(folder, ignore_errors=True)
        return None
    arrays["meta"] = meta.get("user", {})
    return arrays


def writer(key: str) -> "Writer":
    """A Writer of entry `key` into the cache; a temporary one (see the module docstring) when the cache is
    off or cannot be written, the latter with one warning on stderr (as the built-in datasets, which then
    decode without it)."""
    if disabled():
        return Writer(key, temporary=True)
    try:
        return Writer(key)
    except CnnlabError as e:
        if not _warned:
            _warned.append(str(e))
            note = _("decoding without it (nothing is kept for the next start)")
            print(_("cnnlab: warning: {message}", message=f"{e}; {note}"), file=sys.stderr)
        return Writer(key, temporary=True)


def load_written(w: "Writer") -> dict[str, np.ndarray]:
    """The arrays of the entry `w` committed; a temporary entry is deleted once mapped (its maps stay valid:
    a mapped file outlives its name)."""
    hit = _load(w.final) if w.temporary else load(w.key)
    if hit is None:
        raise CnnlabError(_("cannot read the decode cache entry {path}", path=w.final))
    if w.temporary:
        shutil.rmtree(w.final, ignore_errors=True)
    return hit


class Writer:
    """Builds one entry in a temporary folder beside the cache; `commit` (or leaving the `with` block
    without an exception) renames it into place. `meta` is a JSON-able dict stored with the arrays.
    `temporary`: built in the system's temporary folder instead and left there (see `load_written`)."""

    def __init__(self, key: str, temporary: bool = False):
        self.key = key
        self.temporary = temporary
        root = Path(tempfile.gettempdir()) if temporary else cache_root()
        self.final = root / key
        try:
            root.mkdir(parents=True, exist_ok=True)
            self.tmp = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=root))
        except OSError as e:
            raise CnnlabError(
                _("cannot write the decode cache in {root}: {reason}", root=root, reason=e.strerror or e)
            ) from None
        self.names: list[str] = []
        self.meta: dict = {}
        self._maps: list[np.memmap] = []

    def array(self, name: str, shape: tuple[int, ...], dtype=np.uint8) -> np.memmap:
        """A writable memory-mapped .npy of this shape; fill it in place."""
        arr = np.lib.format.open_memmap(self.tmp / f"{name}.npy", mode="w+", dtype=dtype, shape=shape)
        self.names.append(name)
        self._maps.append(arr)
        return arr

    def put(self, name: str, values: np.ndarray) -> None:
        """Store a whole in-memory array."""
        self.array(name, values.shape, values.dtype)[...] = values

    def commit(self) -> Path:
        try:
            for arr in self._maps:
                arr.flush()
            self._maps.clear()
            meta = {"version": VERSION, "arrays": self.names, "user": self.meta}
            (self.tmp / META).write_text(json.dumps(meta))
            if self.temporary:
                self.final = self.tmp
                return self.tmp
            final = entry_path(self.key)
            try:
                os.replace(self.tmp, final)  # atomic; fails if another process already made it
            except OSError:
                if not (final / META).is_file():
                    raise
                shutil.rmtree(self.tmp, ignore_errors=True)  # the other writer's entry is as good
            return final
        except OSError as e:
            self.abort()
            raise CnnlabError(
                _("cannot write the decode cache {path}: {reason}", path=self.tmp, reason=e.strerror or e)
            ) from None

    def abort(self) -> None:
        self._maps.clear()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self) -> "Writer":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()
