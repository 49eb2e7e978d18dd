"""Bounded load check of `cnnlab serve`: N POST /api/predict requests from C concurrent clients.

The server is a real `python -m cnnlab serve` subprocess on a free 127.0.0.1 port; each client is a
thread with its own keep-alive HTTP connection sending the same 280x280 canvas PNG the page sends
(multipart). Reports throughput, p50/p90/p99/max latency and the error count (any non-200 answer or
connection failure), for plain predictions and for predictions with feature maps.

    python benchmarks/load_check.py                      # 2,000 + 500 requests, 8 clients
    python benchmarks/load_check.py --record             # ... and write the BENCHMARKS.md section
    python benchmarks/load_check.py --checkpoint runs/demo --requests 200

Without --checkpoint an untrained chapter-cnn is served: the cost of a forward pass does not depend on
what the weights learned. Exits 1 if any request failed.
"""

import argparse
import http.client
import io
import json
import os
import platform
import sys
import tempfile
import threading
import time
import uuid
from datetime import date
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parents[1]
SECTION = "## Serving load check"


def untrained_checkpoint(folder: Path) -> Path:
    """The tests' helper (tests/conftest.py), not a copy of it: a checkpoint as `cnnlab train` writes it."""
    sys.path.insert(0, str(ROOT / "tests"))
    from conftest import untrained_checkpoint as make

    return make(folder / "untrained")


