"""Image files -> uint8 arrays, the same way for training (folder datasets) and for `predict`/`serve`.

One function, `to_array`, makes every picture look alike to the network: EXIF orientation applied
(phone photos are stored sideways with a rotation tag); transparency composited on white paper;
palette, CMYK, 16-bit and 1-bit images converted with their real values (16-bit greys scaled by
1/257, not clipped); then greyscale or RGB; then the shorter side resized to `size` and the centre
cropped to size x size (what Keras, fastai and timm do for evaluation). JPEGs are decoded at a
reduced scale first when they are much larger than needed (libjpeg's DCT scaling, `Image.draft`),
which is several times faster for phone photos.

`inspect` opens one file fully (a truncated or corrupt file fails here, not in epoch 3) and tells
whether it is greyscale and how big it is. Both run in worker processes: no torch here.
"""

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

MAX_PIXELS = 40_000_000  # refuse decompression bombs (a tiny file that unpacks to gigabytes)
EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"}
)  # fmt: skip
GREY_MODES = frozenset({"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"})
ALPHA_MODES = frozenset({"RGBA", "LA", "PA", "La", "RGBa"})


class BadImage(Exception):
    """A file that is not a usable image; the message says why (one line)."""


@dataclass(frozen=True)
class Info:
    grey: bool  # every pixel has R == G == B (or the file is a greyscale format)
    short: int  # shorter side in pixels, after EXIF rotation


def is_image_name(name: str) -> bool:
    """An image file name we read: a known extension, and not hidden (`.DS_Store`, AppleDouble `._x.jpg`)."""
    dot = name.rfind(".")
    return not name.startswith(".") and dot > 0 and name[dot:].lower() in EXTENSIONS


def open_file(path: str | Path, size: int = 0) -> Image.Image:
    """Open and fully decode one image, EXIF rotation applied; `size` > 0 lets a large JPEG decode at a
    reduced scale that still leaves its shorter side >= size. Raises BadImage."""
    try:
        with warnings.catch_warnings():  # Pillow's warnings (odd EXIF, palette transparency) are noise here
            warnings.simplefilter("ignore")
            img = Image.open(path)
            if img.width * img.height > MAX_PIXELS:
                raise BadImage(f"too large ({img.width}x{img.height}, over {MAX_PIXELS:,} pixels)")
            if size and img.format == "JPEG" and img.mode in ("RGB", "L"):
                img.draft(img.mode, (size, size))
            img.load()
            # the orientation tag lives in EXIF data (JPEG, PNG eXIf, WebP) or TIFF tags; looking for it
            # in files that have neither costs ~15% of a small PNG's decode
            if "exif" in img.info or img.format in ("TIFF", "MPO"):
                img = ImageOps.exif_transpose(img)
            return img
    except BadImage:
        raise
    except FileNotFoundError:
        raise BadImage("no such file") from None
    except Image.DecompressionBombError:
        raise BadImage(f"too large (over {MAX_PIXELS:,} pixels)") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as e:
        detail = str(e).splitlines()[0][:80] if str(e) else ""
        raise BadImage(
            f"not a readable image ({type(e).__name__}{': ' + detail if detail else ''})"
        ) from None


def _high_bit_depth(img: Image.Image) -> Image.Image:
    """16/32-bit integer and float greys -> 8-bit L with their real scale (Pillow's convert clips)."""
    a = np.asarray(img)
    if img.mode == "F":
        a = a * 255.0 if a.size and float(np.nanmax(a)) <= 1.0 else a
    elif img.mode.startswith("I;16") or (a.size and int(a.max()) > 255):
        a = a.astype(np.float64) / 257.0  # 65535 -> 255
    return Image.fromarray(np.clip(np.nan_to_num(a), 0, 255).round().astype(np.uint8), "L")


def normalise_mode(img: Image.Image, channels: int) -> Image.Image:
    """Any Pillow mode -> "L" (channels 1) or "RGB" (channels 3); alpha composited on white."""
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in ALPHA_MODES:
        rgba = img.convert("RGBA")
        img = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
    if img.mode == "I" or img.mode.startswith("I;16") or img.mode == "F":
        img = _high_bit_depth(img)
    return img.convert("L" if channels == 1 else "RGB")


def fit_square(img: Image.Image, size: int) -> Image.Image:
    """Shorter side -> size (antialiased), centre crop to size x size."""
    if img.size == (size, size):
        return img
    return ImageOps.fit(img, (size, size), method=Image.BICUBIC, centering=(0.5, 0.5))


def to_array(img: Image.Image, size: int, channels: int) -> np.ndarray:
    """channels x size x size uint8 for a decoded image (see module docstring)."""
    img = fit_square(normalise_mode(img, channels), size)
    a = np.asarray(img, dtype=np.uint8)
    return a[None] if channels == 1 else a.transpose(2, 0, 1)


def decode(path: str | Path, size: int, channels: int) -> np.ndarray:
    return to_array(open_file(path, size), size, channels)


def inspect(path: str | Path) -> Info:
    """Decode once; greyscale by content (an RGB file whose pixels are all grey counts as grey)."""
    img = open_file(path)
    short = min(img.size)
    if img.mode in GREY_MODES or img.mode in ("P", "PA") and _grey_palette(img):
        return Info(True, short)
    rgb = np.asarray(normalise_mode(img, 3))
    grey = bool((rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all())
    return Info(grey, short)


def _grey_palette(img: Image.Image) -> bool:
    pal = img.getpalette() or []
    return all(pal[i] == pal[i + 1] == pal[i + 2] for i in range(0, len(pal) - 2, 3))


# --- worker-process entry points (module-level so ProcessPoolExecutor can pickle them) ---


def inspect_chunk(paths: list[str]) -> list[tuple[bool, int, str]]:
    """[(grey, shorter side, error message or "")] for each path."""
    out = []
    for p in paths:
        try:
            info = inspect(p)
            out.append((info.grey, info.short, ""))
        except BadImage as e:
            out.append((False, 0, str(e)))
    return out


def decode_chunk(npy: str, start: int, paths: list[str], size: int, channels: int) -> list[tuple[int, str]]:
    """Decode paths into rows start.. of the memory-mapped .npy array; returns [(row, error)] failures."""
    arr = np.load(npy, mmap_mode="r+")
    failed = []
    for i, p in enumerate(paths):
        try:
            arr[start + i] = decode(p, size, channels)
        except BadImage as e:
            failed.append((start + i, str(e)))
    arr.flush()
    del arr
    return failed
