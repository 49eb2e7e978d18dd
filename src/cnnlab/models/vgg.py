"""VGG (Simonyan & Zisserman 2014, "Very Deep Convolutional Networks for Large-Scale Image Recognition").

Architecture as data: each list in `CFGS` is a column of the paper's Table 1 -- an int is a 3x3 conv
(padding 1) with that many output channels followed by ReLU, "M" a 2x2 max-pool with stride 2. A, B, D, E
have 11, 13, 16, 19 weight layers (8, 10, 13, 16 convs + 3 FC). The `_bn` variants add BatchNorm after
every conv (not in the paper; torchvision's variant, conv biases kept).

Form, chosen from `input_size` (pixels, H = W):

- ImageNet form (input_size > 64): torchvision's layout exactly -- features, AdaptiveAvgPool2d(7x7),
  classifier 512*7*7 -> 4096 -> 4096 -> classes with dropout 0.5. At 3x224x224 / 1000 classes / width 1.0
  the parameter counts equal torchvision's (vgg16: 138,357,544).
- small form (input_size <= 64): the same conv stacks, but the five pools use ceil_mode so 28 px runs
  28-14-7-4-2-1 (floor would give 28-14-7-3-1-0: the fifth pool would collapse the map) and 32 px runs
  32-16-8-4-2-1, so the last 3x3 convs still see a 2x2 map and every kernel tap gets a gradient. A 1x1
  adaptive average pool and a CIFAR-style 512 -> 512 -> classes head replace the 25088-input ImageNet
  classifier (which alone holds 120M parameters).

`width` multiplies every conv's channels and the FC hidden size (4096 or 512).

Registered with their facts: the small form below 65 px, Grad-CAM's layer (the last Conv2d of
`features`) and torchvision's ImageNet weights (IMAGENET1K_V1).
"""

from typing import Any

import torch
import torch.nn as nn

from cnnlab.models import register_model
from cnnlab.models.published import torchvision_weights

SMALL_MAX = 64  # input_size <= SMALL_MAX selects the small form

# Simonyan & Zisserman 2014, Table 1, columns A, B, D, E (C, with its 1x1 convs, is not built by torchvision).
CFGS: dict[str, list[int | str]] = {
    "A": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "B": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "D": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "E": [
        64,
        64,
        "M",
        128,
        128,
        "M",
        256,
        256,
        256,
        256,
        "M",
        512,
        512,
        512,
        512,
        "M",
        512,
        512,
        512,
        512,
        "M",
    ],
}

# form -> (side of the pooled feature map fed to the classifier, FC hidden size at width 1.0)
HEADS = {"imagenet": (7, 4096), "small": (1, 512)}


def _scale(channels: int, width: float) -> int:
    return max(1, round(channels * width))


def make_features(
    cfg: list[int | str], in_channels: int, width: float, batch_norm: bool, ceil_mode: bool
) -> nn.Sequential:
    layers: list[nn.Module] = []
    for v in cfg:
        if v == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2, ceil_mode=ceil_mode))
            continue
        out_channels = _scale(int(v), width)
        # bias kept even before BatchNorm: torchvision does, and its published _bn counts include it
        layers.append(nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1))
        if batch_norm:
            layers.append(nn.BatchNorm2d(out_channels))
        layers.append(nn.ReLU(inplace=True))
        in_channels = out_channels
    return nn.Sequential(*layers)


class VGG(nn.Module):
    def __init__(
        self,
        cfg: list[int | str],
        batch_norm: bool = False,
        num_classes: int = 10,
        in_channels: int = 1,
        input_size: int = 28,
        width: float = 1.0,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        small = input_size <= SMALL_MAX
        side, hidden = HEADS["small" if small else "imagenet"]
        hidden = _scale(hidden, width)
        self.features = make_features(cfg, in_channels, width, batch_norm, ceil_mode=small)
        last = _scale(int([v for v in cfg if v != "M"][-1]), width)  # channels of the last conv
        # adaptive: any input that survives the five pools gives the classifier the same size
        self.avgpool = nn.AdaptiveAvgPool2d((side, side))
        self.classifier = nn.Sequential(
            nn.Linear(last * side * side, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(p=dropout),  # the paper's 0.5 on the first two FC layers
            nn.Linear(hidden, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(p=dropout),
            nn.Linear(hidden, num_classes),
        )
        self._init_weights()

    def _init_weights(self) -> None:
        # torchvision's init; the paper pre-trained A and copied its weights into deeper nets instead,
        # which He et al. 2015 (kaiming init) made unnecessary.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # shapes: ImageNet form at 224 px | small form at 28 px (width 1.0)
        x = self.features(x)  # N x 512 x 7 x 7 | N x 512 x 1 x 1
        x = self.avgpool(x)  # N x 512 x 7 x 7 | N x 512 x 1 x 1
        x = torch.flatten(x, 1)  # N x 25088 | N x 512
        return self.classifier(x)  # N x num_classes


def last_conv(model: VGG) -> str:
    """Grad-CAM's layer: the last Conv2d of the feature extractor (features.28 in vgg16)."""
    return f"features.{[n for n, m in model.features.named_children() if isinstance(m, nn.Conv2d)][-1]}"


FACTS = {"small_max": SMALL_MAX, "gradcam_layer": last_conv}


@register_model("vgg11", weights=torchvision_weights("vgg11-8a719046.pth"), **FACTS)
def vgg11(**kwargs: Any) -> VGG:
    return VGG(CFGS["A"], batch_norm=False, **kwargs)


@register_model("vgg13", weights=torchvision_weights("vgg13-19584684.pth"), **FACTS)
def vgg13(**kwargs: Any) -> VGG:
    return VGG(CFGS["B"], batch_norm=False, **kwargs)


@register_model("vgg16", weights=torchvision_weights("vgg16-397923af.pth"), **FACTS)
def vgg16(**kwargs: Any) -> VGG:
    return VGG(CFGS["D"], batch_norm=False, **kwargs)


@register_model("vgg19", weights=torchvision_weights("vgg19-dcbb9e9d.pth"), **FACTS)
def vgg19(**kwargs: Any) -> VGG:
    return VGG(CFGS["E"], batch_norm=False, **kwargs)


@register_model("vgg11-bn", ("vgg11_bn",), weights=torchvision_weights("vgg11_bn-6002323d.pth"), **FACTS)
def vgg11_bn(**kwargs: Any) -> VGG:
    return VGG(CFGS["A"], batch_norm=True, **kwargs)


@register_model("vgg13-bn", ("vgg13_bn",), weights=torchvision_weights("vgg13_bn-abd245e5.pth"), **FACTS)
def vgg13_bn(**kwargs: Any) -> VGG:
    return VGG(CFGS["B"], batch_norm=True, **kwargs)


@register_model("vgg16-bn", ("vgg16_bn",), weights=torchvision_weights("vgg16_bn-6c64b313.pth"), **FACTS)
def vgg16_bn(**kwargs: Any) -> VGG:
    return VGG(CFGS["D"], batch_norm=True, **kwargs)


@register_model("vgg19-bn", ("vgg19_bn",), weights=torchvision_weights("vgg19_bn-c79401a0.pth"), **FACTS)
def vgg19_bn(**kwargs: Any) -> VGG:
    return VGG(CFGS["E"], batch_norm=True, **kwargs)