def canvas_png() -> bytes:
    """What the page uploads: a white digit drawn on a 280x280 black canvas."""
    from PIL import Image, ImageDraw

    img = Image.new("L", (280, 280), 0)
    ImageDraw.Draw(img).line([(80, 60), (200, 60), (120, 230)], fill=255, width=20)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def multipart(data: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="canvas.png"\r\n'
            f"Content-Type: image/png\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"


def client(url: str, path: str, body: bytes, ctype: str, todo: list[int], lock: threading.Lock, out: dict):
    """Send requests until `todo` is empty; append latencies (s) and count errors into `out`."""
    u = urlparse(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
    headers = {"Content-Type": ctype}
    while True:
        with lock:
            if not todo:
                break
            todo.pop()
        t0 = time.perf_counter()
        try:
            conn.request("POST", path, body=body, headers=headers)
            resp = conn.getresponse()
            resp.read()
            ok = resp.status == 200
        except (OSError, http.client.HTTPException):
            ok = False
            conn.close()  # reconnect on the next request
            conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
        elapsed = time.perf_counter() - t0
        with lock:
            out["latencies"].append(elapsed)
            out["errors"] += not ok
    conn.close()


def load(url: str, path: str, requests: int, concurrency: int) -> dict:
    body, ctype = multipart(canvas_png())
    warm = {"latencies": [], "errors": 0}
    client(url, path, body, ctype, list(range(20)), threading.Lock(), warm)  # not counted
    todo, lock, out = list(range(requests)), threading.Lock(), {"latencies": [], "errors": warm["errors"]}
    threads = [
        threading.Thread(target=client, args=(url, path, body, ctype, todo, lock, out))
        for _ in range(concurrency)
    ]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    lat = sorted(out["latencies"])
    pct = lambda q: lat[min(len(lat) - 1, round(q * (len(lat) - 1)))] * 1000  # noqa: E731
    return {
        "path": path,
        "requests": len(lat),
        "concurrency": concurrency,
        "seconds": round(wall, 2),
        "throughput": round(len(lat) / wall, 1),
        "p50_ms": round(pct(0.50), 1),
        "p90_ms": round(pct(0.90), 1),
        "p99_ms": round(pct(0.99), 1),
        "max_ms": round(lat[-1] * 1000, 1),
        "errors": out["errors"],
    }


def machine() -> str:
    import torch  # its version only
    import uvicorn

    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(
            line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")
        )
    except (OSError, StopIteration):
        pass
    load1 = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    busy = ": other work was running, so these are lower bounds" if load1 > (os.cpu_count() or 1) / 2 else ""
    return (
        f"{cpu}, {os.cpu_count()} CPU cores (load average {load1:.1f} at the start{busy}), "
        f"Python {platform.python_version()}, torch {torch.__version__}, "
        f"uvicorn {uvicorn.__version__}, {platform.system()} {platform.release()}"
    )


def markdown(rows: list[dict], checkpoint: str, threads: int, command: str, host: str) -> str:
    lines = [
        SECTION,
        "",
        f"{date.today().isoformat()}, `{command}`: `POST /api/predict` with the page's 280x280 canvas PNG",
        "(multipart) from concurrent keep-alive clients on 127.0.0.1, against a real `cnnlab serve`",
        f"subprocess serving {checkpoint} with `--torch-threads {threads}`.",
        "",
        "| request | requests | clients | throughput | p50 | p90 | p99 | max | errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| `{r['path']}` | {r['requests']:,} | {r['concurrency']} | {r['throughput']:,.0f} req/s | "
            f"{r['p50_ms']:.1f} ms | {r['p90_ms']:.1f} ms | {r['p99_ms']:.1f} ms | {r['max_ms']:.1f} ms | {r['errors']} |"
        )
    lines += [
        "",
        "Requests with feature maps run one at a time (they hook a private copy of the model, see",
        "`cnnlab/serve/inference.py`) and encode a PNG per conv layer, hence their lower rate.",
        "",
        f"Machine: {host}.",
        "",
    ]
    return "\n".join(lines)


def record(section: str, path: Path) -> None:
    """Replace this script's section of BENCHMARKS.md (or append it); other sections stay untouched."""
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    start = text.find(SECTION + "\n")
    if start < 0:
        text = text.rstrip("\n") + "\n\n" + section
    else:
        end = text.find("\n## ", start + len(SECTION))
        text = text[:start] + section + (text[end + 1 :] if end >= 0 else "")
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)  # atomic: other engineers edit their own sections of the same file


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", help="run folder or .safetensors (default: an untrained chapter-cnn)")
    p.add_argument("--requests", type=int, default=2000, help="plain prediction requests (default 2000)")
    p.add_argument(
        "--feature-requests", type=int, default=500, help="requests with ?features=1 (default 500; 0 skips)"
    )
    p.add_argument("--concurrency", type=int, default=8, help="concurrent clients (default 8)")
    p.add_argument("--torch-threads", type=int, default=1, help="the server's --torch-threads (default 1)")
    p.add_argument("--record", action="store_true", help=f"write the '{SECTION}' section of BENCHMARKS.md")
    p.add_argument("--json", action="store_true", help="print the results as one JSON object")
    args = p.parse_args(argv)

    from cnnlab.serve.launch import running_server

    host = machine()  # before the run: its load average says what else was using the cores
    with tempfile.TemporaryDirectory(prefix="cnnlab-load-") as tmp:
        ckpt = args.checkpoint or untrained_checkpoint(Path(tmp))
        described = (
            f"`{args.checkpoint}`"
            if args.checkpoint
            else "an untrained chapter-cnn (1x28x28, 123,222 parameters)"
        )
        runs = [("/api/predict", args.requests), ("/api/predict?features=1", args.feature_requests)]
        extra = ("--log-level", "warning", "--torch-threads", str(args.torch_threads))
        with running_server(ckpt, *extra, log_dir=tmp) as server:
            rows = [load(server.url, path, n, args.concurrency) for path, n in runs if n > 0]
    if args.json:
        print(json.dumps({"machine": host, "runs": rows}))
    else:
        for r in rows:
            print(
                f"{r['path']}: {r['requests']} requests, {r['concurrency']} clients, {r['seconds']} s: "
                f"{r['throughput']} req/s, p50 {r['p50_ms']} ms, p90 {r['p90_ms']} ms, p99 {r['p99_ms']} ms, "
                f"max {r['max_ms']} ms, errors {r['errors']}"
            )
        print(f"machine: {host}")
    if args.record:
        command = "python benchmarks/load_check.py " + " ".join(a for a in (argv or sys.argv[1:]))
        record(markdown(rows, described, args.torch_threads, command.strip(), host), ROOT / "BENCHMARKS.md")
    return 1 if any(r["errors"] for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
