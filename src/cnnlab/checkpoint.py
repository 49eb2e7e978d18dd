"""Checkpoints: weights in safetensors (no pickle, so loading runs no code), metadata as JSON.

`NAME.safetensors` is self-contained: its header metadata holds the same JSON as `NAME.json`, the
human-readable copy. Every file is written to a temp file in the same folder, fsynced, then renamed,
so an interrupted run never leaves a half-written checkpoint.
"""

import json
import os
import tempfile
from pathlib import Path

import torch
import torch.nn as nn
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from cnnlab.errors import CnnlabError

FORMAT = "cnnlab-checkpoint/1"


def atomic_write(path: Path, write) -> None:
    """Call write(tmp_path), fsync, then rename over `path` (same folder, so the rename is atomic)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        raise CnnlabError(f"cannot write {path}: {e.strerror or e}") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
    """A run folder -> its best (else last) checkpoint; a .json -> its .safetensors."""
    p = Path(path)
    if p.is_dir():
        for name in ("best.safetensors", "last.safetensors"):
            if (p / name).is_file():
                return p / name
        raise CnnlabError(f"{p}: no checkpoint (best.safetensors or last.safetensors) in this folder")
    if p.suffix == ".json":
        p = p.with_suffix(".safetensors")
    if not p.is_file():
        raise CnnlabError(f"checkpoint {path} does not exist")
    return p


def read_meta(path: Path) -> dict:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            header = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as e:
        raise CnnlabError(f"{path}: not a readable safetensors checkpoint ({e})") from None
    if "cnnlab" not in header:
        raise CnnlabError(f"{path}: safetensors file without cnnlab metadata (not a cnnlab checkpoint)")
    return json.loads(header["cnnlab"])


def load_checkpoint(path: str | Path, map_location: str = "cpu") -> tuple[nn.Module, dict]:
    """Rebuild the model named in the metadata and load its weights; (model in eval mode, meta)."""
    from cnnlab.models import get_model

    p = resolve(path)
    meta = read_meta(p)
    model = get_model(meta["model"], **meta["model_kwargs"])
    try:
        state = load_file(str(p), device=map_location)
    except (SafetensorError, OSError) as e:
        raise CnnlabError(f"{p}: corrupt or truncated checkpoint ({e})") from None
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        first = str(e).strip().splitlines()[0:2]
        raise CnnlabError(f"{p}: weights do not match model {meta['model']!r}: {' '.join(first)}") from None
    return model.eval(), meta


def load_state(path: Path) -> dict:
    """Non-weight resume state (optimizer, RNG, ...), loaded with weights_only=True: no code runs."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CnnlabError(f"{path} does not exist") from None
    except Exception as e:  # UnpicklingError for forbidden globals, RuntimeError/EOFError for truncation
        raise CnnlabError(
            f"{path}: refused or unreadable ({type(e).__name__}: {str(e).splitlines()[0]})"
        ) from None
