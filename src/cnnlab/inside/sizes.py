"""Pure size math of convolution and pooling layers (the chapter's formula)."""

from cnnlab.errors import CnnlabError


def output_size(i: int, k: int, s: int = 1, p: int = 0, d: int = 1, ceil_mode: bool = False) -> int:
    """Feature-map size floor((I - K + 2P) / S) + 1; dilation d widens the kernel to d*(K-1)+1.

    Raises CnnlabError when the result would be smaller than 1, naming the numbers involved.
    """
    if min(i, k, s, d) < 1 or p < 0:
        raise CnnlabError(f"invalid sizes: input={i}, kernel={k}, stride={s}, padding={p}, dilation={d}")
    span = d * (k - 1) + 1
    num = i - span + 2 * p
    if num < 0:
        raise CnnlabError(
            f"kernel {k} (span {span}) is larger than the padded input {i}+2*{p}={i + 2 * p}: output size < 1"
        )
    out = -(-num // s) + 1 if ceil_mode else num // s + 1
    # PyTorch's ceil_mode rule: the last window must start inside the input or left padding.
    if ceil_mode and (out - 1) * s >= i + p:
        out -= 1
    return out
