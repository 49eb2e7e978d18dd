"""Your own images, as a new user would run them: a digit folder with no settings, and transfer from a run.

    .venv/bin/python benchmarks/own_folder.py [--seeds 0 1 2] [--work DIR]

1. no settings: a folder of 150 real MNIST test digits a class, named `zero`..`nine`, PNG and JPEG,
   grey and RGB, with broken files, a .DS_Store and a README (the user's folder of the issue);
   `cnnlab train --dataset FOLDER --seed S` in a fresh process, wall time from process start, held-out
   accuracy (300 images); then `--recipe chapter` (the chapter's settings) for comparison.
2. drawn digits: 20 a class of other MNIST digits drawn dark on light paper (200x200 JPEG photos with
   uneven light) predicted by the first run: the share predicted by class name.
3. transfer: `--recipe fast` on MNIST, then `--weights` that run on a 30-a-class digit folder (other test
   images) for 5 epochs, against the same 5 epochs from scratch; held-out accuracy of each.

Needs ../shared/data/mnist. About 3 minutes per seed on an idle 2-core machine.
"""

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


def mnist(split: str = "t10k") -> tuple[np.ndarray, np.ndarray]:
    from cnnlab.data import idx

    d = SHARED / "mnist"
    x = idx.read_images(d / f"{split}-images-idx3-ubyte.gz")[:, 0].numpy()
    return x, idx.read_labels(d / f"{split}-labels-idx1-ubyte.gz", 10).numpy()


def folder(root: Path, x, y, per_class: int, offset: int = 0) -> Path:
    for c in range(10):
        d = root / WORDS[c]
        d.mkdir(parents=True)
        for k, i in enumerate(np.nonzero(y == c)[0][offset : offset + per_class]):
            img = Image.fromarray(x[i])
            if k % 3 == 0:
                img.save(d / f"img_{i}.jpg", quality=90)
            elif k % 3 == 1:
                img.convert("RGB").save(d / f"img_{i}.png")
            else:
                img.save(d / f"IMG_{i}.PNG")
        (d / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"junk" * 10)
        (d / ".DS_Store").write_bytes(b"\0" * 10)
    (root / "README.txt").write_text("my digits")
    return root


def drawn(root: Path, x, y, per_class: int = 20) -> Path:
    rng = np.random.default_rng(1)
    for c in range(10):
        d = root / WORDS[c]
        d.mkdir(parents=True)
        for k, i in enumerate(np.nonzero(y == c)[0][:per_class]):
            s = int(rng.integers(100, 160))
            digit = np.asarray(Image.fromarray(x[i]).resize((s, s), Image.BICUBIC), np.float32) / 255
            paper = rng.uniform(200, 245) + np.linspace(-15, 15, 200)[None, :] + rng.normal(0, 4, (200, 200))
            oy, ox = rng.integers(0, 200 - s, 2)
            region = paper[oy : oy + s, ox : ox + s]
            paper[oy : oy + s, ox : ox + s] = region * (1 - digit) + rng.uniform(20, 70) * digit
            Image.fromarray(paper.clip(0, 255).astype(np.uint8)).convert("RGB").save(
                d / f"{k}.jpg", quality=80
            )
    return root


def cnnlab(*args: str, cwd: Path, env: dict) -> tuple[dict | list, float]:
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "cnnlab", *args], capture_output=True, text=True, cwd=cwd,
                          env=env, check=True)  # fmt: skip
    return json.loads(proc.stdout), time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--work", type=Path, default=None)
    args = ap.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="own-folder-"))
    env = {"CNNLAB_CACHE": str(work / "cache"), "PATH": "/usr/bin:/bin"}
    x, y = mnist()
    tx, ty = mnist("train")
    digits = folder(work / "my digits", x, y, 150)
    few = folder(work / "few digits", x, y, 30, offset=500)
    pictures = drawn(work / "drawn", tx, ty)
    cnnlab(
        "train",
        "--dataset",
        str(digits),
        "--max-steps",
        "1",
        "--out",
        str(work / "warm"),
        "--json",
        cwd=work,
        env=env,
    )  # fmt: skip  (decode cache filled once, as a user's second run)
    rows = []
    for seed in args.seeds:
        s, secs = cnnlab("train", "--dataset", str(digits), "--seed", str(seed), "--out", str(work / f"r{seed}"),
                         "--json", cwd=work, env=env)  # fmt: skip
        c, csecs = cnnlab("train", "--dataset", str(digits), "--recipe", "chapter", "--seed", str(seed),
                          "--out", str(work / f"c{seed}"), "--json", cwd=work, env=env)  # fmt: skip
        out, _ = cnnlab("predict", str(work / f"r{seed}"), str(pictures), "--json", cwd=work, env=env)
        hits = sum(r.get("label") == Path(r["file"]).parent.name for r in out) / len(out)
        rows.append((seed, s["test_accuracy"], secs, c["test_accuracy"], csecs, hits))
        print(f"seed {seed}: folder settings {s['test_accuracy']:.2%} in {secs:.1f} s; chapter "
              f"{c['test_accuracy']:.2%} in {csecs:.1f} s; drawn digits by name {hits:.1%}", flush=True)  # fmt: skip
    cnnlab("train", "--recipe", "fast", "--data-dir", str(SHARED / "mnist"), "--out", str(work / "mnist"), "--json",
           cwd=work, env=env)  # fmt: skip
    t, _ = cnnlab("train", "--dataset", str(few), "--weights", str(work / "mnist"), "--epochs", "5",
                  "--out", str(work / "t"), "--json", cwd=work, env=env)  # fmt: skip
    z, _ = cnnlab("train", "--dataset", str(few), "--epochs", "5", "--out", str(work / "z"), "--json",
                  cwd=work, env=env)  # fmt: skip
    print("\n| seed | folder settings | wall s | --recipe chapter | wall s | drawn digits by name |")
    print("|---|---|---|---|---|---|")
    for seed, a, secs, ca, csecs, hits in rows:
        print(f"| {seed} | {a:.2%} | {secs:.1f} | {ca:.2%} | {csecs:.1f} | {hits:.1%} |")
    print(f"\nmedian wall {statistics.median(r[2] for r in rows):.1f} s")
    print(f"transfer, 30 a class, 5 epochs: from the MNIST run {t['test_accuracy']:.2%}, "
          f"from scratch {z['test_accuracy']:.2%}")  # fmt: skip


if __name__ == "__main__":
    main()
