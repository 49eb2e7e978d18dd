"""The chapter's operations written from scratch in NumPy, so each formula can be read in one place.

Nothing here is fast; everything here is checked against PyTorch in tests/test_concepts.py. Layouts follow
PyTorch so weights can be copied over unchanged: an image is C x H x W, conv weights are F x C x K x K
(F filters, each looking at all C input channels), linear weights are out x in. Logs are natural logs,
as in the chapter's numbers (-ln 0.9 = 0.1054).
"""

import numpy as np

from cnnlab.core.sizes import output_size
from cnnlab.errors import CnnlabError
from cnnlab.i18n import _

__all__ = [
    "output_size",
    "pad2d",
    "match_score",
    "conv2d",
    "relu",
    "max_pool2d",
    "avg_pool2d",
    "flatten",
    "linear",
    "softmax",
    "log_softmax",
    "cross_entropy",
    "cross_entropy_from_logits",
    "entropy",
    "kl_divergence",
    "l1_loss",
]


# ---------------------------------------------------------------- convolution


def pad2d(x: np.ndarray, padding: int, value: float = 0.0) -> np.ndarray:
    """Surround the last two axes (H, W) with `padding` rows/columns of `value` (zero padding)."""
    if padding == 0:
        return x
    widths = [(0, 0)] * (x.ndim - 2) + [(padding, padding), (padding, padding)]
    return np.pad(x, widths, constant_values=value)


def match_score(patch: np.ndarray, kernel: np.ndarray) -> float:
    """How well a patch matches a filter: the mean of the element-wise products.

    The chapter's example divides the sum of products by the 9 cells of a 3x3 filter, so a patch equal
    to a +-1 filter scores exactly 1.00 and every mismatching cell costs 2/9.
    """
    patch, kernel = np.asarray(patch, dtype=float), np.asarray(kernel, dtype=float)
    if patch.shape != kernel.shape:
        raise CnnlabError(
            _(
                "patch {patch} and filter {filter} must have the same shape",
                patch=patch.shape,
                filter=kernel.shape,
            )
        )
    return float((patch * kernel).sum() / kernel.size)


def conv2d(
    x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None = None, stride: int = 1, padding: int = 0
) -> np.ndarray:
    """Convolution (strictly: cross-correlation, as in every deep-learning library) of one image.

    x: C x H x W, weight: F x C x K x K, bias: F. Returns F x H' x W', one feature map per filter.
    Every output cell is the sum of products of one filter with the C x K x K patch under it; the filter
    then moves `stride` cells. The *same* weights are used at every position (weight sharing), which is
    why a conv layer has only F*C*K*K + F parameters whatever the image size.
    """
    filters, channels, kh, kw = weight.shape
    if x.ndim != 3 or x.shape[0] != channels:
        raise CnnlabError(
            _("input must be C x H x W with C={c} channels, got shape {shape}", c=channels, shape=x.shape)
        )
    out_h = output_size(x.shape[1], kh, stride, padding)
    out_w = output_size(x.shape[2], kw, stride, padding)
    xp = pad2d(x, padding)
    out = np.zeros((filters, out_h, out_w), dtype=np.result_type(x, weight))
    for i in range(out_h):
        for j in range(out_w):
            top, left = i * stride, j * stride
            patch = xp[:, top : top + kh, left : left + kw]  # C x K x K
            # All F filters at once: multiply each with the patch and sum over (C, K, K).
            out[:, i, j] = np.tensordot(weight, patch, axes=3)
    if bias is not None:
        out += bias[:, None, None]  # one number per filter, added to its whole map
    return out


def relu(x: np.ndarray) -> np.ndarray:
    """max(0, x): the non-linearity the chapter adds after each conv (a conv alone is linear)."""
    return np.maximum(x, 0)


# ---------------------------------------------------------------- pooling


def _pool(x: np.ndarray, kernel: int, stride: int | None, reduce) -> np.ndarray:
    """Slide a kernel x kernel window over each channel of C x H x W and `reduce` every window."""
    stride = kernel if stride is None else stride  # PyTorch's default: windows do not overlap
    channels, h, w = x.shape
    out_h, out_w = output_size(h, kernel, stride), output_size(w, kernel, stride)
    out = np.zeros((channels, out_h, out_w), dtype=x.dtype)
    for i in range(out_h):
        for j in range(out_w):
            window = x[:, i * stride : i * stride + kernel, j * stride : j * stride + kernel]
            out[:, i, j] = reduce(window, axis=(1, 2))
    return out


