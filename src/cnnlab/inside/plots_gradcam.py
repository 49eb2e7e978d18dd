"""The Grad-CAM picture: the input, then one panel per class with its heat map laid over the input.

Like every `plot_*` function it takes results (the maps come from `cnnlab.inside.gradcam`) and only draws.
"""

import torch

from cnnlab.i18n import _
from cnnlab.inside.plots import PANEL, Figure, _as_image, _done, localized


@localized
def gradcam_figure(
    image: torch.Tensor,
    cams: torch.Tensor,
    labels: list[str],
    probs: list[float],
    layer: str,
) -> Figure:
    """`image`: uint8 C x H x W as the model saw it; `cams`: K x H x W in [0, 1], one per class in `labels`
    (with their probabilities `probs`). Panels: the input, then each class's heat map over it."""
    count = 1 + len(cams)
    fig = Figure(figsize=(count * PANEL * 3, PANEL * 3 + 0.9), layout="constrained")
    axes = fig.subplots(1, count, squeeze=False)[0]
    pixels, cmap = _as_image(image)
    for ax in axes:
        ax.imshow(pixels, cmap=cmap)
        ax.set_xticks([])
        ax.set_yticks([])
    axes[0].set_title(_("input"), fontsize=10)
    for ax, cam, label, p in zip(axes[1:], cams, labels, probs):
        ax.imshow(cam.numpy(), cmap="jet", alpha=0.5, vmin=0, vmax=1)
        ax.set_title(f"{label} ({p:.1%})", fontsize=10)
    fig.suptitle(
        _("Grad-CAM at {layer}: where the evidence for each class lies (red = most)", layer=layer),
        fontsize=10,
    )
    return _done(fig, count)
