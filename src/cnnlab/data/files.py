"""Image files named on a command line: files, folders (searched below, as training reads a folder) and
glob patterns (`"photos/**/*.jpg"`, for shells that do not expand them or for the Python API).

A file named on its own is always tried, whatever its name; inside a folder or a pattern's matches only
image files count and hidden files and folders (`.DS_Store`, `.ipynb_checkpoints/`, AppleDouble `._x`),
`__MACOSX/` and non-images (`notes.txt`) are skipped, exactly as when a folder is a dataset (links too are
followed as there: `walk.py`). `shown` writes a file name on one line wherever one line per file is
printed or written (predict, eval's worst files, a folder run's skipped.txt and duplicates.txt).
"""

import glob
import os
from pathlib import Path

from cnnlab.data.folder import natural_key
from cnnlab.data.images import NO_FILE, is_image_name
from cnnlab.data.walk import images_under
from cnnlab.i18n import _

GLOB_CHARS = frozenset("*?[")


def expand(names: list[str]) -> list[tuple[str, str]]:
    """[(path, error or "")] in the order given; a folder or pattern gives its images in natural order
    (img2 before img10); a name that matches nothing gives one row with the reason."""
    rows: list[tuple[str, str]] = []
    for name in names:
        path = Path(name).expanduser()
        if path.is_dir():
            found = _folder(path)
            rows += [(f, "") for f in found] or [(name, _("no image files in this folder"))]
        elif path.exists() or os.path.islink(path):
            rows.append((name, ""))
        elif GLOB_CHARS & set(name):
            matched = sorted(glob.glob(os.path.expanduser(name), recursive=True), key=natural_key)
            found = []
            for m in matched:
                if os.path.isdir(m):
                    found += _folder(Path(m))
                elif is_image_name(os.path.basename(m)) and not _hidden(m):
                    found.append(m)
            rows += [(f, "") for f in dict.fromkeys(found)] or [
                (name, _("no image file matches this pattern"))
            ]
        else:
            rows.append((name, _(NO_FILE)))
    return rows


def _folder(folder: Path) -> list[str]:
    rel = images_under(folder, folder)
    return [str(folder / r.removeprefix("./")) for r in sorted(rel, key=natural_key)]


def _hidden(path: str) -> bool:
    return any(part.startswith(".") and part not in (".", "..") for part in Path(path).parts)


def shown(name: object) -> str:
    """A file name on one line: a newline, tab or other control character in it is escaped (as repr does),
    so one-line-per-file output stays one line per file; other names are shown as they are."""
    text = str(name)
    return repr(text)[1:-1] if any(ch < " " or ch == "\x7f" for ch in text) else text
