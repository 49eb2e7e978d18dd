"""Batched augmentation: specs, shapes, labels (order), seeding, and no flipping of digits."""

import pytest
import torch

from cnnlab.data.augment import augment_batch, check_spec, parse_spec, random_erase, random_translate
from cnnlab.errors import CnnlabError


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize(
    "spec, want",
    [
        ("none", {}),
        ("translate=2", {"translate": 2}),
        ("crop=3", {"translate": 3}),
        ("translate=2, erase=0.25", {"translate": 2, "erase": 0.25}),
        ("flip", {"flip": 0.5}),
        ("flip=1,translate=1", {"flip": 1.0, "translate": 1}),
    ],
)
def test_parse_spec(spec, want):
    assert parse_spec(spec) == want
    check_spec(spec, "cifar10")


@pytest.mark.parametrize(
    "spec", ["rotate=10", "translate=1.5", "translate=-1", "erase=2", "erase=x", "flip,flip", ""]
)
def test_bad_specs_are_refused(spec):
    if spec == "":  # empty means none
        assert parse_spec(spec) == {}
        return
    with pytest.raises(CnnlabError, match="--augment"):
        check_spec(spec)


@pytest.mark.parametrize("dataset", ["mnist", "mnist-sample", "kmnist"])
def test_flip_refused_for_digits_and_characters(dataset):
    with pytest.raises(CnnlabError, match="mirrored"):
        check_spec("translate=2,flip", dataset)
    check_spec("translate=2,erase=0.5", dataset)  # everything else is fine


def test_flip_allowed_where_it_makes_sense():
    check_spec("flip", "fashion-mnist")
    check_spec("flip", "cifar10")


@pytest.mark.parametrize("spec", ["translate=2", "flip", "erase=0.5", "translate=2,flip,erase=0.25"])
def test_shape_dtype_and_sample_order_kept(spec):
    # every image is a distinct constant: any augmentation that keeps image i at position i keeps it
    # constant with its own value (reflect padding of a constant is that constant, erasing writes 0)
    values = torch.arange(1, 33, dtype=torch.float32)
    x = values.view(32, 1, 1, 1).expand(32, 3, 12, 12).contiguous()
    out = augment_batch(x, spec, gen())
    assert out.shape == x.shape and out.dtype == x.dtype
    nonzero = out.masked_fill(out == 0, float("nan")).view(32, -1)
    assert torch.equal(nonzero.nanmean(1), values)  # labels y[i] still describe out[i]


def test_seeded_and_reproducible():
    x = torch.randn(64, 1, 28, 28)
    spec = "translate=2,erase=0.5"
    a, b = augment_batch(x, spec, gen(1)), augment_batch(x, spec, gen(1))
    c = augment_batch(x, spec, gen(2))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_none_is_identity():
    x = torch.randn(4, 1, 8, 8)
    assert augment_batch(x, "none", gen()) is x


def test_translate_moves_a_pixel_at_most_r():
    x = torch.zeros(200, 1, 15, 15)
    x[:, :, 7, 7] = 1.0
    out = random_translate(x, 2, gen())
    pos = out.view(200, -1).argmax(1)
    dy, dx = pos // 15 - 7, pos % 15 - 7
    assert out.sum(dim=(1, 2, 3)).eq(1).all()  # the pixel moved, it was neither lost nor duplicated
    assert dy.abs().max() == 2 and dx.abs().max() == 2
    assert len(set(zip(dy.tolist(), dx.tolist()))) == 25  # every shift in [-2, 2]^2 occurs


def test_flip_one_mirrors_every_image():
    x = torch.randn(5, 3, 6, 6)
    assert torch.equal(augment_batch(x, "flip=1", gen()), x.flip(3))
    assert torch.equal(augment_batch(x, "flip=0", gen()), x)


def test_erase_area_and_probability():
    x = torch.ones(400, 1, 28, 28)
    out = random_erase(x, 1.0, gen())
    erased = (out == 0).float().mean(dim=(1, 2, 3))
    assert erased.min() > 0 and erased.max() <= 0.5  # one rectangle of ~2%-33% of the image in every one
    assert torch.equal(random_erase(x, 0.0, gen()), x)
    some = (random_erase(x, 0.25, gen()) == 0).flatten(1).any(1).float().mean()
    assert 0.15 < some < 0.35


def test_channels_last_kept():
    x = torch.randn(8, 3, 10, 10).contiguous(memory_format=torch.channels_last)
    out = augment_batch(x, "translate=1,flip", gen())
    assert out.is_contiguous(memory_format=torch.channels_last)


def test_cli_refuses_flip_for_mnist(cli, tmp_path):
    proc = cli(
        "train", "--dataset", "mnist-sample", "--augment", "flip", "--out", str(tmp_path / "r"), check=False
    )
    assert proc.returncode == 2
    assert "mirrored" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_resized_crop_equals_interpolating_the_crop(monkeypatch):
    """Independent reference: slice the crop box out and resize it with F.interpolate (bilinear, what
    torchvision's resized_crop does without antialias). Boxes on whole pixels make the slice exact;
    interior pixels agree (at the box's edge grid_sample blends in the pixel just outside, interpolate
    clamps)."""
    import torch.nn.functional as F

    import cnnlab.data.augment as aug

    boxes = [(4, 2, 8, 8), (0, 0, 16, 8), (6, 6, 10, 10), (2, 4, 12, 9)]  # top, left, height, width in px
    fixed = torch.tensor([[(t + h / 2) / 16, (le + w / 2) / 16, h / 16, w / 16] for t, le, h, w in boxes])
    monkeypatch.setattr(aug, "crop_boxes", lambda n, a, g, d: fixed)
    x = torch.rand(4, 3, 16, 16)
    out = aug.random_resized_crop(x, 0.2, gen())
    for i, (t, le, h, w) in enumerate(boxes):
        want = F.interpolate(x[i : i + 1, :, t : t + h, le : le + w], size=(16, 16), mode="bilinear")
        torch.testing.assert_close(out[i : i + 1, :, 2:-2, 2:-2], want[..., 2:-2, 2:-2], atol=1e-5, rtol=1e-5)


def test_resized_crop_boxes_follow_the_spec():
    from cnnlab.data.augment import crop_boxes

    cy, cx, h, w = crop_boxes(20000, 0.35, gen(1), "cpu").unbind(1)
    area, ratio = h * w, w / h
    assert area.min() >= 0.35 - 1e-6 and area.max() <= 1 + 1e-6 and area.mean() > 0.6
    assert ratio.min() >= 0.75 - 1e-4 and ratio.max() <= 4 / 3 + 1e-4
    assert ((cy - h / 2) >= -1e-6).all() and ((cy + h / 2) <= 1 + 1e-6).all()
    x = torch.rand(8, 3, 12, 12).contiguous(memory_format=torch.channels_last)
    y = augment_batch(x, "resized-crop=0.5", gen())
    assert y.shape == x.shape and y.is_contiguous(memory_format=torch.channels_last)
    assert parse_spec("rrc=0.5,flip") == {"resized-crop": 0.5, "flip": 0.5}
    with pytest.raises(CnnlabError, match="resized-crop"):
        parse_spec("resized-crop=0")


def test_flip_refused_for_orientation_sensitive_folders():
    with pytest.raises(CnnlabError, match="flip"):
        check_spec("flip", "folder", orientation_sensitive=True)
    check_spec("flip,resized-crop=0.4", "folder")
