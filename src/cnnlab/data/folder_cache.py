"""A folder dataset decoded once, in parallel, into the shared uint8 cache (`cache.py`), then memory-mapped.

Two cached passes, each keyed by the files' paths and contents (a digest of every file's bytes,
`content.py`: an image changed in place is never served stale, whatever its size and mtime):

1. inspect: every image is opened and fully decoded once up front (worker processes, progress bar);
   a corrupt or unreadable file is found here and skipped (or, with --strict, named in an error),
   never in epoch 3. It also tells whether every image is greyscale and how large they are, which
   picks the default channels and --image-size.
2. decode: every kept image, resized to --image-size, is written straight into one memory-mapped
   N x C x S x S uint8 array (train rows, then val, then test), by the worker processes in chunks.

A rerun with the same files and settings hits both entries and starts in a fraction of a second (reading
and hashing the files' bytes is most of it). Without a cache (`CNNLAB_NO_DECODE_CACHE=1`, or one that
cannot be written) both passes run every time, into temporary files (`cache.writer`).
Training reads rows out of the memory map batch by batch, so a folder larger than RAM trains with
bounded memory. Under DDP rank 0 builds the entries while the other ranks wait, then every rank maps
the same files and reads only its own share of each batch.
"""

import hashlib
import json
import multiprocessing
import os
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cnnlab.data import cache
from cnnlab.data.content import copies, copy_groups, digest, digests
from cnnlab.data.folder import (
    DIGIT_SIZE,
    SPLITS,
    FolderOptions,
    Scan,
    assign_splits,
    choose_size,
    no_test_images,
    resolve_root,
    scan,
)
from cnnlab.data.folder_run import SKIPPED_FILE, SPLIT_FILE, report, write_run_files  # noqa: F401 (also here)
from cnnlab.data.images import MISSING, decode_chunk, inspect_chunk, reason
from cnnlab.data.spec import Reading, decide, reading_of, why_text
from cnnlab.errors import CnnlabError
from cnnlab.i18n import _

CHUNK = 128  # images per task handed to a worker
IN_PROCESS_BELOW = 400  # fewer images than this decode in this process: starting workers costs more


