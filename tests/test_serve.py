"""`cnnlab serve` API tests against the real server: a `python -m cnnlab serve` subprocess on a free
loopback port (uvicorn, sockets and body limits included), driven over HTTP with httpx."""

import base64
import io
import socket
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from conftest import MNIST_META, untrained_checkpoint
from PIL import Image, ImageDraw

from cnnlab.checkpoint import load_checkpoint
from cnnlab.prediction import open_image, predict, prepare
from cnnlab.serve.launch import running_server


def make_checkpoint(folder: Path, name: str = "chapter-cnn", width: float = 1.0) -> Path:
    """An untrained checkpoint: the API's plumbing does not depend on what the weights learned."""
    return untrained_checkpoint(folder / "model", name, width)


def png_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def digit(kind: str = "7") -> bytes:
    """A hand-drawn-looking digit: dark ink on white paper, as a phone photo of a page would be."""
    img = Image.new("L", (200, 200), 255)
    draw = ImageDraw.Draw(img)
    if kind == "7":
        draw.line([(50, 40), (150, 40), (85, 170)], fill=0, width=16)
    elif kind == "1":
        draw.line([(100, 30), (100, 170)], fill=0, width=16)
    else:
        draw.ellipse([(55, 30), (145, 170)], outline=0, width=16)
    return png_bytes(img)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    return make_checkpoint(tmp_path_factory.mktemp("ckpt"))


@pytest.fixture(scope="module")
def server(checkpoint, tmp_path_factory):
    with running_server(checkpoint, "--log-level", "warning", log_dir=tmp_path_factory.mktemp("log")) as s:
        yield s


@pytest.fixture(scope="module")
def client(server):
    with httpx.Client(base_url=server.url, timeout=30) as c:
        yield c


def post_file(client: httpx.Client, data: bytes, **params) -> httpx.Response:
    return client.post("/api/predict", params=params, files={"file": ("digit.png", data, "image/png")})


def check_prediction(body: dict) -> None:
    probs = body["probabilities"]
    assert len(probs) == 10 == len(body["classes"])
    assert sum(probs) == pytest.approx(1.0, abs=1e-4)
    assert body["prediction"] == max(range(10), key=probs.__getitem__)
    assert body["label"] == body["classes"][body["prediction"]]
    assert body["input"].startswith("data:image/png;base64,")
    preview = Image.open(io.BytesIO(base64.b64decode(body["input"].split(",", 1)[1])))
    assert preview.size == (28, 28) and preview.mode == "L"


def test_healthz_and_model(client):
    assert client.get("/healthz").json() == {"status": "ok", "model": "chapter-cnn"}
    info = client.get("/api/model").json()
    assert info["model"] == "chapter-cnn" and info["dataset"] == "mnist-sample"
    assert info["classes"] == MNIST_META["classes"] and info["input_shape"] == [1, 28, 28]
    assert info["conv_layers"] == ["layer.0", "layer.2", "layer.5"]
    assert info["params"] > 0 and info["max_body_bytes"] == 5 * 2**20
    assert {"name": "layer.0", "type": "Conv2d", "output_shape": [16, 24, 24], "params": 416} in info[
        "layers"
    ]


def test_predict_digit_matches_the_library(client, checkpoint):
    """The server's answer is exactly `cnnlab predict`'s pipeline: open_image -> prepare -> predict."""
    r = post_file(client, digit("7"))
    assert r.status_code == 200, r.text
    body = r.json()
    check_prediction(body)
    model, meta = load_checkpoint(checkpoint)
    expected = predict(model, meta, prepare(open_image(digit("7")), meta).unsqueeze(0))[0]
    assert body["probabilities"] == pytest.approx(expected.tolist(), abs=1e-5)
    assert "features" not in body  # feature maps only on request: they are most of a response's bytes


def test_base64_json_and_raw_body_give_the_same_answer(client):
    data = digit("0")
    b64 = base64.b64encode(data).decode()
    answers = [
        post_file(client, data),
        client.post("/api/predict", json={"image": b64}),
        client.post("/api/predict", json={"image": f"data:image/png;base64,{b64}"}),
        client.post("/api/predict", content=data, headers={"content-type": "image/png"}),
    ]
    assert [r.status_code for r in answers] == [200] * 4, [r.text for r in answers]
    first = answers[0].json()
    for r in answers[1:]:
        assert r.json()["probabilities"] == first["probabilities"]


def test_feature_maps(client):
    by_query = post_file(client, digit("7"), features=1).json()
    by_field = client.post(
        "/api/predict", json={"image": base64.b64encode(digit("7")).decode(), "features": True}
    )
    assert by_field.json()["features"] == by_query["features"]
    layers = by_query["features"]
    assert [(f["name"], f["shape"], f["shown"]) for f in layers] == [
        ("layer.0", [16, 24, 24], 16),
        ("layer.2", [32, 20, 20], 32),
        ("layer.5", [64, 6, 6], 64),
    ]
    for f in layers:
        img = Image.open(io.BytesIO(base64.b64decode(f["png"].split(",", 1)[1])))
        _, h, w = f["shape"]  # tiles in a cols x rows grid with 1-px gaps
        assert img.size == (f["cols"] * (w + 1) - 1, f["rows"] * (h + 1) - 1)
        assert f["cols"] * f["rows"] >= f["shown"]
    assert len(post_file(client, digit("7"), features=1).content) < 200_000


