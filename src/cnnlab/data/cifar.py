"""CIFAR-10 "python version" batches, read without trusting pickle.

The official files are pickles; a plain `pickle.load` would run any code a tampered file names.
`_SafeUnpickler` admits only the numpy reconstruction functions those files need.
"""

import io
import pickle
import tarfile
from pathlib import Path

import numpy as np
import torch

from cnnlab.errors import CnnlabError
from cnnlab.i18n import _

_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),  # how protocol-2 pickles written by Python 3 spell bytes; a pure function
}

TRAIN_BATCHES = [f"data_batch_{i}" for i in range(1, 6)]
TEST_BATCHES = ["test_batch"]


class _SafeUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        raise CnnlabError(
            _("refusing to load {what} from a CIFAR batch: not plain data", what=f"{module}.{name}")
        )


def parse_batch(raw: bytes, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    try:
        d = _SafeUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except CnnlabError:
        raise
    except Exception as e:
        raise CnnlabError(
            _("{name}: not a readable CIFAR batch ({detail})", name=name, detail=f"{type(e).__name__}: {e}")
        ) from None
    data, labels = d.get(b"data"), d.get(b"labels")
    if not isinstance(data, np.ndarray) or labels is None:
        raise CnnlabError(_("{name}: CIFAR batch lacks 'data'/'labels'", name=name))
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072 or len(labels) != len(data):
        raise CnnlabError(
            _(
                "{name}: unexpected CIFAR batch shape {shape}, {n} labels",
                name=name,
                shape=data.shape,
                n=len(labels),
            )
        )
    y = torch.tensor(labels, dtype=torch.int64)
    if int(y.min()) < 0 or int(y.max()) > 9:
        raise CnnlabError(_("{name}: CIFAR-10 label out of range 0..9", name=name))
    return torch.from_numpy(data.reshape(-1, 3, 32, 32).copy()), y


def read_split(root: Path, names: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """Concatenate batches from a `cifar-10-batches-py` folder or the official .tar.gz."""
    archive = root / "cifar-10-python.tar.gz"
    parts = []
    if archive.exists():
        with tarfile.open(archive) as tar:
            for n in names:
                member = tar.extractfile(f"cifar-10-batches-py/{n}")
                if member is None:
                    raise CnnlabError(_("{archive}: missing {name}", archive=archive, name=n))
                parts.append(parse_batch(member.read(), n))
    else:
        folder = root / "cifar-10-batches-py" if (root / "cifar-10-batches-py").is_dir() else root
        parts = [parse_batch((folder / n).read_bytes(), str(folder / n)) for n in names]
    return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])
