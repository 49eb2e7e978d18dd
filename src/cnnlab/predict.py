"""Real images -> the model's input, and the `cnnlab predict` command.

For digit datasets (MNIST, KMNIST) we redo what LeCun et al. did to build MNIST: greyscale; light
ink on a dark background (a dark-on-light scan is inverted); crop to the ink; scale the ink to fit a
20 x 20 box keeping its aspect ratio (anti-aliased); paste it into 28 x 28 so its centre of mass
sits at the centre. Other datasets: greyscale or RGB as the model wants, fitted and centred.
"""

import io
import json
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from cnnlab.errors import CnnlabError

MAX_PIXELS = 40_000_000  # refuse decompression bombs (a tiny PNG that unpacks to gigabytes)
DIGIT_DATASETS = {"mnist", "mnist-sample", "kmnist"}


def open_image(source: str | Path | bytes, name: str = "image") -> Image.Image:
    """Open and fully decode an image file or bytes; any failure is one clear CnnlabError.

    The pixel count is checked from the header before decoding, so a decompression bomb (a tiny
    PNG that unpacks to gigabytes) is refused without touching Pillow's global limits (thread-safe).
    """
    try:
        img = Image.open(io.BytesIO(source) if isinstance(source, bytes) else source)
        if img.width * img.height > MAX_PIXELS:
            raise CnnlabError(
                f"{name}: image too large ({img.width}x{img.height}, over {MAX_PIXELS:,} pixels)"
            )
        img.load()
    except FileNotFoundError:
        raise CnnlabError(f"{name}: no such file") from None
    except Image.DecompressionBombError:
        raise CnnlabError(f"{name}: image too large (over {MAX_PIXELS:,} pixels)") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise CnnlabError(f"{name}: not a readable image ({type(e).__name__})") from None
    return ImageOps.exif_transpose(img)


def _grey_on_white(img: Image.Image) -> np.ndarray:
    """Greyscale float array 0..255; transparent pixels become white paper."""
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        paper = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(paper, rgba)
    return np.asarray(img.convert("L"), dtype=np.float32)


def _ink(grey: np.ndarray) -> np.ndarray:
    """Ink = bright on dark. The border's median tells the background: light paper gets inverted."""
    border = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    return 255.0 - grey if np.median(border) > 127 else grey


