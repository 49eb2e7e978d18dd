"""Image folders: decode throughput, start-up cached vs uncached, bounded memory, training speed.

    .venv/bin/python benchmarks/folder_data.py [--images 20000] [--repeats 3] [--work DIR]

1. decode: a folder of N 28x28 PNGs (real MNIST training digits, 10 class folders) decoded from a cold
   cache with 1 and with 2 worker processes (both passes: the up-front check of every file, and the
   resize into the memory-mapped cache); images/s, median of --repeats cold runs each.
2. start-up: `load_dataset(folder)` with a warm cache (median of 5) against the cold runs above.
3. memory: a folder of RGB photos whose decoded cache is larger than the memory the process may use:
   a child process runs under RLIMIT_DATA (its private memory: heap and anonymous maps; the cache is a
   shared read-only file map, which the kernel can drop and re-read at will) below the cache size,
   decodes the folder and then reads every training image twice (2 epochs) the way the training loop
   does (seeded permutation, batches of 32, to_float); its peak RSS and anonymous RSS are reported.
4. training: `cnnlab train` images/s on the bundled mnist-sample (8,000 training images in memory) against
   the same 10,000 images as a PNG folder (80/20 split: 8,000 training images, memory-mapped); runs
   alternate, --repeats each, median and ratio.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data" / "mnist"


def digits(n: int) -> tuple[np.ndarray, np.ndarray]:
    """n real MNIST training digits (full MNIST when ../shared/data has it, else the bundled sample)."""
    from cnnlab.data import load_dataset

    data = (
        load_dataset("mnist", str(SHARED), download=False)
        if SHARED.is_dir()
        else load_dataset("mnist-sample")
    )
    x = np.concatenate([data.train_x[:, 0].numpy(), data.test_x[:, 0].numpy()])
    y = np.concatenate([data.train_y.numpy(), data.test_y.numpy()])
    reps = -(-n // len(x))
    return np.concatenate([x] * reps)[:n], np.concatenate([y] * reps)[:n]


def write_folder(root: Path, x: np.ndarray, y: np.ndarray, size: int = 0, colour: bool = False) -> None:
    for c in range(10):
        (root / str(c)).mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i, (a, label) in enumerate(zip(x, y)):
        img = Image.fromarray(a)
        if size:
            img = img.resize((size, size), Image.BILINEAR)
        if colour:  # a coloured digit on a noisy background: real photo-like PNG sizes
            tint = rng.integers(0, 256, 3, dtype=np.uint8)
            base = rng.integers(0, 64, (size, size, 3), dtype=np.uint8)
            ink = np.asarray(img, dtype=np.uint16)[..., None]
            img = Image.fromarray((base + (ink * tint) // 255).clip(0, 255).astype(np.uint8))
        img.save(root / str(label) / f"{i:06d}.png")


def cold_load(root: Path, workers: int) -> dict:
    """Both passes from an empty cache, timed separately."""
    import cnnlab.data.folder_cache as fc
    from cnnlab.data.folder import FolderOptions, scan

    cache = tempfile.mkdtemp(prefix="cnnlab-bench-cache-")
    os.environ["CNNLAB_CACHE"] = cache
    try:
        t0 = time.perf_counter()
        sc = scan(root)
        rels = [p for files in sc.files.values() for p, _ in files]
        t1 = time.perf_counter()
        fc.inspect_all(root, rels, workers, progress=False)
        t2 = time.perf_counter()
        fc.load_folder(str(root), None, FolderOptions(decode_workers=workers))
        t3 = time.perf_counter()
        n = len(rels)
        return {
            "scan_s": t1 - t0,
            "check_ips": n / (t2 - t1),
            "decode_ips": n / (t3 - t2),
            "total_s": t3 - t0,
        }
    finally:
        shutil.rmtree(cache, ignore_errors=True)


def warm_load(root: Path, repeats: int = 5) -> float:
    from cnnlab.data import load_dataset

    cache = tempfile.mkdtemp(prefix="cnnlab-bench-cache-")
    os.environ["CNNLAB_CACHE"] = cache
    try:
        load_dataset(str(root))
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            load_dataset(str(root))
            times.append(time.perf_counter() - t0)
        return statistics.median(times)
    finally:
        shutil.rmtree(cache, ignore_errors=True)


MEMORY_CHILD = r"""
import os, resource, sys, threading, time, json
limit = int(sys.argv[2])
resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
peak = {"anon": 0}
def watch():
    while True:
        for line in open("/proc/self/status"):
            if line.startswith("RssAnon:"):
                peak["anon"] = max(peak["anon"], int(line.split()[1]) * 1024)
        time.sleep(0.02)
threading.Thread(target=watch, daemon=True).start()
import torch
from cnnlab.data import load_dataset, to_float
from cnnlab.data.folder import FolderOptions
t0 = time.perf_counter()
d = load_dataset(sys.argv[1], options=FolderOptions(image_size=int(sys.argv[3]), decode_workers=2), progress=False)
t1 = time.perf_counter()
order = torch.randperm(len(d.train_y), generator=torch.Generator().manual_seed(0))
for epoch in range(2):
    for i in range(0, len(order), 32):
        x = to_float(d.train_x[order[i:i + 32]], d.mean, d.std)
