"""`layer_geometry`: the one reader of a layer's kernel/stride/padding/dilation/ceil_mode, checked against
the shapes PyTorch's own forward pass produces, on random layers and inputs."""

import random

import pytest
import torch
import torch.nn as nn

from cnnlab.core.sizes import Geometry, layer_geometry
from cnnlab.errors import CnnlabError
from cnnlab.inside.activations import size_formula
from cnnlab.inside.summary import formula_shape


def random_layer(rng: random.Random) -> nn.Module:
    """A random 2-D conv or pool with valid hyper-parameters (pad <= kernel/2, as PyTorch's pools demand)."""
    kind = rng.choice(["conv", "conv-same", "conv-valid", "max", "avg", "lp", "adaptive"])
    k = (rng.randint(1, 5), rng.randint(1, 5)) if rng.random() < 0.5 else rng.randint(1, 5)
    kk = k if isinstance(k, tuple) else (k, k)
    s = (rng.randint(1, 3), rng.randint(1, 3)) if rng.random() < 0.5 else rng.randint(1, 3)
    p = (rng.randint(0, kk[0] // 2), rng.randint(0, kk[1] // 2))
    d = (rng.randint(1, 3), rng.randint(1, 2))
    if kind == "conv":
        return nn.Conv2d(2, rng.randint(1, 4), k, stride=s, padding=p, dilation=d)
    if kind == "conv-same":
        return nn.Conv2d(2, 3, k, padding="same", dilation=d)
    if kind == "conv-valid":
        return nn.Conv2d(2, 3, k, stride=s, padding="valid")
    if kind == "max":
        return nn.MaxPool2d(
            k, stride=rng.choice([None, s]), padding=p, dilation=d, ceil_mode=rng.random() < 0.5
        )
    if kind == "avg":
        return nn.AvgPool2d(k, stride=rng.choice([None, s]), padding=p, ceil_mode=rng.random() < 0.5)
    if kind == "lp":
        return nn.LPPool2d(2, k, stride=rng.choice([None, s]), ceil_mode=rng.random() < 0.5)
    return rng.choice([nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d])(rng.choice([1, 3, (2, None), (None, 4)]))


@pytest.mark.parametrize("seed", range(6))
def test_geometry_shape_equals_pytorchs_forward(seed):
    rng = random.Random(seed)
    checked = refused = 0
    for _ in range(60):
        layer = random_layer(rng)
        h, w = rng.randint(1, 20), rng.randint(1, 20)
        x = torch.randn(1, 2, h, w)
        try:
            real = tuple(layer(x).shape[1:])
        except RuntimeError:  # PyTorch refuses (output < 1): the formula must refuse too
            with pytest.raises(CnnlabError):
                formula_shape(layer, (2, h, w))
            refused += 1
            continue
        if 0 in real:  # a few ops return an empty map instead of raising
            continue
        assert formula_shape(layer, (2, h, w)) == real, f"{layer} on 2x{h}x{w}"
        geometry = layer_geometry(layer)
        for axis, n in ((0, h), (1, w)):
            text, value = size_formula(layer, n, axis)
            if geometry.adaptive is None and geometry.padding != "same":
                assert value == real[1 + axis] and text.endswith(f"= {value}"), text
        checked += 1
    assert checked > 30 and refused > 0


def test_geometry_reads_each_hyper_parameter():
    conv = layer_geometry(nn.Conv2d(3, 8, (3, 5), stride=(1, 2), padding=(1, 2), dilation=(2, 1)))
    assert conv == Geometry((3, 5), (1, 2), (1, 2), (2, 1), False, channels=8)
    pool = layer_geometry(nn.MaxPool2d(3, 2, 1, ceil_mode=True))
    assert pool == Geometry((3, 3), (2, 2), (1, 1), (1, 1), True)
    assert layer_geometry(nn.AvgPool2d(2)).stride == (2, 2)  # stride defaults to the kernel
    assert layer_geometry(nn.LPPool2d(2, 3)).stride == (3, 3)
    assert layer_geometry(nn.AdaptiveAvgPool2d((None, 7))).adaptive == (None, 7)
    assert layer_geometry(nn.Conv2d(1, 1, 3, padding="valid")).padding == (0, 0)
    for other in (nn.ReLU(), nn.Linear(2, 2), nn.ConvTranspose2d(1, 1, 3), nn.BatchNorm2d(3)):
        assert layer_geometry(other) is None and formula_shape(other, (3, 8, 8)) is None


def test_chapter_cnn_walk_28_24_20_10_6_3():
    from cnnlab.models import get_model

    sizes = [28]
    for layer in get_model("chapter-cnn").modules():
        geometry = layer_geometry(layer)
        if geometry is not None:
            sizes.append(geometry.size(0, sizes[-1]))
    assert sizes == [28, 24, 20, 10, 6, 3]
