"""One record per built-in dataset: everything cnnlab knows about it, in one place.

`load_dataset`'s list of names, the readers, where files are looked for and downloaded from (with their
published MD5s), the identity check that names another dataset's files for what they are, the refusal to
flip handwriting and the data's description (`DataSpec`: read as "digit", orientation sensitive) all read
the record. A new dataset in one of the existing formats is one more entry in `DATASETS` below
(docs/extending.md, "Adding a dataset"; tests/test_extending.py adds one in a test and finds it in all
of those places).
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class FileSpec:
    name: str  # file name as the mirrors serve it
    md5: str  # MD5 of the served file (torchvision's list)
    raw_md5: str = ""  # MD5 of the decompressed bytes: also accepted, since re-compressed copies differ


@dataclass(frozen=True)
class DatasetRecord:
    name: str  # what --dataset takes, e.g. "fashion-mnist"
    pretty: str  # how people write it, for messages: "Fashion-MNIST"
    classes: tuple[str, ...]  # class names, index = label
    mean: tuple[float, ...]  # per-channel normalisation constants (the usual published values, 0..1 scale)
    std: tuple[float, ...]  # per-channel standard deviation, same scale
    kind: str  # the reader: "idx" (IDX files), "cifar" (CIFAR-10's python batches), "bundled" (shipped IDX)
    handwriting: bool = False  # digits or characters: read as "digit" (MNIST's recipe), flips refused
    files: tuple[FileSpec, ...] = ()  # the files it needs, with their published checksums
    mirrors: tuple[str, ...] = ()  # base URLs the files are downloaded from, tried in order
    torchvision_dir: str = ""  # torchvision's folder for it (DIR/<this>/raw), searched too

    @property
    def preprocess(self) -> str:
        """How a new image is read for a model trained on it (cnnlab.data.spec)."""
        return "digit" if self.handwriting else "fit"

    @property
    def why(self) -> str:
        """Why its images are read as `preprocess`, in words (the training log says it)."""
        if self.handwriting:
            return f"{self.name} is handwriting"
        return f"{self.name}'s images were made fitted and centred"


def handwriting(name: str | None) -> bool:
    """True for a built-in dataset of handwritten digits or characters (flips refused, read as digits)."""
    record = DATASETS.get(name or "")
    return record is not None and record.handwriting


DIGITS = tuple(str(i) for i in range(10))
_MNIST_MEAN, _MNIST_STD = (0.1307,), (0.3081,)
_MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)


def _idx_files(md5s: tuple[str, str, str, str], raw: tuple[str, ...] = ("", "", "", "")) -> tuple:
    """The four IDX files every MNIST-format dataset has, with their MD5s in this order."""
    names = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte")
    names += ("t10k-labels-idx1-ubyte",)
    return tuple(FileSpec(f"{n}.gz", m, r) for n, m, r in zip(names, md5s, raw))


DATASETS: dict[str, DatasetRecord] = {
    r.name: r
    for r in (
        DatasetRecord(
            "mnist",
            "MNIST",
            DIGITS,
            _MNIST_MEAN,
            _MNIST_STD,
            "idx",
            handwriting=True,
            files=_idx_files(
                (
                    "f68b3c2dcbeaaa9fbdd348bbdeb94873",
                    "d53e105ee54ea40749a09fcbcd1e9432",
                    "9fb629c4189551a2d022fa330f9573f3",
                    "ec29112dd5afa0611ce80d1b7f02629c",
                ),
                (
                    "6bbc9ace898e44ae57da46a324031adb",
                    "a25bea736e30d166cdddb491f175f624",
                    "2646ac647ad5339dbf082846283269ea",
                    "27ae3e4e09519cfbb04c329615203637",
                ),
            ),
            mirrors=_MNIST_MIRRORS,
            torchvision_dir="MNIST",
        ),
        # the first 10,000 MNIST training images, shipped in the package (data/bundled)
        DatasetRecord("mnist-sample", "MNIST sample", DIGITS, _MNIST_MEAN, _MNIST_STD, "bundled", True),
        DatasetRecord(
            "fashion-mnist",
            "Fashion-MNIST",
            (
                "T-shirt/top",
                "Trouser",
                "Pullover",
                "Dress",
                "Coat",
                "Sandal",
                "Shirt",
                "Sneaker",
                "Bag",
                "Ankle boot",
            ),
            (0.2860,),
            (0.3530,),
            "idx",
            files=_idx_files(
                (
                    "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
                    "25c81989df183df01b3e8a0aad5dffbe",
                    "bef4ecab320f06d8554ea6380940ec79",
                    "bb300cfdad3c16e7a12a480ee83cd310",
                ),
                (
                    "f4a8712d7a061bf5bd6d2ca38dc4d50a",
                    "9018921c3c673c538a1fc5bad174d6f9",
                    "8181f5470baa50b63fa0f6fddb340f0a",
                    "15d484375f8d13e6eb1aabb0c3f46965",
                ),
            ),
            mirrors=(
                "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
                "https://github.com/zalandoresearch/fashion-mnist/raw/master/data/fashion/",
            ),
            torchvision_dir="FashionMNIST",
        ),
        DatasetRecord(
            "kmnist",
            "KMNIST",
            ("o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"),
            (0.1918,),
            (0.3483,),
            "idx",
            handwriting=True,  # Kuzushiji characters: a mirrored character is no character either
            files=_idx_files(
                (
                    "bdb82020997e1d708af4cf47b453dcf7",
                    "e144d726b3acfaa3e44228e80efcd344",
                    "5c965bf0a639b31b8f53240b1b52f4d7",
                    "7320c461ea6c1c855c0b718fb2a4b134",
                )
            ),
            mirrors=("http://codh.rois.ac.jp/kmnist/dataset/kmnist/",),
            torchvision_dir="KMNIST",
        ),
        DatasetRecord(
            "cifar10",
            "CIFAR-10",
            ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"),
            (0.4914, 0.4822, 0.4465),
            (0.2470, 0.2435, 0.2616),
            "cifar",
            files=(FileSpec("cifar-10-python.tar.gz", "c58f30108f718f92721af3b95e74349a"),),
            mirrors=("https://www.cs.toronto.edu/~kriz/",),
        ),
    )
}
