"""ResNet (He et al. 2015, "Deep Residual Learning for Image Recognition").

Architecture as data: a block type and the number of blocks per stage, as the paper's Table 1 --
`BasicBlock` (two 3x3 convs) for resnet18/34, `Bottleneck` (1x1 reduce -> 3x3 -> 1x1 expand x4) for
resnet50/101/152. Each block computes relu(F(x) + x) (eq. 1); where the shape changes the shortcut is a
1x1 conv + BatchNorm (option B of sec. 3.3). Bottleneck puts the stride on its 3x3 conv ("ResNet v1.5",
torchvision's choice: more accurate than the paper's stride on the first 1x1).

Form, chosen from `input_size` (pixels, H = W):

- ImageNet form (input_size > 64): torchvision's layout exactly -- 7x7/2 conv, 3x3/2 max-pool, four
  stages, global average pool, FC. At 3x224x224 / 1000 classes / width 1.0 the parameter counts equal
  torchvision's (resnet50: 25,557,032).
- small form (input_size <= 64): CIFAR-style stem, one 3x3/1 conv and no max-pool, so 28 px runs
  28-28-14-7-4 through the stages and 32 px 32-32-16-8-4 instead of collapsing to 1x1 by stage 4. (The
  paper's own CIFAR nets, sec. 4.2, are narrower 6n+2 stacks; this keeps the ImageNet stages instead.)

`width` multiplies every stage's channels (64, 128, 256, 512).

Registered with their facts: the small form below 65 px, Grad-CAM's layer (the last block of `layer4`, the
last convolutional stage) and torchvision's ImageNet weights (IMAGENET1K_V1).
"""

from typing import Any

import torch
import torch.nn as nn

from cnnlab.models import register_model
from cnnlab.models.published import torchvision_weights

SMALL_MAX = 64  # input_size <= SMALL_MAX selects the small form
STAGES = (64, 128, 256, 512)  # block "planes" per stage at width 1.0; stages 2-4 halve H and W


def conv3x3(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    # no bias: the following BatchNorm's shift makes it redundant
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)


