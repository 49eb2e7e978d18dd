"""Where dataset files come from, tried in this order (first hit wins):

1. `--data-dir DIR`  (the files in DIR, or in DIR/<dataset>, or where torchvision put them:
                     DIR/MNIST/raw, DIR/FashionMNIST/raw, DIR/KMNIST/raw, DIR/cifar-10-batches-py)
2. `$CNNLAB_DATA`    (same rule)
3. the user cache    (`~/.cache/cnnlab/<dataset>` on Linux; platformdirs elsewhere)
4. download          (each official mirror in turn, MD5-checked, into the cache)

`mnist-sample` ships inside the package and needs none of these.
"""

import hashlib
import os
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from platformdirs import user_cache_dir

from cnnlab.data.idx import read_bytes
from cnnlab.errors import CnnlabError

BUNDLED = Path(__file__).parent / "bundled"


@dataclass(frozen=True)
class FileSpec:
    name: str  # file name as the mirrors serve it
    md5: str  # MD5 of the served file (torchvision's list)
    raw_md5: str = ""  # MD5 of the decompressed bytes: also accepted, since re-compressed copies differ


@dataclass(frozen=True)
class Source:
    files: tuple[FileSpec, ...]  # what must be present
    mirrors: tuple[str, ...] = field(default_factory=tuple)  # base URLs, tried in order


_MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)

SOURCES: dict[str, Source] = {
    "mnist": Source(
        (
            FileSpec(
                "train-images-idx3-ubyte.gz",
                "f68b3c2dcbeaaa9fbdd348bbdeb94873",
                "6bbc9ace898e44ae57da46a324031adb",
            ),
            FileSpec(
                "train-labels-idx1-ubyte.gz",
                "d53e105ee54ea40749a09fcbcd1e9432",
                "a25bea736e30d166cdddb491f175f624",
            ),
            FileSpec(
                "t10k-images-idx3-ubyte.gz",
                "9fb629c4189551a2d022fa330f9573f3",
                "2646ac647ad5339dbf082846283269ea",
            ),
            FileSpec(
                "t10k-labels-idx1-ubyte.gz",
                "ec29112dd5afa0611ce80d1b7f02629c",
                "27ae3e4e09519cfbb04c329615203637",
            ),
        ),
        _MNIST_MIRRORS,
    ),
    "fashion-mnist": Source(
        (
            FileSpec(
                "train-images-idx3-ubyte.gz",
                "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
                "f4a8712d7a061bf5bd6d2ca38dc4d50a",
            ),
            FileSpec(
                "train-labels-idx1-ubyte.gz",
                "25c81989df183df01b3e8a0aad5dffbe",
                "9018921c3c673c538a1fc5bad174d6f9",
            ),
            FileSpec(
                "t10k-images-idx3-ubyte.gz",
                "bef4ecab320f06d8554ea6380940ec79",
                "8181f5470baa50b63fa0f6fddb340f0a",
            ),
            FileSpec(
                "t10k-labels-idx1-ubyte.gz",
                "bb300cfdad3c16e7a12a480ee83cd310",
                "15d484375f8d13e6eb1aabb0c3f46965",
            ),
        ),
        (
            "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
            "https://github.com/zalandoresearch/fashion-mnist/raw/master/data/fashion/",
        ),
    ),
    "kmnist": Source(
        (
            FileSpec("train-images-idx3-ubyte.gz", "bdb82020997e1d708af4cf47b453dcf7"),
            FileSpec("train-labels-idx1-ubyte.gz", "e144d726b3acfaa3e44228e80efcd344"),
            FileSpec("t10k-images-idx3-ubyte.gz", "5c965bf0a639b31b8f53240b1b52f4d7"),
            FileSpec("t10k-labels-idx1-ubyte.gz", "7320c461ea6c1c855c0b718fb2a4b134"),
        ),
        ("http://codh.rois.ac.jp/kmnist/dataset/kmnist/",),
    ),
    "cifar10": Source(
        (FileSpec("cifar-10-python.tar.gz", "c58f30108f718f92721af3b95e74349a"),),
        ("https://www.cs.toronto.edu/~kriz/",),
    ),
}


# torchvision's download folders (`datasets.MNIST(root=DIR, download=True)` -> DIR/MNIST/raw/...)
TORCHVISION_DIRS = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST", "kmnist": "KMNIST"}


def idx_names(name: str) -> list[str]:
    """A file name as served ("train-images-idx3-ubyte.gz") and the spellings found on disks: without
    .gz, and with a dot ("train-images.idx3-ubyte", how some mirrors and tutorials name it)."""
    raw = name.removesuffix(".gz")
    dotted = raw.replace("-idx", ".idx")
    return list(dict.fromkeys([name, raw, dotted + ".gz", dotted]))


def candidate_folders(base: Path, name: str) -> list[Path]:
    """Where a dataset's files may sit below a folder: the folder, its <name>/ subfolder, torchvision's
    layout (<base>/MNIST/raw, also <base>/<name>/MNIST/raw), or the CIFAR batches folder itself."""
    out = [base, base / name]
    if name in TORCHVISION_DIRS:
        out += [base / TORCHVISION_DIRS[name] / "raw", base / name / TORCHVISION_DIRS[name] / "raw"]
    if name == "cifar10" and base.name == "cifar-10-batches-py":
        out.append(base.parent)
    return out


