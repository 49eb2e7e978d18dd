"""Fitting trained weights onto a model built for other data: a new classifier when the classes differ,
the first convolution adapted to another channel count, untrained auxiliary heads (GoogLeNet's, as its
registration declares them) left fresh.

Everything else is loaded strictly: a name the model lacks, a name the file lacks or a shape that differs
is one error line naming it. cnnlab's models use torchvision's parameter names, so torchvision's (and
timm's torchvision-style) files load as they are.
"""

import math

import torch
import torch.nn as nn

from cnnlab.errors import EXIT_BAD_CHECKPOINT, CnnlabError
from cnnlab.i18n import _
from cnnlab.models import ModelFacts, facts_of, model_facts
from cnnlab.models.weights import Weights


def aux_prefixes(model: nn.Module, model_name: str | None = None) -> tuple[str, ...]:
    """Parameter-name prefixes of the auxiliary classifiers its registration declares ("aux1.", "aux2."
    for GoogLeNet); () for a model without them."""
    facts: ModelFacts | None = facts_of(model) or (model_facts(model_name) if model_name else None)
    return tuple(f"{a}." for a in facts.aux_heads) if facts else ()


def adapt_input_conv(weight: torch.Tensor, in_channels: int) -> torch.Tensor:
    """A first-conv kernel O x I x k x k re-made for `in_channels` inputs, as timm's `adapt_input_conv`:
    one channel sums the kernels over I (a grey image replicated to I channels gives the same output);
    other counts repeat the I kernels cyclically and scale by I / in_channels, keeping the output's size."""
    w = weight.float()
    o, i, kh, kw = w.shape
    if in_channels == i:
        return weight
    if in_channels == 1:
        return w.sum(1, keepdim=True).to(weight.dtype)
    reps = math.ceil(in_channels / i)
    return (w.repeat(1, reps, 1, 1)[:, :in_channels] * (i / in_channels)).to(weight.dtype)


def head_name(model: nn.Module) -> str:
    """The module name of the final classifier: the last Linear outside the auxiliary heads."""
    aux = aux_prefixes(model)
    names = [n for n, m in model.named_modules() if isinstance(m, nn.Linear) and not n.startswith(aux)]
    if not names:
        raise CnnlabError(_("{model} has no Linear classifier to replace", model=type(model).__name__))
    return names[-1]


def first_conv_name(model: nn.Module) -> str:
    return next(n for n, m in model.named_modules() if isinstance(m, nn.Conv2d))


def class_map(source, target) -> list[int] | None:
    """For each target class, the row of the source classifier with the same name ("7" and "seven" are
    the same class, cnnlab.data.spec.same_class); None unless every target class has exactly one."""
    from cnnlab.data.spec import same_class

    if not source:
        return None
    rows = []
    for name in target:
        found = [i for i, s in enumerate(source) if same_class(s, name)]
        if len(found) != 1:
            return None
        rows.append(found[0])
    return rows if len(set(rows)) == len(rows) else None


def _pairs(source, target, rows: list[int]) -> str:
    shown = [f"{t}={source[r]}" if str(t) != str(source[r]) else str(t) for t, r in zip(target, rows)]
    return ", ".join(shown[:10]) + (", ..." if len(shown) > 10 else "")


def _shape(t: torch.Tensor) -> str:
    return "x".join(str(s) for s in t.shape)