t2 = time.perf_counter()
cache = d.source.x
print(json.dumps({"cache_bytes": int(cache.nbytes), "decode_s": t1 - t0, "epochs_s": t2 - t1,
                  "images": len(d.train_y), "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
                  "peak_anon": peak["anon"], "limit": limit}))
"""


def memory_check(work: Path, n: int, size: int, limit: int, image_size: int) -> dict:
    root = work / "photos"
    if not root.is_dir():
        x, y = digits(n)
        write_folder(root, x, y, size=size, colour=True)
    cache = tempfile.mkdtemp(prefix="cnnlab-bench-cache-")
    env = {**os.environ, "CNNLAB_CACHE": cache, "PYTHONPATH": str(ROOT / "src")}
    try:
        proc = subprocess.run([sys.executable, "-c", MEMORY_CHILD, str(root), str(limit), str(image_size)],
                              capture_output=True, text=True, env=env)  # fmt: skip
        if proc.returncode != 0:
            raise SystemExit(f"memory child failed:\n{proc.stderr[-3000:]}")
        return json.loads(proc.stdout.strip().splitlines()[-1])
    finally:
        shutil.rmtree(cache, ignore_errors=True)


def train_ips(dataset: str, out: Path, extra: list[str], env: dict) -> float:
    cmd = [sys.executable, "-m", "cnnlab", "train", "--dataset", dataset, "--epochs", "2", "--threads", "1",
           "--out", str(out), "--overwrite", "--json", *extra]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])["images_per_second"]


def training_speed(work: Path, repeats: int) -> dict:
    from cnnlab.data import load_dataset

    root = work / "sample-folder"
    if not root.is_dir():
        d = load_dataset("mnist-sample")
        x = np.concatenate([d.train_x[:, 0].numpy(), d.test_x[:, 0].numpy()])
        y = np.concatenate([d.train_y.numpy(), d.test_y.numpy()])
        write_folder(root, x, y)
    env = {**os.environ, "CNNLAB_CACHE": str(work / "cache"), "PYTHONPATH": str(ROOT / "src")}
    train_ips(str(root), work / "warm", ["--max-steps", "1"], env)  # decode once: not part of the timing
    builtin, folder = [], []
    for _ in range(repeats):
        builtin.append(train_ips("mnist-sample", work / "b", [], env))
        folder.append(train_ips(str(root), work / "f", [], env))
    return {"builtin": builtin, "folder": folder}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=20000)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--photos", type=int, default=4000, help="images in the memory check's photo folder")
    p.add_argument("--photo-size", type=int, default=224)
    p.add_argument("--cache-size", type=int, default=288, help="--image-size of the memory check's cache")
    p.add_argument("--limit-mb", type=int, default=640, help="RLIMIT_DATA of the memory check's child")
    p.add_argument("--work", help="keep the generated folders here (default: a temporary folder)")
    p.add_argument("--skip", nargs="*", default=[], choices=["decode", "memory", "train"])
    args = p.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="cnnlab-bench-"))
    print(f"load average at start: {open('/proc/loadavg').read().split()[:3]}; {os.cpu_count()} CPUs")
    if "decode" not in args.skip:
        root = work / f"png{args.images}"
        if not root.is_dir():
            x, y = digits(args.images)
            write_folder(root, x, y)
        for workers in (1, 2):
            runs = [cold_load(root, workers) for _ in range(args.repeats)]
            med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
            print(f"decode {args.images} PNGs, {workers} process(es): check {med['check_ips']:.0f} img/s, "
                  f"decode+resize {med['decode_ips']:.0f} img/s, cold start {med['total_s']:.2f} s (median of "
                  f"{args.repeats}; all: {[round(r['total_s'], 2) for r in runs]})")  # fmt: skip
        print(f"warm start (cache hit), median of 5: {warm_load(root):.3f} s")
    if "memory" not in args.skip:
        m = memory_check(work, args.photos, args.photo_size, args.limit_mb * 2**20, args.cache_size)
        print(f"memory: cache {m['cache_bytes'] / 2**20:.0f} MiB ({args.photos} RGB {args.photo_size}px PNGs "
              f"at --image-size {args.cache_size}), "
              f"RLIMIT_DATA {m['limit'] / 2**20:.0f} MiB; peak RSS {m['peak_rss'] / 2**20:.0f} MiB "
              f"(anonymous {m['peak_anon'] / 2**20:.0f} MiB); decode {m['decode_s']:.1f} s, "
              f"2 epochs over {m['images']} images {m['epochs_s']:.1f} s")  # fmt: skip
    if "train" not in args.skip:
        t = training_speed(work, args.repeats)
        b, f = statistics.median(t["builtin"]), statistics.median(t["folder"])
        print(f"training chapter-cnn, 2 epochs, 1 thread: built-in {b:.0f} img/s {[round(v) for v in t['builtin']]}, "
              f"folder {f:.0f} img/s {[round(v) for v in t['folder']]}; folder / built-in = {f / b:.3f}")  # fmt: skip
    print(f"load average at end: {open('/proc/loadavg').read().split()[:3]}")
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "src"))
    main()