def cache_home() -> Path:
    """`$CNNLAB_CACHE`, else the user cache (`~/.cache/cnnlab` on Linux). Set but empty counts as unset,
    as an empty XDG_CACHE_HOME does: Path("") is the working folder, which would fill with cache files."""
    return Path(os.environ.get("CNNLAB_CACHE") or user_cache_dir("cnnlab"))


def cache_dir(name: str) -> Path:
    return cache_home() / name


def _present(folder: Path, stem: str) -> Path | None:
    """The file `stem` in folder, raw or .gz (CIFAR: the tarball or an extracted folder)."""
    for candidate in idx_names(stem):
        if (folder / candidate).is_file():
            return folder / candidate
    if stem == "cifar-10-python.tar.gz" and (folder / "cifar-10-batches-py").is_dir():
        return folder / "cifar-10-batches-py"
    return None


def _complete(folder: Path, source: Source) -> bool:
    return all(_present(folder, f.name) for f in source.files)


def locate(
    name: str,
    data_dir: str | None = None,
    download: bool = True,
    progress: bool = True,
    only: tuple[str, ...] | None = None,
) -> Path:
    """The folder holding dataset `name`'s files, downloading into the cache if needed; `only` (file
    names) narrows what must be present, e.g. the test split alone for `cnnlab eval`."""
    source = SOURCES[name]
    if only is not None:
        source = Source(tuple(f for f in source.files if f.name in only), source.mirrors)
    if data_dir is not None:
        for folder in candidate_folders(Path(data_dir), name):
            if _complete(folder, source):
                return folder
        wanted = ", ".join(f.name for f in source.files)
        raise CnnlabError(f"--data-dir {data_dir}: {name} files not found there (need {wanted}, raw or .gz)")
    env = os.environ.get("CNNLAB_DATA")
    tried = []
    for folder in (candidate_folders(Path(env), name) if env else []) + [cache_dir(name)]:
        if _complete(folder, source):
            return folder
        tried.append(str(folder))
    if download:
        return fetch(name, cache_dir(name), progress=progress, only=only)
    raise CnnlabError(_not_found(name, tried))


def _not_found(name: str, tried: list[str]) -> str:
    return (
        f"dataset {name!r} not found (looked in {', '.join(tried)}) and downloading is off or failed. "
        f"Options: pass --data-dir DIR holding its files, set CNNLAB_DATA to a folder with a {name}/ subfolder, "
        f"copy the files into {cache_dir(name)}, or go online so cnnlab can download them; "
        "`--dataset mnist-sample` runs with no files at all"
    )


def fetch(
    name: str,
    dest: Path,
    mirrors: tuple[str, ...] | None = None,
    progress: bool = True,
    only: tuple[str, ...] | None = None,
) -> Path:
    """Download every missing file of `name` (or those in `only`) into dest; mirrors default to its own."""
    source = SOURCES[name]
    mirrors = mirrors or source.mirrors
    for spec in source.files:
        if only is not None and spec.name not in only:
            continue
        if _present(dest, spec.name) is None:
            download_file(spec, mirrors, dest, progress=progress, dataset=name)
    return dest


def verify(path: Path, spec: FileSpec) -> bool:
    """True when the file's MD5, or (for gzip) that of its decompressed bytes, is a known one."""
    data = path.read_bytes()
    if hashlib.md5(data).hexdigest() == spec.md5:
        return True
    if spec.raw_md5:
        try:
            return hashlib.md5(read_bytes(path)).hexdigest() == spec.raw_md5
        except CnnlabError:
            return False
    return False


def download_file(
    spec: FileSpec, mirrors: tuple[str, ...], dest: Path, progress: bool = True, dataset: str = ""
) -> Path:
    """Try each mirror in turn; the file lands in dest only once its checksum is right."""
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise CnnlabError(f"cannot create data cache {dest}: {e.strerror}") from None
    target, partial = dest / spec.name, dest / (spec.name + ".part")
    errors = []
    for base in mirrors:
        url = base + spec.name
        try:
            _stream(url, partial, progress)
        except (urllib.error.URLError, OSError, TimeoutError) as e:
            errors.append(f"{url}: {getattr(e, 'reason', e)}")
            continue
        if verify(partial, spec):
            os.replace(partial, target)
            return target
        errors.append(f"{url}: checksum mismatch (expected MD5 {spec.md5})")
        partial.unlink(missing_ok=True)
    partial.unlink(missing_ok=True)
    hint = _not_found(dataset, [str(dest)]) if dataset else ""
    raise CnnlabError(f"could not download {spec.name}: " + "; ".join(errors) + (f". {hint}" if hint else ""))


def _stream(url: str, out: Path, progress: bool) -> None:
    from tqdm import tqdm

    with urllib.request.urlopen(url, timeout=30) as r, open(out, "wb") as f:
        total = int(r.headers.get("Content-Length") or 0) or None
        with tqdm(
            total=total, unit="B", unit_scale=True, desc=url.rsplit("/", 1)[-1], disable=not progress
        ) as bar:
            while chunk := r.read(1 << 16):
                f.write(chunk)
                bar.update(len(chunk))