def load_into(
    model: nn.Module, w: Weights, classes: list[str], model_name: str
) -> tuple[set[str], list[str]]:
    """Load `w` into `model` (built for `classes`); returns (names left freshly initialised, notes)."""
    own = model.state_dict()
    state = dict(w.state)
    fresh: set[str] = set()
    notes: list[str] = []
    aux = aux_prefixes(model, model_name)  # () when none: str.startswith(()) is False
    has_aux = any(k.startswith(aux) for k in own)
    file_aux = [k for k in state if k.startswith(aux)]
    if file_aux and (not has_aux or w.kind == "imagenet"):
        for k in file_aux:
            del state[k]
        if has_aux:
            # torchvision: "auxiliary heads in the pretrained googlenet model are NOT pretrained"
            notes.append(
                _("auxiliary heads have no pretrained weights: they start fresh (--no-aux drops them)")
            )
    if has_aux and not any(k.startswith(aux) for k in state):
        fresh |= {k for k in own if k.startswith(aux)}
    head = head_name(model)
    heads = [head] + [f"{a}fc2" for a in aux if f"{a}fc2.weight" in own]
    old_classes = w.classes
    rows = class_map(old_classes, classes)
    if rows is not None and list(old_classes) != list(classes):
        if rows != list(range(len(old_classes))):  # another order, or a subset: pick the rows by name
            for h in heads:
                for suffix in (".weight", ".bias"):
                    if h + suffix in state:
                        state[h + suffix] = state[h + suffix][rows]
        notes.append(
            _("classifier {head} kept: its {n} classes mapped to yours by name ({pairs})", head=head,
              n=len(old_classes), pairs=_pairs(old_classes, classes, rows))
        )  # fmt: skip
        old_classes = list(classes)
    differ = any(
        f"{h}.weight" in state and state[f"{h}.weight"].shape != own[f"{h}.weight"].shape for h in heads
    ) or (old_classes is not None and list(old_classes) != list(classes))
    if differ:
        for h in heads:
            for suffix in (".weight", ".bias"):
                state.pop(h + suffix, None)
                fresh.add(h + suffix)
        if old_classes:
            notes.append(
                _("new classifier {head} for {n} classes (the weights' was for {was} classes)", head=head,
                  n=len(classes), was=len(old_classes))
            )  # fmt: skip
        else:
            notes.append(
                _("new classifier {head} for {n} classes (the weights' was for other classes)", head=head,
                  n=len(classes))
            )  # fmt: skip
    conv = first_conv_name(model) + ".weight"
    if conv in state and state[conv].dim() == 4 and state[conv].shape[1] != own[conv].shape[1]:
        before = state[conv].shape[1]
        state[conv] = adapt_input_conv(state[conv], own[conv].shape[1])
        if own[conv].shape[1] == 1:
            notes.append(
                _("first convolution adapted to {n} input channel(s) (summed over {before})",
                  n=own[conv].shape[1], before=before)
            )  # fmt: skip
        else:
            notes.append(
                _("first convolution adapted to {n} input channel(s) (repeated from {before})",
                  n=own[conv].shape[1], before=before)
            )  # fmt: skip
    check_fit(model, own, state, fresh, w.source, model_name)
    model.load_state_dict(state, strict=False)
    return fresh, notes


def check_fit(model, own: dict, state: dict, fresh: set[str], source: str, model_name: str) -> None:
    """One error line naming what does not fit; BatchNorm's num_batches_tracked may be absent (old files)."""
    missing = [k for k in own if k not in state and k not in fresh and not k.endswith("num_batches_tracked")]
    extra = [k for k in state if k not in own]
    shapes = [k for k in state if k in own and state[k].shape != own[k].shape]
    if not (missing or extra or shapes):
        return
    parts = []
    if shapes:
        k = shapes[0]
        parts.append(
            _("{n} shape mismatch(es), first {name}: file {file} vs model {model}", n=len(shapes), name=k,
              file=_shape(state[k]), model=_shape(own[k]))
        )  # fmt: skip
    if missing:
        parts.append(
            _("{n} name(s) missing from the file, e.g. {names}", n=len(missing), names=", ".join(missing[:3]))
        )
    if extra:
        parts.append(_("{n} name(s) the model lacks, e.g. {names}", n=len(extra), names=", ".join(extra[:3])))
    problems = "; ".join(parts)
    size = getattr(model, "cnnlab_kwargs", {}).get("input_size")
    if size is not None and size <= model_facts(model_name).small_max:
        problems += _(
            "; note: for {size}-px inputs cnnlab builds {model}'s small form (3x3 stem, small head), which "
            "ImageNet-form weights (trained on > 64 px) do not fit", size=size, model=model_name
        )  # fmt: skip
    raise CnnlabError(
        _(
            "weights {source} do not fit {model}: {problems}",
            source=source,
            model=model_name,
            problems=problems,
        ),
        EXIT_BAD_CHECKPOINT,
    )


