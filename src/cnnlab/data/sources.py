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
from pathlib import Path

from platformdirs import user_cache_dir

from cnnlab.core.download import DownloadError, download
from cnnlab.data.idx import read_bytes
from cnnlab.data.records import DATASETS, FileSpec
from cnnlab.errors import CnnlabError
from cnnlab.i18n import _

BUNDLED = Path(__file__).parent / "bundled"


def idx_names(name: str) -> list[str]:
    """A file name as served ("train-images-idx3-ubyte.gz") and the spellings found on disks: without
    .gz, and with a dot ("train-images.idx3-ubyte", how some mirrors and tutorials name it)."""
    raw = name.removesuffix(".gz")
    dotted = raw.replace("-idx", ".idx")
    return list(dict.fromkeys([name, raw, dotted + ".gz", dotted]))


def candidate_folders(base: Path, name: str) -> list[Path]:
    """Where a dataset's files may sit below a folder: the folder, its <name>/ subfolder, torchvision's
    layout (<base>/MNIST/raw, also <base>/<name>/MNIST/raw), or the CIFAR batches folder itself."""
    record = DATASETS.get(name)
    out = [base, base / name]
    if record is not None and record.torchvision_dir:
        tv = record.torchvision_dir
        out += [base / tv / "raw", base / name / tv / "raw"]
    if record is not None and record.kind == "cifar" and base.name == "cifar-10-batches-py":
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


def _complete(folder: Path, files: tuple[FileSpec, ...]) -> bool:
    return all(_present(folder, f.name) for f in files)


def locate(
    name: str,
    data_dir: str | None = None,
    download: bool = True,
    progress: bool = True,
    only: tuple[str, ...] | None = None,
) -> Path:
    """The folder holding dataset `name`'s files, downloading into the cache if needed; `only` (file
    names) narrows what must be present, e.g. the test split alone for `cnnlab eval`."""
    files = tuple(f for f in DATASETS[name].files if only is None or f.name in only)
    if data_dir is not None:
        for folder in candidate_folders(Path(data_dir), name):
            if _complete(folder, files):
                return folder
        wanted = ", ".join(f.name for f in files)
        raise CnnlabError(
            _("--data-dir {dir}: {name} files not found there (need {wanted}, raw or .gz)", dir=data_dir,
              name=name, wanted=wanted)
        )  # fmt: skip
    env = os.environ.get("CNNLAB_DATA")
    tried = []
    for folder in (candidate_folders(Path(env), name) if env else []) + [cache_dir(name)]:
        if _complete(folder, files):
            return folder
        tried.append(str(folder))
    if download:
        return fetch(name, cache_dir(name), progress=progress, only=only)
    raise CnnlabError(_not_found(name, tried))


def _not_found(name: str, tried: list[str]) -> str:
    return _(
        "dataset {name} not found (looked in {tried}) and downloading is off or failed. "
        "Options: pass --data-dir DIR holding its files, set CNNLAB_DATA to a folder with a {folder}/ subfolder, "
        "copy the files into {cache}, or go online so cnnlab can download them; "
        "`--dataset mnist-sample` runs with no files at all",
        name=repr(name), tried=", ".join(tried), folder=name, cache=cache_dir(name),
    )  # fmt: skip


def fetch(
    name: str,
    dest: Path,
    mirrors: tuple[str, ...] | None = None,
    progress: bool = True,
    only: tuple[str, ...] | None = None,
) -> Path:
    """Download every missing file of `name` (or those in `only`) into dest; mirrors default to its own."""
    record = DATASETS[name]
    mirrors = mirrors or record.mirrors
    for spec in record.files:
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
        raise CnnlabError(
            _("cannot create data cache {dest}: {reason}", dest=dest, reason=e.strerror)
        ) from None
    errors = []
    for base in mirrors:
        url = base + spec.name
        try:
            return download(url, dest / spec.name, check=lambda part: verify(part, spec), progress=progress)
        except DownloadError as e:
            if e.checksum:
                errors.append(_("{url}: checksum mismatch (expected MD5 {md5})", url=url, md5=spec.md5))
            else:
                errors.append(f"{e.url}: {e.reason}")  # the network's own words (urllib's reason)
    fields = dict(name=spec.name, errors="; ".join(errors))
    if dataset:
        hint = _not_found(dataset, [str(dest)])
        raise CnnlabError(_("could not download {name}: {errors}. {hint}", hint=hint, **fields))
    raise CnnlabError(_("could not download {name}: {errors}", **fields))
