"""Start a real `cnnlab serve` subprocess on a free loopback port and wait until it answers.

Used by the API and browser tests and by benchmarks/load_check.py, so all of them exercise the same
server a user runs (uvicorn, sockets, limits), not an in-process test client. `--port 0` lets the OS
pick a free port and the server prints the URL it got, so two runs at once never race for a port.
"""

import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

URL_LINE = re.compile(r"(http://\S+?)/?\s")  # the URL in `cnnlab serve`'s first line, in any language


@dataclass
class Server:
    url: str  # e.g. http://127.0.0.1:41234, no trailing slash
    process: subprocess.Popen
    log: Path  # the server's stdout and stderr

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def _wait_for_url(proc: subprocess.Popen, log: Path, deadline: float) -> str:
    while time.monotonic() < deadline:
        match = URL_LINE.search(log.read_text(errors="replace"))
        if match:
            return match.group(1)
        if proc.poll() is not None:
            raise RuntimeError(f"cnnlab serve exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        time.sleep(0.05)
    raise RuntimeError(f"cnnlab serve printed no URL in time:\n{log.read_text()[-3000:]}")


def _wait_healthy(url: str, proc: subprocess.Popen, deadline: float) -> None:
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"cnnlab serve exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{url}/healthz did not answer in time")


@contextmanager
def running_server(
    checkpoint: str | Path, *extra: str, log_dir: str | Path | None = None, timeout: float = 60
) -> Iterator[Server]:
    """`python -m cnnlab serve CHECKPOINT --port 0 ...` until the block ends; its log is kept in log_dir."""
    folder = Path(log_dir or tempfile.mkdtemp(prefix="cnnlab-serve-"))
    log = folder / "server.log"
    cmd = [sys.executable, "-m", "cnnlab", "serve", str(checkpoint), "--host", "127.0.0.1", "--port", "0"]
    with open(log, "wb") as out:
        # output goes to a file, not a pipe: a pipe nobody reads fills up and stalls the server
        proc = subprocess.Popen(
            [*cmd, *extra], stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"}
        )
    try:
        deadline = time.monotonic() + timeout
        url = _wait_for_url(proc, log, deadline)
        _wait_healthy(url, proc, deadline)
        yield Server(url, proc, log)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
