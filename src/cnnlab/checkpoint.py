"""Checkpoints: weights in safetensors (no pickle, so loading runs no code), metadata as JSON.

`NAME.safetensors` is self-contained: its header metadata holds the same JSON as `NAME.json`, the
human-readable copy. Every file is written to a temp file in the same folder, fsynced, then renamed,
so an interrupted run never leaves a half-written checkpoint. Anything that is not safetensors
(the resume state `state.pt`, a user's `.pt`/`.pth`) is read with `torch.load(weights_only=True)` only:
a pickle that names any callable outside torch's allow-list is refused before it can run.
"""

import json
import pickle
import re
import warnings
from pathlib import Path

import torch
import torch.nn as nn
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from cnnlab.checkpoint_meta import build_from_meta, parse_meta, read_sidecar, validate_meta
from cnnlab.core.files import PICKLE_SUFFIXES, atomic_write, atomic_write_text
from cnnlab.errors import EXIT_BAD_CHECKPOINT, EXIT_UNSAFE_CHECKPOINT, CnnlabError
from cnnlab.i18n import _

FORMAT = "cnnlab-checkpoint/1"


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
        raise CnnlabError(
            _("{path}: no checkpoint (best.safetensors or last.safetensors) in this folder", path=p)
        )
    if p.suffix == ".json":
        if not p.is_file():
            raise CnnlabError(_("checkpoint {path} does not exist", path=path))
        p = p.with_suffix(".safetensors")  # the weights; the metadata is read from the .json itself
    if not p.is_file():
        raise CnnlabError(_("checkpoint {path} does not exist", path=path))  # a wrong path: usage error (2)
    return p


def read_meta(path: Path) -> dict:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            header = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as e:
        raise CnnlabError(
            _("{path}: not a readable safetensors checkpoint, truncated or corrupt ({detail})", path=path,
              detail=e), EXIT_BAD_CHECKPOINT,
        ) from None  # fmt: skip
    if "cnnlab" not in header:
        raise CnnlabError(
            _("{path}: safetensors file without cnnlab metadata (not a cnnlab checkpoint)", path=path),
            EXIT_BAD_CHECKPOINT,
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
                _("{path}: not a cnnlab checkpoint (expected a dict with 'meta' and 'model', as in a run's "
                  "state.pt)", path=p),
                EXIT_BAD_CHECKPOINT,
            )  # fmt: skip
        meta, weights = validate_meta(state["meta"], p), state["model"]
    else:
        meta = read_sidecar(Path(path)) if Path(path).suffix == ".json" else read_meta(p)
        try:
            weights = load_file(str(p), device=map_location)
        except (SafetensorError, OSError) as e:
            raise CnnlabError(
                _("{path}: corrupt or truncated checkpoint ({detail})", path=p, detail=e), EXIT_BAD_CHECKPOINT
            ) from None
    model = build_from_meta(meta, p)
    load_weights(model, weights, p, _("weights do not match model {model}", model=repr(meta["model"])))
    if map_location == "cpu":
        # set once here, never inside predict_logits (a shared model must not change under its callers):
        # oneDNN's NHWC convolutions gave 2.4x the images per CPU-second on fastnet (see BENCHMARKS.md)
        model = model.to(memory_format=torch.channels_last)
    return model.eval(), meta


def load_weights(model: nn.Module, state: dict, source, what: str) -> None:
    """load_state_dict after `check_tensors`; a mismatch is one short line (`mismatch`)."""
    if not isinstance(state, dict):
        raise CnnlabError(
            _("{source}: {what}: the weights are a {kind}, not a dict", source=source, what=what,
              kind=type(state).__name__), EXIT_BAD_CHECKPOINT,
        )  # fmt: skip
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
                _("{source}: {name} is a {kind}, not a tensor", source=source, name=repr(name),
                  kind=type(t).__name__), EXIT_BAD_CHECKPOINT,
            )  # fmt: skip
        floating = own[name].is_floating_point() if own is not None and name in own else None
        if floating is None:
            floating = not name.endswith("num_batches_tracked")
        if floating and not t.is_floating_point():
            raise CnnlabError(
                _("{source}: tensor {name} is {dtype}, not floating point: not weights this model can use",
                  source=source, name=repr(name), dtype=str(t.dtype).removeprefix("torch.")),
                EXIT_BAD_CHECKPOINT,
            )  # fmt: skip
        # min and max carry a NaN or an inf: one pass with no tensor-sized temporary (isfinite() makes one)
        if (
            t.is_floating_point()
            and t.numel()
            and not bool(torch.isfinite(torch.stack(torch.aminmax(t))).all())
        ):
            bad = int((~torch.isfinite(t)).sum())
            raise CnnlabError(
                _("{source}: tensor {name} holds {bad} NaN/inf value(s) of {n}: damaged weights", source=source,
                  name=repr(name), bad=bad, n=t.numel()),
                EXIT_BAD_CHECKPOINT,
            )  # fmt: skip


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
        parts.append(_("{n} shape mismatch(es) (file vs model), e.g. {shown}", n=len(shapes), shown=shown))
    if missing:
        parts.append(_("{n} name(s) missing from the file, e.g. {names}", n=len(missing),
                       names=", ".join(missing[:show])))  # fmt: skip
    if extra:
        parts.append(
            _("{n} name(s) not in the model, e.g. {names}", n=len(extra), names=", ".join(extra[:show]))
        )
    return "; ".join(parts)


def _shape(t: torch.Tensor) -> str:
    return "x".join(map(str, t.shape)) or _("scalar")


def load_state(path: Path) -> dict:
    """A pickle file (resume state, .pt) loaded with weights_only=True: tensors and plain Python
    containers only, so no code runs; anything else is refused with exit code 8."""
    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols; the error below says it all
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CnnlabError(_("{path} does not exist", path=path)) from None
    except pickle.UnpicklingError as e:
        if "Weights only load failed" in str(e):
            raise CnnlabError(
                _("{path}: refused to load: {reason}; it could run code when unpickled, and cnnlab only loads "
                  "tensors and plain data (torch.load weights_only=True)", path=path,
                  reason=_unsafe_reason(str(e))),
                EXIT_UNSAFE_CHECKPOINT,
            ) from None  # fmt: skip
        raise CnnlabError(
            _("{path}: truncated or corrupt ({detail})", path=path, detail=e), EXIT_BAD_CHECKPOINT
        ) from None
    except Exception as e:  # RuntimeError/EOFError for truncation, zip errors for corruption
        first = str(e).strip().split(". ")[0].splitlines()[0] if str(e).strip() else type(e).__name__
        raise CnnlabError(
            _("{path}: truncated or corrupt ({detail})", path=path, detail=first), EXIT_BAD_CHECKPOINT
        ) from None


def _unsafe_reason(message: str) -> str:
    """What torch's weights-only refusal names: "unsupported GLOBAL posix.system" (the pickle's import of a
    callable, in the current language), else the one informative line of torch's message as it is."""
    found = re.search(r"GLOBAL ([\w.]+)", message)
    if found:
        return _("unsupported GLOBAL {name}", name=found.group(1).rstrip("."))
    for line in message.splitlines():
        low = line.lower()
        if "global" in low or "unsupported" in low:
            return line.strip().rstrip(".")
    return _("objects outside torch's weights-only allow-list")


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