def max_pool2d(x: np.ndarray, kernel: int, stride: int | None = None) -> np.ndarray:
    """Keep only the largest value of each window (channel by channel); stride defaults to kernel."""
    return _pool(x, kernel, stride, np.max)


def avg_pool2d(x: np.ndarray, kernel: int, stride: int | None = None) -> np.ndarray:
    """Pass on the mean of each window (channel by channel); stride defaults to kernel."""
    return _pool(x, kernel, stride, np.mean)


# ---------------------------------------------------------------- the classifier head


def flatten(x: np.ndarray) -> np.ndarray:
    """C x H x W -> one vector of C*H*W values, channel by channel, row by row (torch's flatten order)."""
    return x.reshape(-1)


def linear(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None = None) -> np.ndarray:
    """Fully connected layer: every output is a weighted sum of *all* inputs. weight: out x in."""
    y = x @ weight.T
    return y if bias is None else y + bias


# ---------------------------------------------------------------- probabilities and losses


def softmax(z: np.ndarray, axis: int = -1) -> np.ndarray:
    """exp(z_i) / sum_j exp(z_j). Subtracting max(z) first changes nothing mathematically (it cancels
    in the fraction) but keeps exp from overflowing for large scores such as 1000."""
    e = np.exp(z - np.max(z, axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def log_softmax(z: np.ndarray, axis: int = -1) -> np.ndarray:
    """log(softmax(z)) computed as z - logsumexp(z): no exp overflow, no log(0) for tiny probabilities."""
    shifted = z - np.max(z, axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def _plogq(p: np.ndarray, log_q: np.ndarray) -> np.ndarray:
    """p * log q with the convention 0 * log 0 = 0 (an impossible outcome carries no weight)."""
    with np.errstate(invalid="ignore"):  # 0 * -inf is nan before np.where replaces it
        return np.where(p == 0, 0.0, p * log_q)


def entropy(p: np.ndarray, axis: int = -1) -> np.ndarray:
    """H(p) = -sum p log p: the expected information (surprise) of outcomes drawn from p."""
    p = np.asarray(p, dtype=float)
    with np.errstate(divide="ignore"):
        return 0.0 - _plogq(p, np.log(p)).sum(axis=axis)  # "0.0 -" so a certain outcome gives 0, not -0


def cross_entropy(target: np.ndarray, probs: np.ndarray, axis: int = -1) -> np.ndarray:
    """H(p, q) = -sum p log q for a target distribution p (e.g. one-hot) and predicted probabilities q.

    With a one-hot target this is just -log(probability given to the true class).
    """
    target, probs = np.asarray(target, dtype=float), np.asarray(probs, dtype=float)
    with np.errstate(divide="ignore"):
        return 0.0 - _plogq(target, np.log(probs)).sum(axis=axis)


def cross_entropy_from_logits(target: np.ndarray, logits: np.ndarray, axis: int = -1) -> np.ndarray:
    """Cross entropy straight from raw scores, as nn.CrossEntropyLoss does: softmax is folded in via
    log_softmax, which stays finite where log(softmax(z)) would round to log(0)."""
    target = np.asarray(target, dtype=float)
    return -_plogq(target, log_softmax(np.asarray(logits, dtype=float), axis=axis)).sum(axis=axis)


def kl_divergence(p: np.ndarray, q: np.ndarray, axis: int = -1) -> np.ndarray:
    """KL(p || q) = sum p log(p / q) >= 0: the extra cost of coding p with q, so H(p, q) = H(p) + KL."""
    p, q = np.asarray(p, dtype=float), np.asarray(q, dtype=float)
    with np.errstate(divide="ignore"):
        return _plogq(p, np.log(p) - np.log(q)).sum(axis=axis)


def l1_loss(target: np.ndarray, pred: np.ndarray) -> float:
    """Mean absolute difference (torch's l1_loss, reduction='mean'); the chapter's L1 column uses it:
    target [0, 1] vs [0.1, 0.9] -> (0.1 + 0.1) / 2 = 0.1."""
    return float(np.mean(np.abs(np.asarray(pred, dtype=float) - np.asarray(target, dtype=float))))
