"""Real images -> the model's input -> the top classes: what `cnnlab predict` (cnnlab.commands.predict),
`cnnlab.predict(...)`, the server and Grad-CAM call.

A new image is read the way the run's own images were (the checkpoint's `DataSpec`, cnnlab.data.spec):
handwriting (MNIST, KMNIST, a folder read as digits) by what LeCun et al. did to build MNIST: greyscale;
light ink on a dark background (a dark-on-light scan is inverted); crop to the ink; scale the ink to fit
a 20 x 20 box keeping its aspect ratio (anti-aliased); paste it into 28 x 28 so its centre of mass sits
at the centre. Models trained on a folder of photos get exactly what their training images got
(`cnnlab.data.images.to_array`): shorter side resized to the input size, centre crop, greyscale or RGB.
The built-in Fashion-MNIST and CIFAR-10 keep being fitted and centred (how those datasets were made).
Every input is then normalised with the run's own mean/std.
"""

import io
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from cnnlab.errors import CnnlabError
from cnnlab.i18n import N_, _

MAX_PIXELS = 40_000_000  # refuse decompression bombs (a tiny PNG that unpacks to gigabytes)
# Why `cnnlab.data.files.expand` found no image for a name: English words it returns, shown translated here
EXPAND_REASONS = (
    N_("no such file"),
    N_("no image files in this folder"),
    N_("no image file matches this pattern"),
)


def open_image(source: str | Path | bytes, name: str = "image") -> Image.Image:
    """Open and fully decode an image file or bytes; any failure is one clear CnnlabError.

    The pixel count is checked from the header before decoding, so a decompression bomb (a tiny
    PNG that unpacks to gigabytes) is refused without touching Pillow's global limits (thread-safe).
    Only a regular file is read: a FIFO would block forever, a device never end (`regular_file`).
    """
    if isinstance(source, bytes):
        return _decode(io.BytesIO(source), name)
    with regular_file(source, name) as f:
        return _decode(f, name)


def regular_file(path: str | Path, name: str):
    """`path` opened for reading if it is a regular file (after links); else one clear CnnlabError.

    Opened with O_NONBLOCK and checked with fstat on the open descriptor, so neither a FIFO (whose plain
    open waits for a writer) nor a file swapped for one between a check and the open can block."""
    import os
    import stat

    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        raise CnnlabError(_("{name}: no such file", name=name)) from None
    except OSError as e:
        raise CnnlabError(_("{name}: cannot open ({why})", name=name, why=e.strerror or e)) from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        if stat.S_ISDIR(mode):
            raise CnnlabError(_("{name}: a folder; only image files are read", name=name))
        raise CnnlabError(
            _("{name}: not a regular file (a FIFO, socket or device); only image files are read", name=name)
        )
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def _decode(f, name: str) -> Image.Image:
    try:
        img = Image.open(f)
        if img.width * img.height > MAX_PIXELS:
            raise CnnlabError(
                _(
                    "{name}: image too large ({width}x{height}, over {limit:,} pixels)",
                    name=name,
                    width=img.width,
                    height=img.height,
                    limit=MAX_PIXELS,
                )
            )
        img.load()
        return ImageOps.exif_transpose(img)
    except Image.DecompressionBombError:
        raise CnnlabError(
            _("{name}: image too large (over {limit:,} pixels)", name=name, limit=MAX_PIXELS)
        ) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise CnnlabError(
            _("{name}: not a readable image ({kind})", name=name, kind=type(e).__name__)
        ) from None


def mnist_style(img: Image.Image, size: int = 28) -> torch.Tensor:
    """1 x size x size uint8 by MNIST's own recipe (`cnnlab.data.images.digit_array`, the function that
    read the training images of a handwriting folder too)."""
    from cnnlab.data.images import BadImage, digit_array

    try:
        return torch.from_numpy(digit_array(img, size)).unsqueeze(0)
    except BadImage as e:
        raise CnnlabError(_("image is {problem}", problem=e)) from None


def _ink(grey: np.ndarray) -> np.ndarray:
    """Light on dark: an image on light paper (by its border's median) is inverted."""
    from cnnlab.data.images import border_pixels

    return 255.0 - grey if np.median(border_pixels(grey)) > 127 else grey


def fit_style(img: Image.Image, shape: tuple[int, int, int]) -> torch.Tensor:
    """C x H x W uint8: greyscale (light objects on dark, like Fashion-MNIST) or RGB, fitted and centred."""
    from cnnlab.data.images import grey_array

    c, h, w = shape
    if c == 1:
        ink = _ink(grey_array(img))
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


def photo_style(img: Image.Image, shape: tuple[int, int, int]) -> torch.Tensor:
    """C x S x S uint8 exactly as a folder dataset's training images were made: shorter side to S,
    centre crop, alpha on white, greyscale or RGB."""
    from cnnlab.data.images import to_array

    c, h, _w = shape
    return torch.from_numpy(to_array(img, h, c).copy())


def preprocessing(meta: dict) -> str:
    """ "digit", "photo" or "fit": how the checkpoint's images were read (cnnlab.data.spec.DataSpec)."""
    from cnnlab.data.spec import DataSpec

    return DataSpec.from_meta(meta).preprocess


def prepare(img: Image.Image, meta: dict) -> torch.Tensor:
    """The model's uint8 input (C x H x W) for one image, read as the run's own images were."""
    from cnnlab.data.spec import DataSpec

    spec = DataSpec.from_meta(meta)
    if spec.resize:  # weights with their own preprocessing (ImageNet: resize 256, crop 224)
        return resize_crop(img, spec.shape, spec.resize)
    if spec.preprocess == "digit":
        return mnist_style(img, spec.size)
    if spec.preprocess == "photo":
        return photo_style(img, spec.shape)
    return fit_style(img, spec.shape)


