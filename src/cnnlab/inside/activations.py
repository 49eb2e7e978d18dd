"""Look inside a network: the feature maps every convolution produces, and the shape of every layer.

The chapter says a convolution layer makes "one feature map per filter". `conv_feature_maps` records
exactly that, for any model (chapter-cnn, VGG, GoogLeNet, ResNet, ...), by hooking every `nn.Conv2d`
during one ordinary forward pass: no model needs to know it is being watched.
"""

from collections.abc import Callable

import torch
import torch.nn as nn

from cnnlab.core.sizes import layer_geometry
from cnnlab.i18n import _
from cnnlab.inside.hooks import hooked, of_kind

Hook = Callable[[str, nn.Module, tuple, torch.Tensor], None]


def _forward_with_hooks(model: nn.Module, x: torch.Tensor, kinds: tuple[type[nn.Module], ...], hook: Hook):
    """One eval-mode, no-grad forward pass of batch `x`, calling `hook(name, module, inputs, output)`
    after every module of one of `kinds`. Hooks are removed and the train/eval mode restored even if
    the pass fails, so the model is left exactly as it was."""
    # eval mode: BatchNorm and Dropout behave as at test time
    with hooked(model, of_kind(model, kinds), after=hook), torch.no_grad():
        model(x)


def conv_feature_maps(model: nn.Module, x: torch.Tensor) -> list[tuple[str, torch.Tensor]]:
    """Run `model` on `x` and return `(layer_name, output)` for every `nn.Conv2d`, in call order.

    `x` is one normalised image (C x H x W) or a batch (N x C x H x W); each returned tensor has the
    conv's output shape, F x H' x W' for a single image (one channel per filter), N x F x H' x W' for a
    batch. Layer names are `model.named_modules()` names such as "layer.0".

    The maps are taken right after the convolution, i.e. *before* the ReLU, because:
    - that is the filter's own "how well does this patch match" score the chapter describes; ReLU
      then throws the negative half away, and showing both signs says more about what a filter does;
    - it is the only point every architecture shares (ResNet adds a BatchNorm and a shortcut before
      its ReLU, GoogLeNet concatenates branches), so pictures mean the same thing for every model.
    Outputs are cloned, because an in-place ReLU (`nn.ReLU(inplace=True)`) would otherwise overwrite
    the recorded tensor with its post-ReLU version later in the same forward pass.
    """
    single = x.dim() == 3
    recorded: list[tuple[str, torch.Tensor]] = []

    def record(name: str, _module: nn.Module, _inputs: tuple, output: torch.Tensor) -> None:
        recorded.append((name, output.detach().clone()))

    _forward_with_hooks(model, x.unsqueeze(0) if single else x, (nn.Conv2d,), record)
    return [(name, fmap[0]) for name, fmap in recorded] if single else recorded


def traced_layers(
    model: nn.Module, x: torch.Tensor, kinds: tuple[type[nn.Module], ...]
) -> list[tuple[str, nn.Module, tuple[int, ...], tuple[int, ...]]]:
    """`(name, module, input_shape, output_shape)` for every module of one of `kinds`, in call order.

    Shapes come from a real forward pass of the batch `x` (N x C x H x W), so this works for any
    architecture, branches and shortcuts included, without knowing how the model is wired. The batch
    dimension is dropped from the shapes. Used by `cnnlab explain output-size --model` and `parameters`.
    """
    seen: list[tuple[str, nn.Module, tuple[int, ...], tuple[int, ...]]] = []

    def record(name: str, module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        seen.append((name, module, tuple(inputs[0].shape[1:]), tuple(output.shape[1:])))

    _forward_with_hooks(model, x, kinds, record)
    return seen


POOLS_AND_CONVS = (
    nn.Conv2d,
    nn.MaxPool2d,
    nn.AvgPool2d,
    nn.LPPool2d,
    nn.AdaptiveAvgPool2d,
    nn.AdaptiveMaxPool2d,
)


def size_formula(module: nn.Module, size: int, axis: int = 0) -> tuple[str, int | None]:
    """The chapter's floor((I - K + 2P)/S) + 1 for one axis (0 = height, 1 = width) of a Conv/Pool layer,
    written out with this layer's numbers, and its value; (explanation, None) where it does not apply."""
    geometry = layer_geometry(module)
    if geometry is None:
        return _("{kind}: not a conv/pool layer", kind=type(module).__name__), None
    if geometry.adaptive is not None:
        return _("adaptive: the output size is fixed, whatever the input"), None
    k, s, p, d = geometry.axis(axis)
    if isinstance(p, str):  # Conv2d(padding="same") sizes itself
        return f"padding={p!r}", None
    span = f"{d}*({k}-1)+1" if d != 1 else f"{k}"  # a dilated kernel covers d*(K-1)+1 pixels
    value = geometry.size(axis, size)  # ceil_mode: PyTorch rounds up instead of down
    return f"{'ceil' if geometry.ceil_mode else 'floor'}(({size} - {span} + 2*{p})/{s}) + 1 = {value}", value
