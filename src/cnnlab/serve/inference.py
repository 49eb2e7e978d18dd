"""What the server does with one image, free of any web code: bytes -> probabilities, the preprocessed
input and, on request, every conv layer's feature maps as small PNG sprites.

Every method here is synchronous and CPU-bound; the app runs them in a worker thread, several at once.
"""

import base64
import copy
import io
import math
import threading
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
from PIL import Image

from cnnlab.checkpoint import load_checkpoint
from cnnlab.data import to_float
from cnnlab.errors import CnnlabError
from cnnlab.i18n import DEFAULT, using
from cnnlab.inside.activations import conv_feature_maps
from cnnlab.prediction import open_image, predict, prepare, preprocessing

# A phone photo is ~12 MP; anything bigger is refused *before* decoding, so a few concurrent uploads
# cannot pin gigabytes (preprocess.MAX_PIXELS, 40 MP, is the CLI's looser limit).
MAX_PIXELS = 16_000_000
MAX_CHANNELS = 64  # feature maps shown per layer (the chapter's widest layer has 64 filters)
MAX_SPRITE_PIXELS = 500_000  # per response: deep models (GoogLeNet: 57 convs) would send megabytes

# Feature-map colours: 0 is near-black, positive responses glow orange, negative ones blue. Maps are taken
# before the ReLU (see cnnlab.inside.activations), so the sign says whether the filter matched or anti-matched.
_ZERO = np.array([24, 26, 33], dtype=np.float32)
_POS = np.array([255, 176, 40], dtype=np.float32)
_NEG = np.array([70, 150, 255], dtype=np.float32)


