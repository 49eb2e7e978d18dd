"""The space-to-depth net of the MNIST records: its stem against the definition written out by hand, its
whole forward pass against an independent float64 re-implementation from its weights, and its size by hand."""

import pytest
import torch
import torch.nn.functional as F

from cnnlab.inside.summary import summarize
from cnnlab.models import get_model


def build(width: float = 1.0, size: int = 28, channels: int = 1):
    torch.manual_seed(0)
    return get_model("s2dnet", num_classes=10, in_channels=channels, input_size=size, width=width)


def test_stem_puts_each_2x2_patch_into_4_channels():
    x = torch.arange(2 * 3 * 4 * 6, dtype=torch.float64).view(2, 3, 4, 6)
    z = build(channels=3).stem(x)  # the stem works on any even size
    assert z.shape == (2, 12, 2, 3)
    for c in range(3):
        for i in range(2):
            for j in range(2):  # channel c*4 + 2i + j holds pixel (2h + i, 2w + j) of channel c
                assert torch.equal(z[:, c * 4 + 2 * i + j], x[:, c, i::2, j::2])


def reference(model, x: torch.Tensor) -> torch.Tensor:
    """The same net from its weights in float64, written with explicit loops instead of pixel_unshuffle."""
    n, c, h, w = x.shape
    patches = [x[:, ch, i::2, j::2] for ch in range(c) for i in range(2) for j in range(2)]
    z = torch.stack(patches, 1)  # N x 4c x h/2 x w/2
    p = {k: v.double() for k, v in model.state_dict().items()}

    def bn(t, name):  # eval mode: running statistics (fresh: mean 0, var 1), scale 1, learned shift
        scale = p[f"{name}.weight"] / torch.sqrt(p[f"{name}.running_var"] + 1e-5)
        return (t - p[f"{name}.running_mean"].view(1, -1, 1, 1)) * scale.view(1, -1, 1, 1) + p[
            f"{name}.bias"
        ].view(1, -1, 1, 1)

    z = F.conv2d(z, p["conv1.weight"], padding=1)
    z = torch.relu(bn(F.max_pool2d(z, 2), "bn1"))
    z = torch.relu(bn(F.conv2d(z, p["conv2.weight"]), "bn2"))
    z = torch.relu(z.flatten(1) @ p["fc1.weight"].T + p["fc1.bias"])
    return z @ p["fc2.weight"].T + p["fc2.bias"]


@pytest.mark.parametrize("width", [1.0, 2.0])
def test_forward_matches_a_float64_reference(width):
    model = build(width).double().eval()
    x = torch.randn(3, 1, 28, 28, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference(model, x), rtol=1e-10, atol=1e-10)


def test_bn_scale_is_frozen_and_the_rest_trains():
    model = build()
    frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
    assert frozen == {"bn1.weight", "bn2.weight"}  # airbench: only the shift is learned


def test_size_by_hand():
    # width 1: conv1 4*16*9, bn1 2*16, conv2 16*32*9, bn2 2*32, fc1 (32*5*5)*128 + 128, fc2 128*10 + 10
    params = 4 * 16 * 9 + 32 + 16 * 32 * 9 + 64 + 800 * 128 + 128 + 128 * 10 + 10
    # MACs: conv1 at 14x14 (before the pool), conv2 at 5x5, fc1, fc2
    macs = 14 * 14 * 16 * 4 * 9 + 5 * 5 * 32 * 16 * 9 + 800 * 128 + 128 * 10
    s = summarize(build(), (1, 28, 28))
    assert (s.params, s.macs) == (params, macs) == (109_098, 331_776)
    assert summarize(build(2.0), (1, 28, 28)).macs == 1_098_752  # width 2: the `best` recipe's net


def test_odd_input_sizes_are_padded_to_whole_patches():
    model = build(size=29, channels=3).eval()
    with torch.no_grad():
        assert model(torch.randn(2, 3, 29, 29)).shape == (2, 10)