def mnist_style(img: Image.Image, size: int = 28, box: int = 20) -> torch.Tensor:
    """1 x size x size uint8, MNIST's own recipe (see module docstring)."""
    ink = _ink(_grey_on_white(img))
    ink = np.clip(ink - np.percentile(ink, 50), 0, None)  # flatten paper texture / JPEG noise to 0
    if ink.max() < 25:
        raise CnnlabError("image is blank: no ink found")
    ys, xs = np.nonzero(ink > 0.2 * ink.max())
    crop = ink[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    crop = crop * (255.0 / crop.max())
    h, w = crop.shape
    scale = box / max(h, w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    small = np.asarray(
        Image.fromarray(crop.astype(np.uint8)).resize((nw, nh), Image.LANCZOS), dtype=np.float32
    )
    canvas = np.zeros((size, size), dtype=np.float32)
    total = small.sum()
    cy, cx = (np.indices(small.shape) * small).reshape(2, -1).sum(1) / total
    top = int(np.clip(round(size / 2 - cy), 0, size - nh))
    left = int(np.clip(round(size / 2 - cx), 0, size - nw))
    canvas[top : top + nh, left : left + nw] = small
    return torch.from_numpy(np.clip(canvas, 0, 255).astype(np.uint8)).unsqueeze(0)


def fit_style(img: Image.Image, shape: tuple[int, int, int]) -> torch.Tensor:
    """C x H x W uint8: greyscale (light objects on dark, like Fashion-MNIST) or RGB, fitted and centred."""
    c, h, w = shape
    if c == 1:
        ink = _ink(_grey_on_white(img))
        img = Image.fromarray(ink.astype(np.uint8))
    else:
        img = img.convert("RGB")
    img = ImageOps.pad(img, (w, h), method=Image.LANCZOS, color=0)
    arr = np.asarray(img, dtype=np.uint8)
    return torch.from_numpy(arr.reshape(h, w, c).transpose(2, 0, 1).copy())


def resize_crop(img: Image.Image, shape: tuple[int, int, int], resize: int) -> torch.Tensor:
    """torchvision's ImageNet evaluation transform: shorter side to `resize`, then the centre H x W."""
    c, h, w = shape
    img = img.convert("RGB" if c == 3 else "L")
    short, long = sorted(img.size)
    long = int(resize * long / short)  # torchvision's Resize(int): truncated, not rounded
    img = img.resize((resize, long) if img.width <= img.height else (long, resize), Image.BILINEAR)
    left, top = int(round((img.width - w) / 2.0)), int(round((img.height - h) / 2.0))  # CenterCrop's
    arr = np.asarray(img.crop((left, top, left + w, top + h)), dtype=np.uint8)
    return torch.from_numpy(arr.reshape(h, w, c).transpose(2, 0, 1).copy())


def prepare(img: Image.Image, meta: dict) -> torch.Tensor:
    """The model's uint8 input (C x H x W) for one image, by the checkpoint's dataset."""
    shape = tuple(meta["input_shape"])
    if meta.get("resize"):  # weights with their own preprocessing (ImageNet: resize 256, crop 224)
        return resize_crop(img, shape, meta["resize"])
    if meta["dataset"] in DIGIT_DATASETS and shape == (1, 28, 28):
        return mnist_style(img)
    return fit_style(img, shape)


def load_image(path: str | Path, meta: dict | None = None) -> torch.Tensor:
    """uint8 model input for an image file (MNIST-style 1 x 28 x 28 when meta is None)."""
    img = open_image(path, str(path))
    return mnist_style(img) if meta is None else prepare(img, meta)


@torch.inference_mode()
def predict(model, meta: dict, images: torch.Tensor) -> torch.Tensor:
    """Class probabilities (N x classes) for uint8 N x C x H x W inputs."""
    from cnnlab.evaluate import predict_logits

    return predict_logits(model, images, meta["mean"], meta["std"]).softmax(1)


def add_arguments(p) -> None:
    p.add_argument(
        "checkpoint", help="run folder or .safetensors file; or a model name with --pretrained/--weights"
    )
    p.add_argument("images", nargs="+", help="PNG/JPEG files of any size, colour or polarity")
    p.add_argument("--top", type=int, default=3, help="how many classes to show (default 3)")
    p.add_argument("--save-input", metavar="DIR", help="also save each preprocessed input as PNG here")
    p.add_argument("--json", action="store_true", help="a JSON list on stdout")
    p.add_argument(
        "--pretrained", action="store_true", help="CHECKPOINT is a model name: its ImageNet weights"
    )
    p.add_argument(
        "--weights", metavar="FILE", help="CHECKPOINT is a model name: weights from this .pth/.safetensors"
    )
    p.add_argument(
        "--classes", metavar="FILE", help="class names (one per line or a JSON list) for --weights"
    )


def run(args) -> int:
    from cnnlab.checkpoint import load_checkpoint

    if args.pretrained or args.weights:  # a model name: predict from weights alone, no training
        from cnnlab.models.adapt import model_from_weights

        model, meta = model_from_weights(args.checkpoint, args.pretrained, args.weights, args.classes)
    else:
        model, meta = load_checkpoint(args.checkpoint)
    inputs = torch.stack([load_image(f, meta) for f in args.images])
    probs = predict(model, meta, inputs)
    results = []
    for f, x, p in zip(args.images, inputs, probs):
        top = p.topk(min(args.top, len(p)))
        results.append(
            {
                "file": f,
                "prediction": int(top.indices[0]),
                "label": meta["classes"][int(top.indices[0])],
                "probabilities": [round(v, 6) for v in p.tolist()],
                "top": [
                    {"label": meta["classes"][int(i)], "probability": float(v)}
                    for v, i in zip(top.values, top.indices)
                ],
            }
        )
        if args.save_input:
            Path(args.save_input).mkdir(parents=True, exist_ok=True)
            Image.fromarray(x.permute(1, 2, 0).squeeze(-1).numpy()).save(
                Path(args.save_input) / (Path(f).stem + ".png")
            )
    if args.json:
        print(json.dumps(results))
        return 0
    for r in results:
        tops = ", ".join(f"{t['label']} {t['probability']:.1%}" for t in r["top"])
        print(f"{r['file']}: {r['label']}  ({tops})", file=sys.stdout)
    return 0