def conv1x1(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(
        self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None
    ) -> None:
        super().__init__()
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x  # N x inplanes x H x W
        out = self.conv1(x)  # N x planes x H/s x W/s
        out = self.bn1(out)
        out = self.relu(out)
        out = self.conv2(out)  # N x planes x H/s x W/s
        out = self.bn2(out)
        if self.downsample is not None:
            identity = self.downsample(x)  # N x planes x H/s x W/s
        out += identity  # the residual connection: y = F(x) + x
        return self.relu(out)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(
        self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None
    ) -> None:
        super().__init__()
        self.conv1 = conv1x1(inplanes, planes)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = conv3x3(planes, planes, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = conv1x1(planes, planes * self.expansion)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x  # N x inplanes x H x W
        out = self.conv1(x)  # N x planes x H x W: 1x1 reduces channels for the 3x3
        out = self.bn1(out)
        out = self.relu(out)
        out = self.conv2(out)  # N x planes x H/s x W/s
        out = self.bn2(out)
        out = self.relu(out)
        out = self.conv3(out)  # N x 4*planes x H/s x W/s: 1x1 restores them
        out = self.bn3(out)
        if self.downsample is not None:
            identity = self.downsample(x)  # N x 4*planes x H/s x W/s
        out += identity  # the residual connection: y = F(x) + x
        return self.relu(out)


Block = type[BasicBlock] | type[Bottleneck]


class ResNet(nn.Module):
    def __init__(
        self,
        block: Block,
        layers: list[int],
        num_classes: int = 10,
        in_channels: int = 1,
        input_size: int = 28,
        width: float = 1.0,
        zero_init_residual: bool = False,
    ) -> None:
        super().__init__()
        planes = [max(1, round(p * width)) for p in STAGES]
        self.inplanes = planes[0]
        if input_size <= SMALL_MAX:
            self.conv1 = nn.Conv2d(in_channels, self.inplanes, kernel_size=3, stride=1, padding=1, bias=False)
            self.maxpool: nn.Module = nn.Identity()
        else:
            self.conv1 = nn.Conv2d(in_channels, self.inplanes, kernel_size=7, stride=2, padding=3, bias=False)
            self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.bn1 = nn.BatchNorm2d(self.inplanes)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = self._make_layer(block, planes[0], layers[0])
        self.layer2 = self._make_layer(block, planes[1], layers[1], stride=2)
        self.layer3 = self._make_layer(block, planes[2], layers[2], stride=2)
        self.layer4 = self._make_layer(block, planes[3], layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(planes[3] * block.expansion, num_classes)
        self._init_weights(zero_init_residual)

    def _make_layer(self, block: Block, planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            # projection shortcut where the shape changes (He et al. 2015, option B)
            downsample = nn.Sequential(
                conv1x1(self.inplanes, planes * block.expansion, stride),
                nn.BatchNorm2d(planes * block.expansion),
            )
        layers: list[nn.Module] = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def _init_weights(self, zero_init_residual: bool) -> None:
        # torchvision's init: kaiming (He et al. 2015, "Delving deep into rectifiers") for convs;
        # the FC keeps PyTorch's default
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        if zero_init_residual:
            # each block starts as the identity (Goyal et al. 2017, "Accurate, Large Minibatch SGD")
            for m in self.modules():
                if isinstance(m, Bottleneck):
                    nn.init.zeros_(m.bn3.weight)
                elif isinstance(m, BasicBlock):
                    nn.init.zeros_(m.bn2.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # shapes: ImageNet form at 224 px | small form at 28 px (width 1.0; x4 channels for Bottleneck)
        x = self.conv1(x)  # N x 64 x 112 x 112 | N x 64 x 28 x 28
        x = self.bn1(x)
        x = self.relu(x)
        x = self.maxpool(x)  # N x 64 x 56 x 56 | unchanged
        x = self.layer1(x)  # N x 64 x 56 x 56 | N x 64 x 28 x 28
        x = self.layer2(x)  # N x 128 x 28 x 28 | N x 128 x 14 x 14
        x = self.layer3(x)  # N x 256 x 14 x 14 | N x 256 x 7 x 7
        x = self.layer4(x)  # N x 512 x 7 x 7 | N x 512 x 4 x 4
        x = self.avgpool(x)  # N x 512 x 1 x 1
        x = torch.flatten(x, 1)  # N x 512
        return self.fc(x)  # N x num_classes


def last_stage(model: ResNet) -> str:
    """Grad-CAM's layer: the last block of the last stage (layer4.1 for resnet18, layer4.2 for resnet50)."""
    return f"layer4.{len(model.layer4) - 1}"


FACTS = {"small_max": SMALL_MAX, "gradcam_layer": last_stage}


@register_model("resnet18", weights=torchvision_weights("resnet18-f37072fd.pth"), **FACTS)
def resnet18(**kwargs: Any) -> ResNet:
    return ResNet(BasicBlock, [2, 2, 2, 2], **kwargs)


@register_model("resnet34", weights=torchvision_weights("resnet34-b627a593.pth"), **FACTS)
def resnet34(**kwargs: Any) -> ResNet:
    return ResNet(BasicBlock, [3, 4, 6, 3], **kwargs)


@register_model("resnet50", weights=torchvision_weights("resnet50-0676ba61.pth"), **FACTS)
def resnet50(**kwargs: Any) -> ResNet:
    return ResNet(Bottleneck, [3, 4, 6, 3], **kwargs)


@register_model("resnet101", weights=torchvision_weights("resnet101-63fe2227.pth"), **FACTS)
def resnet101(**kwargs: Any) -> ResNet:
    return ResNet(Bottleneck, [3, 4, 23, 3], **kwargs)


@register_model("resnet152", weights=torchvision_weights("resnet152-394f9c45.pth"), **FACTS)
def resnet152(**kwargs: Any) -> ResNet:
    return ResNet(Bottleneck, [3, 8, 36, 3], **kwargs)