def load_image(path: str | Path, meta: dict | None = None) -> torch.Tensor:
    """uint8 model input for an image file (MNIST-style 1 x 28 x 28 when meta is None)."""
    img = open_image(path, str(path))
    return mnist_style(img) if meta is None else prepare(img, meta)


@torch.inference_mode()
def predict(model, meta: dict, images: torch.Tensor) -> torch.Tensor:
    """Class probabilities (N x classes) for uint8 N x C x H x W inputs, with the run's own TTA setting."""
    from cnnlab.checkpoint_meta import tta_of
    from cnnlab.evaluation import predict_logits

    return predict_logits(model, images, meta["mean"], meta["std"], tta=tta_of(meta)).softmax(1)


BATCH = 256  # images per forward pass: a folder of thousands is predicted in bounded memory


def predict_records(checkpoint, images, top: int = 3, save_input: str | Path | None = None) -> list[dict]:
    """What `cnnlab predict --json` prints: one record per image for a run folder, checkpoint file or
    (model, meta) pair. `images`: file paths, folders (their images, recursively), glob patterns, PIL
    images. Each image on its own: one that cannot be read or has no ink gets a record with an `error`
    field, the others are predicted. `save_input`: also write each model input as PNG there (a/7.png and
    b/7.png become 7.png and 7-2.png)."""
    from cnnlab.checkpoint import as_loaded
    from cnnlab.data.files import expand

    items: list[tuple[object, str | None, str]] = []  # (PIL image or path, name, error)
    for img in images:
        if isinstance(img, Image.Image):
            items.append((img, None, ""))
        else:
            items += [(f, f, why) for f, why in expand([str(img)])]
    names = [name for _img, name, _why in items]
    files = [n or f"image-{k}" for k, n in enumerate(names)]
    save_to = saved_names(save_input, files, [checkpoint])  # DIR and names checked first
    model, meta = as_loaded(checkpoint)
    results: list[dict] = []
    for at in range(0, len(items), BATCH):
        results += _predict_batch(model, meta, items[at : at + BATCH], at, top, save_to)
    return results


def _predict_batch(model, meta, items, at: int, top: int, save_to) -> list[dict]:
    inputs, errors = {}, {}
    for i, (img, name, why) in enumerate(items, start=at):
        label = name or _("image {i}", i=i)
        try:
            if why:
                raise CnnlabError(_(why))  # one of EXPAND_REASONS (the text as it is if another)
            inputs[i] = prepare(img, meta) if name is None else load_image(img, meta)
        except CnnlabError as e:
            errors[i] = str(e) if str(e).startswith(label) else f"{label}: {e}"
    probs = dict(zip(inputs, predict(model, meta, torch.stack(list(inputs.values()))))) if inputs else {}
    results = []
    for i, (_img, name, _why) in enumerate(items, start=at):
        if i in errors:
            results.append({"file": name, "error": errors[i]})
            continue
        p = probs[i]
        best = p.topk(min(top, len(p)))
        results.append(
            {
                "file": name,
                "prediction": int(best.indices[0]),
                "label": meta["classes"][int(best.indices[0])],
                "probabilities": [round(v, 6) for v in p.tolist()],
                "top": [
                    {"label": meta["classes"][int(k)], "probability": round(float(v), 6)}
                    for v, k in zip(best.values, best.indices)
                ],
            }
        )
    if save_to is not None:
        save_inputs({save_to[i]: x for i, x in inputs.items()})
    return results


def write_csv(path: str, results: list[dict]) -> None:
    """One row per file: file, label, probability, the top classes, error (atomically written)."""
    import csv
    import io

    from cnnlab.core.files import atomic_write_text

    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["file", "label", "probability", "top", "error"])
    for r in results:
        if "error" in r:
            w.writerow([r["file"], "", "", "", r["error"]])
        else:
            tops = "; ".join(f"{t['label']} {t['probability']:.4f}" for t in r["top"])
            w.writerow([r["file"], r["label"], f"{r['top'][0]['probability']:.6f}", tops, ""])
    atomic_write_text(Path(path), buf.getvalue())


# ---- --save-input: one PNG per input, named after it; a/7.png, b/7.png -> 7.png, 7-2.png


def saved_names(save_dir: str | None, files: list[str], reads=()) -> dict | None:
    """{input index: PNG path} for --save-input, or None; a DIR that is a file is refused up front, and so
    is a name that is one of the inputs or the checkpoint (`a.png --save-input .` would overwrite a.png)."""
    if not save_dir:
        return None
    from cnnlab.core.files import output_file, read_set

    folder = Path(save_dir)
    if folder.exists() and not folder.is_dir():
        raise CnnlabError(_("--save-input {folder}: is a file, not a folder", folder=folder))
    names, used, ids = {}, set(), read_set([*files, *reads])
    for i, f in enumerate(files):
        stem, n = Path(f).stem or "input", 1
        name = f"{stem}.png"
        while name in used:
            n += 1
            name = f"{stem}-{n}.png"
        used.add(name)
        names[i] = folder / name
        output_file(names[i], ids)
    return names


def save_inputs(images: dict[Path, torch.Tensor]) -> None:
    """Write each uint8 C x H x W input as a PNG (greyscale or RGB), atomically."""
    from cnnlab.core.files import atomic_write, write_error

    for path, x in images.items():
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise write_error(path, e) from None
        img = Image.fromarray(x.permute(1, 2, 0).squeeze(-1).numpy())
        atomic_write(path, lambda tmp, img=img: img.save(tmp, format="PNG"))