def test_concurrent_feature_maps_do_not_mix(client):
    """Feature maps are recorded with forward hooks; concurrent requests must not see each other's."""
    images = [digit(k) for k in ("7", "1", "0")] * 3
    alone = {k: post_file(client, digit(k), features=1).json()["features"] for k in ("7", "1", "0")}
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda d: post_file(client, d, features=1).json()["features"], images))
    for kind, got in zip(("7", "1", "0") * 3, answers):
        assert got == alone[kind]


BOMB = png_bytes(Image.new("1", (20_000, 20_000)))  # 400 MP of zeros, ~50 kB of PNG
FORM_WITHOUT_FILE = b'--b\r\nContent-Disposition: form-data; name="features"\r\n\r\n1\r\n--b--\r\n'
BAD_INPUTS = {
    "blank canvas": (
        {"files": {"file": ("c.png", png_bytes(Image.new("L", (280, 280))), "image/png")}},
        400,
        "blank",
    ),
    "not an image": (
        {"files": {"file": ("x.png", b"this is text, not a PNG", "image/png")}},
        400,
        "not a readable image",
    ),
    "empty file": ({"files": {"file": ("x.png", b"", "image/png")}}, 400, "empty upload"),
    "multipart without file": (
        {"content": FORM_WITHOUT_FILE, "headers": {"content-type": "multipart/form-data; boundary=b"}},
        400,
        "without a file",
    ),
    "huge image": (
        {"content": png_bytes(Image.new("1", (5000, 5000))), "headers": {"content-type": "image/png"}},
        413,
        "5000x5000",
    ),
    "decompression bomb": ({"content": BOMB, "headers": {"content-type": "image/png"}}, 413, "too large"),
    "oversized upload": (
        {"files": {"file": ("big.png", b"\0" * (6 * 2**20), "image/png")}},
        413,
        "body too large",
    ),
    # a generator body is sent chunked, without Content-Length: the cap must hold while reading
    "oversized chunked body": (
        {"content": lambda: (b"\0" * 2**20 for _ in range(8)), "headers": {"content-type": "image/png"}},
        413,
        "body too large",
    ),
    "wrong content type": (
        {"content": b"hello", "headers": {"content-type": "text/plain"}},
        415,
        "text/plain",
    ),
    "no content type": ({"content": b"hello"}, 415, "unsupported content type"),
    "invalid JSON": (
        {"content": b"{nope", "headers": {"content-type": "application/json"}},
        400,
        "not valid JSON",
    ),
    "JSON without image": ({"json": {"picture": "x"}}, 400, '{"image"'),
    "bad base64": ({"json": {"image": "***"}}, 400, "not valid base64"),
    "bad features flag": ({"params": {"features": "maybe"}, "json": {"image": "x"}}, 422, "features"),
}


@pytest.mark.parametrize("case", BAD_INPUTS, ids=list(BAD_INPUTS))
def test_bad_input_is_a_4xx_json_error_and_the_server_keeps_serving(server, case):
    kwargs, status, fragment = BAD_INPUTS[case]
    kwargs = {k: v() if callable(v) else v for k, v in kwargs.items()}
    with httpx.Client(base_url=server.url, timeout=30) as c:  # a fresh connection: 413 closes its own
        r = c.post("/api/predict", **kwargs)
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/json"
    assert fragment in r.json()["error"]
    with httpx.Client(base_url=server.url, timeout=30) as c:
        assert c.get("/healthz").status_code == 200
        assert post_file(c, digit("1")).status_code == 200
    assert server.process.poll() is None


def test_unknown_routes_and_methods_are_json(client):
    r = client.get("/nope")
    assert r.status_code == 404 and r.json() == {"error": "Not Found: GET /nope"}
    r = client.get("/api/predict")
    assert r.status_code == 405 and "Method Not Allowed" in r.json()["error"]


def test_page_and_assets_are_served_locally(client):
    page = client.get("/")
    assert page.status_code == 200 and '<canvas id="pad"' in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert "http://" not in page.text and "https://" not in page.text  # nothing from a CDN
    for asset, kind in (("app.js", "javascript"), ("conv.js", "javascript"), ("style.css", "text/css")):
        r = client.get(f"/static/{asset}")
        assert r.status_code == 200 and kind in r.headers["content-type"]
        assert f"/static/{asset}" in page.text


def test_serve_cli_errors_are_one_line(cli, checkpoint, tmp_path):
    r = cli("serve", str(tmp_path / "missing"), check=False, timeout=60)
    assert r.returncode not in (0, 1)  # a CnnlabError's exit code, not a crash
    assert r.stderr.strip() == f"cnnlab: error: checkpoint {tmp_path / 'missing'} does not exist"
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        r = cli("serve", str(checkpoint), "--port", str(port), check=False, timeout=60)
    assert r.returncode == 2 and f"cannot listen on 127.0.0.1:{port}" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
