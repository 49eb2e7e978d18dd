"""Model registry: `register_model`, `get_model`, `list_models`; the CLI reads it.

Every builder takes `num_classes`, `in_channels`, `input_size` (H = W in pixels) and `width`
(a channel multiplier). Names are lower-case words joined by hyphens (`vgg11-bn`); older spellings
stay as aliases so checkpoints saved under them still load. Families are found by listing this
package's modules (no hand-kept list: a new file with `@register_model` is all a model needs) and
imported lazily, so importing cnnlab costs nothing.
"""

import importlib
import pkgutil
import re
import threading
from collections.abc import Callable

import torch.nn as nn

from cnnlab.options import unknown_error

_REGISTRY: dict[str, Callable[..., nn.Module]] = {}
_ALIASES: dict[str, str] = {}  # old spelling -> registered name
_NAME = re.compile(r"^[a-z0-9]+(-[a-z0-9.]+)*$")
_loaded = False
_LOADING = threading.RLock()  # re-entrant: a family's import may call back into the registry


def register_model(name: str, aliases: tuple[str, ...] = ()):
    """Decorator: register a builder under `name` (hyphenated lower case) and optional old `aliases`.
    A name or alias that is already taken is an error, never a silent replacement."""
    if not _NAME.match(name):
        raise ValueError(f"model name {name!r}: use lower-case words joined by hyphens (e.g. 'vgg11-bn')")

    def add(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        for n in (name, *aliases):
            if n in _REGISTRY or n in _ALIASES:
                raise ValueError(f"model name {n!r} is registered twice")
        _REGISTRY[name] = fn
        _ALIASES.update({a: name for a in aliases})
        return fn

    return add


def _load_families() -> None:
    global _loaded
    if _loaded:
        return
    with _LOADING:  # threads asking at once (the server, tests) wait for one complete import
        if _loaded:
            return
        for mod in pkgutil.iter_modules(__path__):
            if not mod.name.startswith("_"):
                importlib.import_module(f"{__name__}.{mod.name}")
        _loaded = True  # only now: a thread that saw it set finds every family registered


def list_models() -> list[str]:
    """Names of every registered model, sorted (e.g. "chapter-cnn", "resnet18", "vgg16"); aliases not included."""
    _load_families()
    return sorted(_REGISTRY)


def canonical_name(name: str) -> str:
    """The registered name for `name` or one of its old aliases; unknown names come back unchanged."""
    _load_families()
    return _ALIASES.get(name, name)


def get_model(name: str, **kwargs) -> nn.Module:
    """Build model `name`; kwargs: num_classes, in_channels, input_size, width (and family extras)."""
    names = list_models()
    name = canonical_name(name)
    if name not in _REGISTRY:
        raise unknown_error("model", name, names)
    return _REGISTRY[name](**kwargs)
