"""Model registry: `register_model`, `get_model`, `list_models`, `model_facts`; the CLI reads it.

Every builder takes `num_classes`, `in_channels`, `input_size` (H = W in pixels) and `width`
(a channel multiplier). Names are lower-case words joined by hyphens (`vgg11-bn`); older spellings
stay as aliases so checkpoints saved under them still load. Families are found by listing this
package's modules (no hand-kept list: a new file with `@register_model` is all a model needs) and
imported lazily, so importing cnnlab costs nothing.

What the rest of cnnlab needs to know about a model is declared with its registration (`ModelFacts`, as
timm keeps it with a model's registration and torchvision in its `Weights` enums): its auxiliary heads,
its small form, Grad-CAM's layer and its published weights (`Pretrained`). No code outside `models/`
tests a model's name (tests/test_layout.py); adding a family with pretrained weights is one file
(docs/extending.md, tests/test_extending.py).
"""

import importlib
import pkgutil
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass

import torch.nn as nn

from cnnlab.i18n import _
from cnnlab.models.published import Pretrained
from cnnlab.options import unknown_error


@dataclass(frozen=True)
class ModelFacts:
    name: str  # the registered name, e.g. "resnet18"
    build: Callable[..., nn.Module]  # the builder: num_classes, in_channels, input_size, width (+ extras)
    aliases: tuple[str, ...] = ()  # old spellings, still accepted (checkpoints saved under them load)
    aux_heads: tuple[str, ...] = ()  # auxiliary classifiers (GoogLeNet's aux1, aux2): the builder takes
    # aux_logits=False to leave them out (--no-aux), and published weights leave them untrained
    small_max: int = 0  # input_size <= this builds a small form (3x3 stem, ...) that weights for the
    # ImageNet form do not fit; 0: one form at every size
    gradcam_layer: str | Callable[[nn.Module], str] | None = None  # Grad-CAM's default target layer,
    # or a function of the built model giving it; None: the last Conv2d the forward pass calls
    weights: Pretrained | None = None  # the published weights `--pretrained` downloads, None: none
    no_weights_hint: str = ""  # said when --pretrained asks for weights this model has not got
    chapter: bool = (
        False  # the textbook chapter's own network (explain compares it with the chapter's numbers)
    )

    def layer_for(self, model: nn.Module) -> str | None:
        """Grad-CAM's default layer in `model` (built by this registration), None when not declared."""
        layer = self.gradcam_layer
        return layer(model) if callable(layer) else layer


_REGISTRY: dict[str, ModelFacts] = {}
_ALIASES: dict[str, str] = {}  # old spelling -> registered name
_NAME = re.compile(r"^[a-z0-9]+(-[a-z0-9.]+)*$")
_loaded = False
_LOADING = threading.RLock()  # re-entrant: a family's import may call back into the registry


def register_model(
    name: str,
    aliases: tuple[str, ...] = (),
    *,
    aux_heads: tuple[str, ...] = (),
    small_max: int = 0,
    gradcam_layer: str | Callable[[nn.Module], str] | None = None,
    weights: Pretrained | None = None,
    no_weights_hint: str = "",
    chapter: bool = False,
):
    """Decorator: register a builder under `name` (hyphenated lower case) with optional old `aliases` and
    the model's facts (see `ModelFacts`). A name or alias already taken is an error, never a replacement."""
    if not _NAME.match(name):
        raise ValueError(
            _("model name {name}: use lower-case words joined by hyphens (e.g. 'vgg11-bn')", name=repr(name))
        )

    def add(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        for n in (name, *aliases):
            if n in _REGISTRY or n in _ALIASES:
                raise ValueError(_("model name {name} is registered twice", name=repr(n)))
        _REGISTRY[name] = ModelFacts(
            name,
            fn,
            tuple(aliases),
            tuple(aux_heads),
            small_max,
            gradcam_layer,
            weights,
            no_weights_hint,
            chapter,
        )
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


def model_facts(name: str) -> ModelFacts:
    """The registration of model `name` (or an old alias): its builder and facts; unknown names are a
    usage error listing the registered ones."""
    names = list_models()
    facts = _REGISTRY.get(canonical_name(name))
    if facts is None:
        raise unknown_error("model", name, names)
    return facts


def facts_of(model: nn.Module) -> ModelFacts | None:
    """The registration a model was built by (`get_model` marks what it builds), None for other modules."""
    name = getattr(model, "cnnlab_model", None)
    return _REGISTRY.get(name) if isinstance(name, str) else None


def get_model(name: str, **kwargs) -> nn.Module:
    """Build model `name`; kwargs: num_classes, in_channels, input_size, width (and family extras)."""
    facts = model_facts(name)
    model = facts.build(**kwargs)
    if isinstance(model, nn.Module):
        model.cnnlab_model = facts.name  # `facts_of(model)`: Grad-CAM's layer, the aux heads, ...
    return model
