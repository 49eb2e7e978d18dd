"""The probe behind "Speed, round 4" in BENCHMARKS.md: candidate nets for the records, trained by a copy of
cnnlab's loop in one process (the same data path, fused lean Adam, one-cycle `lr_factor`, batched
augmentation, EMA and evaluation as `cnnlab train`), timed in CPU seconds of training so that figures from
a machine shared with other jobs still compare. A net that wins here becomes a registered model and is
measured again by the real CLI (benchmarks/records.py).

    .venv/bin/python benchmarks/net_probe.py --net s2d_bn:16:32:128 --lr 2e-2 --ls 0.1 --seeds 0 1 2
    .venv/bin/python benchmarks/net_probe.py --net s2d_bn:32:64:256 --epochs 4 --augment translate=2 \
        --ls 0.1 --ema 0.99 --tta --lr 1e-2 --betas 0.8 0.95 --every
    .venv/bin/python benchmarks/net_probe.py --dataset fashion-mnist --net resn:16:32:64:1:1:1 --epochs 8 \
        --augment flip,translate=2 --ls 0.1 --ema 0.99 --lr 1e-2 --betas 0.8 0.95 --every
    .venv/bin/python benchmarks/net_probe.py --cost fastnet s2d_bn:16:32:128    # images per CPU-second only

`--net NAME:A:B:C` passes A, B, C to the builder below. One JSON line per seed: accuracy after each
evaluated epoch (on all test images), training CPU seconds, images per CPU-second. One thread (--threads).
"""

import argparse
import json
import math
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


# fmt: off
class S2D(nn.Module):
    def __init__(self, r=2):
        super().__init__()
        self.r = r
    def forward(self, x):
        return F.pixel_unshuffle(x, self.r)

class Flat(nn.Module):
    def forward(self, x):
        return x.flatten(1)

def fastnet():
    return nn.Sequential(nn.Conv2d(1,24,5), nn.MaxPool2d(2), nn.ReLU(), nn.Conv2d(24,32,3), nn.MaxPool2d(2), nn.ReLU(),
                         Flat(), nn.Linear(32*25,256), nn.ReLU(), nn.Linear(256,10))

def s2d_a(c1=32, c2=64, h=256):
    # issue's probe: s2d, conv3x3 4->32 (14x14), maxpool ->7, conv3x3 32->64 valid ->5, FC 256
    return nn.Sequential(S2D(), nn.Conv2d(4,c1,3,padding=1), nn.MaxPool2d(2), nn.ReLU(), nn.Conv2d(c1,c2,3), nn.ReLU(),
                         Flat(), nn.Linear(c2*25,h), nn.ReLU(), nn.Linear(h,10))

def s2d_b(c1=32, c2=64, h=256):
    # s2d, conv3x3 4->c1 (14), stride-2 conv c1->c2 (7), conv? -> FC
    return nn.Sequential(S2D(), nn.Conv2d(4,c1,3,padding=1), nn.ReLU(), nn.Conv2d(c1,c2,3,stride=2,padding=1), nn.ReLU(),
                         Flat(), nn.Linear(c2*49,h), nn.ReLU(), nn.Linear(h,10))

def s2d_c(c1=32, c2=64, h=256):
    # s2d conv 4->c1 at 14, maxpool 7, conv c1->c2 pad 1 at 7, maxpool 3, FC
    return nn.Sequential(S2D(), nn.Conv2d(4,c1,3,padding=1), nn.MaxPool2d(2), nn.ReLU(), nn.Conv2d(c1,c2,3,padding=1), nn.MaxPool2d(2), nn.ReLU(),
                         Flat(), nn.Linear(c2*9,h), nn.ReLU(), nn.Linear(h,10))

def s2d4(c1=32, c2=64, h=256):
    # s2d(4): 16 ch at 7x7; conv3x3 16->c1 pad1 (7), conv3x3 c1->c2 valid (5), FC
    return nn.Sequential(S2D(4), nn.Conv2d(16,c1,3,padding=1), nn.ReLU(), nn.Conv2d(c1,c2,3), nn.ReLU(),
                         Flat(), nn.Linear(c2*25,h), nn.ReLU(), nn.Linear(h,10))


