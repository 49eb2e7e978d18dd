"""The overview's columns for any model, and every detail view's numbers recomputed with
`cnnlab.inside.concepts` (NumPy, written from scratch) and compared with the network's own activations."""

import numpy as np
import pytest
import torch

from cnnlab.errors import CnnlabError
from cnnlab.inside import concepts as C
from cnnlab.inside.activations import conv_feature_maps
from cnnlab.inside.detail import detail
from cnnlab.inside.overview import MAX_COLUMNS, trace_units
from cnnlab.models import get_model

CHAPTER = [
    ("layer.0", "conv", (16, 24, 24)),
    ("layer.1", "relu", (16, 24, 24)),
    ("layer.2", "conv", (32, 20, 20)),
    ("layer.3", "relu", (32, 20, 20)),
    ("layer.4", "maxpool", (32, 10, 10)),
    ("layer.5", "conv", (64, 6, 6)),
    ("layer.6", "relu", (64, 6, 6)),
    ("layer.7", "maxpool", (64, 3, 3)),
    ("flatten", "flatten", (576,)),
    ("fc_layer.0", "linear", (100,)),
    ("fc_layer.1", "relu", (100,)),
    ("fc_layer.2", "linear", (10,)),
    ("softmax", "softmax", (10,)),
]


@pytest.fixture(scope="module")
def chapter():
    torch.manual_seed(0)
    model = get_model("chapter-cnn").eval()
    x = torch.randn(1, 28, 28)
    return model, x, trace_units(model, x)


def by_name(units, name):
    return next(u for u in units if u.name == name)


def test_chapter_cnn_columns(chapter):
    _, _, units = chapter
    assert [(u.name, u.kind, tuple(u.output.shape)) for u in units] == CHAPTER


def test_conv_detail_is_the_sum_of_products_and_the_real_activation(chapter):
    model, x, units = chapter
    real = dict(conv_feature_maps(model, x))  # the network's own conv outputs, recorded independently
    for name, unit in (("layer.0", 5), ("layer.2", 3), ("layer.5", 63)):
        d = detail(by_name(units, name), unit)
        inp, kernel = np.array(d["input"]), np.array(d["kernel"])
        assert kernel.shape[0] == inp.shape[0]  # multi-channel: the kernel has one slice per input channel
        ours = C.conv2d(
            inp, kernel[None], np.array([d["bias"]]), stride=d["stride"][0], padding=d["padding"][0]
        )
        np.testing.assert_allclose(ours[0], d["output"], atol=1e-4)
        np.testing.assert_allclose(d["output"], real[name][unit].numpy(), atol=1e-5)
        # one cell written out as the page does it: per-channel sums of products, added, plus the bias
        i, j = 2, 3
        sums = [(inp[c, i : i + 5, j : j + 5] * kernel[c]).sum() for c in range(len(kernel))]
        assert sum(sums) + d["bias"] == pytest.approx(d["output"][i][j], abs=1e-4)


def test_relu_pool_flatten_linear_softmax_details(chapter):
    model, x, units = chapter
    d = detail(by_name(units, "layer.3"), 7)
    np.testing.assert_allclose(C.relu(np.array(d["input"])), d["output"], atol=1e-6)
    assert d["kind"] == "relu" and min(map(min, d["input"])) < 0  # there was something to cut
    d = detail(by_name(units, "layer.4"), 2)
    assert d["kernel"] == [2, 2] and d["stride"] == [2, 2]
    np.testing.assert_allclose(C.max_pool2d(np.array(d["input"])[None], 2, 2)[0], d["output"], atol=1e-6)
    d = detail(by_name(units, "flatten"))
    assert d["input_shape"] == [64, 3, 3] and len(d["output"]) == 576
    np.testing.assert_allclose(C.flatten(np.array(d["input"])), d["output"])
    assert d["output"][1 * 9 + 2 * 3 + 1] == d["input"][1][2][1]  # (c, h, w) -> c*9 + h*3 + w
    d = detail(by_name(units, "fc_layer.0"), 42)
    ours = C.linear(np.array(d["input"]), np.array(d["weights"])[None], np.array([d["bias"]]))
    assert ours[0] == pytest.approx(d["output"], abs=1e-4)
    d = detail(by_name(units, "softmax"))
    np.testing.assert_allclose(C.softmax(np.array(d["logits"])), d["probabilities"], atol=1e-6)
    assert sum(d["probabilities"]) == pytest.approx(1, abs=1e-5)
    assert d["sum"] == pytest.approx(sum(d["exp"]), abs=1e-5) and max(d["exp"]) == pytest.approx(1)
    with torch.no_grad():
        expected = model(x[None]).softmax(1)[0]
    np.testing.assert_allclose(d["probabilities"], expected.numpy(), atol=1e-5)


