"""Image-folder fixtures built from real images (MNIST / Fashion-MNIST test images), written in every
format and colour mode a user's folder may hold, plus the junk real folders contain."""

import io
from pathlib import Path

import numpy as np
from PIL import Image

# what each variant does to a greyscale uint8 image before saving (index = image number % len)
VARIANTS = (
    "png-L",
    "jpeg-L",
    "png-RGB",
    "jpeg-CMYK",
    "png-16bit",
    "png-palette",
    "png-RGBA",
    "jpeg-exif6",
    "bmp-L",
)


def mnist_sample_test(n_per_class: int) -> tuple[np.ndarray, np.ndarray]:
    """The first n_per_class held-out images of each digit of the bundled mnist-sample (always available)."""
    from cnnlab.data import load_dataset

    data = load_dataset("mnist-sample")
    return pick(data.test_x[:, 0].numpy(), data.test_y.numpy(), n_per_class)


def pick(x: np.ndarray, y: np.ndarray, n_per_class: int) -> tuple[np.ndarray, np.ndarray]:
    idx = np.concatenate([np.nonzero(y == c)[0][:n_per_class] for c in np.unique(y)])
    return x[idx], y[idx]


def save_variant(a: np.ndarray, path: Path, variant: str) -> Path:
    """Save grey image `a` (H x W uint8) as `variant`; returns the path written (suffix set by the format)."""
    kind, mode = variant.split("-")
    path = path.with_suffix({"png": ".png", "jpeg": ".jpg", "bmp": ".bmp"}[kind])
    img = Image.fromarray(a, "L")
    if mode == "RGB":
        img.convert("RGB").save(path)
    elif mode == "CMYK":
        img.convert("RGB").convert("CMYK").save(path, quality=95)
    elif mode == "16bit":
        Image.fromarray(a.astype(np.uint16) * 257).save(path)  # mode I;16: 0..65535
    elif mode == "palette":
        img.convert("P").save(path)
    elif mode == "RGBA":
        rgba = img.convert("RGBA")
        rgba.putalpha(255)
        rgba.save(path)
    elif mode == "exif6":
        # stored sideways with "rotate 90 CW to display" (orientation 6), as phones do
        stored = img.transpose(Image.Transpose.ROTATE_90)
        exif = Image.Exif()
        exif[0x0112] = 6
        stored.save(path, quality=95, exif=exif.tobytes())
    else:
        img.save(path, quality=95) if kind == "jpeg" else img.save(path)
    return path


def make_folder(
    root: Path, x: np.ndarray, y: np.ndarray, classes: list[str], variants=VARIANTS, junk: bool = True
) -> dict:
    """ROOT/<class>/[sub/]NNNN.ext for every image (variant i % len(variants)); with junk: a corrupt PNG,
    a hidden folder with an image, AppleDouble and .DS_Store files, a text file. Returns what was written."""
    written = []
    counters = [0] * len(classes)
    for a, label in zip(x, y):
        i = counters[label]
        counters[label] += 1
        folder = root / classes[label] / ("sub" if i % 5 == 4 else "")
        folder.mkdir(parents=True, exist_ok=True)
        written.append(save_variant(a, folder / f"{i:04d}", variants[i % len(variants)]))
    corrupt = None
    if junk:
        first = root / classes[0]
        good = io.BytesIO()
        Image.fromarray(x[0]).save(good, format="PNG")
        corrupt = first / "broken.png"
        corrupt.write_bytes(good.getvalue()[: len(good.getvalue()) // 2])  # truncated mid-data
        (root / ".ipynb_checkpoints").mkdir(exist_ok=True)
        Image.fromarray(x[0]).save(root / ".ipynb_checkpoints" / "x.png")
        (first / ".hidden").mkdir(exist_ok=True)
        Image.fromarray(x[0]).save(first / ".hidden" / "y.png")
        (first / "._0000.jpg").write_bytes(b"\x00\x05\x16\x07" + b"\x00" * 80)  # AppleDouble resource fork
        (first / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1" + b"\x00" * 64)
        (first / "notes.txt").write_text("not an image")
    return {"files": written, "corrupt": corrupt}
