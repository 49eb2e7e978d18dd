"""Space-to-depth nets for the MNIST records (`--recipe fast`: width 1; `--recipe best`: width 2).

``s2dnet`` starts with a space-to-depth stem (PyTorch's ``pixel_unshuffle(2)``): every 2x2 patch of pixels
becomes 4 channels of one pixel, so a 1x28x28 digit enters the first convolution as 4x14x14. The idea is
the "space-to-depth" stem of TResNet (Ridnik et al. 2021) and of the ImageNet speed runs before it: the
same information in a quarter of the positions, with channels that a CPU's vector units (and bf16 dot
products) can use, where a convolution over one input channel at 28x28 cannot. A 3x3 convolution over the
4x14x14 map sees a 6x6 pixel window, like fastnet's 5x5.

Then airbench's block order (conv -> max-pool -> BatchNorm without a learnable scale -> ReLU;
KellerJordan/cifar10-airbench, also fastnet-bn here), one unpadded 3x3 convolution, and tuomaso's
two-layer classifier (fastnet). At width 1: 16-32 channels, 128 hidden units, 0.33 M multiply-adds per
28x28 image, a quarter of fastnet's 1.24 M; at width 2 (32-64, 256 hidden): 1.1 M.

Measured (BENCHMARKS.md, "Speed, round 4"; fp32, one thread): width 1 trains 2.3-3.6x as many images per
CPU-second as fastnet and reaches 99.10-99.24% on MNIST in one epoch with the `fast` recipe (99.05-99.14% in
bf16); width 2 trains 5.2x as many as fastnet-bn and reaches 99.50-99.55% in 5 epochs with `best`.
Replacing the max-pool by a stride-2 convolution was 1.4x cheaper but 0.2 points less accurate, and a
frozen patch-whitening first convolution (airbench) no better, so neither is used.

The architecture is data: ``LAYERS`` lists the channel counts at width 1.0. The registry's kwargs:
num_classes, in_channels, input_size (H = W; odd sizes get one row and column of zeros so that 2x2 patches
tile the image), width (channels x width).
"""

import torch
import torch.nn as nn

from cnnlab.inside.sizes import output_size
from cnnlab.models import register_model
from cnnlab.models.fastnet import bn_no_scale

# channels at width 1.0: first conv (after space-to-depth), second conv, hidden units of the classifier;
# multiples of 16 so that the vector units are full at width 1 and 2
LAYERS = {"conv1": 16, "conv2": 32, "hidden": 128}
BLOCK = 2  # space-to-depth block: 2x2 pixels -> 4 channels


def _ch(c: int, width: float) -> int:
    return max(1, round(c * width))


class S2DNet(nn.Module):
    def __init__(self, num_classes: int = 10, in_channels: int = 1, input_size: int = 28, width: float = 1.0):
        super().__init__()
        c1, c2, hidden = (_ch(LAYERS[k], width) for k in ("conv1", "conv2", "hidden"))
        pad = input_size % BLOCK
        self.pad = nn.ZeroPad2d((0, pad, 0, pad)) if pad else None
        self.stem = nn.PixelUnshuffle(BLOCK)
        s = (input_size + pad) // BLOCK  # 28 -> 14
        self.conv1 = nn.Conv2d(in_channels * BLOCK * BLOCK, c1, 3, padding=1, bias=False)
        self.pool = nn.MaxPool2d(2)
        s = output_size(s, 2, 2)  # 14 -> 7
        self.bn1 = bn_no_scale(c1)
        self.conv2 = nn.Conv2d(c1, c2, 3, bias=False)
        s = output_size(s, 3)  # 7 -> 5
        self.bn2 = bn_no_scale(c2)
        self.relu = nn.ReLU(inplace=True)
        self.fc1 = nn.Linear(c2 * s * s, hidden)
        self.fc2 = nn.Linear(hidden, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # shapes at 1x28x28, width 1.0
        if self.pad is not None:  # odd sizes: one more row and column of zeros
            x = self.pad(x)
        x = self.stem(x)  # N x 4 x 14 x 14: each 2x2 patch as 4 channels
        x = self.conv1(x)  # N x 16 x 14 x 14
        x = self.relu(self.bn1(self.pool(x)))  # N x 16 x 7 x 7: pool first, 4x fewer values to normalise
        x = self.relu(self.bn2(self.conv2(x)))  # N x 32 x 5 x 5
        x = self.relu(self.fc1(x.flatten(1)))  # N x 128
        return self.fc2(x)  # N x num_classes


@register_model("s2dnet")
def s2dnet(**kwargs) -> nn.Module:
    return S2DNet(**kwargs)
