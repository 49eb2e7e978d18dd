"""Where trained weights come from: torchvision's published ImageNet files, a user's `.pth`/`.safetensors`
file, or a cnnlab run folder; and what preprocessing and class names come with them.

`--pretrained` downloads the file a model's registration declares (`cnnlab.models.published`; for the
built-in families torchvision's own file: the official URL, the same file name, so a copy already in
torch.hub's cache `~/.cache/torch/hub/checkpoints/` is used as is) into the user cache with a progress bar.
The file name carries the first hex digits of the file's SHA-256 (`resnet18-f37072fd.pth`); like
`torch.hub`'s `check_hash`, a downloaded file whose digest does not start with them is deleted, never used.
Every pickle is read with `torch.load(weights_only=True)` (zip and legacy formats alike): a file that would
run code when unpickled is refused with exit code 8. How the weights are fitted to a model (new classifier,
other channel counts) is `cnnlab.models.adapt`.
"""

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch

from cnnlab.checkpoint import check_tensors, load_state, read_meta, resolve
from cnnlab.core.download import DownloadError, download
from cnnlab.core.files import PICKLE_SUFFIXES
from cnnlab.errors import EXIT_BAD_CHECKPOINT, CnnlabError
from cnnlab.i18n import _
from cnnlab.models.published import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    Pretrained,
    imagenet_classes,  # noqa: F401  (weights.imagenet_classes() as before)
)

HASH_REGEX = re.compile(r"-([a-f0-9]*)\.")  # torch.hub's: the digits between the last '-' and the suffix


@dataclass
class Weights:
    state: dict[str, torch.Tensor]  # parameter name -> tensor, as in a state_dict
    source: str  # the file or URL it came from
    classes: list[str] | None = None  # class names when the source knows them (cnnlab runs, ImageNet)
    preprocess: dict = field(
        default_factory=dict
    )  # mean, std (and resize, crop) the weights were trained with
    kind: str = "file"  # "imagenet" (a registration's published file), "cnnlab" (a run) or "file"
    model: str | None = None  # the cnnlab model name a run was trained with


def published(model: str) -> Pretrained | None:
    """The weights model `model` declares on its registration (None: it has none)."""
    from cnnlab.models import model_facts

    return model_facts(model).weights


def pretrained_names() -> list[str]:
    """The models `--pretrained` works for: those whose registration declares published weights."""
    from cnnlab.models import list_models, model_facts

    return [n for n in list_models() if model_facts(n).weights is not None]


def imagenet_preprocess(model: str) -> dict:
    """mean, std, resize and crop of `model`'s published weights (ImageNet's defaults for a model without)."""
    p = published(model)
    if p is None:
        return {"mean": IMAGENET_MEAN, "std": IMAGENET_STD, "resize": 256, "crop": 224}
    return p.preprocess()


def weights_dir() -> Path:
    """`$CNNLAB_CACHE/weights`, else the user cache (`~/.cache/cnnlab/weights` on Linux)."""
    from cnnlab.data.sources import cache_dir

    return cache_dir("weights")


def hub_dir() -> Path:
    """torch.hub's download folder, where torchvision keeps the same files."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def hash_ok(path: Path, name: str | None = None) -> bool:
    """torch.hub's check_hash: the SHA-256 of the file starts with the hex digits in its name."""
    m = HASH_REGEX.search(name or path.name)
    if m is None or not m.group(1):
        return True  # no digest in the name: nothing to check against
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest().startswith(m.group(1))


def pretrained_file(model: str, progress: bool = True, base_url: str | None = None) -> Path:
    """The local path of `model`'s published weights, downloading (and hash-checking) them if needed.
    The URL is the registration's; `base_url` or $CNNLAB_WEIGHTS_URL replace its folder (a mirror)."""
    from cnnlab.models import model_facts

    facts = model_facts(model)  # old spellings (vgg11_bn) still work
    p = facts.weights
    if p is None:
        fields = dict(model=repr(facts.name), names=", ".join(pretrained_names()))
        if facts.no_weights_hint:
            raise CnnlabError(
                _("no published ImageNet weights for {model} ({hint}); --pretrained exists for: {names}; or "
                  "pass --weights FILE", hint=_(facts.no_weights_hint), **fields)
            )  # fmt: skip
        raise CnnlabError(
            _("no published ImageNet weights for {model}; --pretrained exists for: {names}; or pass --weights "
              "FILE", **fields)
        )  # fmt: skip
    name = p.file
    for folder in (weights_dir(), hub_dir()):
        if (folder / name).is_file():
            return folder / name
    base = base_url or os.environ.get("CNNLAB_WEIGHTS_URL") or p.url
    url, target = base.rstrip("/") + "/" + name, weights_dir() / name
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        return download(url, target, check=lambda part: hash_ok(part, name), progress=progress)
    except (OSError, DownloadError) as e:
        if isinstance(e, OSError) or not e.checksum:
            reason = e.reason if isinstance(e, DownloadError) else e
            raise CnnlabError(
                _("cannot download {url} ({reason}); download it yourself into {target} or pass --weights FILE",
                  url=url, reason=reason, target=target)
            ) from None  # fmt: skip
        raise CnnlabError(  # the file was deleted: never used, never left behind
            _("{url}: SHA-256 does not start with {prefix} as its name says; the download was deleted. Try "
              "again, or download it yourself into {target} or pass --weights FILE", url=url,
              prefix=HASH_REGEX.search(name).group(1), target=target)
        ) from None  # fmt: skip


