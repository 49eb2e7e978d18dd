"""The numbers behind one unit of the overview (one map of one column), for the page's detail views.

Everything is this image's real tensors through this model's real layers: for a convolution the input it
got, the learned kernel and bias of one filter, and the map it produced (the page steps across the map
and shows each sum of products); for ReLU and pooling (adaptive pooling too, where its windows are even)
one map before and after, or for a ReLU after a fully connected layer its vector before and after; for
BatchNorm also the channel's running mean and variance, weight and bias; for a block (residual,
Inception) only the map it produced; for flatten the C x H x W block and the vector it becomes; for
softmax the logits, exp, their sum and the probabilities; for a Linear output its weights, inputs and
bias. Values are rounded to 6 decimals for JSON; the tests recompute every view with
`cnnlab.inside.concepts` (NumPy) from these numbers.

Each view is one function registered with `@view(kind)`; the page draws it with the function of the same
kind in serve/static/detail.js (docs/extending.md, "Adding a page view").
"""

from collections.abc import Callable

import numpy as np
import torch
import torch.nn as nn

from cnnlab.errors import CnnlabError
from cnnlab.i18n import _
from cnnlab.inside.overview import Unit

DECIMALS = 6


def numbers(t: torch.Tensor | np.ndarray) -> list:
    a = t.detach().cpu().double().numpy() if isinstance(t, torch.Tensor) else np.asarray(t, dtype=float)
    return np.round(a, DECIMALS).tolist()


def _pair(v) -> list[int]:
    return list(v) if isinstance(v, tuple) else [v, v]


def _check_unit(unit: Unit, index: int) -> int:
    count = unit.output.shape[0]
    if not 0 <= index < count:
        raise CnnlabError(
            _("unit {index} is outside {layer} (0..{last})", index=index, layer=unit.name, last=count - 1)
        )
    return index


# kind of a Unit -> (its view: numbers for one unit or None to fall back, whether it shows one unit of many)
_VIEWS: dict[str, tuple[Callable[[Unit, int], dict | None], bool]] = {}


def view(*kinds: str, per_unit: bool = True):
    """Register the numbers of the detail view for units of these kinds (`Unit.kind`, from overview.py's
    KINDS). The function gets the unit and the map (or output) index, already checked when `per_unit`,
    and returns the view's fields, or None where it does not apply (then the generic view is used). A
    returned "kind" replaces the unit's: it picks the page's view (serve/static/detail.js, VIEWS)."""

    def register(fn: Callable[[Unit, int], dict | None]):
        for kind in kinds:
            _VIEWS[kind] = (fn, per_unit)
        return fn

    return register


def detail(unit: Unit, index: int = 0) -> dict:
    """JSON-ready numbers for map / output `index` of `unit` (ignored for flatten and softmax)."""
    base = {"name": unit.name, "kind": unit.kind, "type": unit.type}
    numbers_of, per_unit = _VIEWS.get(unit.kind, (None, True))
    if per_unit:
        index = _check_unit(unit, index)
        base["unit"] = index
    answer = numbers_of(unit, index) if numbers_of else None
    return {**base, **(answer if answer is not None else _generic(unit, index))}


@view("softmax", per_unit=False)
def _softmax(unit: Unit, _index: int) -> dict:
    z = unit.input.double()
    e = (z - z.max()).exp()
    return {
        "logits": numbers(z),
        "max": round(float(z.max()), DECIMALS),
        "exp": numbers(e),
        "sum": round(float(e.sum()), DECIMALS),
        "probabilities": numbers(e / e.sum()),
    }


@view("flatten", per_unit=False)
def _flatten(unit: Unit, _index: int) -> dict:
    return {
        "input_shape": list(unit.input.shape),
        "input": numbers(unit.input),
        "output": numbers(unit.output),
    }


