"""Published weights as a family file declares them on its registration (`register_model(...,
weights=Pretrained(...))`): the file and where it is served, and what comes with it -- the normalisation
and eval transform it was trained with, and its class names. torchvision keeps the same facts in its
`Weights` enums, timm in each model's `pretrained_cfg`.

`torchvision_weights(file)` fills in torchvision's: its download folder, ImageNet's mean/std, resize 256
and centre crop 224, the 1000 ImageNet-1k classes. Everything here is plain data: downloading, checking
and loading are `cnnlab.models.weights`.
"""

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

TORCHVISION_URL = "https://download.pytorch.org/models/"
IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]


def imagenet_classes() -> list[str]:
    """The 1000 ImageNet-1k category names, index = class (torchvision's `_IMAGENET_CATEGORIES`)."""
    return (Path(__file__).parent / "imagenet_classes.txt").read_text().splitlines()


@dataclass(frozen=True)
class Pretrained:
    file: str  # file name; torch.hub's rule: the hex digits after its last '-' start its SHA-256
    url: str  # the folder it is served from: the file is url + file ($CNNLAB_WEIGHTS_URL: a mirror)
    mean: tuple[float, ...]  # per-channel normalisation the weights were trained with (0..1 scale)
    std: tuple[float, ...]  # per-channel standard deviation, same scale
    resize: int = 256  # eval transform: the shorter side resized to this, then ...
    crop: int = 224  # ... a centre crop of this size (the model's input)
    classes: tuple[str, ...] | Callable[[], list[str]] = ()  # class names, index = output (a function
    # for a long list read when needed, e.g. `imagenet_classes`)

    def preprocess(self) -> dict:
        """mean, std, resize and crop, as checkpoints record them."""
        return {"mean": list(self.mean), "std": list(self.std), "resize": self.resize, "crop": self.crop}

    def class_names(self) -> list[str]:
        return list(self.classes() if callable(self.classes) else self.classes)


def torchvision_weights(file: str, mean=IMAGENET_MEAN, std=IMAGENET_STD) -> Pretrained:
    """torchvision's IMAGENET1K_V1 file `file` (torchvision/models/*.py): V1 for every family, since they
    share one eval transform (resize 256, centre crop 224), unlike the V2 recipes."""
    return Pretrained(file, TORCHVISION_URL, tuple(mean), tuple(std), 256, 224, imagenet_classes)