def bn(c, scale=False):
    b = nn.BatchNorm2d(c)
    if not scale:  # airbench: the BN scale frozen at 1
        b.weight.requires_grad_(False)
    return b

def s2d_bn(c1=32, c2=64, h=256):
    return nn.Sequential(S2D(), nn.Conv2d(4,c1,3,padding=1,bias=False), nn.MaxPool2d(2), bn(c1), nn.ReLU(),
                         nn.Conv2d(c1,c2,3,bias=False), bn(c2), nn.ReLU(),
                         Flat(), nn.Linear(c2*25,h), nn.ReLU(), nn.Linear(h,10))

def s2d_bn3(c1=32, c2=64, c3=128):
    # fastnet-bn-like: 3 convs, no hidden FC; s2d stem
    return nn.Sequential(S2D(), nn.Conv2d(4,c1,3,padding=1,bias=False), bn(c1), nn.ReLU(),
                         nn.Conv2d(c1,c2,3,padding=1,bias=False), nn.MaxPool2d(2), bn(c2), nn.ReLU(),
                         nn.Conv2d(c2,c3,3,padding=1,bias=False), nn.MaxPool2d(2), bn(c3), nn.ReLU(),
                         Flat(), nn.Linear(c3*9,10))

def s2d_lin(c1=32, c2=64):
    # s2d_a without the hidden FC: conv->pool->conv->linear
    return nn.Sequential(S2D(), nn.Conv2d(4,c1,3,padding=1), nn.MaxPool2d(2), nn.ReLU(), nn.Conv2d(c1,c2,3), nn.ReLU(),
                         Flat(), nn.Linear(c2*25,10))

class WNet(nn.Sequential):
    """s2d_bn with the first conv frozen to patch-PCA (whitened) filters +- (airbench)."""
    def init_whitening(self, x, eps=5e-4):
        conv = self[1]
        z = F.pixel_unshuffle(x, 2)
        k = conv.kernel_size[0]
        patches = F.unfold(z, k, padding=conv.padding[0]).transpose(1, 2).reshape(-1, z.shape[1] * k * k).double()
        cov = torch.cov(patches.T)
        evals, evecs = torch.linalg.eigh(cov)
        evals, evecs = evals.flip(0), evecs.flip(1)
        n = conv.out_channels // 2
        w = (evecs[:, :n] / torch.sqrt(evals[:n] + eps)).T.reshape(n, z.shape[1], k, k)
        conv.weight.data = torch.cat([w, -w]).float()
        conv.weight.requires_grad_(False)

def s2d_bnw(c1=16, c2=32, h=128):
    return WNet(S2D(), nn.Conv2d(4,c1,3,padding=1,bias=True), nn.MaxPool2d(2), bn(c1), nn.ReLU(),
                         nn.Conv2d(c1,c2,3,bias=False), bn(c2), nn.ReLU(),
                         Flat(), nn.Linear(c2*25,h), nn.ReLU(), nn.Linear(h,10))

def fastnet_bn(w=1.0):
    layers, c_in = [], 1
    for c in (int(32 * w), int(64 * w), int(128 * w)):
        layers += [nn.Conv2d(c_in, c, 3, padding=1, bias=False), nn.MaxPool2d(2), bn(c), nn.ReLU()]
        c_in = c
    return nn.Sequential(*layers, Flat(), nn.Linear(c_in*9,10))

def s2d_m(c1=32, c2=64, c3=128):
    # s2d@14: conv c1, pool->7, conv c2 @7, conv c3 @7, pool->3, linear
    return nn.Sequential(S2D(), nn.Conv2d(4,c1,3,padding=1,bias=False), nn.MaxPool2d(2), bn(c1), nn.ReLU(),
                         nn.Conv2d(c1,c2,3,padding=1,bias=False), bn(c2), nn.ReLU(),
                         nn.Conv2d(c2,c3,3,padding=1,bias=False), nn.MaxPool2d(2), bn(c3), nn.ReLU(),
                         Flat(), nn.Linear(c3*9,10))

