"""What a folder dataset says about itself: the report in the training log (the class table, what was left
out and why, exact copies across splits) and the files of the run folder:

- `split.json`: every split's files and labels, so `eval` reuses exactly the run's test set;
- `skipped.txt`: one line per file or link that was not used, `PATH<tab>why` (unreadable files, FIFOs and
  devices, links leading out of the dataset or round in a loop, second paths to a file already counted);
- `duplicates.txt`: one line per file in a group of exact copies (the same bytes) that sits in more than one
  split, `GROUP<tab>SPLIT<tab>PATH`.

One line per file everywhere: a file name with a newline or tab in it is escaped (`files.shown`).
"""

import json
from pathlib import Path

from cnnlab.data.files import shown
from cnnlab.data.folder import SPLITS, class_table
from cnnlab.data.images import reason
from cnnlab.data.spec import why_text
from cnnlab.i18n import _

SPLIT_FILE = "split.json"  # in the run folder: the exact files of each split, so `eval` reuses the test set
SKIPPED_FILE = "skipped.txt"  # in the run folder: every unreadable file or unused link and why
DUPLICATES_FILE = "duplicates.txt"  # in the run folder: exact copies that sit in more than one split


def report(fd, log, how: str) -> None:
    """The folder's description for the log (`fd`: a `folder_cache.FolderData`)."""
    rows = {s: [(p, 0) for p in fd.files[s]] for s in SPLITS}
    start = 0
    for s in SPLITS:  # real labels for the table
        rows[s] = [(p, int(y)) for p, y in zip(fd.files[s], fd.y[start : start + fd.counts[s]])]
        start += fd.counts[s]
    table, warnings = class_table(fd.classes, rows)
    c, s = fd.x.shape[1], fd.x.shape[2]
    log(_("folder {root}: {n} classes, {shape} images, split {how}", root=fd.root, n=len(fd.classes),
          shape=f"{c}x{s}x{s}", how=how))  # fmt: skip
    if fd.preprocess == "digit":
        log(_("images read as handwriting: {why}", why=why_text(fd.why)))
    else:
        log(_("images read as photos: {why}", why=why_text(fd.why)))
    log(table)
    for w in warnings:
        log(w)
    if fd.skipped:
        path, why = fd.skipped[0]
        log(_("skipped {n} unreadable file(s), e.g. {path}: {why}", n=len(fd.skipped), path=shown(path),
              why=reason(why)))  # fmt: skip
    if fd.notes:
        path, why = fd.notes[0]
        log(_("left out {n} path(s) (links out of the dataset or round in a loop, second paths to a file), "
              "e.g. {path}: {why}", n=len(fd.notes), path=shown(path), why=why))  # fmt: skip
    if fd.together:
        log(_("{n} image(s) are exact copies (the same bytes) of one another: each set of copies is kept on "
              "one side of the split", n=fd.together))  # fmt: skip
    seen = leaked(fd.copies)
    if seen["test"]:
        log(_("warning: {n} test image(s) have an exact copy (the same bytes) in train or val: the test "
              "accuracy counts images the model has seen", n=seen["test"]))  # fmt: skip
    if seen["val"]:
        log(_("warning: {n} validation image(s) have an exact copy (the same bytes) in train",
              n=seen["val"]))  # fmt: skip


def leaked(copies: list[list[tuple[str, str]]]) -> dict[str, int]:
    """{split: how many of its images have an exact copy in an earlier split (train before val before test)}."""
    seen = {s: 0 for s in SPLITS}
    for group in copies:
        splits = {s for s, _path in group}
        for s, _path in group:
            seen[s] += any(SPLITS.index(t) < SPLITS.index(s) for t in splits)
    return seen


def write_run_files(out: Path, fd) -> None:
    """split.json (every split's files and labels), skipped.txt and duplicates.txt into the run folder."""
    from cnnlab.core.files import atomic_write_text

    start, split = 0, {"root": str(fd.root), "classes": fd.classes, "options": fd.options}
    for s in SPLITS:
        split[s] = [[p, int(y)] for p, y in zip(fd.files[s], fd.y[start : start + fd.counts[s]])]
        start += fd.counts[s]
    atomic_write_text(out / SPLIT_FILE, json.dumps(split) + "\n")
    lines = [f"{shown(fd.root / p)}\t{shown(reason(why))}" for p, why in [*fd.skipped, *fd.notes]]
    atomic_write_text(out / SKIPPED_FILE, "".join(line + "\n" for line in lines))
    copies = [f"{i}\t{s}\t{shown(fd.root / p)}" for i, group in enumerate(fd.copies, 1) for s, p in group]
    atomic_write_text(out / DUPLICATES_FILE, "".join(line + "\n" for line in copies))


def run_files_note(out: Path, fd) -> list[str]:
    """The log's lines that point at the lists in the run folder."""
    lines = []
    if fd.skipped or fd.notes:
        n = len(fd.skipped) + len(fd.notes)
        lines.append(_("{n} file(s) skipped; list in {path}", n=n, path=out / SKIPPED_FILE))
    if fd.copies:
        n = sum(len(group) for group in fd.copies)
        lines.append(_("{n} exact copies across splits; list in {path}", n=n, path=out / DUPLICATES_FILE))
    return lines
