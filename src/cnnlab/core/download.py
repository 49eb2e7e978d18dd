"""One downloader for every file cnnlab fetches (dataset files, published weights): streamed to
`TARGET.part` with a tqdm progress bar and a timeout, checked, and only then renamed to TARGET, so a
broken or wrong download is never used and never left behind.

The check is the caller's (`check(path) -> bool`): datasets compare MD5s (of the file or its gunzipped
bytes), weights the SHA-256 prefix in their file name (torch.hub's rule). A failure raises
`DownloadError` saying why -- the network error, or `checksum=True` -- and the caller words the message
(the next mirror, or what to do instead).
"""

import os
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from cnnlab.i18n import _

TIMEOUT = 30.0  # seconds a connection or a read may stall before the mirror counts as down


class DownloadError(Exception):
    """A download that did not give a usable file: `reason` in words, `checksum` when the file arrived but
    failed its check."""

    def __init__(self, url: str, reason: str, checksum: bool = False):
        super().__init__(f"{url}: {reason}")
        self.url, self.reason, self.checksum = url, reason, checksum


def stream(url: str, out: Path, progress: bool = True, timeout: float = TIMEOUT) -> None:
    """Write the body of `url` to `out` in 64 KiB chunks, with a progress bar named after the file."""
    from tqdm import tqdm

    with urllib.request.urlopen(url, timeout=timeout) as r, open(out, "wb") as f:
        total = int(r.headers.get("Content-Length") or 0) or None
        with tqdm(
            total=total, unit="B", unit_scale=True, desc=url.rsplit("/", 1)[-1], disable=not progress
        ) as bar:
            while chunk := r.read(1 << 16):
                f.write(chunk)
                bar.update(len(chunk))


def download(
    url: str,
    target: Path,
    check: Callable[[Path], bool] | None = None,
    progress: bool = True,
    timeout: float = TIMEOUT,
) -> Path:
    """Download `url` to `target` (whose folder must exist) via `target.part`; `check(part)` must pass
    before the rename. Raises DownloadError (no `.part` left behind)."""
    target = Path(target)
    part = target.with_name(target.name + ".part")
    try:
        stream(url, part, progress, timeout)
    except (urllib.error.URLError, OSError, TimeoutError) as e:
        part.unlink(missing_ok=True)
        raise DownloadError(url, str(getattr(e, "reason", e))) from None
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    if check is not None and not check(part):
        part.unlink(missing_ok=True)
        raise DownloadError(url, _("checksum mismatch"), checksum=True)
    os.replace(part, target)
    return target
