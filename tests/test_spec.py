"""The one description of the data (cnnlab.data.spec): digit spellings, digit-or-photo decisions, the
look of handwriting on real images, MNIST's recipe, and checkpoints old and new read back the same."""

import gzip

import numpy as np
import pytest
from PIL import Image

from cnnlab.data.images import BadImage, digit_array, digit_look
from cnnlab.data.spec import DataSpec, decide, digit_classes, digit_value, same_class


@pytest.mark.parametrize(
    "name, value",
    [
        ("7", 7), ("seven", 7), ("Seven", 7), ("SEVEN", 7), (" seven ", 7), ("digit_7", 7), ("digit 7", 7),
        ("class-7", 7), ("07", 7), ("7_seven", 7), ("7-seven", 7), ("칠", 7), ("영", 0), ("zero", 0),
        ("seventeen", None), ("17", None), ("7_eight", None), ("cat", None), ("", None), ("T-shirt/top", None),
    ],
)  # fmt: skip
def test_digit_spellings(name, value):
    assert digit_value(name) == value


def test_digit_classes_need_distinct_digits():
    assert digit_classes(["zero", "one", "two"])
    assert digit_classes([str(i) for i in range(10)])
    assert not digit_classes(["one", "1"])  # the same digit twice
    assert not digit_classes(["seven"])  # one class is no classification
    assert not digit_classes(["cat", "dog"])
    assert same_class("7", "seven") and same_class("Cat", "cat ") and not same_class("7", "1")


def test_decide_order_flag_marker_names_look():
    digits = [str(i) for i in range(10)]
    assert decide(digits, 1.0, 0.0).preprocess == "digit"  # names + grey
    assert "class names are digits" in decide(digits, 1.0, 0.0).why
    colour = decide(digits, 0.1, 0.0)  # house-number photos: digits by name, but in colour
    assert colour.preprocess == "photo" and "colour" in colour.why
    look = decide(["a", "b"], 1.0, 0.97)
    assert look.preprocess == "digit" and "97%" in look.why and look.orientation_sensitive
    assert decide(["cat", "dog"], 1.0, 0.3).preprocess == "photo"
    assert decide(digits, 1.0, 1.0, asked="photo").why == "--preprocess photo"
    marked = decide(["cat", "dog"], 1.0, 0.0, marker={"preprocess": "digit"})
    assert marked.preprocess == "digit" and marked.orientation_sensitive  # flips refused, as the README says
    assert not decide(digits, 1.0, 1.0, marker={"orientation_sensitive": False}).orientation_sensitive


def _idx_images(path, n):
    with gzip.open(path) as f:
        data = f.read()
    return np.frombuffer(data[16 : 16 + n * 784], np.uint8).reshape(n, 28, 28)


def test_handwriting_looks_like_handwriting_on_real_images(shared_data):
    mnist = _idx_images(shared_data / "mnist" / "t10k-images-idx3-ubyte.gz", 500).astype(np.float32)
    fashion = _idx_images(shared_data / "fashion-mnist" / "t10k-images-idx3-ubyte.gz", 500).astype(np.float32)
    assert np.mean([digit_look(a) for a in mnist]) > 0.95
    assert np.mean([digit_look(255 - a) for a in mnist]) > 0.95  # dark ink on light paper too
    assert np.mean([digit_look(a) for a in fashion]) < 0.6


def test_mnist_recipe_centres_the_ink_and_fits_the_box():
    a = np.full((200, 300), 230, np.uint8)  # light paper, a dark bar off-centre
    a[20:120, 30:50] = 20
    out = digit_array(Image.fromarray(a))
    assert out.shape == (28, 28) and out.dtype == np.uint8
    ys, xs = np.nonzero(out > 50)
    assert ys.max() - ys.min() + 1 <= 21  # the ink fits the 20-px box
    w = out.astype(np.float64)
    cy, cx = (np.indices(w.shape) * w).reshape(2, -1).sum(1) / w.sum()
    assert abs(cy - 14) < 1.5 and abs(cx - 14) < 1.5  # centre of mass at the centre
    assert out[0].max() == 0  # background black, ink bright (inverted from the paper)
    with pytest.raises(BadImage, match="no ink"):
        digit_array(Image.new("L", (50, 50), 200))


def test_spec_round_trip_and_old_checkpoints():
    spec = DataSpec("folder", ("zero", "one"), 1, 28, "digit", "why not", (0.1,), (0.3,), True)
    meta = {**spec.to_meta(), "folder": {"root": "/x"}}
    assert meta["input_shape"] == [1, 28, 28] and meta["data"]["why"] == "why not"
    back = DataSpec.from_meta(meta)
    assert back == spec and back.folder == {"root": "/x"}
    old = {
        "dataset": "mnist",
        "classes": list("0123456789"),
        "mean": [0.1],
        "std": [0.3],
        "input_shape": [1, 28, 28],
    }
    assert DataSpec.from_meta(old).preprocess == "digit"  # before "preprocess" was saved: by name
    fashion = {**old, "dataset": "fashion-mnist", "preprocess": "photo"}
    assert DataSpec.from_meta(fashion).preprocess == "fit"  # built-in photo sets were "photo" then
    assert DataSpec.from_meta({**fashion, "folder": {}}).preprocess == "photo"
    assert "handwriting" in spec.describe() and "why not" in spec.describe()


def test_colour_spread_is_light_independent_grey_and_sees_colour():
    from cnnlab.data.images import colour_spread

    rng = np.random.default_rng(0)
    d = np.zeros((28, 28))
    d[6:22, 12:16] = 1.0  # a stroke
    paper, ink = np.array([235, 215, 185.0]), np.array([55, 48, 40.0])  # warm light: paper is yellowish
    warm = paper * (1 - d[..., None]) + ink * d[..., None] + rng.normal(0, 4, (28, 28, 3))
    assert colour_spread(np.stack([d * 255] * 3, -1)) == 0
    assert colour_spread(warm.clip(0, 255)) < 25  # a phone photo of pencil on paper is grey
    house = np.array([30, 90, 200.0]) * (1 - d[..., None]) + np.array([250, 220, 40.0]) * d[..., None]
    assert colour_spread(house) > 25  # a yellow number on a blue plate is colour
