"""The chapter's MNIST CNN, layer for layer ("PyTorch first steps", ch. 5)."""

import torch
import torch.nn as nn

from cnnlab.core.sizes import output_size
from cnnlab.models import register_model


class ChapterCNN(nn.Module):
    def __init__(self, num_classes: int = 10, in_channels: int = 1, input_size: int = 28, width: float = 1.0):
        super().__init__()
        c1, c2, c3, hidden = (max(1, round(c * width)) for c in (16, 32, 64, 100))
        # inplace ReLU: identical values and gradients, one activation buffer fewer per layer;
        # measured 10-15% faster per training step on CPU (BENCHMARKS.md, "Speed").
        self.layer = nn.Sequential(
            nn.Conv2d(in_channels, c1, 5),
            nn.ReLU(inplace=True),
            nn.Conv2d(c1, c2, 5),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2, 2),
            nn.Conv2d(c2, c3, 5),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2, 2),
        )
        # 28 -> 24 -> 20 -> 10 -> 6 -> 3, by floor((I - K + 2P)/S) + 1: the chapter's 64*3*3.
        s = input_size
        for k, st in ((5, 1), (5, 1), (2, 2), (5, 1), (2, 2)):
            s = output_size(s, k, st)
        self.fc_layer = nn.Sequential(
            nn.Linear(c3 * s * s, hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.layer(x)  # N x 64 x 3 x 3
        out = out.flatten(1)  # N x 576; the chapter's view(batch_size, -1) broke on a last partial batch
        return self.fc_layer(out)  # N x 10


@register_model("chapter-cnn", gradcam_layer="layer.5", chapter=True)  # Grad-CAM: the last conv
def chapter_cnn(**kwargs) -> nn.Module:
    return ChapterCNN(**kwargs)
