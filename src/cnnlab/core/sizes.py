"""Pure size math of convolution and pooling layers (the chapter's formula), and the one place that
reads a layer's kernel, stride, padding, dilation and ceil_mode (`layer_geometry`)."""

from dataclasses import dataclass

from cnnlab.errors import CnnlabError
from cnnlab.i18n import _

Pair = tuple[int, int]


def output_size(i: int, k: int, s: int = 1, p: int = 0, d: int = 1, ceil_mode: bool = False) -> int:
    """Feature-map size floor((I - K + 2P) / S) + 1; dilation d widens the kernel to d*(K-1)+1.

    Raises CnnlabError when the result would be smaller than 1, naming the numbers involved.
    """
    if min(i, k, s, d) < 1 or p < 0:
        raise CnnlabError(
            _(
                "invalid sizes: input={i}, kernel={k}, stride={s}, padding={p}, dilation={d}",
                i=i,
                k=k,
                s=s,
                p=p,
                d=d,
            )
        )
    span = d * (k - 1) + 1
    num = i - span + 2 * p
    out = -(-num // s) + 1 if ceil_mode else num // s + 1
    # PyTorch's ceil_mode rule: the last window must start inside the input or left padding.
    if ceil_mode and (out - 1) * s >= i + p:
        out -= 1
    # num < 0 is a kernel wider than the padded input: floor mode always refuses it, while ceil mode (as
    # PyTorch) accepts one partial window when ceil(num/S) + 1 still reaches 1.
    if out < 1 or (num < 0 and not ceil_mode):
        raise CnnlabError(
            _(
                "kernel {k} (span {span}) is larger than the padded input {i}+2*{p}={padded}: output size < 1",
                k=k,
                span=span,
                i=i,
                p=p,
                padded=i + 2 * p,
            )
        )
    return out


@dataclass(frozen=True)
class Geometry:
    """What decides a 2-D conv/pool layer's output size, per axis (height, width)."""

    kernel: Pair  # kernel size K
    stride: Pair  # step S
    padding: Pair | str  # P on each side; "same" for Conv2d(padding="same") (output = input size)
    dilation: Pair = (1, 1)  # a dilated kernel spans d*(K-1)+1 pixels
    ceil_mode: bool = False  # pools only: round the division up instead of down
    channels: int | None = None  # output channels of a conv; None: a pool keeps its input's channels
    adaptive: tuple[int | None, int | None] | None = None  # adaptive pools: fixed output (None = keep)

    def axis(self, i: int) -> tuple[int, int, int | str, int]:
        """(K, S, P, D) of axis i (0 = height, 1 = width)."""
        pad = self.padding if isinstance(self.padding, str) else self.padding[i]
        return self.kernel[i], self.stride[i], pad, self.dilation[i]

    def size(self, i: int, n: int) -> int:
        """Output size of axis i for an input of n pixels on that axis."""
        if self.adaptive is not None:
            return n if self.adaptive[i] is None else self.adaptive[i]
        k, s, p, d = self.axis(i)
        return n if p == "same" else output_size(n, k, s, p, d, self.ceil_mode)

    def shape(self, in_shape: tuple[int, int, int]) -> tuple[int, int, int]:
        """C x H x W out for C x H x W in; raises CnnlabError when a map would shrink below 1 pixel."""
        c, h, w = in_shape
        return (c if self.channels is None else self.channels, self.size(0, h), self.size(1, w))


def _pair(v) -> Pair:
    return (int(v), int(v)) if isinstance(v, int) else (int(v[0]), int(v[1]))


def layer_geometry(module) -> Geometry | None:
    """The Geometry of a Conv2d, Max/Avg/LPPool2d or adaptive 2-D pool; None for any other layer
    (including ConvTranspose2d, whose size follows a different formula)."""
    import torch.nn as nn  # here, not at the top: the size formula itself needs no torch

    if isinstance(module, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)):
        out = module.output_size
        return Geometry((1, 1), (1, 1), (0, 0), adaptive=(out, out) if not isinstance(out, tuple) else out)
    if isinstance(module, nn.Conv2d):
        padding = module.padding if isinstance(module.padding, str) else _pair(module.padding)
        padding = (0, 0) if padding == "valid" else padding
        return Geometry(
            _pair(module.kernel_size),
            _pair(module.stride),
            padding,
            _pair(module.dilation),
            channels=module.out_channels,
        )
    if isinstance(module, (nn.MaxPool2d, nn.AvgPool2d, nn.LPPool2d)):
        kernel = _pair(module.kernel_size)
        stride = kernel if module.stride in (None, ()) else _pair(module.stride)  # PyTorch: stride = K
        return Geometry(
            kernel,
            stride,
            _pair(getattr(module, "padding", 0)),  # LPPool2d has no padding
            _pair(getattr(module, "dilation", 1)),  # only MaxPool2d dilates
            module.ceil_mode,
        )
    return None
