"""GoogLeNet / Inception v1 (Szegedy et al. 2014, "Going Deeper with Convolutions").

Architecture as data: `INCEPTION` holds each module's channel tuple from the paper's Table 1
(#1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj); a module's output is the concatenation of its
four branches, so its width is #1x1 + #3x3 + #5x5 + pool proj. Every conv is BasicConv2d = conv (no bias)
+ BatchNorm + ReLU: torchvision's layout (BatchNorm came later, Ioffe & Szegedy 2015), which the published
parameter count includes.

Two registered variants:

- `googlenet`: the paper's network, 5x5 kernels in the 5x5 branch. ImageNet form (3x224x224, 1000 classes):
  7,005,832 parameters without the aux heads, 13,385,816 with them.
- `googlenet_tv`: torchvision-compatible, 3x3 kernels in the "5x5" branch (a known torchvision bug kept for
  its pretrained weights, pytorch/vision#906): 6,624,904 parameters without aux heads, as torchvision
  publishes; 13,004,888 with them.

Form, chosen from `input_size` (pixels, H = W):

- ImageNet form (input_size > 64): 7x7/2 stem conv and max-pools after conv1 and conv3, as the paper.
  224 px reaches the Inception stages at 28, 14 and 7 px.
- small form (input_size <= 64): 3x3/1 stem conv and no early max-pools, so a 28 px image reaches the
  Inception stages at the same 28, 14, 7 px grids the paper's 224 px image does (32 px: 32, 16, 8).

Auxiliary classifiers (paper sec. 5) sit on 4a and 4d; in training `forward` returns
`(logits, aux2, aux1)` (torchvision's order) and the training loop weights the losses by `loss_weights`
(1.0, 0.3, 0.3) -- the paper's "weighted by 0.3". In eval only the logits are returned; with
`aux_logits=False` the heads are not built and `forward` always returns the logits. `width` multiplies
every conv's channels and the aux FC size.
"""

from typing import Any, NamedTuple

import torch
import torch.nn as nn

from cnnlab.i18n import N_
from cnnlab.models import register_model
from cnnlab.models.published import torchvision_weights

SMALL_MAX = 64  # input_size <= SMALL_MAX selects the small form

# Szegedy et al. 2014, Table 1: #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj
INCEPTION: dict[str, tuple[int, int, int, int, int, int]] = {
    "3a": (64, 96, 128, 16, 32, 32),
    "3b": (128, 128, 192, 32, 96, 64),
    "4a": (192, 96, 208, 16, 48, 64),
    "4b": (160, 112, 224, 24, 64, 64),
    "4c": (128, 128, 256, 24, 64, 64),
    "4d": (112, 144, 288, 32, 64, 64),
    "4e": (256, 160, 320, 32, 128, 128),
    "5a": (256, 160, 320, 32, 128, 128),
    "5b": (384, 192, 384, 48, 128, 128),
}


class GoogLeNetOutputs(NamedTuple):
    logits: torch.Tensor
    aux_logits2: torch.Tensor
    aux_logits1: torch.Tensor


def _scale(channels: int, width: float) -> int:
    return max(1, round(channels * width))


class BasicConv2d(nn.Module):
    # conv / bn names as torchvision's, so googlenet_tv's state_dict keys are torchvision's too
    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, padding: int = 0
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(
            in_channels, out_channels, kernel_size, stride=stride, padding=padding, bias=False
        )
        self.bn = nn.BatchNorm2d(out_channels, eps=0.001)  # torchvision's eps (ported from TF)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        x = self.bn(x)
        return self.relu(x)


