"""Checkpoints: weights in safetensors (no pickle, so loading runs no code), metadata as JSON.

`NAME.safetensors` is self-contained: its header metadata holds the same JSON as `NAME.json`, the
human-readable copy. Every file is written to a temp file in the same folder, fsynced, then renamed,
so an interrupted run never leaves a half-written checkpoint. Anything that is not safetensors
(the resume state `state.pt`, a user's `.pt`/`.pth`) is read with `torch.load(weights_only=True)` only:
a pickle that names any callable outside torch's allow-list is refused before it can run.
"""

import errno
import json
import os
import pickle
import stat
import tempfile
import warnings
from pathlib import Path

import torch
import torch.nn as nn
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from cnnlab.checkpoint_meta import build_from_meta, parse_meta, read_sidecar, validate_meta
from cnnlab.errors import CnnlabError

FORMAT = "cnnlab-checkpoint/1"

# Exit codes of `cnnlab train` faults (2 = usage error, CnnlabError's default). Distinct so that a
# scheduler or script can tell "fix the command" from "retry later" from "restore from backup".
EXIT_DIVERGED = 3  # loss became NaN/inf
EXIT_OUT_UNWRITABLE = 4  # --out cannot be created or written
EXIT_OUT_FULL = 5  # --out has too little free space for the run's checkpoints
EXIT_RUN_EXISTS = 6  # --out already holds a run (neither --resume nor --overwrite)
EXIT_BAD_CHECKPOINT = 7  # truncated, corrupt or mismatched checkpoint / resume state
EXIT_UNSAFE_CHECKPOINT = 8  # a pickle that would run code when loaded: refused
PICKLE_SUFFIXES = (".pt", ".pth")
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
                f"{p} is a symbolic link to a missing file ({os.readlink(p)}); not writing through it"
            ) from None
        return p
    except OSError as e:  # a link loop, a path through a file, no permission
        raise write_error(p, e) from None
    if stat.S_ISDIR(st.st_mode):
        raise CnnlabError(f"{p} is a folder; name a file to write")
    if not stat.S_ISREG(st.st_mode):
        raise CnnlabError(
            f"{p} is not a regular file (a device, FIFO or socket); cnnlab writes only regular files"
        )
    ids = reads if isinstance(reads, dict) else read_set(reads)
    other = ids.get((st.st_dev, st.st_ino))
    if other is not None:
        same = "" if os.path.abspath(other) == os.path.abspath(p) else f" (the same file as {other})"
        raise CnnlabError(
            f"{p}{same} is read by this command; writing it would destroy it: choose another output name"
        )
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


def _write_exit(e: OSError) -> int:
    return EXIT_OUT_FULL if e.errno == errno.ENOSPC else EXIT_OUT_UNWRITABLE


def write_error(path, e: OSError) -> CnnlabError:
    """The one line for a failed write of `path`: exit 5 for a full disk, else 4."""
    from cnnlab.i18n import _

    return CnnlabError(_("cannot write {path}: {error}", path=path, error=e.strerror or e), _write_exit(e))


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def unwrap(model: nn.Module) -> nn.Module:
    """The plain module under DDP / torch.compile / AveragedModel wrappers."""
    for attr in ("module", "_orig_mod"):
        while hasattr(model, attr) and isinstance(getattr(model, attr), nn.Module):
            model = getattr(model, attr)
    return model


def save_checkpoint(stem: Path, model: nn.Module, meta: dict) -> Path:
    """Write stem.safetensors (+ stem.json); returns the .safetensors path."""
    stem = Path(stem)
    meta = {"format": FORMAT, **meta}
    tensors = {k: v.detach().contiguous().cpu() for k, v in unwrap(model).state_dict().items()}
    header = {"cnnlab": json.dumps(meta)}
    weights = stem.with_suffix(".safetensors")
    atomic_write(weights, lambda tmp: save_file(tensors, tmp, metadata=header))
    atomic_write_text(stem.with_suffix(".json"), json.dumps(meta, indent=2) + "\n")
    return weights


