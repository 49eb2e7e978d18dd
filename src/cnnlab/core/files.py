"""Writing files safely, the low layer every writer uses (checkpoints, config, split, pictures, exports,
CSVs): `output_file` checks a user-named output before any work (never a file the command reads, never a
special file, links written through as `cp` does); `atomic_write` goes through a temp file in the same
folder, fsync and rename, so an interrupted write never leaves half a file behind. A failed write is one
`CnnlabError` line with exit code 5 (disk full, however the writer said it) or 4 (anything else).
"""

import errno
import os
import stat
import tempfile
from pathlib import Path

from safetensors import SafetensorError

from cnnlab.errors import EXIT_OUT_FULL, EXIT_OUT_UNWRITABLE, CnnlabError
from cnnlab.i18n import _

PICKLE_SUFFIXES = (".pt", ".pth")  # torch.save files: loaded only through the safe unpickler
FULL_BYTES = 1 << 20  # less free space than this after a writer failed: the disk is full


# The files of a run folder that commands read: an output named by the user must never be one of them.
RUN_RECORDS = (
    "last.safetensors",
    "best.safetensors",
    "last.json",
    "best.json",
    "state.pt",
    "metrics.csv",
    "config.json",
    "split.json",
    "skipped.txt",
)


def output_file(path: str | Path, reads=()) -> Path:
    """Where to write the user-named output `path`, checked before any work is done.

    Refused (exit 2, nothing touched): a folder; a special file (FIFO, socket, device such as /dev/full),
    which an atomic rename would replace by a plain file; a dangling symbolic link; the same file (as
    `cp` compares them: device and inode, so hard links and links count) as anything in `reads` — the
    checkpoint being read, its `.json`, the other records of its run folder (RUN_RECORDS), input images.
    A symbolic link is written through, as `cp` does: the returned path is its target's, so the link
    stays a link and its target gets the new content."""
    p = Path(path)
    try:
        st = os.stat(p)  # follows links
    except FileNotFoundError:
        if p.is_symlink():
            raise CnnlabError(
                _("{path} is a symbolic link to a missing file ({target}); not writing through it", path=p,
                  target=os.readlink(p))
            ) from None  # fmt: skip
        return p
    except OSError as e:  # a link loop, a path through a file, no permission
        raise write_error(p, e) from None
    if stat.S_ISDIR(st.st_mode):
        raise CnnlabError(_("{path} is a folder; name a file to write", path=p))
    if not stat.S_ISREG(st.st_mode):
        raise CnnlabError(
            _(
                "{path} is not a regular file (a device, FIFO or socket); cnnlab writes only regular files",
                path=p,
            )
        )
    ids = reads if isinstance(reads, dict) else read_set(reads)
    other = ids.get((st.st_dev, st.st_ino))
    if other is not None:
        if os.path.abspath(other) == os.path.abspath(p):
            raise CnnlabError(
                _("{path} is read by this command; writing it would destroy it: choose another output name",
                  path=p)
            )  # fmt: skip
        raise CnnlabError(
            _("{path} (the same file as {other}) is read by this command; writing it would destroy it: choose "
              "another output name", path=p, other=other)
        )  # fmt: skip
    return Path(os.path.realpath(p))


def read_set(reads) -> dict[tuple[int, int], Path]:
    """{(device, inode): path} of what a command reads, for `output_file`; a run folder or a checkpoint
    brings its run's records (RUN_RECORDS) and its `.json`/`.safetensors` twin. Computed once when many
    outputs are checked against many inputs (`predict --save-input`)."""
    found = {}
    for r in reads:
        if r is None or isinstance(r, tuple):  # a (model, meta) pair reads no file
            continue
        r = Path(r)
        paths = [r]
        if r.is_dir():
            paths = [r / name for name in RUN_RECORDS]
        elif r.suffix in (".safetensors", ".json", *PICKLE_SUFFIXES):
            paths += [r.with_suffix(".json"), r.with_suffix(".safetensors")]
            paths += [r.parent / name for name in RUN_RECORDS]
        for q in paths:
            try:
                st = os.stat(q)
            except (OSError, ValueError):
                continue
            found.setdefault((st.st_dev, st.st_ino), q)
    return found


def atomic_write(path: Path, write) -> None:
    """Call write(tmp_path), fsync, then rename over `path` (same folder, so the rename is atomic).

    `path` goes through `output_file` (a link is written through, a special file refused). A full disk
    is exit 5 whichever writer found it: an OSError (ENOSPC), safetensors' "os error 28", or torch.save's
    "unexpected pos" (which names no errno: the folder's free space then tells); the file that was there
    before is untouched, and the temp file is removed."""
    path = Path(path)
    target = output_file(path)  # a link's target; messages name the path as given
    try:
        kept_mode = stat.S_IMODE(os.stat(target).st_mode)
    except OSError:
        kept_mode = None
    try:
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    except OSError as e:  # missing or read-only folder
        raise write_error(path, e) from None
    os.close(fd)
    try:
        write(tmp)
        if kept_mode is not None:  # mkstemp makes 0600 files; a replaced file keeps its permissions
            os.chmod(tmp, kept_mode)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        raise write_error(path, e) from None
    except (SafetensorError, RuntimeError) as e:  # writers that wrap the OSError in their own type
        full = disk_full(e, target.parent)
        Path(tmp).unlink(missing_ok=True)
        if not full:
            raise
        raise write_error(path, OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def disk_full(e: BaseException, folder: Path) -> bool:
    """Whether a writer's error means the disk is full: ENOSPC in an OSError, "os error 28" in a Rust
    (safetensors) message, or — for messages that say nothing (torch.save's "unexpected pos") — a
    folder with (almost) no free space left, checked while the partial file still holds it."""
    if isinstance(e, OSError):
        return e.errno == errno.ENOSPC
    text = str(e)
    if f"os error {errno.ENOSPC}" in text or os.strerror(errno.ENOSPC) in text:
        return True
    try:
        st = os.statvfs(folder)
    except OSError:
        return False
    return st.f_bavail * st.f_frsize < FULL_BYTES


def write_exit(e: OSError) -> int:
    """The exit code of a failed write: 5 when the disk is full, else 4."""
    return EXIT_OUT_FULL if e.errno == errno.ENOSPC else EXIT_OUT_UNWRITABLE


def write_error(path, e: OSError) -> CnnlabError:
    """The one line for a failed write of `path`: exit 5 for a full disk, else 4."""
    return CnnlabError(_("cannot write {path}: {error}", path=path, error=e.strerror or e), write_exit(e))


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))
