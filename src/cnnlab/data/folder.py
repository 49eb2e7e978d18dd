"""A folder of your own images as a dataset: layouts, hygiene, a stratified split, the per-class table.

Layouts (checked in this order):

- `ROOT/{train,val|valid|validation,test}/<class>/...`: the splits are the user's (test optional: then
  it is carved from train like below);
- `ROOT/<class>/**/<image>`: one folder per class, images anywhere below it; cnnlab splits each class
  on its own (stratified) into train / val / test by `--val-split` / `--test-split`, seeded by
  `--split-seed`. A file's side is decided by a hash of (seed, its path), so the split is the same on
  every run and adding images does not move the old ones to another side.

Hidden folders and files (`.ipynb_checkpoints/`, `.DS_Store`, AppleDouble `._x.jpg`) and `__MACOSX/`
are never classes or images. Links are followed only while they stay inside the dataset (`walk.py`), and
a file reached by two paths (through links) counts once, under its own path. Class order: sorted by name with numbers compared as numbers ("2"
before "10"), digits spelt out in their own order (zero, one, ..., nine: not alphabetical, so a run on
`0`..`9` and one on `zero`..`nine` agree); `--classes a,b,c` fixes the order or picks a subset. Whether the
images are read as handwriting or photos is `spec.decide`. The decoding itself (parallel, cached,
memory-mapped) is in `folder_cache.py`.
"""

import hashlib
import json
import os
import re
from dataclasses import dataclass, field, fields
from pathlib import Path

from cnnlab.data.images import is_image_name
from cnnlab.data.spec import CHOICES, digit_classes, digit_value
from cnnlab.data.walk import SKIP_DIRS, dedupe, walk
from cnnlab.errors import CnnlabError
from cnnlab.i18n import N_, _, columns, pad

SPLITS = ("train", "val", "test")
SPLIT_NAMES = {"train": N_("train"), "val": N_("val"), "test": N_("test")}  # the class table's columns
SPLIT_DIRS = {"train": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}
MARKER = "cnnlab.json"  # optional ROOT/cnnlab.json: {"orientation_sensitive": true, "preprocess": "digit"}
DIGIT_SIZE = 28  # handwriting is read at MNIST's size unless --image-size says otherwise
DEFAULT_PHOTO_SIZE = 64  # default --image-size for photos: big enough to see, small enough for a CPU
IMBALANCE = 5  # a class with under 1/IMBALANCE of the largest class's training images gets a warning


@dataclass
class FolderOptions:
    """How a folder of images is read and split. Declared here once: `TrainConfig` (training/config.py)
    takes these fields' defaults from here, and `cnnlab train --help` shows these comments as the flags'
    help (tests/test_validate.py checks that the two agree)."""

    image_size: int = (
        0  # shorter side resized to N, centre crop (0 = from the data: 28 handwriting, up to 64 photos)
    )
    channels: int = 0  # 1 or 3 (0 = 1 when every image is greyscale, else 3)
    classes: str = ""  # comma-separated class names: fixes their order or picks a subset ("" = all)
    val_split: float = 0.0  # fraction of the training set held out (seeded) for model selection
    test_split: float = 0.2  # per-class fraction held out for testing when there is no test/ folder
    split_seed: int = 0  # seeds the folder split (--seed changes the weights, not the split)
    strict: bool = False  # an unreadable image is an error instead of being skipped and reported
    decode_workers: int = 0  # processes decoding images on a first run (0 = one per CPU core)
    preprocess: str = "auto"  # how images are read: auto (decided from the folder, and said) | digit | photo

    @classmethod
    def from_config(cls, cfg) -> "FolderOptions":
        """The options named like fields of `cfg` (a TrainConfig or argparse namespace)."""
        return cls(
            **{f.name: getattr(cfg, f.name) for f in fields(cls) if getattr(cfg, f.name, None) is not None}
        )

    def settings(self) -> dict:
        return {k: v for k, v in vars(self).items() if k not in ("strict", "decode_workers")}


@dataclass
class Scan:
    root: Path  # the dataset folder (absolute)
    classes: list[str]  # label -> name
    files: dict[
        str, list[tuple[str, int]]
    ]  # split ("all" when not given) -> [(path relative to root, label)]
    given: bool  # the splits come from train/val/test folders
    marker: dict = field(default_factory=dict)  # ROOT/cnnlab.json, if any
    notes: list[tuple[str, str]] = field(default_factory=list)  # (path, why): links left, files met twice


_DIGIT_RUNS = re.compile(r"(\d+)")


def natural_key(name: str) -> tuple:
    """Sort key comparing runs of digits as numbers: "2" < "10", "img9" < "img10"; case-insensitive."""
    parts = [int(t) if t.isdigit() else t.lower() for t in _DIGIT_RUNS.split(name)]
    return parts, name


