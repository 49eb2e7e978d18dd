"""Real download code against a local HTTP server on 127.0.0.1: good file, bad checksum, dead mirror."""

import gzip
import hashlib
import socket

import pytest

from cnnlab.data import DATASETS, sources
from cnnlab.errors import CnnlabError


@pytest.fixture
def server(server):
    """conftest's local HTTP server with good/f.gz and a corrupted bad/f.gz: (base URL, the good MD5)."""
    root, url = server
    (root / "good").mkdir()
    (root / "bad").mkdir()
    payload = gzip.compress(b"\x00\x00\x08\x01" + (3).to_bytes(4, "big") + bytes([1, 2, 3]))
    (root / "good" / "f.gz").write_bytes(payload)
    (root / "bad" / "f.gz").write_bytes(payload[:-3] + b"xyz")
    return url.rstrip("/"), hashlib.md5(payload).hexdigest()


def dead_url() -> str:
    """A loopback port nobody listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}/"


def test_good_file(server, tmp_path):
    base, md5 = server
    out = sources.download_file(
        sources.FileSpec("f.gz", md5), (f"{base}/good/",), tmp_path / "d", progress=False
    )
    assert hashlib.md5(out.read_bytes()).hexdigest() == md5
    assert not list((tmp_path / "d").glob("*.part"))


def test_checksum_mismatch_is_an_error_and_leaves_nothing(server, tmp_path):
    base, md5 = server
    with pytest.raises(CnnlabError, match="checksum mismatch"):
        sources.download_file(
            sources.FileSpec("f.gz", md5), (f"{base}/bad/",), tmp_path / "d", progress=False
        )
    assert list((tmp_path / "d").iterdir()) == []


def test_dead_mirror_falls_back(server, tmp_path):
    base, md5 = server
    mirrors = (dead_url(), f"{base}/missing/", f"{base}/good/")
    out = sources.download_file(sources.FileSpec("f.gz", md5), mirrors, tmp_path / "d", progress=False)
    assert out.exists()


def test_raw_md5_accepts_recompressed_copy(server, tmp_path):
    base, _ = server
    raw = gzip.decompress((tmp_path / "www" / "good" / "f.gz").read_bytes())
    spec = sources.FileSpec("f.gz", "0" * 32, hashlib.md5(raw).hexdigest())
    assert sources.download_file(spec, (f"{base}/good/",), tmp_path / "d", progress=False).exists()


def test_all_mirrors_dead_lists_options(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNLAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("CNNLAB_DATA", raising=False)
    spec = DATASETS["kmnist"].files[0]
    with pytest.raises(CnnlabError) as e:
        sources.download_file(
            spec, (dead_url(),), tmp_path / "cache" / "kmnist", progress=False, dataset="kmnist"
        )
    msg = str(e.value)
    assert "--data-dir" in msg and "CNNLAB_DATA" in msg and "mnist-sample" in msg


def test_offline_without_download(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNLAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("CNNLAB_DATA", raising=False)
    with pytest.raises(CnnlabError, match="not found"):
        sources.locate("fashion-mnist", download=False)
