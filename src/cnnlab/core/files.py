"""Atomic writes: every file cnnlab writes for a run (checkpoints, config, split, pictures, exports) goes
to a temp file in the same folder, is fsynced, then renamed over the target, so an interrupted write never
leaves half a file behind. A failed write is one `CnnlabError` line with exit code 5 (disk full) or 4
(anything else: a missing or read-only folder, ...).
"""

import errno
import os
import tempfile
from pathlib import Path

from cnnlab.errors import EXIT_OUT_FULL, EXIT_OUT_UNWRITABLE, CnnlabError


def atomic_write(path: Path, write) -> None:
    """Call write(tmp_path), fsync, then rename over `path` (same folder, so the rename is atomic)."""
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:  # missing or read-only folder
        raise CnnlabError(f"cannot write {path}: {e.strerror or e}", write_exit(e)) from None
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        raise CnnlabError(f"cannot write {path}: {e.strerror or e}", write_exit(e)) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_exit(e: OSError) -> int:
    """The exit code of a failed write: 5 when the disk is full, else 4."""
    return EXIT_OUT_FULL if e.errno == errno.ENOSPC else EXIT_OUT_UNWRITABLE


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))