def is_folder_dataset(name: str | None) -> bool:
    """`--dataset folder`, or a --dataset value that is an existing folder. A built-in name wins over a
    folder of that name in the current directory, so ask `load_dataset` (data) or
    `training.data_setup.is_folder` (a run), which check the built-in names first."""
    return name == "folder" or (bool(name) and Path(str(name)).expanduser().is_dir())


def is_image_folder(path: str | Path) -> bool:
    """A folder of images in class folders (ROOT/<class>/... or ROOT/train/<class>/...), as opposed to one
    holding a built-in dataset's files: some visible subfolder has an image in it or one level below."""
    root = Path(path).expanduser()
    if not root.is_dir():
        return False
    try:
        for sub in _visible_dirs(root):
            for entry in os.scandir(sub):
                if entry.is_file() and is_image_name(entry.name):
                    return True
                if entry.is_dir() and not entry.name.startswith("."):
                    if any(e.is_file() and is_image_name(e.name) for e in os.scandir(entry.path)):
                        return True
    except (OSError, CnnlabError):
        return False
    return False


def resolve_root(name: str, data_dir: str | None) -> Path:
    """The folder of a folder dataset: --data-dir for `--dataset folder`, else the --dataset path itself."""
    root = data_dir if name == "folder" else name
    if not root:
        raise CnnlabError(_("--dataset folder needs --data-dir ROOT (a folder with one subfolder per class)"))
    path = Path(root).expanduser()
    if not path.is_dir():
        raise CnnlabError(_("{root}: no such folder", root=root))
    return path.resolve()


def _visible_dirs(folder: Path) -> list[Path]:
    try:
        entries = list(folder.iterdir())
    except OSError as e:
        raise CnnlabError(
            _("{folder}: cannot list ({reason})", folder=folder, reason=e.strerror or e)
        ) from None
    return [d for d in entries if d.is_dir() and not d.name.startswith(".") and d.name not in SKIP_DIRS]


def pick_classes(found: list[str], wanted: str, where: Path) -> list[str]:
    """Natural order of the class folders, or the --classes list (order and subset), checked."""
    names = sorted(found, key=natural_key)
    if digit_classes(names):
        names.sort(key=digit_value)  # zero, one, two, ... (alphabetical would start eight, five, four)
    if not wanted:
        return names
    chosen = [c.strip() for c in wanted.split(",") if c.strip()]
    missing = [c for c in chosen if c not in names]
    if missing:
        raise CnnlabError(
            _("--classes: no folder {missing} in {where}; found: {names}", missing=", ".join(missing),
              where=where, names=", ".join(names))
        )  # fmt: skip
    if len(set(chosen)) != len(chosen):
        raise CnnlabError(_("--classes: a class is named twice in {wanted}", wanted=repr(wanted)))
    if len(chosen) < 2:
        raise CnnlabError(_("--classes: name at least two classes"))
    return chosen


def scan(root: Path, classes: str = "") -> Scan:
    """Find the layout, the classes and every image file; one-line errors for empty classes or folders."""
    top = _visible_dirs(root)
    by_split = {SPLIT_DIRS[d.name.lower()]: d for d in top if d.name.lower() in SPLIT_DIRS}
    given = "train" in by_split and len(by_split) > 1
    marker = _read_marker(root)
    notes: list[tuple[str, str]] = []
    if given:
        class_dirs = {d.name for d in _visible_dirs(by_split["train"])}
        names = pick_classes(list(class_dirs), classes, by_split["train"])
        for folder in by_split.values():
            extra = {d.name for d in _visible_dirs(folder)} - class_dirs
            if extra and not classes:
                raise CnnlabError(
                    _("{folder}: class folder(s) {extra} not in {train}", folder=folder,
                      extra=", ".join(sorted(extra)), train=by_split["train"])
                )  # fmt: skip
        found = {s: _class_files(by_split[s], names, root, notes, s == "train") for s in by_split}
    else:
        if not top:
            raise CnnlabError(
                _("{root}: no class folders; put images in ROOT/<class>/ (one folder per class) "
                  "or ROOT/train/<class>/ and ROOT/test/<class>/", root=root)
            )  # fmt: skip
        names = pick_classes([d.name for d in top], classes, root)
        found = {"all": _class_files(root, names, root, notes, True)}
    files = _once(found, root, notes)
    for split, folder in by_split.items() if given else [("all", root)]:
        before, after = ({y for _p, y, *_r in v} for v in (found[split], files[split]))
        for label in sorted(before - after):  # every file of the class was another class folder's
            raise CnnlabError(
                _("{folder}: its images are files of another class folder (reached through links)",
                  folder=folder / names[label])
            )  # fmt: skip
    if len(names) < 2:
        raise CnnlabError(
            _("{root}: found only {n} class folder(s) ({names}); need two or more", root=root, n=len(names),
              names=", ".join(names))
        )  # fmt: skip
    return Scan(root, names, files, given, marker, sorted(notes))