class Res(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c1, self.b1 = nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c)
        self.c2, self.b2 = nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c)
    def forward(self, x):
        return F.relu(x + self.b2(self.c2(F.relu(self.b1(self.c1(x))))))

def resn(c1=32, c2=64, c3=128, d1=0, d2=1, d3=1, ncls=10, s2d=1):
    """s2d stem -> conv c1 @14 -> d1 res; pool 7 -> conv c2 -> d2 res; pool 3 -> conv c3 -> d3 res; GAP? no: maxpool->flatten linear"""
    L = [S2D(), nn.Conv2d(4, c1, 3, padding=1, bias=False), bn(c1, True), nn.ReLU()] if s2d else \
        [nn.Conv2d(1, c1, 3, padding=1, bias=False), nn.MaxPool2d(2), bn(c1, True), nn.ReLU()]
    L += [Res(c1) for _ in range(d1)]
    L += [nn.MaxPool2d(2), nn.Conv2d(c1, c2, 3, padding=1, bias=False), bn(c2, True), nn.ReLU()] + [Res(c2) for _ in range(d2)]
    L += [nn.MaxPool2d(2), nn.Conv2d(c2, c3, 3, padding=1, bias=False), bn(c3, True), nn.ReLU()] + [Res(c3) for _ in range(d3)]
    L += [nn.AdaptiveMaxPool2d(1), Flat(), nn.Linear(c3, ncls)]
    return nn.Sequential(*L)


def s2d_st(c1=16, c2=32, h=128):
    # s2d_bn with a stride-2 3x3 conv (14 -> 7) in place of conv + max-pool: a quarter of conv1's MACs
    return nn.Sequential(S2D(), nn.Conv2d(4, c1, 3, stride=2, padding=1, bias=False), bn(c1), nn.ReLU(),
                         nn.Conv2d(c1, c2, 3, bias=False), bn(c2), nn.ReLU(),
                         Flat(), nn.Linear(c2 * 25, h), nn.ReLU(), nn.Linear(h, 10))
# fmt: on


NETS = {
    "fastnet": fastnet,  # cnnlab's fastnet
    "fastnet_bn": fastnet_bn,  # cnnlab's fastnet-bn
    "s2d_a": s2d_a,  # space-to-depth, no BN (the probe)
    "s2d_b": s2d_b,  # space-to-depth, stride-2 conv instead of the pool
    "s2d_c": s2d_c,
    "s2d4": s2d4,  # space-to-depth 4x4 -> 16 channels at 7x7
    "s2d_bn": s2d_bn,  # = cnnlab's s2dnet (16:32:128 is width 1, 32:64:256 width 2)
    "s2d_bn3": s2d_bn3,
    "s2d_lin": s2d_lin,
    "s2d_bnw": s2d_bnw,  # s2d_bn with a frozen patch-whitening first conv (airbench)
    "s2d_st": s2d_st,  # s2d_bn with a stride-2 first conv instead of conv + max-pool
    "s2d_m": s2d_m,
    "resn": resn,  # small residual nets for Fashion-MNIST
}


def build(spec: str) -> nn.Module:
    name, *args = spec.split(":")
    return NETS[name](*[float(a) if "." in a else int(a) for a in args])