def imagenet_model(w: Weights, model_name: str, classes: list[str] | None = None):
    """A model ready for prediction from weights alone (no training): classes and input taken from the file.

    Returns (model in eval mode, checkpoint-style meta). A 1000-way classifier is taken as ImageNet-1k."""
    from cnnlab.models import get_model
    from cnnlab.models.published import imagenet_classes
    from cnnlab.models.weights import imagenet_preprocess

    pre = w.preprocess or imagenet_preprocess(model_name)
    size = pre.get("crop", 224)  # the input the weights were trained at
    probe = get_model(model_name, num_classes=2, in_channels=3, input_size=size)
    head, conv = head_name(probe), first_conv_name(probe) + ".weight"
    if f"{head}.weight" not in w.state or conv not in w.state:
        raise CnnlabError(
            _(
                "weights {source} do not fit {model}: no {head}.weight or {layer} in the file",
                source=w.source,
                model=model_name,
                head=head,
                layer=conv,
            ),
            EXIT_BAD_CHECKPOINT,
        )
    n, c = w.state[f"{head}.weight"].shape[0], w.state[conv].shape[1]
    names = classes or w.classes or (imagenet_classes() if n == 1000 else [str(i) for i in range(n)])
    if len(names) != n:
        raise CnnlabError(
            _("{given} class names given but the classifier has {n} outputs", given=len(names), n=n)
        )
    kwargs = {"num_classes": n, "in_channels": c, "input_size": size}
    if model_facts(model_name).aux_heads:  # prediction only: untrained aux heads are not built
        kwargs["aux_logits"] = False
    model = get_model(model_name, **kwargs)
    model.cnnlab_kwargs = kwargs
    load_into(model, Weights(w.state, w.source, names, w.preprocess, w.kind), names, model_name)
    if len(pre.get("mean", [])) != c:
        pre = {**pre, "mean": pre["mean"][:1] * c, "std": pre["std"][:1] * c}
    meta = {
        "model": model_name,
        "model_kwargs": kwargs,
        "dataset": "imagenet" if n == 1000 and not classes else "weights",
        "classes": names,
        "input_shape": [c, size, size],
        **pre,
        "weights": {"source": w.source, "kind": w.kind},
    }
    return model.eval(), meta


def model_from_weights(name: str, pretrained: bool, weights_file: str | None, classes_file: str | None):
    """`cnnlab predict MODEL --pretrained | --weights FILE`: (model, meta) with no training."""
    from cnnlab.models import list_models
    from cnnlab.models.weights import from_file, read_classes
    from cnnlab.models.weights import pretrained as download

    if name not in list_models():
        raise CnnlabError(
            _("unknown model {name} (with --pretrained/--weights give a model name, see `cnnlab models`)",
              name=repr(name))
        )  # fmt: skip
    w = from_file(weights_file) if weights_file else download(name)
    classes = read_classes(classes_file) if classes_file else None
    if w.kind == "cnnlab":  # a cnnlab run: its own model, classes and preprocessing
        from cnnlab.checkpoint import load_checkpoint

        model, meta = load_checkpoint(w.source)
        if meta["model"] != name:
            raise CnnlabError(
                _("--weights {file} holds a {model} run, not {name}", file=weights_file, model=meta["model"],
                  name=name)
            )  # fmt: skip
        if classes is not None:
            if len(classes) != len(meta["classes"]):
                raise CnnlabError(
                    _(
                        "--classes has {n} names, the checkpoint {has}",
                        n=len(classes),
                        has=len(meta["classes"]),
                    )
                )
            meta["classes"] = classes
        return model, meta
    return imagenet_model(w, name, classes)
