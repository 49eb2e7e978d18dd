"""IDX file reader (the MNIST family's format), raw or gzip, validated before it is trusted.

Format (LeCun's MNIST page): 2 zero bytes, a dtype code (0x08 = uint8), the number of dimensions,
then one big-endian int32 per dimension, then the data. We accept only uint8 data.
"""

import gzip
import zlib
from pathlib import Path

import numpy as np
import torch

from cnnlab.errors import CnnlabError
from cnnlab.i18n import _

IMAGES_MAGIC = 0x00000803  # uint8, 3 dims: N x H x W
LABELS_MAGIC = 0x00000801  # uint8, 1 dim: N


def read_bytes(path: Path) -> bytes:
    """The file's bytes, gunzipped when it is gzip (by magic, not by name)."""
    try:
        raw = Path(path).read_bytes()
    except OSError as e:
        raise CnnlabError(_("cannot read {path}: {reason}", path=path, reason=e.strerror)) from None
    if raw[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as e:
            raise CnnlabError(
                _("{path}: corrupt or truncated gzip data ({detail})", path=path, detail=e)
            ) from None
    return raw


def parse_idx(data: bytes, name: str = "<idx>") -> torch.Tensor:
    """Parse IDX bytes into a uint8 tensor, checking magic, dimensions and length."""
    if len(data) < 4:
        raise CnnlabError(_("{name}: too short to be an IDX file ({n} bytes)", name=name, n=len(data)))
    magic = int.from_bytes(data[:4], "big")
    if magic not in (IMAGES_MAGIC, LABELS_MAGIC):
        raise CnnlabError(
            _("{name}: bad IDX magic number 0x{magic:08x} (expected 0x00000803 or 0x00000801)", name=name,
              magic=magic)
        )  # fmt: skip
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(data) < header:
        raise CnnlabError(_("{name}: truncated IDX header", name=name))
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    if any(d <= 0 for d in dims):
        raise CnnlabError(_("{name}: invalid IDX dimensions {dims}", name=name, dims=dims))
    expected = int(np.prod(dims))
    body = len(data) - header
    if body != expected:
        raise CnnlabError(
            _(
                "{name}: IDX body has {body} bytes, header {dims} says {expected} (truncated or corrupt)",
                name=name,
                body=body,
                dims=dims,
                expected=expected,
            )  # fmt: skip
        )
    array = np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)
    return torch.from_numpy(array.copy())


def read_images(path: Path) -> torch.Tensor:
    """N x 1 x H x W uint8 images from an IDX3 file."""
    x = parse_idx(read_bytes(path), str(path))
    if x.dim() != 3:
        raise CnnlabError(_("{path}: expected an image file (3 dimensions), found {n}", path=path, n=x.dim()))
    return x.unsqueeze(1)


def read_labels(path: Path, num_classes: int) -> torch.Tensor:
    """N int64 labels from an IDX1 file, each checked to lie in [0, num_classes)."""
    y = parse_idx(read_bytes(path), str(path))
    if y.dim() != 1:
        raise CnnlabError(_("{path}: expected a label file (1 dimension), found {n}", path=path, n=y.dim()))
    if int(y.max()) >= num_classes:
        raise CnnlabError(
            _(
                "{path}: label {label} out of range for {n} classes",
                path=path,
                label=int(y.max()),
                n=num_classes,
            )
        )
    return y.long()