@dataclass
class FolderData:
    root: Path  # the dataset folder
    classes: list[str]  # label -> name
    x: np.ndarray  # N x C x S x S uint8 memory map: train rows, then val, then test
    y: np.ndarray  # N int64 labels
    counts: dict[str, int]  # images per split
    files: dict[str, list[str]]  # split -> file paths relative to root, row order
    mean: tuple[float, ...]  # per-channel mean of the training images (0..1)
    std: tuple[float, ...]  # per-channel standard deviation
    preprocess: str = "photo"  # "digit" | "photo": how the images were read (and a new one is)
    orientation_sensitive: bool = False  # flips refused
    why: str = ""  # why they are read that way (cnnlab.data.spec.decide)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, why) unreadable or missing
    options: dict = field(default_factory=dict)  # the FolderOptions settings that made it
    notes: list[tuple[str, str]] = field(
        default_factory=list
    )  # (path, why) links not followed, files met twice
    copies: list = field(default_factory=list)  # [[(split, file), ...]] exact copies in more than one split
    together: int = 0  # images with exact copies that the split cnnlab made kept on one side

    def part(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        start = sum(self.counts[s] for s in SPLITS[: SPLITS.index(split)])
        end = start + self.counts[split]
        return self.x[start:end], self.y[start:end]


def _workers(requested: int, n: int) -> int:
    if n < IN_PROCESS_BELOW:
        return 1
    return max(1, min(requested or os.cpu_count() or 1, -(-n // CHUNK)))


def _run(fn, jobs: list[tuple], sizes: list[int], workers: int, progress: bool, desc: str) -> list:
    """fn(*job) for every job, in worker processes when workers > 1; results in job order."""
    from tqdm import tqdm

    results: list = [None] * len(jobs)
    bar = tqdm(
        total=sum(sizes),
        desc=desc,
        unit="img",
        file=sys.stderr,
        disable=not (progress and sys.stderr.isatty()),
        leave=False,
    )
    if workers <= 1:
        for i, job in enumerate(jobs):
            results[i] = fn(*job)
            bar.update(sizes[i])
    else:
        # fork: workers start at once and need no re-import; they only run PIL/numpy code on files
        methods = multiprocessing.get_all_start_methods()
        ctx = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
        with ProcessPoolExecutor(workers, mp_context=ctx) as pool:
            futures = {pool.submit(fn, *job): i for i, job in enumerate(jobs)}
            for f in as_completed(futures):
                results[futures[f]] = f.result()
                bar.update(sizes[futures[f]])
    bar.close()
    return results


_DIGESTS: dict[
    str, str
] = {}  # relative path -> digest of its bytes in the folder being loaded: one read each


def folder_key(root: Path, rels: list[str], settings: dict) -> str:
    """A hash of every file's path and content (`content.digest`; an unreadable file by why it failed, so
    it is tried again once readable), plus the settings. Each file is read once per call of `load_folder`
    (`_DIGESTS`); only the root is resolved (20,000 `Path.resolve` calls would cost a second a start)."""
    h = hashlib.sha256(f"cnnlab-cache-v{cache.VERSION}-folder-content\0{root.resolve()}".encode())
    base = str(root) + os.sep
    parts = []
    for r in rels:
        found = _DIGESTS.get(r)
        if found is None:
            found = _DIGESTS[r] = digest(base + r)
        parts.append(f"{r}\0{found}\n")
    h.update("".join(parts).encode())
    h.update(json.dumps(settings, sort_keys=True, default=str).encode())
    return h.hexdigest()[:32]


def inspect_all(root: Path, rels: list[str], workers: int, progress: bool) -> dict[str, tuple]:
    """rel -> (greyscale, shorter side, error or "", near-grey, looks like handwriting): pass 1, cached."""
    rels = sorted(set(rels))  # canonical order: the entry's rows must not depend on how the caller sorted
    key = folder_key(root, rels, {"pass": "inspect", "fields": 5})
    hit = cache.load(key)
    if hit is None:
        paths = [os.path.join(root, r) for r in rels]
        chunks = [paths[i : i + CHUNK] for i in range(0, len(paths), CHUNK)]
        found = _run(inspect_chunk, [(c,) for c in chunks], [len(c) for c in chunks],
                     _workers(workers, len(paths)), progress, _("checking images"))  # fmt: skip
        flat = [r for part in found for r in part]
        with cache.writer(key) as w:
            w.put("grey", np.array([i.grey for i, _ in flat], dtype=np.uint8))
            w.put("short", np.array([i.short for i, _ in flat], dtype=np.int32))
            w.put("near", np.array([i.near_grey for i, _ in flat], dtype=np.uint8))
            w.put("look", np.array([i.digit_look for i, _ in flat], dtype=np.uint8))
            w.meta["errors"] = {str(k): e for k, (_info, e) in enumerate(flat) if e}
        hit = cache.load_written(w)
    errors = hit["meta"].get("errors", {})
    grey, short, near, look = hit["grey"], hit["short"], hit["near"], hit["look"]
    return {
        r: (bool(grey[i]), int(short[i]), errors.get(str(i), ""), bool(near[i]), bool(look[i]))
        for i, r in enumerate(rels)
    }


def decode_all(
    root: Path, splits: dict, size: int, channels: int, workers: int, progress: bool, digit: bool = False
) -> tuple[str, dict]:
    """Pass 2, cached: (its cache key, the arrays and row bookkeeping of the kept images); `digit`: read
    as handwriting (MNIST's recipe, cnnlab.data.images.digit_array)."""
    ordered = [(s, p, y) for s in SPLITS for p, y in splits.get(s, [])]
    order = hashlib.sha256(json.dumps(ordered).encode()).hexdigest()
    settings = {"pass": "decode", "size": size, "channels": channels, "order": order}
    if digit:
        settings["digit"] = True  # only when set: the photo entries of earlier runs keep their keys
    key = folder_key(root, [p for _s, p, _y in ordered], settings)
    hit = cache.load(key)
    if hit is not None:
        return key, hit
    n = len(ordered)
    paths = [os.path.join(root, p) for _s, p, _y in ordered]
    with cache.writer(key) as w:
        x = w.array("x", (n, channels, size, size), np.uint8)
        npy = str(w.tmp / "x.npy")
        starts = list(range(0, n, CHUNK))
        jobs = [(npy, s, paths[s : s + CHUNK], size, channels, digit) for s in starts]
        found = _run(decode_chunk, jobs, [len(j[2]) for j in jobs], _workers(workers, n), progress,
                     _("decoding to {shape}", shape=f"{channels}x{size}x{size}"))  # fmt: skip
        if n and len(dict(f for part in found for f in part)) == n:
            first = next(f for part in found for f in part)
            raise CnnlabError(
                _("{root}: no image could be read, e.g. {path}: {why}", root=root, path=ordered[first[0]][1],
                  why=reason(first[1]))
            )  # fmt: skip
        failed = dict(f for part in found for f in part)
        keep = [i for i in range(n) if i not in failed]
        for j, i in enumerate(keep):  # close the gaps of files that failed now (rare: pass 1 checked them)
            if i != j:
                x[j] = x[i]
        kept = [ordered[i] for i in keep]
        w.put("y", np.array([y for _, _, y in kept], dtype=np.int64))
        counts = {s: sum(1 for k in kept if k[0] == s) for s in SPLITS}
        w.meta.update(
            counts=counts,
            files={s: [p for k, p, _ in kept if k == s] for s in SPLITS},
            failed=[[ordered[i][1], why] for i, why in sorted(failed.items())],
            stats=channel_stats(x[: counts["train"]]),
        )
    return key, cache.load_written(w)


def channel_stats(x: np.ndarray, budget: int = 2**22) -> list[list[float]]:
    """[mean, std] per channel on the 0..1 scale, streamed in chunks of about `budget` values (32 MiB of
    float64), so memory stays bounded whatever the image size."""
    c = x.shape[1]
    chunk = max(1, budget // max(1, int(np.prod(x.shape[1:]))))
    total, sq, count = np.zeros(c), np.zeros(c), 0
    for i in range(0, len(x), chunk):
        part = np.asarray(x[i : i + chunk], dtype=np.float64) / 255.0
        total += part.sum(axis=(0, 2, 3))
        sq += (part**2).sum(axis=(0, 2, 3))
        count += part.shape[0] * part.shape[2] * part.shape[3]
    mean = total / max(count, 1)
    std = np.sqrt(np.maximum(sq / max(count, 1) - mean**2, 0.0))
    return [mean.tolist(), np.maximum(std, 1e-3).tolist()]


def _assemble(root, classes, arrays, opts_settings, reading: Reading, skipped) -> FolderData:
    meta = arrays["meta"]
    counts = meta["counts"]
    n = sum(counts.values())
    return FolderData(
        root=root,
        classes=classes,
        x=arrays["x"][:n],
        y=np.asarray(arrays["y"]),
        counts=counts,
        files=meta["files"],
        mean=tuple(meta["stats"][0]),
        std=tuple(meta["stats"][1]),
        preprocess=reading.preprocess,
        orientation_sensitive=reading.orientation_sensitive,
        why=reading.why,
        skipped=list(skipped) + [tuple(f) for f in meta["failed"]],
        options=opts_settings,
    )


def read_as(
    classes, info: dict, kept: list[str], opts: FolderOptions, marker: dict
) -> tuple[Reading, int, int]:
    """(how the kept images are read and why, channels, image size): handwriting is one channel at 28 px
    (or --image-size); photos are grey when every image is, at the median size up to 64 px."""
    n = max(len(kept), 1)
    near = sum(info[p][3] for p in kept) / n
    look = sum(info[p][4] for p in kept) / n
    reading = decide(classes, near, look, opts.preprocess, marker)
    if reading.preprocess == "digit":
        if opts.channels == 3:
            raise CnnlabError(
                _("--channels 3: the images are read as handwriting ({why}), which is grey; drop --channels "
                  "or pass --preprocess photo", why=why_text(reading.why))
            )  # fmt: skip
        return reading, 1, opts.image_size or DIGIT_SIZE
    channels = opts.channels or (1 if all(info[p][0] for p in kept) else 3)
    return reading, channels, opts.image_size or choose_size([info[p][1] for p in kept])


def load_folder(name: str, data_dir: str | None, opts: FolderOptions, log=None, progress=False) -> FolderData:
    """Scan, check, split and decode a folder dataset (both passes cached); `log` gets the report."""
    root = resolve_root(name, data_dir)
    sc = scan(root, opts.classes)
    rels = sorted(p for files in sc.files.values() for p, _y in files)
    _DIGESTS.clear()  # files may have changed since the last load in this process
    _DIGESTS.update(digests(str(root), rels))
    together = copy_groups(_DIGESTS)
    how = (
        _("given by folders")
        if sc.given
        else _("made by cnnlab (stratified, seed {seed})", seed=opts.split_seed)
    )
    # a rerun with the same files and options: one cached manifest names the decoded entry directly
    manifest = folder_key(root, rels, {"pass": "manifest", **opts.settings(), "found": sc.classes})
    known = cache.load(manifest)
    if known is not None and not (known["meta"]["bad"] and opts.strict):
        m = known["meta"]
        arrays = cache.load(m["decode"])
        if arrays is not None:
            bad = [tuple(b) for b in m["bad"]]
            fd = _assemble(root, sc.classes, arrays, m["settings"], Reading(*m["reading"]), bad)
            return _described(fd, sc, together, log, how)
    info = inspect_all(root, rels, opts.decode_workers, progress)
    bad = sorted((r, v[2]) for r, v in info.items() if v[2])
    if bad and opts.strict:
        shown = "; ".join(f"{root / r}: {reason(e)}" for r, e in bad[:3]) + (" ..." if len(bad) > 3 else "")
        raise CnnlabError(_("{n} unreadable image(s) (--strict): {files}", n=len(bad), files=shown))
    bad_set = {r for r, _why in bad}
    splits = assign_splits(sc, opts, keep=lambda p: p not in bad_set, together=together)
    if not splits["test"]:
        raise CnnlabError(no_test_images(sc, opts, bad_set))
    kept = [p for s in SPLITS for p, _y in splits[s]]
    reading, channels, size = read_as(sc.classes, info, kept, opts, sc.marker)
    if channels not in (1, 3):
        raise CnnlabError(_("--channels must be 1 or 3, got {value}", value=channels))
    if not 8 <= size <= 1024:
        raise CnnlabError(_("--image-size must be between 8 and 1024, got {value}", value=size))
    digit = reading.preprocess == "digit"
    key, arrays = decode_all(root, splits, size, channels, opts.decode_workers, progress, digit)
    settings = {**opts.settings(), "image_size": size, "channels": channels, "preprocess": reading.preprocess}
    if not cache.disabled():
        try:
            with cache.Writer(manifest) as w:
                w.meta.update(decode=key, bad=bad, settings=settings, reading=list(reading.__dict__.values()))
        except CnnlabError:
            pass  # an unwritable cache was said once already (`cache.writer`); the next start decodes again
    fd = _assemble(root, sc.classes, arrays, settings, reading, bad)
    return _described(fd, sc, together, log, how)


def _described(fd: FolderData, sc: Scan, together: dict, log, how: str) -> FolderData:
    """fd with what the walk left out, the exact copies across its splits and those kept together; logged."""
    fd.notes = list(sc.notes)
    fd.copies = copies({s: [(p, 0) for p in fd.files[s]] for s in SPLITS}, _DIGESTS)
    made = not sc.given or "test" not in sc.files  # cnnlab chose the test images (not the user's folders)
    fd.together = sum(p in together for s in SPLITS for p in fd.files[s]) if made else 0
    if log is not None:
        report(fd, log, how)
    return fd


def load_saved(meta: dict, run_dir: Path | None, data_dir: str | None = None, progress=False) -> FolderData:
    """The dataset of a folder checkpoint with its exact split (the run's split.json); --data-dir points
    at the folder if it moved. Without split.json the split is recomputed from the saved settings."""
    saved = meta["folder"]
    root = Path(data_dir or saved["root"]).expanduser().resolve()
    _DIGESTS.clear()  # the files may have changed since training: the test images are read afresh
    c, size = meta["input_shape"][0], meta["input_shape"][1]
    split_path = run_dir / SPLIT_FILE if run_dir is not None else None
    if split_path is not None and split_path.is_file():
        try:
            split = json.loads(split_path.read_text())
            splits = {s: [(p, int(y)) for p, y in split[s]] for s in SPLITS}
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise CnnlabError(
                _("{path}: unreadable split file ({detail})", path=split_path, detail=e)
            ) from None
    else:
        opts = FolderOptions(
            **{k: v for k, v in saved["options"].items() if k in FolderOptions.__annotations__}
        )
        sc = scan(root, ",".join(meta["classes"]))
        rels = sorted(p for v in sc.files.values() for p, _y in v)
        _DIGESTS.update(digests(str(root), rels))
        info = inspect_all(root, rels, 0, progress)
        splits = assign_splits(sc, opts, keep=lambda p: not info[p][2], together=copy_groups(_DIGESTS))
    reading = reading_of(meta)
    missing = [(p, MISSING) for s in SPLITS for p, _y in splits[s] if not (root / p).is_file()]
    gone = {p for p, _why in missing}
    splits = {s: [(p, y) for p, y in v if p not in gone] for s, v in splits.items()}
    if not splits["test"]:
        raise CnnlabError(
            _("{root}: none of the run's test images are there (moved? pass --data-dir)", root=root)
        )
    digit = reading.preprocess == "digit"
    _key, arrays = decode_all(root, splits, size, c, 0, progress, digit)
    return _assemble(root, list(meta["classes"]), arrays, saved["options"], reading, missing)


def once_first_rank(fn):
    """Under DDP run fn on rank 0 first (it builds the cache) and then on the others (they hit it);
    an error on rank 0 is raised on every rank instead of leaving them waiting."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
        return fn(True)
    error: list = [None]
    result, failure = None, None
    if dist.get_rank() == 0:
        try:
            result = fn(True)
        except Exception as e:  # any failure: the other ranks must not wait for a cache that never comes
            failure, error = e, [str(e) if isinstance(e, CnnlabError) else f"rank 0: {type(e).__name__}: {e}"]
    dist.broadcast_object_list(error, src=0)
    if failure is not None:
        raise failure
    if error[0] is not None:
        raise CnnlabError(error[0])
    return result if dist.get_rank() == 0 else fn(False)
