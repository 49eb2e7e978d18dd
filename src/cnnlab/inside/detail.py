"""The numbers behind one unit of the overview (one map of one column), for the page's detail views.

Everything is this image's real tensors through this model's real layers: for a convolution the input it
got, the learned kernel and bias of one filter, and the map it produced (the page steps across the map
and shows each sum of products); for ReLU, pooling and BatchNorm one map before and after; for flatten the
C x H x W block and the vector it becomes; for softmax the logits, exp, their sum and the probabilities;
for a Linear output its weights, inputs and bias. Values are rounded to 6 decimals for JSON; the tests
recompute every view with `cnnlab.inside.concepts` (NumPy) from these numbers.
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
        return {
            **base,
            "input": numbers(unit.input[index]),
            "output": numbers(unit.output[index]),
            "kernel": _pair(mod.kernel_size),
            "stride": _pair(mod.stride),
            "padding": _pair(mod.padding),
        }
    if unit.input.dim() == unit.output.dim() and unit.input.shape[0] == unit.output.shape[0]:
        # ReLU, BatchNorm, adaptive pooling: one map before and after
        return {
            **base,
            "kind": "before-after" if unit.kind != "relu" else "relu",
            "input": numbers(unit.input[index]),
            "output": numbers(unit.output[index]),
        }
    return {**base, "kind": "map", "output": numbers(unit.output[index])}