class RequestError(Exception):
    """A problem with the client's input: the app answers `status` with {"error": message}."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def png_data_url(img: Image.Image) -> str:
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=1)  # level 1: a third of the time of 6, barely bigger here
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def input_png(x: torch.Tensor) -> str:
    """The uint8 C x H x W model input as a PNG data URL (greyscale or RGB)."""
    arr = x.permute(1, 2, 0).numpy()
    return png_data_url(Image.fromarray(arr[:, :, 0] if arr.shape[2] == 1 else arr))


def colorize(maps: np.ndarray) -> np.ndarray:
    """F x H x W float maps -> F x H x W x 3 uint8, each map scaled by its own largest |value|."""
    peak = np.abs(maps).max(axis=(1, 2), keepdims=True)
    v = np.divide(maps, peak, out=np.zeros_like(maps), where=peak > 0)[..., None]
    rgb = _ZERO + np.abs(v) * (np.where(v >= 0, _POS, _NEG) - _ZERO)
    return np.clip(rgb, 0, 255).astype(np.uint8)


def sprite(maps: np.ndarray) -> tuple[Image.Image, int, int]:
    """F x H x W maps -> one RGBA image, tiles in a near-square grid with 1-px transparent gaps."""
    n, h, w = maps.shape
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    tiles = np.zeros((rows * cols, h + 1, w + 1, 4), dtype=np.uint8)  # +1: the gap right and below
    tiles[:n, :h, :w, :3] = colorize(maps)
    tiles[:n, :h, :w, 3] = 255
    grid = tiles.reshape(rows, cols, h + 1, w + 1, 4).transpose(0, 2, 1, 3, 4)
    grid = grid.reshape(rows * (h + 1), cols * (w + 1), 4)[:-1, :-1]  # no gap after the last row/column
    return Image.fromarray(np.ascontiguousarray(grid), "RGBA"), cols, rows


def encode_layers(maps: list[tuple[str, torch.Tensor]], budget: int = MAX_SPRITE_PIXELS) -> list[dict]:
    """[(name, F x H x W)] -> JSON-ready layers, each showing its first `shown` maps as one PNG sprite.

    Every layer gets an equal share of the pixel budget (and at least one map), so a deep model shows
    fewer maps per layer instead of dropping its last layers."""
    share = budget // max(1, len(maps))
    layers = []
    for name, fmap in maps:
        f, h, w = fmap.shape
        shown = max(1, min(f, MAX_CHANNELS, share // (h * w)))
        img, cols, rows = sprite(fmap[:shown].float().numpy())
        layers.append(
            {
                "name": name,
                "shape": [f, h, w],
                "shown": shown,
                "cols": cols,
                "rows": rows,
                "png": png_data_url(img),
            }
        )
    return layers


def model_info(model: nn.Module, meta: dict) -> dict:
    """What GET /api/model answers: computed once, before serving (it runs a hooked forward pass)."""
    from cnnlab.inside.summary import summarize

    s = summarize(model, tuple(meta["input_shape"]))
    return {
        "model": meta["model"],
        "model_kwargs": meta.get("model_kwargs", {}),
        "dataset": meta["dataset"],
        "classes": list(meta["classes"]),
        "input_shape": list(meta["input_shape"]),
        # "digit": the page offers drawing; "photo": an upload (folder photo models, CIFAR-10, ...)
        "preprocess": "digit" if preprocessing(meta) == "digit" else "photo",
        "params": s.params,
        "macs": s.macs,
        "layers": [
            {"name": x.name, "type": x.type, "output_shape": x.output_shape, "params": x.params}
            for x in s.layers
        ],
        "conv_layers": [x.name for x in s.layers if x.type == "Conv2d"],
    }


class Predictor:
    """One checkpoint, ready to answer concurrent requests."""

    def __init__(self, model: nn.Module, meta: dict, max_pixels: int = MAX_PIXELS):
        self.model = model.eval()
        self.meta = meta
        self.max_pixels = max_pixels
        # Feature maps come from forward hooks, and a hook on a shared module also fires for every other
        # thread's forward pass: a request would record its neighbours' activations. So plain predictions
        # use `model` (never hooked, fully parallel) and feature maps a private copy, one pass at a time.
        self._probe = copy.deepcopy(self.model)
        self._probe_lock = threading.Lock()
        self.info = model_info(self._probe, meta)
        # warm-up: the first request would pay for lazy imports (Pillow's codecs), allocations and
        # kernel choices; a small square of "ink" runs every step once, before the server takes requests
        dot = Image.new("L", (28, 28))
        dot.paste(255, (10, 10, 18, 18))
        buf = io.BytesIO()
        dot.save(buf, format="PNG")
        self(buf.getvalue(), features=True)

    @classmethod
    def from_checkpoint(cls, path: str | Path, max_pixels: int = MAX_PIXELS) -> "Predictor":
        model, meta = load_checkpoint(path)
        return cls(model, meta, max_pixels)

    def decode(self, data: bytes) -> Image.Image:
        """Bytes -> a fully decoded image; the pixel count is checked from the header before decoding."""
        if not data:
            raise RequestError(400, "empty upload: no image data")
        try:
            with Image.open(io.BytesIO(data)) as img:  # reads the header only
                width, height = img.size
        except Image.DecompressionBombError:
            raise RequestError(413, f"image too large: over {self.max_pixels:,} pixels") from None
        except Exception:  # not an image: open_image below gives the one clear message
            width = height = 0
        if width * height > self.max_pixels:
            raise RequestError(
                413, f"image too large: {width}x{height} pixels, the limit is {self.max_pixels:,}"
            )
        try:
            with using(DEFAULT):  # the API's JSON error bodies are English whatever the server's language
                return open_image(data, "upload")
        except CnnlabError as e:
            raise RequestError(400, str(e)) from None

    def prepare(self, data: bytes) -> torch.Tensor:
        """Bytes -> the model's uint8 C x H x W input (MNIST-style for digit checkpoints)."""
        img = self.decode(data)
        try:
            with using(DEFAULT):  # an English JSON error body, as above
                return prepare(img, self.meta)
        except CnnlabError as e:  # "image is blank: no ink found", ...
            raise RequestError(400, str(e)) from None

    def feature_maps(self, x: torch.Tensor) -> list[dict]:
        xf = to_float(x.unsqueeze(0), self.meta["mean"], self.meta["std"])[0]
        with self._probe_lock, torch.inference_mode():
            maps = conv_feature_maps(self._probe, xf)
        return encode_layers(maps)

    def __call__(self, data: bytes, features: bool = False, extras=None) -> dict:
        """The /api/predict answer for one encoded image; `extras(x) -> dict` adds more answers for the
        prepared input x (the overview and Grad-CAM of serve/explore.py)."""
        t0 = time.perf_counter()
        x = self.prepare(data)
        probs = predict(self.model, self.meta, x.unsqueeze(0))[0]
        best = int(probs.argmax())
        result = {
            "model": self.meta["model"],
            "prediction": best,
            "label": self.meta["classes"][best],
            "classes": list(self.meta["classes"]),
            "probabilities": [round(p, 6) for p in probs.tolist()],
            "input": input_png(x),
            "input_shape": list(x.shape),
        }
        if features:
            result["features"] = self.feature_maps(x)
        if extras is not None:
            result.update(extras(x))
        result["elapsed_ms"] = round((time.perf_counter() - t0) * 1000, 2)
        return result
