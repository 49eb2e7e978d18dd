"""Run folders: a new numbered folder per run when --out is not given, and a lock so that two runs
never write into the same folder at once.

Without --out a run gets `runs/<model>-<dataset>-<n>` (n = one more than the highest already there;
the folder is created with mkdir, which fails if another run took the same n first) and `runs/latest`
becomes a symbolic link to it, as Lightning's `version_N` folders. An explicit --out keeps its rules:
empty or new, else --resume / --overwrite.

The lock is `flock` on `OUT/.cnnlab-run.lock`, taken before anything is read or written, so of two
runs started into one folder at the same moment exactly one gets it; the other is refused (exit 6,
naming the holder's pid, which the file holds). The kernel drops the lock when its holder dies, so a
killed run's lock is free without anyone judging it dead. It is removed when the run ends
(`release_runs`, called by the training loop), and the taker removes the temp files a killed run left.
"""

import fcntl
import os
import re
import socket
import sys
import time
from pathlib import Path

from cnnlab.core.files import RUN_RECORDS
from cnnlab.errors import EXIT_OUT_UNWRITABLE, EXIT_RUN_EXISTS, CnnlabError
from cnnlab.i18n import _

LOCK = ".cnnlab-run.lock"
RUNS = Path("runs")  # parent of numbered run folders, relative to the working directory
LATEST = "latest"  # the link to the newest numbered run
RUN_FILES = (
    "metrics.csv",
    "last.safetensors",
    "best.safetensors",
    "last.json",
    "best.json",
    "state.pt",
    "split.json",  # folder datasets: the saved split
    "skipped.txt",  # folder datasets: unreadable files
)
_held: dict[Path, int] = {}  # locks this process holds: lock file -> its open, flock-ed descriptor


def slug(text: str) -> str:
    """A folder-name-safe spelling of a model or dataset name."""
    return re.sub(r"[^A-Za-z0-9.-]+", "-", text).strip("-") or "run"


def new_run_dir(model: str, dataset: str, root: Path = RUNS) -> Path:
    """Create and return root/<model>-<dataset>-<n> with the next free n; point root/latest at it."""
    prefix = f"{slug(model)}-{slug(dataset)}-"
    try:
        root.mkdir(parents=True, exist_ok=True)
        taken = [int(p.name[len(prefix) :]) for p in root.iterdir() if _numbered(p.name, prefix)]
    except OSError as e:
        raise CnnlabError(
            _("cannot create run folder in {path}: {why}", path=root, why=e.strerror or e),
            EXIT_OUT_UNWRITABLE,
        ) from None
    n = max(taken, default=0) + 1
    while True:
        out = root / f"{prefix}{n}"
        try:
            out.mkdir()
            break
        except FileExistsError:  # another run took this number between our listing and mkdir
            n += 1
        except OSError as e:
            raise CnnlabError(
                _("cannot create {path}: {why}", path=out, why=e.strerror or e), EXIT_OUT_UNWRITABLE
            ) from None
    point_latest(root, out)
    return out


def data_label(dataset: str, data_dir: str | None) -> str:
    """What a numbered run folder is named after: the dataset's name, or a folder dataset's own name
    (runs/fastnet-bn-digits-1, not runs/fastnet-bn-home-me-photos-digits-1)."""
    from cnnlab.data import DATASETS

    if dataset in DATASETS:
        return dataset
    root = data_dir if dataset == "folder" and data_dir else dataset
    return Path(root).expanduser().resolve().name or "folder"


def _numbered(name: str, prefix: str) -> bool:
    return name.startswith(prefix) and name[len(prefix) :].isdigit()


def point_latest(root: Path, target: Path) -> None:
    """root/latest -> target (relative link, replaced atomically). A real folder named `latest` (from an
    older cnnlab, whose default --out it was) is left alone; where links are not allowed, nothing."""
    link = root / LATEST
    if link.exists() and not link.is_symlink():
        return
    tmp = root / f".{LATEST}.{os.getpid()}"
    try:
        tmp.unlink(missing_ok=True)
        os.symlink(target.name, tmp, target_is_directory=True)
        os.replace(tmp, link)
    except OSError:
        tmp.unlink(missing_ok=True)