def test_unit_out_of_range(chapter):
    with pytest.raises(CnnlabError, match="outside layer.0"):
        detail(chapter[2][0], 16)


@pytest.mark.parametrize(
    "name, blocks",
    [
        ("resnet18", ["layer1.0", "layer4.1"]),
        ("resnet152", ["layer1", "layer3", "layer4"]),  # 50 blocks: one column per stage
        ("googlenet", ["inception3a", "inception5b"]),
        ("vgg16_bn", []),
    ],
)
def test_deep_models_show_stages_and_blocks(name, blocks):
    model = get_model(name, in_channels=3, input_size=32, width=0.125).eval()
    units = trace_units(model, torch.randn(3, 32, 32))
    assert len(units) <= MAX_COLUMNS
    names = [u.name for u in units]
    for b in blocks:
        assert b in names and by_name(units, b).kind == "block"
    assert not any(n.startswith("aux") for n in names)  # GoogLeNet's aux heads do not run at test time
    assert names[-2:] == ["fc", "softmax"] or names[-1] == "softmax"
    for u in units:  # every column has a detail view that does not fail
        detail(u, 0)
    if name == "vgg16_bn":  # folded conv + BN + ReLU columns keep the conv's own numbers
        u = units[0]
        assert u.name == "features.0+features.1+features.2" and u.kind == "conv"
        assert bool((u.shown >= 0).all()) and bool((u.output < 0).any())  # shown after ReLU, output before
        d = detail(u, 1)
        ours = C.conv2d(np.array(d["input"]), np.array(d["kernel"])[None], np.array([d["bias"]]), padding=1)
        np.testing.assert_allclose(ours[0], d["output"], atol=1e-4)


def test_relu_after_a_fully_connected_layer_shows_its_vector(chapter):
    _, _, units = chapter
    d = detail(by_name(units, "fc_layer.1"), 7)  # a 1-D ReLU: once a pair of scalars the page could not draw
    assert d["kind"] == "relu" and d["unit"] == 7 and len(d["input"]) == len(d["output"]) == 100
    np.testing.assert_allclose(C.relu(np.array(d["input"])), d["output"], atol=1e-6)
    assert min(d["input"]) < 0


def test_batchnorm_adaptive_pool_and_block_details():
    torch.manual_seed(0)
    model = get_model("resnet18", in_channels=1, input_size=28, width=0.125).eval()
    bn = model.bn1
    with torch.no_grad():  # trained-looking statistics, so the formula has something to do
        for t, lo, hi in (
            (bn.running_mean, -1, 1),
            (bn.running_var, 0.2, 3),
            (bn.weight, 0.5, 2),
            (bn.bias, -1, 1),
        ):
            t.uniform_(lo, hi)
    units = trace_units(model, torch.randn(1, 28, 28))
    d = detail(by_name(units, "bn1"), 3)
    x = np.array(d["input"])
    ours = (x - d["mean"]) / np.sqrt(d["var"] + d["eps"]) * d["weight"] + d["bias"]
    assert d["kind"] == "batchnorm"
    np.testing.assert_allclose(ours, d["output"], atol=1e-4)
    d = detail(by_name(units, "avgpool"), 5)  # adaptive 4x4 -> 1x1: a 4x4 window, stride 4
    assert d["kind"] == "avgpool" and d["kernel"] == d["stride"] == [4, 4] and d["padding"] == [0, 0]
    np.testing.assert_allclose(C.avg_pool2d(np.array(d["input"])[None], 4, 4)[0], d["output"], atol=1e-6)
    # a residual block keeps its shape, but its map i mixes every map that went in: no "before and after"
    d = detail(by_name(units, "layer1.0"), 0)
    assert d["kind"] == "map" and "input" not in d