def pretrained(model: str, progress: bool = True) -> Weights:
    """`model`'s published weights with their class names and preprocessing (kind "imagenet")."""
    path = pretrained_file(model, progress)
    p = published(model)
    return Weights(read_state(path), str(path), p.class_names(), p.preprocess(), "imagenet", model)


def from_file(path: str | Path) -> Weights:
    """Weights from a torchvision/timm `.pth`, a `.safetensors` file or a cnnlab run folder/checkpoint."""
    p = Path(path)
    if not p.exists():
        raise CnnlabError(_("--weights {path}: no such file or folder", path=path))
    if p.is_dir() or p.suffix in (".json", ".safetensors"):
        p = resolve(p)
        from safetensors import safe_open

        try:
            with safe_open(str(p), framework="pt") as f:
                header = f.metadata() or {}
        except Exception as e:  # safetensors raises its own error types for a non-safetensors file
            raise CnnlabError(
                _("{path}: not a readable safetensors file ({detail})", path=p, detail=e), EXIT_BAD_CHECKPOINT
            ) from None
        if "cnnlab" in header:
            meta = read_meta(p)
            pre = {k: meta[k] for k in ("mean", "std", "resize", "crop") if k in meta}
            return Weights(read_state(p), str(p), meta.get("classes"), pre, "cnnlab", meta.get("model"))
    return Weights(read_state(p), str(p))


def run_settings(path: str | Path) -> dict:
    """The model settings of a cnnlab run given as --weights (model, width), so that `--weights RUN`
    builds the run's own model; {} for other weight files (their model is --model)."""
    p = Path(path)
    if not (p.is_dir() or p.suffix in (".json", ".safetensors")) or not p.exists():
        return {}
    try:
        meta = read_meta(resolve(p))
    except CnnlabError:
        return {}  # not a cnnlab checkpoint: --weights FILE says what is wrong when it is read
    width = (meta.get("config") or {}).get("width", meta["model_kwargs"].get("width", 1.0))
    return {"model": meta["model"], "width": float(width)}


def run_input(path: str | Path) -> tuple[int, int] | None:
    """(channels, size) of a cnnlab run given as --weights, else None."""
    p = Path(path)
    if not (p.is_dir() or p.suffix in (".json", ".safetensors")) or not p.exists():
        return None
    try:
        meta = read_meta(resolve(p))
    except CnnlabError:
        return None
    return meta["input_shape"][0], meta["input_shape"][1]


def read_state(path: Path) -> dict[str, torch.Tensor]:
    """A flat name -> tensor dict from .safetensors or a pickle (weights_only); common wrappers removed."""
    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            state = load_file(str(path))
        except Exception as e:
            raise CnnlabError(
                _("{path}: not a readable safetensors file ({detail})", path=path, detail=e),
                EXIT_BAD_CHECKPOINT,
            ) from None
        check_tensors(state, path)  # NaN/inf or integer weights: exit 7 naming the tensor
        return state
    if path.suffix not in PICKLE_SUFFIXES + (".bin", ".ckpt", ".tar"):
        raise CnnlabError(
            _("{path}: expected a .pth/.pt, .safetensors file or a cnnlab run folder", path=path)
        )
    state = load_state(path)
    # timm / lightning / cnnlab's state.pt wrap the state dict; DDP prefixes every name with "module."
    for key in ("state_dict", "model_state_dict", "model", "state_dict_ema"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
            break
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CnnlabError(
            _("{path}: not a state dict (expected parameter names -> tensors)", path=path),
            EXIT_BAD_CHECKPOINT,
        )
    state = {k.removeprefix("module."): v for k, v in state.items()}
    check_tensors(state, path)  # NaN/inf or integer weights: exit 7 naming the tensor
    return state


def describe(w: Weights) -> dict:
    """What a checkpoint records about the weights a run started from (JSON-able)."""
    return {"source": w.source, "kind": w.kind, "model": w.model, **w.preprocess}


def read_classes(path: str | Path) -> list[str]:
    """Class names from a text file (one per line) or a JSON list."""
    try:
        text = Path(path).read_text()
    except OSError as e:
        raise CnnlabError(_("--classes {path}: {reason}", path=path, reason=e.strerror or e)) from None
    if text.lstrip().startswith("["):
        try:
            return [str(c) for c in json.loads(text)]
        except (ValueError, RecursionError) as e:  # RecursionError: nested thousands deep
            raise CnnlabError(
                _("--classes {path}: not a JSON list ({detail})", path=path, detail=e or _("nested too deep"))
            ) from None
    return [line.strip() for line in text.splitlines() if line.strip()]