class Inception(nn.Module):
    def __init__(self, in_channels: int, spec: tuple[int, ...], kernel5: int) -> None:
        super().__init__()
        ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj = spec
        self.out_channels = ch1x1 + ch3x3 + ch5x5 + pool_proj
        self.branch1 = BasicConv2d(in_channels, ch1x1, kernel_size=1)
        # 1x1 reductions before the expensive 3x3 and 5x5 convs: the paper's "dimension reduction" (sec. 4)
        self.branch2 = nn.Sequential(
            BasicConv2d(in_channels, ch3x3red, kernel_size=1),
            BasicConv2d(ch3x3red, ch3x3, kernel_size=3, padding=1),
        )
        # kernel5 is 5 as in the paper; googlenet_tv passes 3, torchvision's known bug (pytorch/vision#906)
        self.branch3 = nn.Sequential(
            BasicConv2d(in_channels, ch5x5red, kernel_size=1),
            BasicConv2d(ch5x5red, ch5x5, kernel_size=kernel5, padding=kernel5 // 2),
        )
        self.branch4 = nn.Sequential(
            nn.MaxPool2d(kernel_size=3, stride=1, padding=1, ceil_mode=True),
            BasicConv2d(in_channels, pool_proj, kernel_size=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branches = [self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)]
        return torch.cat(branches, 1)  # N x out_channels x H x W: all branches keep H x W


class InceptionAux(nn.Module):
    def __init__(self, in_channels: int, num_classes: int, width: float, dropout: float) -> None:
        super().__init__()
        conv, hidden = _scale(128, width), _scale(1024, width)
        # paper: 5x5 average pool, stride 3 (14x14 -> 4x4); adaptive (as torchvision) so 16 or 8 px maps work too
        self.pool = nn.AdaptiveAvgPool2d((4, 4))
        self.conv = BasicConv2d(in_channels, conv, kernel_size=1)
        self.fc1 = nn.Linear(conv * 4 * 4, hidden)
        self.relu = nn.ReLU(inplace=True)
        self.dropout = nn.Dropout(p=dropout)  # paper: 70% dropped
        self.fc2 = nn.Linear(hidden, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # N x 512 x 14 x 14 (aux1) or N x 528 x 14 x 14 (aux2)
        x = self.pool(x)  # N x 512 x 4 x 4
        x = self.conv(x)  # N x 128 x 4 x 4
        x = torch.flatten(x, 1)  # N x 2048
        x = self.relu(self.fc1(x))  # N x 1024
        x = self.dropout(x)  # N x 1024
        return self.fc2(x)  # N x num_classes


class GoogLeNet(nn.Module):
    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 1,
        input_size: int = 28,
        width: float = 1.0,
        aux_logits: bool = True,
        kernel5: int = 5,
        dropout: float = 0.2,
        dropout_aux: float = 0.7,
    ) -> None:
        super().__init__()
        small = input_size <= SMALL_MAX
        c64, c192 = _scale(64, width), _scale(192, width)
        if small:
            self.conv1 = BasicConv2d(in_channels, c64, kernel_size=3, padding=1)
            self.maxpool1: nn.Module = nn.Identity()
            self.maxpool2: nn.Module = nn.Identity()
        else:
            self.conv1 = BasicConv2d(in_channels, c64, kernel_size=7, stride=2, padding=3)
            self.maxpool1 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
            self.maxpool2 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.conv2 = BasicConv2d(c64, c64, kernel_size=1)
        self.conv3 = BasicConv2d(c64, c192, kernel_size=3, padding=1)

        def inception(name: str, in_ch: int) -> Inception:
            return Inception(in_ch, tuple(_scale(c, width) for c in INCEPTION[name]), kernel5)

        self.inception3a = inception("3a", c192)
        self.inception3b = inception("3b", self.inception3a.out_channels)
        self.maxpool3 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.inception4a = inception("4a", self.inception3b.out_channels)
        self.inception4b = inception("4b", self.inception4a.out_channels)
        self.inception4c = inception("4c", self.inception4b.out_channels)
        self.inception4d = inception("4d", self.inception4c.out_channels)
        self.inception4e = inception("4e", self.inception4d.out_channels)
        self.maxpool4 = nn.MaxPool2d(2, stride=2, ceil_mode=True)
        self.inception5a = inception("5a", self.inception4e.out_channels)
        self.inception5b = inception("5b", self.inception5a.out_channels)

        self.aux1: InceptionAux | None = None
        self.aux2: InceptionAux | None = None
        if aux_logits:
            self.aux1 = InceptionAux(self.inception4a.out_channels, num_classes, width, dropout_aux)
            self.aux2 = InceptionAux(self.inception4d.out_channels, num_classes, width, dropout_aux)
        # read by the generic training loop: loss = sum(w * CE(out) for w, out in zip(loss_weights, outputs))
        self.loss_weights = (1.0, 0.3, 0.3) if aux_logits else (1.0,)

        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.dropout = nn.Dropout(p=dropout)  # torchvision's 0.2; the paper used 0.4
        self.fc = nn.Linear(self.inception5b.out_channels, num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        # torchvision's init: truncated normal, std 0.01, for convs and FCs alike
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.trunc_normal_(m.weight, mean=0.0, std=0.01, a=-2, b=2)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor | GoogLeNetOutputs:
        # shapes: ImageNet form at 224 px | small form at 28 px (width 1.0)
        x = self.conv1(x)  # N x 64 x 112 x 112 | N x 64 x 28 x 28
        x = self.maxpool1(x)  # N x 64 x 56 x 56 | unchanged
        x = self.conv2(x)  # N x 64 x 56 x 56 | N x 64 x 28 x 28
        x = self.conv3(x)  # N x 192 x 56 x 56 | N x 192 x 28 x 28
        x = self.maxpool2(x)  # N x 192 x 28 x 28 | unchanged
        x = self.inception3a(x)  # N x 256 x 28 x 28
        x = self.inception3b(x)  # N x 480 x 28 x 28
        x = self.maxpool3(x)  # N x 480 x 14 x 14
        x = self.inception4a(x)  # N x 512 x 14 x 14
        aux1 = self.aux1(x) if self.aux1 is not None and self.training else None  # N x num_classes
        x = self.inception4b(x)  # N x 512 x 14 x 14
        x = self.inception4c(x)  # N x 512 x 14 x 14
        x = self.inception4d(x)  # N x 528 x 14 x 14
        aux2 = self.aux2(x) if self.aux2 is not None and self.training else None  # N x num_classes
        x = self.inception4e(x)  # N x 832 x 14 x 14
        x = self.maxpool4(x)  # N x 832 x 7 x 7
        x = self.inception5a(x)  # N x 832 x 7 x 7
        x = self.inception5b(x)  # N x 1024 x 7 x 7
        x = self.avgpool(x)  # N x 1024 x 1 x 1
        x = torch.flatten(x, 1)  # N x 1024
        x = self.dropout(x)  # N x 1024
        x = self.fc(x)  # N x num_classes
        if aux1 is not None and aux2 is not None:
            return GoogLeNetOutputs(x, aux2, aux1)
        return x


# GoogLeNet's weights were ported from TensorFlow and expect (x - 0.5) / 0.5 on the 0..1 scale;
# torchvision's `transform_input=True` re-maps ImageNet-normalised input to exactly that, so recording
# mean = std = 0.5 as these weights' normalisation is the same computation (tests/test_weights.py).
TF_MEAN, TF_STD = [0.5, 0.5, 0.5], [0.5, 0.5, 0.5]
# aux heads: built unless aux_logits=False (--no-aux); Grad-CAM looks at the last Inception module
FACTS = {"aux_heads": ("aux1", "aux2"), "small_max": SMALL_MAX, "gradcam_layer": "inception5b"}


@register_model(
    "googlenet", no_weights_hint=N_("torchvision's GoogLeNet weights fit --model googlenet-tv"), **FACTS
)
def googlenet(**kwargs: Any) -> GoogLeNet:
    return GoogLeNet(kernel5=5, **kwargs)


# torchvision's GoogLeNet has 3x3 kernels in the "5x5" branch: its weights fit `googlenet-tv` only
@register_model(
    "googlenet-tv",
    ("googlenet_tv",),
    weights=torchvision_weights("googlenet-1378be20.pth", TF_MEAN, TF_STD),
    **FACTS,
)
def googlenet_tv(**kwargs: Any) -> GoogLeNet:
    return GoogLeNet(kernel5=3, **kwargs)