def _class_files(
    folder: Path, names: list[str], root: Path, notes: list, required: bool
) -> list[tuple[str, int, str]]:
    """(path relative to root, label, real path) of every image of every class folder in `folder`; the
    first empty class folder is an error at once (`--dataset /etc` ends at its first folder)."""
    out = []
    for label, name in enumerate(names):
        sub = folder / name
        found = walk(sub, root) if sub.is_dir() else None
        if (found is None or not found.files) and (required or sub.is_dir()):
            raise CnnlabError(
                _("{folder}: no images in this class folder ({extensions})", folder=sub,
                  extensions=", ".join(sorted(EXT_HINT)))
            )  # fmt: skip
        if found is not None:
            out += [(rel, label, real) for rel, real in found.files]
            notes += found.notes
    return out


def _once(found: dict[str, list[tuple[str, int, str]]], root: Path, notes: list) -> dict[str, list]:
    """Each real file once (by resolved path) over every class and split: a folder loop or a link to another
    class folder must not put copies of one file into both train and test."""
    order = [s for s in ("train", "val", "test", "all") if s in found]
    kept, twice = dedupe([(rel, real) for s in order for rel, _y, real in found[s]], root)
    notes += twice
    keep = set(kept)
    return {s: [(rel, y) for rel, y, _real in v if rel in keep] for s, v in found.items()}


EXT_HINT = ("jpg", "png", "bmp", "gif", "webp", "tif", "ppm", "pgm")


def _read_marker(root: Path) -> dict:
    path = root / MARKER
    if not path.is_file():
        return {}
    try:
        marker = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise CnnlabError(_("{path}: not valid JSON ({detail})", path=path, detail=e)) from None
    if not isinstance(marker, dict):
        raise CnnlabError(_("{path}: expected a JSON object", path=path))
    return read_marker_preprocess(marker)


def _rank(seed: int, path: str) -> str:
    return hashlib.sha1(f"{seed}\0{path}".encode()).hexdigest()


def stratified_split(
    files: list[tuple[str, int]], fractions: dict[str, float], seed: int, together: dict | None = None
) -> dict[str, list[tuple[str, int]]]:
    """Split each class on its own: round(n * fraction) files to each held-out split, the rest to train
    (at least one training image per class). Which files go where depends on a hash of (seed, path) only.

    `together` ({path: group}) names exact copies (the same bytes under several names): a group ranks as
    its lowest-ranked member and is never cut by a split's boundary, so all copies land on one side. They
    are moved rather than only reported because a test image whose copy was trained on measures memory,
    not generalisation; a file without copies keeps its own rank, so a folder without duplicates splits as
    it always did, and adding a file moves no other file's group unless the new file is a copy that ranks
    below all of its group."""
    out: dict[str, list[tuple[str, int]]] = {"train": [], **{s: [] for s in fractions}}
    by_class: dict[int, list[str]] = {}
    for path, label in files:
        by_class.setdefault(label, []).append(path)
    group = together or {}
    for label, paths in sorted(by_class.items()):
        rank = {p: _rank(seed, p) for p in paths}
        low: dict = {}
        for p in paths:
            if p in group:
                low[group[p]] = min(low.get(group[p], rank[p]), rank[p])
        ranked = sorted(paths, key=lambda p: (low[group[p]], p) if p in group else (rank[p], p))
        n, at = len(ranked), 0
        for split, frac in fractions.items():
            k = min(round(n * frac), max(n - 1 - at, 0))
            k = _whole_groups(ranked, at, k, group)
            out[split] += [(p, label) for p in ranked[at : at + k]]
            at += k
        out["train"] += [(p, label) for p in ranked[at:]]
    place = {p: i for i, (p, _) in enumerate(files)}  # files come in scan order: class, then natural
    return {s: sorted(v, key=lambda t: (t[1], place[t[0]])) for s, v in out.items()}


def _whole_groups(ranked: list[str], at: int, k: int, group: dict) -> int:
    """k moved so that ranked[at : at + k] does not cut a group of copies in two: the whole group joins
    the held-out split when a training image is still left, else stays in train."""
    end, n = at + k, len(ranked)
    g = group.get(ranked[end]) if 0 < k and end < n else None
    if g is None or group.get(ranked[end - 1]) != g:
        return k
    start = end - 1
    while end < n and group.get(ranked[end]) == g:
        end += 1
    while start > at and group.get(ranked[start - 1]) == g:
        start -= 1
    return end - at if end < n else start - at