def resolve(path: str | Path) -> Path:
    """A run folder -> its best (else last) checkpoint; a .json -> its .safetensors; .pt/.pth as is."""
    p = Path(path)
    if p.is_dir():
        for name in ("best.safetensors", "last.safetensors"):
            if (p / name).is_file():
                return p / name
        raise CnnlabError(f"{p}: no checkpoint (best.safetensors or last.safetensors) in this folder")
    if p.suffix == ".json":
        if not p.is_file():
            raise CnnlabError(f"checkpoint {path} does not exist")
        p = p.with_suffix(".safetensors")  # the weights; the metadata is read from the .json itself
    if not p.is_file():
        raise CnnlabError(f"checkpoint {path} does not exist")  # a wrong path: usage error (2)
    return p


def read_meta(path: Path) -> dict:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            header = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as e:
        raise CnnlabError(
            f"{path}: not a readable safetensors checkpoint, truncated or corrupt ({e})", EXIT_BAD_CHECKPOINT
        ) from None
    if "cnnlab" not in header:
        raise CnnlabError(
            f"{path}: safetensors file without cnnlab metadata (not a cnnlab checkpoint)", EXIT_BAD_CHECKPOINT
        )
    return parse_meta(header["cnnlab"], path)


def load_checkpoint(path: str | Path, map_location: str = "cpu") -> tuple[nn.Module, dict]:
    """Rebuild the model named in the metadata and load its weights; (model in eval mode, meta).

    A .pt/.pth file is accepted when it is a cnnlab resume state (`state.pt`: {"meta", "model"}),
    read with weights_only=True like every pickle here."""
    p = resolve(path)
    if p.suffix in PICKLE_SUFFIXES:
        state = load_state(p)
        if not isinstance(state, dict) or not isinstance(state.get("meta"), dict) or "model" not in state:
            raise CnnlabError(
                f"{p}: not a cnnlab checkpoint (expected a dict with 'meta' and 'model', "
                "as in a run's state.pt)",
                EXIT_BAD_CHECKPOINT,
            )
        meta, weights = validate_meta(state["meta"], p), state["model"]
    else:
        meta = read_sidecar(Path(path)) if Path(path).suffix == ".json" else read_meta(p)
        try:
            weights = load_file(str(p), device=map_location)
        except (SafetensorError, OSError) as e:
            raise CnnlabError(f"{p}: corrupt or truncated checkpoint ({e})", EXIT_BAD_CHECKPOINT) from None
    model = build_from_meta(meta, p)
    load_weights(model, weights, p, f"weights do not match model {meta['model']!r}")
    if map_location == "cpu":
        # set once here, never inside predict_logits (a shared model must not change under its callers):
        # oneDNN's NHWC convolutions gave 2.4x the images per CPU-second on fastnet (see BENCHMARKS.md)
        model = model.to(memory_format=torch.channels_last)
    return model.eval(), meta


def load_weights(model: nn.Module, state: dict, source, what: str) -> None:
    """load_state_dict after `check_tensors`; a mismatch is one short line (`mismatch`)."""
    if not isinstance(state, dict):
        raise CnnlabError(
            f"{source}: {what}: the weights are a {type(state).__name__}, not a dict", EXIT_BAD_CHECKPOINT
        )
    own = model.state_dict()
    check_tensors(state, source, own)
    problem = mismatch(own, state)
    if problem:
        raise CnnlabError(f"{source}: {what}: {problem}", EXIT_BAD_CHECKPOINT)
    try:
        model.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError) as e:
        first = " ".join(str(e).strip().splitlines()[0:2])[:300]
        raise CnnlabError(f"{source}: {what}: {first}", EXIT_BAD_CHECKPOINT) from None


def check_tensors(state: dict, source, own: dict | None = None) -> None:
    """Refuse (exit 7) weights that would load and then compute garbage: NaN/inf anywhere (every
    prediction NaN), or integer/bool/complex values where the model holds floating point (load_state_dict
    would cast int64 weights silently). `own` is the model's state dict; without it only BatchNorm's
    step counter (`num_batches_tracked`) may be an integer."""
    for name, t in state.items():
        if not isinstance(t, torch.Tensor):
            raise CnnlabError(
                f"{source}: {name!r} is a {type(t).__name__}, not a tensor", EXIT_BAD_CHECKPOINT
            )
        floating = own[name].is_floating_point() if own is not None and name in own else None
        if floating is None:
            floating = not name.endswith("num_batches_tracked")
        if floating and not t.is_floating_point():
            raise CnnlabError(
                f"{source}: tensor {name!r} is {str(t.dtype).removeprefix('torch.')}, not floating point: "
                "not weights this model can use",
                EXIT_BAD_CHECKPOINT,
            )
        # min and max carry a NaN or an inf: one pass with no tensor-sized temporary (isfinite() makes one)
        if (
            t.is_floating_point()
            and t.numel()
            and not bool(torch.isfinite(torch.stack(torch.aminmax(t))).all())
        ):
            bad = int((~torch.isfinite(t)).sum())
            raise CnnlabError(
                f"{source}: tensor {name!r} holds {bad} NaN/inf value(s) of {t.numel()}: damaged weights",
                EXIT_BAD_CHECKPOINT,
            )


