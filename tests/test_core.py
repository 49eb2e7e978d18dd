"""The low layer (cnnlab.core, cnnlab.errors) on its own: the downloader's check hook and clean failures,
atomic writes and their exit codes, autocast; and that importing it costs no torch."""

import errno
import hashlib
import subprocess
import sys

import pytest
import torch

from cnnlab import errors
from cnnlab.core.autocast import autocast
from cnnlab.core.download import DownloadError, download
from cnnlab.core.files import atomic_write, atomic_write_text
from cnnlab.errors import CnnlabError


@pytest.fixture
def server(server):
    """conftest's local HTTP server, serving f.bin: its base URL."""
    root, url = server
    (root / "f.bin").write_bytes(b"payload" * 1000)
    return url


def test_download_checks_the_part_file_before_it_becomes_the_target(server, tmp_path):
    seen = []

    def check(part):
        seen.append((part.name, hashlib.md5(part.read_bytes()).hexdigest()))
        return True

    (tmp_path / "d").mkdir()
    out = download(server + "f.bin", tmp_path / "d" / "f.bin", check=check, progress=False)
    assert out.read_bytes() == b"payload" * 1000
    assert seen == [("f.bin.part", hashlib.md5(b"payload" * 1000).hexdigest())]
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == ["f.bin"]


def test_download_failures_say_why_and_leave_nothing(server, tmp_path):
    (tmp_path / "d").mkdir()
    with pytest.raises(DownloadError) as e:
        download(server + "f.bin", tmp_path / "d" / "f.bin", check=lambda part: False, progress=False)
    assert e.value.checksum and "checksum" in str(e.value)
    with pytest.raises(DownloadError) as e:
        download(server + "missing.bin", tmp_path / "d" / "m.bin", progress=False)
    assert not e.value.checksum and "not found" in e.value.reason.lower()
    assert list((tmp_path / "d").iterdir()) == []


def test_atomic_write_keeps_the_old_file_and_names_the_exit_code(tmp_path):
    path = tmp_path / "a.txt"
    atomic_write_text(path, "old")

    def full(tmp):
        open(tmp, "w").write("half")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(CnnlabError) as e:
        atomic_write(path, full)
    assert e.value.exit_code == errors.EXIT_OUT_FULL and path.read_text() == "old"
    with pytest.raises(CnnlabError) as e:
        atomic_write_text(tmp_path / "no" / "such" / "b.txt", "x")
    assert e.value.exit_code == errors.EXIT_OUT_UNWRITABLE
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]  # no temp file left


def test_autocast_runs_convolutions_in_bf16_only_when_asked():
    conv, x = torch.nn.Conv2d(1, 2, 3), torch.randn(1, 1, 5, 5)
    with autocast("bf16"):
        assert conv(x).dtype == torch.bfloat16
    with autocast("fp32"):
        assert conv(x).dtype == torch.float32


def test_importing_the_low_layer_costs_no_torch():
    code = (
        "import sys, cnnlab.errors, cnnlab.core, cnnlab.core.files, cnnlab.core.download, cnnlab.core.sizes; "
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