def claim(out: Path) -> None:
    """Take OUT's lock or refuse (exit 6) while a live run holds it; then remove the temp files a killed
    run left there.

    The lock is `flock` on OUT/.cnnlab-run.lock: the kernel drops it when its holder exits, however it
    exits (SIGKILL too), so a dead run's lock is simply free and there is no check-dead-then-delete step
    for two takers to race through. The file holds the holder's host and pid, for the refusal message.
    The holder removes it at release while still holding it; a taker that locked the removed file sees
    that the path no longer names it and tries again."""
    lock = out / LOCK
    for _attempt in range(100):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_RDWR, 0o644)
        except OSError as e:
            raise CnnlabError(
                _("--out {path} is not writable: {why}", path=out, why=e.strerror or e), EXIT_OUT_UNWRITABLE
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise CnnlabError(
                _(
                    "--out {path} is in use by another run ({owner}); wait for it or choose another --out",
                    path=out,
                    owner=_owner(lock),
                ),
                EXIT_RUN_EXISTS,
            ) from None
        except OSError as e:  # a filesystem without locks
            os.close(fd)
            raise CnnlabError(
                _("--out {path}: cannot lock {lock}: {why}", path=out, lock=lock, why=e.strerror or e),
                EXIT_OUT_UNWRITABLE,
            ) from None
        if _names(fd, lock):
            me = f"{socket.gethostname()} {os.getpid()}\n".encode()
            os.pwrite(fd, me, 0)  # in place, then cut: an old lock file never reads as empty
            os.ftruncate(fd, len(me))
            _held[lock] = fd
            remove_stale_temps(out)
            return
        os.close(fd)  # released and removed between our open and flock: take the new file
    raise CnnlabError(_("--out {path}: could not take its lock {lock}", path=out, lock=lock), EXIT_RUN_EXISTS)


def _names(fd: int, path: Path) -> bool:
    """Whether `path` still names the open file `fd` (it may have been removed and made anew)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (mine.st_dev, mine.st_ino)


def _owner(lock: Path) -> str:
    """'pid N' (or 'host H, pid N') of the live run holding `lock`, from what it wrote there (a holder that
    just created the file writes it a moment after taking the lock: wait a little for it)."""
    for _attempt in range(20):
        try:
            host, pid = lock.read_text().split()
            int(pid)
        except (OSError, ValueError):
            time.sleep(0.01)
            continue
        if host == socket.gethostname():
            return _("pid {pid}", pid=pid)
        return _("host {host}, pid {pid}", host=host, pid=pid)
    return _("owner unknown")  # a lock file written by another program


def remove_stale_temps(out: Path) -> list[str]:
    """Remove the temp files (`.NAME.XXXXXXXX.tmp`, from `atomic_write`) of this run's own files that a
    killed run left behind, and say so. Only the lock holder writes these files, so once the lock is
    ours every one of them is garbage; temp files of anything else (a picture `cnnlab plot` is writing
    into the folder right now) are left alone."""
    own = re.compile(
        r"\.(" + "|".join(map(re.escape, (*RUN_RECORDS, *RUN_FILES, "curves.png"))) + r")\.\w{8}\.tmp"
    )
    removed = []
    for p in sorted(out.iterdir()):
        if own.fullmatch(p.name) and p.is_file() and not p.is_symlink():
            p.unlink(missing_ok=True)
            removed.append(p.name)
    if removed:
        shown = ", ".join(removed[:3])
        if len(removed) > 3:
            shown = _("{names} and {n} more", names=shown, n=len(removed) - 3)
        text = _(
            "note: removed {n} temporary file(s) an interrupted run left in {path}: {names}",
            n=len(removed),
            path=out,
            names=shown,
        )
        print(text, file=sys.stderr)
    return removed


def release_runs() -> None:
    """Give up the locks this process holds (end of a run, also after an error): the file is removed
    first, while still locked, then the lock goes with the closed descriptor."""
    while _held:
        lock, fd = _held.popitem()
        if _names(fd, lock):
            lock.unlink(missing_ok=True)
        os.close(fd)


def prepare_out(out: Path, overwrite: bool, resume: bool) -> Path:
    """Lock OUT, refuse to silently overwrite a previous run, prove it is writable; returns OUT."""
    if out.exists() and not out.is_dir():
        raise CnnlabError(_("--out {path} exists and is not a folder", path=out), EXIT_OUT_UNWRITABLE)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise CnnlabError(
            _("--out {path} is not writable: {why}", path=out, why=e.strerror or e), EXIT_OUT_UNWRITABLE
        ) from None
    claim(out)  # before looking inside: two runs racing into an empty folder cannot both pass
    if any(p.name != LOCK for p in out.iterdir()) and not (overwrite or resume):
        raise CnnlabError(
            _(
                "--out {path} already holds a run; use --resume to continue it or --overwrite to replace it",
                path=out,
            ),
            EXIT_RUN_EXISTS,
        )
    try:
        probe = out / ".write-test"
        probe.write_bytes(b"\0" * 4096)
        probe.unlink()
    except OSError as e:
        raise CnnlabError(
            _("--out {path} is not writable: {why}", path=out, why=e.strerror or e), EXIT_OUT_UNWRITABLE
        ) from None
    if overwrite and not resume:
        for name in RUN_FILES:
            (out / name).unlink(missing_ok=True)
    return out


def resume_dir(out: str | None) -> Path:
    """The folder `--resume` continues: --out, else the run runs/latest points at."""
    if out:
        return Path(out)
    link = RUNS / LATEST
    return RUNS / os.readlink(link) if link.is_symlink() else link


def run_folder(cfg) -> Path:
    """The folder this run writes to: --out as given, else a new numbered folder (--resume: runs/latest)."""
    return open_run_folder(cfg)[0]


def latest_target() -> str | None:
    """Where runs/latest points now (None: no link)."""
    try:
        return os.readlink(RUNS / LATEST)
    except OSError:
        return None


def open_run_folder(cfg) -> tuple[Path, bool, str | None]:
    """(the run's folder, locked; whether this call created it; where runs/latest pointed before): what
    `forget` needs to undo it when the run fails before its first checkpoint."""
    if cfg.resume and not cfg.out and not (RUNS / LATEST).exists():
        raise CnnlabError(
            _(
                "--resume without --out continues {path}, which does not exist; pass --out RUN",
                path=RUNS / LATEST,
            )
        )
    before = latest_target()
    if cfg.out or cfg.resume:
        out = resume_dir(cfg.out)
        created = not out.exists()
        return prepare_out(out, cfg.overwrite, cfg.resume), created, before
    out = new_run_dir(cfg.model, data_label(cfg.dataset, cfg.data_dir))
    try:
        return prepare_out(out, cfg.overwrite, cfg.resume), True, before
    except BaseException:
        forget(out, True, before)
        raise


def forget(out: Path, created: bool, latest_before: str | None) -> None:
    """Undo a run folder that never got a checkpoint: remove what the run wrote (the whole folder when it
    made it) and point runs/latest back where it pointed before."""
    import shutil

    release_runs()
    if created:
        shutil.rmtree(out, ignore_errors=True)
    else:
        for name in (*RUN_FILES, "config.json", "curves.png"):
            (out / name).unlink(missing_ok=True)
    link = RUNS / LATEST
    if link.is_symlink() and out.name == os.readlink(link):
        if latest_before is None:
            link.unlink(missing_ok=True)
        else:
            point_latest(RUNS, RUNS / latest_before)