def mismatch(own: dict, state: dict, show: int = 3) -> str:
    """What keeps `state` from loading into a model whose state dict is `own`, in one short line that
    names a few keys and counts the rest ("" when it fits); PyTorch's own message lists every key."""
    # BatchNorm fills in a missing step counter itself (files from before PyTorch 0.4.1 lack it)
    missing = [k for k in own if k not in state and not k.endswith("num_batches_tracked")]
    extra = [k for k in state if k not in own]
    shapes = [k for k in state if k in own and tuple(state[k].shape) != tuple(own[k].shape)]
    parts = []
    if shapes:
        shown = ", ".join(f"{k} {_shape(state[k])} vs {_shape(own[k])}" for k in shapes[:show])
        parts.append(f"{len(shapes)} shape mismatch(es) (file vs model), e.g. {shown}")
    for keys, what in ((missing, "missing from the file"), (extra, "not in the model")):
        if keys:
            parts.append(f"{len(keys)} name(s) {what}, e.g. {', '.join(keys[:show])}")
    return "; ".join(parts)


def _shape(t: torch.Tensor) -> str:
    return "x".join(map(str, t.shape)) or "scalar"


def load_state(path: Path) -> dict:
    """A pickle file (resume state, .pt) loaded with weights_only=True: tensors and plain Python
    containers only, so no code runs; anything else is refused with exit code 8."""
    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols; the error below says it all
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CnnlabError(f"{path} does not exist") from None
    except pickle.UnpicklingError as e:
        if "Weights only load failed" in str(e):
            raise CnnlabError(
                f"{path}: refused to load: {_unsafe_reason(str(e))}; it could run code when unpickled, "
                "and cnnlab only loads tensors and plain data (torch.load weights_only=True)",
                EXIT_UNSAFE_CHECKPOINT,
            ) from None
        raise CnnlabError(f"{path}: truncated or corrupt ({e})", EXIT_BAD_CHECKPOINT) from None
    except Exception as e:  # RuntimeError/EOFError for truncation, zip errors for corruption
        first = str(e).strip().split(". ")[0].splitlines()[0] if str(e).strip() else type(e).__name__
        raise CnnlabError(f"{path}: truncated or corrupt ({first})", EXIT_BAD_CHECKPOINT) from None


def _unsafe_reason(message: str) -> str:
    """The one informative line of torch's weights-only refusal (e.g. "unsupported GLOBAL posix.system")."""
    for line in message.splitlines():
        low = line.lower()
        if "global" in low or "unsupported" in low:
            return line.strip().rstrip(".")
    return "objects outside torch's weights-only allow-list"


def as_loaded(checkpoint: "str | Path | tuple[nn.Module, dict]") -> tuple[nn.Module, dict]:
    """(model, meta) of a run folder or checkpoint file; a `load_checkpoint` pair is passed through,
    so Python callers can load once and evaluate, predict or plot many times."""
    if isinstance(checkpoint, tuple):
        return checkpoint
    return load_checkpoint(checkpoint)


def run_model(name: str) -> dict | None:
    """Where a command takes a model name, a run folder (runs/latest) or checkpoint file works too:
    {"model", "kwargs", "shape", "classes", "width", "source"} read from its metadata (no weights loaded);
    None when `name` is no path (then it is a registry name)."""
    p = Path(name)
    if not (p.is_dir() or (p.is_file() and p.suffix in (".safetensors", ".json"))):
        return None
    path = resolve(p)
    meta = read_sidecar(p) if p.suffix == ".json" else read_meta(path)
    kwargs = dict(meta["model_kwargs"])
    return {
        "model": meta["model"],
        "kwargs": kwargs,
        "shape": tuple(meta["input_shape"]),
        "classes": list(meta["classes"]),
        "width": float(kwargs.get("width", 1.0)),
        "source": str(path),
    }
