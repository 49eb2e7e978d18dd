"""Where trained weights come from: torchvision's published ImageNet files, a user's `.pth`/`.safetensors`
file, or a cnnlab run folder; and what preprocessing and class names come with them.

`--pretrained` downloads torchvision's own file (the official URL, the same file name, so a copy already in
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
import urllib.error
from dataclasses import dataclass, field
from pathlib import Path

import torch

from cnnlab.checkpoint import (
    EXIT_BAD_CHECKPOINT,
    PICKLE_SUFFIXES,
    check_tensors,
    load_state,
    read_meta,
    resolve,
)
from cnnlab.errors import CnnlabError

BASE_URL = "https://download.pytorch.org/models/"
# cnnlab model -> torchvision's IMAGENET1K_V1 file (torchvision/models/{resnet,vgg,googlenet}.py). V1 for
# every family: they share one preprocessing (resize 256, centre crop 224), unlike the V2 recipes.
FILES = {
    "resnet18": "resnet18-f37072fd.pth",
    "resnet34": "resnet34-b627a593.pth",
    "resnet50": "resnet50-0676ba61.pth",
    "resnet101": "resnet101-63fe2227.pth",
    "resnet152": "resnet152-394f9c45.pth",
    "vgg11": "vgg11-8a719046.pth",
    "vgg13": "vgg13-19584684.pth",
    "vgg16": "vgg16-397923af.pth",
    "vgg19": "vgg19-dcbb9e9d.pth",
    "vgg11-bn": "vgg11_bn-6002323d.pth",
    "vgg13-bn": "vgg13_bn-abd245e5.pth",
    "vgg16-bn": "vgg16_bn-6c64b313.pth",
    "vgg19-bn": "vgg19_bn-c79401a0.pth",
    # torchvision's GoogLeNet has 3x3 kernels in the "5x5" branch: its weights fit `googlenet-tv` only
    "googlenet-tv": "googlenet-1378be20.pth",
}
HASH_REGEX = re.compile(r"-([a-f0-9]*)\.")  # torch.hub's: the digits between the last '-' and the suffix
IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]
# GoogLeNet's weights were ported from TensorFlow and expect (x - 0.5) / 0.5 on the 0..1 scale;
# torchvision's `transform_input=True` re-maps ImageNet-normalised input to exactly that, so recording
# mean = std = 0.5 as these weights' normalisation is the same computation (tests/test_weights.py).
TF_MEAN, TF_STD = [0.5, 0.5, 0.5], [0.5, 0.5, 0.5]


@dataclass
class Weights:
    state: dict[str, torch.Tensor]  # parameter name -> tensor, as in a state_dict
    source: str  # the file or URL it came from
    classes: list[str] | None = None  # class names when the source knows them (cnnlab runs, ImageNet)
    preprocess: dict = field(
        default_factory=dict
    )  # mean, std (and resize, crop) the weights were trained with
    kind: str = "file"  # "imagenet" (torchvision's published file), "cnnlab" (a run) or "file"
    model: str | None = None  # the cnnlab model name a run was trained with


def imagenet_classes() -> list[str]:
    """The 1000 ImageNet-1k category names, index = class (torchvision's `_IMAGENET_CATEGORIES`)."""
    return (Path(__file__).parent / "imagenet_classes.txt").read_text().splitlines()


def imagenet_preprocess(model: str) -> dict:
    mean, std = (TF_MEAN, TF_STD) if model.startswith("googlenet") else (IMAGENET_MEAN, IMAGENET_STD)
    return {"mean": mean, "std": std, "resize": 256, "crop": 224}


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
    """The local path of `model`'s ImageNet weights, downloading (and hash-checking) them if needed."""
    from cnnlab.models import canonical_name

    model = canonical_name(model)  # old spellings (vgg11_bn) still work
    if model not in FILES:
        hint = " (torchvision's GoogLeNet weights fit --model googlenet-tv)" if model == "googlenet" else ""
        raise CnnlabError(
            f"no published ImageNet weights for {model!r}{hint}; --pretrained exists for: "
            f"{', '.join(sorted(FILES))}; or pass --weights FILE"
        )
    name = FILES[model]
    for folder in (weights_dir(), hub_dir()):
        if (folder / name).is_file():
            return folder / name
    base = base_url or os.environ.get("CNNLAB_WEIGHTS_URL") or BASE_URL
    url, target = base.rstrip("/") + "/" + name, weights_dir() / name
    part = target.with_name(name + ".part")
    hint = f"download it yourself into {target} or pass --weights FILE"
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        from cnnlab.data.sources import _stream  # the dataset downloader's progress-bar streamer

        _stream(url, part, progress)
    except (urllib.error.URLError, OSError, TimeoutError) as e:
        part.unlink(missing_ok=True)
        raise CnnlabError(f"cannot download {url} ({getattr(e, 'reason', e)}); {hint}") from None
    if not hash_ok(part, name):
        part.unlink(missing_ok=True)  # never used, never left behind
        raise CnnlabError(
            f"{url}: SHA-256 does not start with {HASH_REGEX.search(name).group(1)} as its name says; "
            f"the download was deleted. Try again, or {hint}"
        )
    os.replace(part, target)
    return target


def pretrained(model: str, progress: bool = True) -> Weights:
    path = pretrained_file(model, progress)
    return Weights(
        read_state(path), str(path), imagenet_classes(), imagenet_preprocess(model), "imagenet", model
    )


def from_file(path: str | Path) -> Weights:
    """Weights from a torchvision/timm `.pth`, a `.safetensors` file or a cnnlab run folder/checkpoint."""
    p = Path(path)
    if not p.exists():
        raise CnnlabError(f"--weights {path}: no such file or folder")
    if p.is_dir() or p.suffix in (".json", ".safetensors"):
        p = resolve(p)
        from safetensors import safe_open

        try:
            with safe_open(str(p), framework="pt") as f:
                header = f.metadata() or {}
        except Exception as e:  # safetensors raises its own error types for a non-safetensors file
            raise CnnlabError(f"{p}: not a readable safetensors file ({e})", EXIT_BAD_CHECKPOINT) from None
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
            raise CnnlabError(f"{path}: not a readable safetensors file ({e})", EXIT_BAD_CHECKPOINT) from None
        check_tensors(state, path)  # NaN/inf or integer weights: exit 7 naming the tensor
        return state
    if path.suffix not in PICKLE_SUFFIXES + (".bin", ".ckpt", ".tar"):
        raise CnnlabError(f"{path}: expected a .pth/.pt, .safetensors file or a cnnlab run folder")
    state = load_state(path)
    # timm / lightning / cnnlab's state.pt wrap the state dict; DDP prefixes every name with "module."
    for key in ("state_dict", "model_state_dict", "model", "state_dict_ema"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
            break
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CnnlabError(
            f"{path}: not a state dict (expected parameter names -> tensors)", EXIT_BAD_CHECKPOINT
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
        raise CnnlabError(f"--classes {path}: {e.strerror or e}") from None
    if text.lstrip().startswith("["):
        try:
            return [str(c) for c in json.loads(text)]
        except (ValueError, RecursionError) as e:  # RecursionError: nested thousands deep
            raise CnnlabError(f"--classes {path}: not a JSON list ({e or 'nested too deep'})") from None
    return [line.strip() for line in text.splitlines() if line.strip()]
