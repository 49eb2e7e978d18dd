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
"""

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


def detail(unit: Unit, index: int = 0) -> dict:
    """JSON-ready numbers for map / output `index` of `unit` (ignored for flatten and softmax)."""
    base = {"name": unit.name, "kind": unit.kind, "type": unit.type}
    if unit.kind == "softmax":
        z = unit.input.double()
        e = (z - z.max()).exp()
        return {
            **base,
            "logits": numbers(z),
            "max": round(float(z.max()), DECIMALS),
            "exp": numbers(e),
            "sum": round(float(e.sum()), DECIMALS),
            "probabilities": numbers(e / e.sum()),
        }
    if unit.kind == "flatten":
        return {
            **base,
            "input_shape": list(unit.input.shape),
            "input": numbers(unit.input),
            "output": numbers(unit.output),
        }
    index = _check_unit(unit, index)
    base["unit"] = index
    mod = unit.module
    if unit.kind == "conv" and isinstance(mod, nn.Conv2d):
        if mod.groups != 1 or _pair(mod.dilation) != [1, 1] or isinstance(mod.padding, str):
            return {
                **base,
                "kind": "map",
                "output": numbers(unit.output[index]),
                "note": "grouped, dilated or 'same' convolution: only the map is shown",
            }
        bias = 0.0 if mod.bias is None else float(mod.bias[index].detach())
        return {
            **base,
            "input": numbers(unit.input),
            "kernel": numbers(mod.weight[index]),
            "bias": round(bias, DECIMALS),
            "stride": _pair(mod.stride),
            "padding": _pair(mod.padding),
            "output": numbers(unit.output[index]),
        }
    if unit.kind == "linear" and isinstance(mod, nn.Linear):
        bias = 0.0 if mod.bias is None else float(mod.bias[index].detach())
        return {
            **base,
            "input": numbers(unit.input),
            "weights": numbers(mod.weight[index]),
            "bias": round(bias, DECIMALS),
            "output": round(float(unit.output[index]), DECIMALS),
        }
    if unit.kind in ("maxpool", "avgpool") and isinstance(mod, (nn.MaxPool2d, nn.AvgPool2d)):
        return _pool(base, unit, index, _pair(mod.kernel_size), _pair(mod.stride), _pair(mod.padding))
    if unit.kind in ("maxpool", "avgpool") and isinstance(mod, (nn.AdaptiveMaxPool2d, nn.AdaptiveAvgPool2d)):
        # adaptive pooling whose output size divides its input size is plain pooling with kernel = stride
        # = in // out (PyTorch's windows are then exactly those), e.g. the global average pool to 1 x 1
        (h, w), (oh, ow) = unit.input.shape[1:], unit.output.shape[1:]
        if h % oh == 0 and w % ow == 0:
            return _pool(base, unit, index, [h // oh, w // ow], [h // oh, w // ow], [0, 0])
    if unit.kind == "batchnorm" and isinstance(mod, nn.BatchNorm2d) and mod.running_mean is not None:
        # eval mode: y = (x - running mean) / sqrt(running var + eps) * weight + bias, one set per channel
        weight = 1.0 if mod.weight is None else float(mod.weight[index].detach())
        bias = 0.0 if mod.bias is None else float(mod.bias[index].detach())
        return {
            **base,
            "input": numbers(unit.input[index]),
            "output": numbers(unit.output[index]),
            "mean": round(float(mod.running_mean[index]), DECIMALS),
            "var": round(float(mod.running_var[index]), DECIMALS),
            "eps": mod.eps,
            "weight": round(weight, DECIMALS),
            "bias": round(bias, DECIMALS),
        }
    elementwise = unit.kind != "block" and unit.input.shape == unit.output.shape
    if elementwise and unit.input.dim() == 1:
        # a ReLU after a fully connected layer: its value `index` before and after, in its whole vector
        return {
            **base,
            "kind": "before-after" if unit.kind != "relu" else "relu",
            "input": numbers(unit.input),
            "output": numbers(unit.output),
        }
    if elementwise:
        # ReLU, BatchNorm in train-time form, other element-wise layers: one map before and after. A
        # block (a residual or Inception block, GoogLeNet's conv + BN + ReLU) is not: its map i mixes
        # every map that went in, so only what came out is shown
        return {
            **base,
            "kind": "before-after" if unit.kind != "relu" else "relu",
            "input": numbers(unit.input[index]),
            "output": numbers(unit.output[index]),
        }
    return {**base, "kind": "map", "output": numbers(unit.output[index])}


def _pool(
    base: dict, unit: Unit, index: int, kernel: list[int], stride: list[int], padding: list[int]
) -> dict:
    return {
        **base,
        "input": numbers(unit.input[index]),
        "output": numbers(unit.output[index]),
        "kernel": kernel,
        "stride": stride,
        "padding": padding,
    }
