"""Model registry: `register_model`, `get_model`, `list_models`; the CLI reads it.

Every builder takes `num_classes`, `in_channels`, `input_size` (H = W in pixels) and `width`
(a channel multiplier); families are imported lazily so importing cnnlab costs nothing.
"""

import importlib
from collections.abc import Callable

import torch.nn as nn

from cnnlab.options import unknown_error

_FAMILIES = ("chapter_cnn", "vgg", "googlenet", "resnet", "fastnet")
_REGISTRY: dict[str, Callable[..., nn.Module]] = {}


def register_model(name: str):
    def add(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        _REGISTRY[name] = fn
        return fn

    return add


def _load_families() -> None:
    for family in _FAMILIES:
        importlib.import_module(f"cnnlab.models.{family}")


def list_models() -> list[str]:
    """Names of every registered model, sorted (e.g. "chapter-cnn", "resnet18", "vgg16")."""
    _load_families()
    return sorted(_REGISTRY)


def get_model(name: str, **kwargs) -> nn.Module:
    """Build model `name`; kwargs: num_classes, in_channels, input_size, width (and family extras)."""
    names = list_models()
    if name not in _REGISTRY:
        raise unknown_error("model", name, names)
    return _REGISTRY[name](**kwargs)