def assign_splits(
    sc: Scan, opts: FolderOptions, keep, together: dict | None = None
) -> dict[str, list[tuple[str, int]]]:
    """{"train", "val", "test"} file lists: the given folders, else (or for a missing one) a stratified
    split. `keep(path)` drops files found unreadable before splitting; `together` ({path: group}): exact
    copies that a split cnnlab makes keeps on one side (the user's own folders are never changed)."""
    for name, frac in (("--val-split", opts.val_split), ("--test-split", opts.test_split)):
        if not 0 <= frac < 1:
            raise CnnlabError(_("{flag} must be in [0, 1), got {value}", flag=name, value=frac))
    if opts.val_split + opts.test_split >= 1:
        raise CnnlabError(_("--val-split + --test-split must leave some training images"))
    files = {s: [(p, y) for p, y in v if keep(p)] for s, v in sc.files.items()}
    if not sc.given:
        return stratified_split(
            files["all"], {"test": opts.test_split, "val": opts.val_split}, opts.split_seed, together
        )
    if "val" in files and opts.val_split:
        # the user's val/ folder is the validation set; a fraction would be silently ignored
        raise CnnlabError(
            _("--val-split {split:g}: {root} has its own val/ folder, which is the validation set; drop "
              "--val-split", split=opts.val_split, root=sc.root)
        )  # fmt: skip
    carve = {s: f for s, f in (("test", opts.test_split), ("val", opts.val_split)) if s not in files}
    out = (
        stratified_split(files["train"], carve, opts.split_seed, together)
        if carve
        else {"train": files["train"]}
    )
    return {s: files.get(s, out.get(s, [])) if s != "train" else out["train"] for s in SPLITS}


def no_test_images(sc: Scan, opts: FolderOptions, bad: set) -> str:
    """Why a split left no test image, and what would give one."""
    if sc.given and "test" in sc.files or not opts.test_split:
        return _("{root}: no test images; add ROOT/test/<class>/ or use --test-split > 0", root=sc.root)
    per_class: dict[int, int] = {}
    for p, y in sc.files["train" if sc.given else "all"]:
        per_class[y] = per_class.get(y, 0) + (p not in bad)
    largest = max(per_class.values(), default=0)
    fraction = next((f / 20 for f in range(1, 20) if round(largest * f / 20) >= 1 and largest > 1
                     and f / 20 + opts.val_split < 1), None)  # fmt: skip
    if fraction is None:
        return _("{root}: no test images: every class has at most one readable image, which is kept for "
                 "training; add images, or test images in ROOT/test/<class>/", root=sc.root)  # fmt: skip
    return _("{root}: no test images: --test-split {split:g} rounds to no test image in any class (the "
             "largest has {n} images); use --test-split {fraction:g} or more, or put test images in "
             "ROOT/test/<class>/", root=sc.root, split=opts.test_split, n=largest, fraction=fraction)  # fmt: skip


def class_table(classes: list[str], splits: dict[str, list[tuple[str, int]]]) -> tuple[str, list[str]]:
    """The per-class, per-split image counts as text, and warnings for small classes."""
    counts = {s: [0] * len(classes) for s in SPLITS}
    for s in SPLITS:
        for _path, y in splits.get(s, []):
            counts[s][y] += 1
    head, total = _("class"), _("total")
    w = max(8, columns(head), columns(total), *(columns(c) for c in classes)) + 2
    lines = [pad(head, w) + "".join(pad(_(SPLIT_NAMES[s]), 8, right=True) for s in SPLITS)]
    for i, c in enumerate(classes):
        lines.append(pad(c, w) + "".join(str(counts[s][i]).rjust(8) for s in SPLITS))
    lines.append(pad(total, w) + "".join(str(sum(counts[s])).rjust(8) for s in SPLITS))
    largest = max(counts["train"])
    warnings = [
        _("warning: class {name} has {n} training images, under 1/{ratio} of the largest ({largest}); "
          "consider --balance", name=repr(c), n=n, ratio=IMBALANCE, largest=largest)
        for c, n in zip(classes, counts["train"])
        if n * IMBALANCE < largest
    ]  # fmt: skip
    return "\n".join(lines), warnings


def choose_size(shorts: list[int]) -> int:
    """Default --image-size: the median shorter side for small images (28 for MNIST-like, 32 for
    CIFAR-like), DEFAULT_PHOTO_SIZE for anything larger (photos)."""
    if not shorts:
        return DEFAULT_PHOTO_SIZE
    median = sorted(shorts)[len(shorts) // 2]
    return max(8, min(median, DEFAULT_PHOTO_SIZE))


def read_marker_preprocess(marker: dict) -> dict:
    """ROOT/cnnlab.json's "preprocess", checked (auto, digit or photo)."""
    value = marker.get("preprocess", "auto")
    if value not in CHOICES:
        raise CnnlabError(
            _("{path}: preprocess must be one of {choices}, got {value}", path=MARKER,
              choices=", ".join(CHOICES), value=repr(value))
        )  # fmt: skip
    return marker