@view("conv")
def _conv(unit: Unit, index: int) -> dict | None:
    mod = unit.module
    if not isinstance(mod, nn.Conv2d):
        return None
    if mod.groups != 1 or _pair(mod.dilation) != [1, 1] or isinstance(mod.padding, str):
        return {
            "kind": "map",
            "output": numbers(unit.output[index]),
            "note": "grouped, dilated or 'same' convolution: only the map is shown",
        }
    bias = 0.0 if mod.bias is None else float(mod.bias[index].detach())
    return {
        "input": numbers(unit.input),
        "kernel": numbers(mod.weight[index]),
        "bias": round(bias, DECIMALS),
        "stride": _pair(mod.stride),
        "padding": _pair(mod.padding),
        "output": numbers(unit.output[index]),
    }


@view("linear")
def _linear(unit: Unit, index: int) -> dict | None:
    mod = unit.module
    if not isinstance(mod, nn.Linear):
        return None
    bias = 0.0 if mod.bias is None else float(mod.bias[index].detach())
    return {
        "input": numbers(unit.input),
        "weights": numbers(mod.weight[index]),
        "bias": round(bias, DECIMALS),
        "output": round(float(unit.output[index]), DECIMALS),
    }


@view("maxpool", "avgpool")
def _pooling(unit: Unit, index: int) -> dict | None:
    mod = unit.module
    if isinstance(mod, (nn.MaxPool2d, nn.AvgPool2d)):
        return _pool(unit, index, _pair(mod.kernel_size), _pair(mod.stride), _pair(mod.padding))
    if isinstance(mod, (nn.AdaptiveMaxPool2d, nn.AdaptiveAvgPool2d)):
        # adaptive pooling whose output size divides its input size is plain pooling with kernel = stride
        # = in // out (PyTorch's windows are then exactly those), e.g. the global average pool to 1 x 1
        (h, w), (oh, ow) = unit.input.shape[1:], unit.output.shape[1:]
        if h % oh == 0 and w % ow == 0:
            return _pool(unit, index, [h // oh, w // ow], [h // oh, w // ow], [0, 0])
    return None


@view("batchnorm")
def _batchnorm(unit: Unit, index: int) -> dict | None:
    mod = unit.module
    if not (isinstance(mod, nn.BatchNorm2d) and mod.running_mean is not None):
        return None
    # eval mode: y = (x - running mean) / sqrt(running var + eps) * weight + bias, one set per channel
    weight = 1.0 if mod.weight is None else float(mod.weight[index].detach())
    bias = 0.0 if mod.bias is None else float(mod.bias[index].detach())
    return {
        "input": numbers(unit.input[index]),
        "output": numbers(unit.output[index]),
        "mean": round(float(mod.running_mean[index]), DECIMALS),
        "var": round(float(mod.running_var[index]), DECIMALS),
        "eps": mod.eps,
        "weight": round(weight, DECIMALS),
        "bias": round(bias, DECIMALS),
    }


def _generic(unit: Unit, index: int) -> dict:
    """Any other unit: an element-wise layer before and after, else (a block) only its map."""
    elementwise = unit.kind != "block" and unit.input.shape == unit.output.shape
    kind = "before-after" if unit.kind != "relu" else "relu"
    if elementwise and unit.input.dim() == 1:
        # a ReLU after a fully connected layer: its value `index` before and after, in its whole vector
        return {"kind": kind, "input": numbers(unit.input), "output": numbers(unit.output)}
    if elementwise:
        # ReLU, BatchNorm in train-time form, other element-wise layers: one map before and after. A
        # block (a residual or Inception block, GoogLeNet's conv + BN + ReLU) is not: its map i mixes
        # every map that went in, so only what came out is shown
        return {"kind": kind, "input": numbers(unit.input[index]), "output": numbers(unit.output[index])}
    return {"kind": "map", "output": numbers(unit.output[index])}


def _pool(unit: Unit, index: int, kernel: list[int], stride: list[int], padding: list[int]) -> dict:
    return {
        "input": numbers(unit.input[index]),
        "output": numbers(unit.output[index]),
        "kernel": kernel,
        "stride": stride,
        "padding": padding,
    }
