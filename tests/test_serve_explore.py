"""The page's see-inside API, in process (FastAPI's TestClient): /api/predict?overview=1&gradcam=1,
/api/detail, the language catalogues, and a photo checkpoint (meta "preprocess": "photo")."""

import base64
import io

import numpy as np
import pytest
import torch
from conftest import untrained_checkpoint
from fastapi.testclient import TestClient
from PIL import Image
from test_serve import digit, png_bytes

from cnnlab.checkpoint import save_checkpoint
from cnnlab.inside import concepts as C
from cnnlab.models import get_model
from cnnlab.serve.app import create_app


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    with TestClient(create_app(untrained_checkpoint(tmp_path_factory.mktemp("ckpt") / "model"))) as c:
        yield c


def post(client, path, data=None):
    return client.post(path, files={"file": ("d.png", data or digit("7"), "image/png")})


def decode(url: str) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))


def test_overview_and_gradcam_in_the_prediction(client):
    r = post(client, "/api/predict?overview=1&gradcam=1")
    assert r.status_code == 200, r.text
    body = r.json()
    cols = body["overview"]
    assert [c["shape"] for c in cols][:3] == [[16, 24, 24], [16, 24, 24], [32, 20, 20]]
    assert [c["kind"] for c in cols][-5:] == ["flatten", "linear", "relu", "linear", "softmax"]
    assert cols[0]["links"] == "all" and cols[1]["links"] == "same"
    first = cols[0]
    h, w = first["tile"]
    assert decode(first["png"]).size == (first["cols"] * (w + 1) - 1, first["rows"] * (h + 1) - 1)
    assert cols[-1]["values"] == pytest.approx(body["probabilities"], abs=1e-5)
    cam = body["gradcam"]
    assert cam["layer"] == "layer.5" and [m["class"] for m in cam["maps"]] == [body["prediction"]]
    img = decode(cam["maps"][0]["png"])
    assert img.size == (28, 28) and img.mode == "RGBA"
    assert "overview" not in post(client, "/api/predict").json()  # only on request


def test_gradcam_for_chosen_classes(client):
    body = post(client, "/api/predict?gradcam_class=3&gradcam_class=8").json()
    assert [(m["class"], m["label"]) for m in body["gradcam"]["maps"]] == [(3, "3"), (8, "8")]
    r = post(client, "/api/predict?gradcam_class=10")
    assert r.status_code == 400 and "outside 0..9" in r.json()["error"]
    r = post(client, "/api/predict?gradcam=1&layer=nope")
    assert r.status_code == 400 and "unknown layer" in r.json()["error"]


def test_detail_numbers_recomputed(client):
    d = post(client, "/api/detail?column=2&unit=4").json()
    assert d["kind"] == "conv" and d["name"] == "layer.2" and d["unit"] == 4
    ours = C.conv2d(np.array(d["input"]), np.array(d["kernel"])[None], np.array([d["bias"]]))
    np.testing.assert_allclose(ours[0], d["output"], atol=1e-4)
    d = post(client, "/api/detail?column=12").json()
    assert d["kind"] == "softmax" and sum(d["probabilities"]) == pytest.approx(1, abs=1e-5)
    for query, status in (("column=13", 400), ("column=0&unit=99", 400), ("column=x", 422), ("", 422)):
        r = post(client, f"/api/detail?{query}")
        assert r.status_code == status and "error" in r.json()


def test_language_catalogues(client):
    ko = client.get("/i18n/ko.json").json()
    assert ko["kind_conv"] == "합성곱" and ko["kind_softmax"] == "소프트맥스"
    assert set(ko) == set(client.get("/i18n/en.json").json())
    r = client.get("/i18n/xx.json")
    assert r.status_code == 404 and "xx" in r.json()["error"]


def photo_checkpoint(folder) -> str:
    """What an image-folder run saves: RGB 32x32, named classes, "preprocess": "photo"."""
    torch.manual_seed(0)
    kwargs = {"num_classes": 3, "in_channels": 3, "input_size": 32, "width": 0.5}
    model = get_model("chapter-cnn", **kwargs).eval()
    meta = {
        "model": "chapter-cnn",
        "model_kwargs": kwargs,
        "dataset": "folder",
        "preprocess": "photo",
        "classes": ["cat", "dog", "fox"],
        "mean": [0.5] * 3,
        "std": [0.25] * 3,
        "input_shape": [3, 32, 32],
    }
    return str(save_checkpoint(folder / "photo", model, meta))


def test_photo_model(tmp_path):
    with TestClient(create_app(photo_checkpoint(tmp_path))) as c:
        info = c.get("/api/model").json()
        assert info["preprocess"] == "photo" and info["classes"] == ["cat", "dog", "fox"]
        photo = np.random.default_rng(0).integers(0, 255, (120, 160, 3), dtype=np.uint8)
        body = post(c, "/api/predict?overview=1&gradcam=1", png_bytes(Image.fromarray(photo))).json()
        assert body["label"] in info["classes"] and decode(body["input"]).size == (32, 32)
        assert body["overview"][0]["shape"][0] == 8 and decode(body["gradcam"]["maps"][0]["png"]).size == (
            32,
            32,
        )


def test_digit_checkpoint_without_the_key_is_a_digit_model(client):
    assert client.get("/api/model").json()["preprocess"] == "digit"


def test_a_deep_model_shows_its_blocks(tmp_path):
    ckpt = untrained_checkpoint(tmp_path / "r18", "resnet18", width=0.125)
    with TestClient(create_app(ckpt)) as c:
        body = post(c, "/api/predict?overview=1&gradcam=1").json()
        cols = {col["name"]: col for col in body["overview"]}
        assert (
            len(cols) <= 24
            and cols["layer4.1"]["kind"] == "block"
            and cols["layer4.1"]["shape"][1:] == [4, 4]
        )
        assert body["gradcam"]["layer"] == "layer4.1"
        index = cols["layer2.0"]["index"]
        d = post(c, f"/api/detail?column={index}&unit=0").json()
        assert d["kind"] == "map" and len(d["output"]) == 14  # a block: its map, no step-by-step view
