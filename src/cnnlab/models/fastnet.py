"""Small nets for the speed recipes (`--recipe fast`, `--recipe best`, see cnnlab.training.recipes).

- ``fastnet``: tuomaso/train_mnist_fast's final net ("99% on MNIST in 0.76 s"): conv5x5(24) -> pool -> ReLU
  -> conv3x3(32) -> pool -> ReLU -> FC 256 -> FC classes; ~1.2 M multiply-adds per 28x28 image, a sixth
  of the chapter CNN. Max-pool before ReLU gives the same result with 4x fewer ReLUs (the notebook's trick).
- ``fastnet-bn``: airbench-style blocks (KellerJordan/cifar10-airbench): conv3x3 -> max-pool -> BatchNorm
  without a learnable scale -> ReLU, three times (32, 64, 128 channels), then a linear classifier. BN lets
  the one-cycle schedule use a high learning rate; freezing the BN scale at 1 (airbench) removes
  parameters that only re-scale what the next layer can re-scale anyway.

Both take the registry's kwargs: num_classes, in_channels, input_size (H = W) and width (channels x width).
"""

import torch
import torch.nn as nn

from cnnlab.core.sizes import output_size
from cnnlab.models import register_model


def _ch(c: int, width: float) -> int:
    return max(1, round(c * width))


class FastNet(nn.Module):
    def __init__(self, num_classes: int = 10, in_channels: int = 1, input_size: int = 28, width: float = 1.0):
        super().__init__()
        c1, c2, hidden = _ch(24, width), _ch(32, width), _ch(256, width)
        s = output_size(output_size(input_size, 5), 2, 2)  # 28 -> 24 -> 12
        s = output_size(output_size(s, 3), 2, 2)  # 12 -> 10 -> 5
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, c1, 5),
            nn.MaxPool2d(2),
            nn.ReLU(inplace=True),
            nn.Conv2d(c1, c2, 3),
            nn.MaxPool2d(2),
            nn.ReLU(inplace=True),
        )
        self.classifier = nn.Sequential(
            nn.Linear(c2 * s * s, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, num_classes)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).flatten(1))


def bn_no_scale(channels: int) -> nn.BatchNorm2d:
    """BatchNorm whose scale is frozen at 1 (airbench: only the shift is learned)."""
    bn = nn.BatchNorm2d(channels)
    bn.weight.requires_grad_(False)
    return bn


class FastNetBN(nn.Module):
    def __init__(self, num_classes: int = 10, in_channels: int = 1, input_size: int = 28, width: float = 1.0):
        super().__init__()
        widths = [_ch(c, width) for c in (32, 64, 128)]
        layers: list[nn.Module] = []
        c_in, s = in_channels, input_size
        for c in widths:
            layers += [nn.Conv2d(c_in, c, 3, padding=1, bias=False), nn.MaxPool2d(2)]
            layers += [bn_no_scale(c), nn.ReLU(inplace=True)]
            c_in, s = c, output_size(s, 2, 2)  # 28 -> 14 -> 7 -> 3
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(c_in * s * s, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).flatten(1))


def last_conv(model: nn.Module) -> str:
    """Grad-CAM's layer: the last Conv2d of the feature extractor."""
    return f"features.{[n for n, m in model.features.named_children() if isinstance(m, nn.Conv2d)][-1]}"


@register_model("fastnet", gradcam_layer=last_conv)
def fastnet(**kwargs) -> nn.Module:
    return FastNet(**kwargs)


@register_model("fastnet-bn", gradcam_layer=last_conv)
def fastnet_bn(**kwargs) -> nn.Module:
    return FastNetBN(**kwargs)
