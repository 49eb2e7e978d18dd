"""IDX reader: valid files round-trip, every kind of corruption gives one clear error."""

import gzip

import pytest
import torch

from cnnlab.data import idx
from cnnlab.errors import CnnlabError


def make_idx(images: torch.Tensor) -> bytes:
    dims = list(images.shape)
    magic = 0x800 | len(dims)
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in dims)
    return header + images.numpy().tobytes()


@pytest.fixture
def images():
    return torch.randint(0, 256, (5, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("compress", [False, True])
def test_round_trip_raw_and_gzip(tmp_path, images, compress):
    data = make_idx(images)
    path = tmp_path / ("x.gz" if compress else "x")
    path.write_bytes(gzip.compress(data) if compress else data)
    out = idx.read_images(path)
    assert out.shape == (5, 1, 28, 28) and out.dtype == torch.uint8
    assert torch.equal(out[:, 0], images)


def test_labels_in_range(tmp_path):
    path = tmp_path / "y"
    path.write_bytes(make_idx(torch.tensor([0, 9, 3], dtype=torch.uint8)))
    assert idx.read_labels(path, 10).tolist() == [0, 9, 3]
    with pytest.raises(CnnlabError, match="out of range"):
        idx.read_labels(path, 5)


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda b: b[:-10], "truncated or corrupt"),
        (lambda b: b + b"\0", "truncated or corrupt"),
        (lambda b: b"\x00\x00\x09\x03" + b[4:], "bad IDX magic"),
        (lambda b: b[:6], "truncated IDX header"),
        (lambda b: b[:2], "too short"),
        (lambda b: b[:4] + (0).to_bytes(4, "big") + b[8:], "invalid IDX dimensions"),
    ],
)
def test_corrupt_files(tmp_path, images, mutate, message):
    path = tmp_path / "bad"
    path.write_bytes(mutate(make_idx(images)))
    with pytest.raises(CnnlabError, match=message):
        idx.read_images(path)


def test_corrupt_gzip(tmp_path, images):
    path = tmp_path / "bad.gz"
    path.write_bytes(gzip.compress(make_idx(images))[:-20])
    with pytest.raises(CnnlabError, match="gzip"):
        idx.read_images(path)


def test_labels_file_given_as_images(tmp_path):
    path = tmp_path / "y"
    path.write_bytes(make_idx(torch.tensor([1, 2], dtype=torch.uint8)))
    with pytest.raises(CnnlabError, match="expected an image file"):
        idx.read_images(path)