def cost(names: list[str], threads: int) -> None:
    """Images per CPU-second of a training step (batch 256, fp32, channels-last), nothing else."""
    from cnnlab.training.process import set_up

    set_up(threads)
    x = torch.randn(256, 1, 28, 28).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (256,))
    for spec in names:
        torch.manual_seed(0)
        m = build(spec).to(memory_format=torch.channels_last)
        opt = torch.optim.Adam(m.parameters(), lr=1e-3, fused=True)

        def step(m=m, opt=opt):
            loss = F.cross_entropy(m(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        for _ in range(5):
            step()
        c0 = time.process_time()
        for _ in range(30):
            step()
        rate = 30 * 256 / (time.process_time() - c0)
        print(
            json.dumps(
                {"net": spec, "params": sum(p.numel() for p in m.parameters()), "img_per_cpu_s": round(rate)}
            )
        )


def main() -> None:
    from cnnlab.data import load_dataset, to_float
    from cnnlab.data.augment import augment_batch
    from cnnlab.evaluate import evaluate
    from cnnlab.training.config import TrainConfig
    from cnnlab.training.loop import epoch_order
    from cnnlab.training.optim import build_optimizer, build_scheduler
    from cnnlab.training.process import set_up

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cost", nargs="+", help="only images per CPU-second of these nets")
    p.add_argument("--net", default="fastnet")
    p.add_argument("--dataset", default="mnist")
    p.add_argument("--epochs", type=float, default=1)
    p.add_argument("--bs", type=int, default=256)
    p.add_argument("--lr", type=float, default=1e-2)
    p.add_argument("--betas", type=float, nargs=2, default=(0.7, 0.9))
    p.add_argument("--opt", default="adam")
    p.add_argument("--wd", type=float, default=0.0)
    p.add_argument("--ls", type=float, default=0.0)
    p.add_argument("--ema", type=float, default=0.0)
    p.add_argument("--augment", default="none")
    p.add_argument("--tta", action="store_true")
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--prec", default="fp32")
    p.add_argument("--warm", type=float, default=0.0)
    p.add_argument("--sched", default="onecycle")
    p.add_argument("--every", action="store_true", help="eval every epoch")
    p.add_argument("--bs2", type=int, default=0, help="batch size for the last half")
    p.add_argument("--label", default="")
    a = p.parse_args()
    if a.cost:
        cost(a.cost, a.threads)
        return
    set_up(a.threads)
    d = load_dataset(a.dataset, f"/work/shared/data/{a.dataset}", progress=False)
    n = len(d.train_y)
    for seed in a.seeds:
        torch.manual_seed(seed)
        model = build(a.net).to(memory_format=torch.channels_last)
        if hasattr(model, "init_whitening"):
            model.init_whitening(to_float(d.train_x[:5000], d.mean, d.std))
        spe = math.ceil(n / a.bs)
        total = int(round(a.epochs * spe))
        cfg = TrainConfig(
            model="fastnet",
            epochs=max(1, math.ceil(a.epochs)),
            batch_size=a.bs,
            lr=a.lr,
            betas=tuple(a.betas),
            optimizer=a.opt,
            weight_decay=a.wd,
            schedule=a.sched,
            warmup_epochs=a.warm,
            label_smoothing=a.ls,
        )
        opt = build_optimizer(cfg, model)
        sch = build_scheduler(cfg, opt, total)
        ema = None
        if a.ema:
            from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

            ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(a.ema), use_buffers=True)
        step = 0
        cpu = 0.0
        wall = 0.0
        curve = []
        ep = 0
        while step < total:
            order = epoch_order(seed, ep + 1, n)
            model.train()
            c0, t0 = time.process_time(), time.perf_counter()
            i = 0
            while step < total:
                bs = a.bs2 if (a.bs2 and step >= total // 2) else a.bs
                idx = order[i : i + bs]
                i += bs
                if len(idx) == 0:
                    break
                x = to_float(d.train_x[idx], d.mean, d.std).contiguous(memory_format=torch.channels_last)
                if a.augment != "none":
                    x = augment_batch(x, a.augment, torch.Generator().manual_seed(seed * 1000003 + step))
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.prec == "bf16"):
                    out = model(x)
                loss = F.cross_entropy(out.float(), d.train_y[idx], label_smoothing=a.ls)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sch.step()
                if ema is not None:
                    ema.update_parameters(model)
                step += 1
            cpu += time.process_time() - c0
            wall += time.perf_counter() - t0
            ep += 1
            if a.every or step >= total:
                c1 = time.process_time()
                _, acc = evaluate(
                    ema.module if ema else model, d.test_x, d.test_y, d.mean, d.std, 1024, a.tta, a.prec
                )
                curve.append(round(acc * 100, 2))
                ev = time.process_time() - c1
        print(
            json.dumps(
                dict(
                    label=a.label,
                    net=a.net,
                    seed=seed,
                    ep=a.epochs,
                    acc=curve[-1],
                    curve=curve,
                    train_cpu=round(cpu, 2),
                    train_wall=round(wall, 2),
                    eval_cpu=round(ev, 2),
                    img_per_cpu_s=round(step * a.bs / cpu),
                )
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
