"""Run folders: a new numbered folder per run when --out is not given, and a lock so that two runs
never write into the same folder at once.

Without --out a run gets `runs/<model>-<dataset>-<n>` (n = one more than the highest already there;
the folder is created with mkdir, which fails if another run took the same n first) and `runs/latest`
becomes a symbolic link to it, as Lightning's `version_N` folders. An explicit --out keeps its rules:
empty or new, else --resume / --overwrite.

The lock `OUT/.cnnlab-run.lock` is created with O_CREAT|O_EXCL before anything is read or written,
so of two runs started into one folder at the same moment exactly one gets it; the other is refused
(exit 6). It holds the owner's host and pid: a lock left by a killed run (same host, pid gone) is
taken over. It is removed when the run ends (`release_runs`, called by the training loop).
"""

import os
import re
import socket
from pathlib import Path

from cnnlab.errors import EXIT_OUT_UNWRITABLE, EXIT_RUN_EXISTS, CnnlabError

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
_held: set[Path] = set()  # locks this process holds


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
            f"cannot create run folder in {root}: {e.strerror or e}", EXIT_OUT_UNWRITABLE
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
            raise CnnlabError(f"cannot create {out}: {e.strerror or e}", EXIT_OUT_UNWRITABLE) from None
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
    """Take OUT's lock or refuse (exit 6) when a live run holds it; a dead run's lock is taken over."""
    lock = out / LOCK
    me = f"{socket.gethostname()} {os.getpid()}\n"
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            owner = _owner(lock)
            if owner is not None:
                raise CnnlabError(
                    f"--out {out} is in use by another run ({owner}); wait for it or choose another --out",
                    EXIT_RUN_EXISTS,
                ) from None
            lock.unlink(missing_ok=True)  # left by a run that was killed
            continue
        except OSError as e:
            raise CnnlabError(
                f"--out {out} is not writable: {e.strerror or e}", EXIT_OUT_UNWRITABLE
            ) from None
        with os.fdopen(fd, "w") as f:
            f.write(me)
        _held.add(lock)
        return
    raise CnnlabError(f"--out {out}: could not take its lock {lock}", EXIT_RUN_EXISTS)


def _owner(lock: Path) -> str | None:
    """'host pid' of a live lock holder; None when the lock is stale (its process on this host is gone)."""
    try:
        host, pid = lock.read_text().split()
        pid_n = int(pid)
    except (OSError, ValueError):
        return "unknown owner"  # being written right now, or not ours to judge: treat as live
    if host != socket.gethostname():
        return f"host {host}, pid {pid}"
    if pid_n == os.getpid() and lock not in _held:
        return None  # an earlier run in this process that ended without releasing
    try:
        os.kill(pid_n, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass
    return f"pid {pid}"


def release_runs() -> None:
    """Remove the locks this process holds (end of a run, also after an error)."""
    while _held:
        _held.pop().unlink(missing_ok=True)


def prepare_out(out: Path, overwrite: bool, resume: bool) -> Path:
    """Lock OUT, refuse to silently overwrite a previous run, prove it is writable; returns OUT."""
    if out.exists() and not out.is_dir():
        raise CnnlabError(f"--out {out} exists and is not a folder", EXIT_OUT_UNWRITABLE)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise CnnlabError(f"--out {out} is not writable: {e.strerror or e}", EXIT_OUT_UNWRITABLE) from None
    claim(out)  # before looking inside: two runs racing into an empty folder cannot both pass
    if any(p.name != LOCK for p in out.iterdir()) and not (overwrite or resume):
        raise CnnlabError(
            f"--out {out} already holds a run; use --resume to continue it or --overwrite to replace it",
            EXIT_RUN_EXISTS,
        )
    try:
        probe = out / ".write-test"
        probe.write_bytes(b"\0" * 4096)
        probe.unlink()
    except OSError as e:
        raise CnnlabError(f"--out {out} is not writable: {e.strerror or e}", EXIT_OUT_UNWRITABLE) from None
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
            f"--resume without --out continues {RUNS / LATEST}, which does not exist; pass --out RUN"
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
