"""Walking a folder for image files: every image below it once, in bounded work, whatever links it holds.

torchvision's ImageFolder walks with `os.walk(followlinks=True)`: a link to `/` in a class folder walks the
whole filesystem, and a link back up (`cls/up -> ..`) walks the dataset again and again until the path is
too long, counting the same files many times. Here, as `find -L` but bounded:

- a link to a folder is followed only while its target stays inside the walk's bounds: the dataset folder
  or the real place of the folder being walked (a class folder may itself be a link to a disk elsewhere,
  as ImageFolder allows); a link leading anywhere else (`cls/all -> /`) is not followed and is noted;
- a folder met again below itself (`cls/up -> ..`, a bind mount of an ancestor) is a loop: not entered
  again (find -L: "File system loop detected"), and noted;
- a link to a file is kept under its own name (a dangling or looping one too: reading it then fails and
  it is skipped and listed like any unreadable file, never aborting the walk);
- every file is returned with its real path, so a file reached by two paths (through links) can be
  counted once (`dedupe`).

Hidden folders and files (`.ipynb_checkpoints/`, `.DS_Store`, AppleDouble `._x.jpg`) and `__MACOSX/` are
never entered or returned. Only directories are `stat`ed (and links): a walk of 20,000 files costs one
`scandir` per folder, as `os.walk` does.
"""

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from cnnlab.data.images import is_image_name
from cnnlab.i18n import N_, _

SKIP_DIRS = frozenset({"__MACOSX"})

OUTSIDE = N_("a link to {target}, a folder outside the dataset: not followed")
LOOP = N_("a link back to {target}, a folder above it (a loop): not followed")
UNLISTABLE = N_("cannot list this folder ({reason})")
TWICE = N_("the same file as {path} (reached through a link): counted once")


@dataclass
class Walk:
    files: list[tuple[str, str]] = field(default_factory=list)  # (path relative to root, real path)
    notes: list[tuple[str, str]] = field(default_factory=list)  # (path relative to root, why it was left)


def _inside(path: str, bases: tuple[str, ...]) -> bool:
    return any(path == b or path.startswith(b.rstrip(os.sep) + os.sep) for b in bases)


def _ancestors(folder: Path, real_root: str) -> frozenset[tuple[int, int]]:
    """(device, inode) of `folder` and of the folders above it up to the root: a link from a class folder
    back to the dataset folder is a loop, not a second way into the other classes."""
    found = set()
    here = folder
    for _step in range(64):  # a path is never deeper; bounds the climb whatever the path
        try:
            st = os.stat(here)
            found.add((st.st_dev, st.st_ino))
        except OSError:
            pass
        if here == here.parent or os.path.realpath(here) == real_root:
            break
        here = here.parent
    return frozenset(found)


def walk(folder: Path, root: Path) -> Walk:
    """Image files anywhere below `folder` (relative to `root`, sorted) with their real paths, and the links
    and folders that were left out, with why (see the module docstring)."""
    out = Walk()
    root_s, start = str(root), str(folder)
    real_root, real_start = os.path.realpath(root_s), os.path.realpath(start)
    bounds = (real_root, real_start)
    # (path as walked, its real path, the (device, inode) of it and of the folders above it)
    stack = [(start, real_start, _ancestors(folder, real_root))]
    while stack:
        path, real, above = stack.pop()
        prefix = os.path.relpath(path, root_s).replace(os.sep, "/") + "/"  # strings: Path per file is slow
        try:
            with os.scandir(path) as it:
                entries = list(it)
        except OSError as e:
            out.notes.append((prefix[:-1], _(UNLISTABLE, reason=e.strerror or str(e))))
            continue
        for entry in entries:
            name = entry.name
            if name.startswith(".") or name in SKIP_DIRS:
                continue
            try:
                is_link = entry.is_symlink()
                is_dir = not is_link and entry.is_dir(follow_symlinks=False)
            except OSError:
                continue
            if is_dir:
                try:
                    st = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                ident = (st.st_dev, st.st_ino)
                if ident in above:  # a plain folder met again below itself: a bind mount of an ancestor
                    out.notes.append((prefix + name, _(LOOP, target=real + os.sep + name)))
                else:
                    stack.append((entry.path, real + os.sep + name, above | {ident}))
            elif not is_link:
                if is_image_name(name):  # FIFOs and devices too: reading them fails, and they are listed
                    out.files.append((prefix + name, real + os.sep + name))
            else:
                _link(entry, prefix + name, bounds, above, out, stack)
    out.files.sort()
    out.notes.sort()
    return out


def _link(entry: os.DirEntry, rel: str, bounds: tuple[str, ...], above, out: Walk, stack: list) -> None:
    try:
        st = os.stat(entry.path)  # where the link leads
    except OSError:  # dangling or looping: kept when it looks like an image, to be listed as unreadable
        if is_image_name(entry.name):
            out.files.append((rel, entry.path))
        return
    target = os.path.realpath(entry.path)
    if not stat.S_ISDIR(st.st_mode):
        if is_image_name(entry.name):
            out.files.append((rel, target))
    elif (st.st_dev, st.st_ino) in above:
        out.notes.append((rel, _(LOOP, target=target)))
    elif not _inside(target, bounds):
        out.notes.append((rel, _(OUTSIDE, target=target)))
    else:
        stack.append((entry.path, target, above | {(st.st_dev, st.st_ino)}))


def images_under(folder: Path, root: Path) -> list[str]:
    """Image files anywhere below folder (hidden folders and files skipped, links as `walk` follows them),
    relative to root, sorted (plain string order: a natural sort key per file would cost more than the rest
    of a warm start)."""
    return [rel for rel, _real in walk(folder, root).files]


def dedupe(files: list[tuple[str, str]], root: Path) -> tuple[list[str], list[tuple[str, str]]]:
    """([kept path], [(dropped path, why)]) for (path relative to root, real path) pairs: each real file
    once. The kept one is the path that is its own real path (no link on the way) when there is one, else
    the first in the order given, so the choice never depends on which path the walk met first."""
    real_root = os.path.realpath(root)
    by_real: dict[str, list[str]] = {}
    for rel, real in files:
        by_real.setdefault(real, []).append(rel)
    kept: set[str] = set()
    dropped = []
    for real, rels in by_real.items():
        if len(rels) > 1:
            plain = [r for r in rels if real == os.path.join(real_root, r.replace("/", os.sep))]
            best = (plain or rels)[0]
            dropped += [(r, _(TWICE, path=best)) for r in rels if r != best]
        else:
            best = rels[0]
        kept.add(best)
    return [rel for rel, _real in files if rel in kept], sorted(dropped)
