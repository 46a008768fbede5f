#!/usr/bin/env python3
"""PyTorch eager fp32 reference for tools/bench.ts: the same AsynDGAN / pix2pix generator and
discriminator training steps (and the conv3x3 64->64 @128 reference convolution), timed on one GPU (or, with --device cpu, on the CPU; --serve is the interleaved peer of npm run bench).

The networks follow the authors' networks.py (ResnetGenerator resnet_9blocks, NLayerDiscriminator),
with batch norm, no dropout (tools/bench.ts and tools/profile.ts train without it), Adam 2e-4 with
betas (0.5, 0.999), loss_G = BCEWithLogits(D(mask, fake), 1) + 100 * L1(fake, real) with D frozen,
loss_D = 0.5 * (BCE(D(mask, real), 1) + BCE(D(mask, fake.detach()), 0)). TF32 is switched off so
that the arithmetic is fp32 like ours. Each timing is the median of --repeats runs after --warmup
runs, with torch.cuda.synchronize() before reading the clock.

    python3 tools/bench/torch_step.py --size 256 --ngf 64 --ndf 64 --json runs/torch.json
"""
import argparse
import json
import platform
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class ResnetBlock(nn.Module):
    def __init__(self, dim, use_bias):
        super().__init__()
        self.conv_block = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=use_bias), nn.BatchNorm2d(dim), nn.ReLU(True),
            nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=use_bias), nn.BatchNorm2d(dim),
        )

    def forward(self, x):
        return x + self.conv_block(x)


class ResnetGenerator(nn.Module):
    def __init__(self, in_c, out_c, ngf=64, blocks=9):
        super().__init__()
        use_bias = False  # batch norm
        m = [nn.ReflectionPad2d(3), nn.Conv2d(in_c, ngf, 7, bias=use_bias), nn.BatchNorm2d(ngf), nn.ReLU(True)]
        for i in range(2):
            mult = 2 ** i
            m += [nn.Conv2d(ngf * mult, ngf * mult * 2, 3, stride=2, padding=1, bias=use_bias),
                  nn.BatchNorm2d(ngf * mult * 2), nn.ReLU(True)]
        m += [ResnetBlock(ngf * 4, use_bias) for _ in range(blocks)]
        for i in range(2):
            mult = 2 ** (2 - i)
            m += [nn.ConvTranspose2d(ngf * mult, ngf * mult // 2, 3, stride=2, padding=1, output_padding=1, bias=use_bias),
                  nn.BatchNorm2d(ngf * mult // 2), nn.ReLU(True)]
        m += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, out_c, 7), nn.Tanh()]
        self.model = nn.Sequential(*m)

    def forward(self, x):
        return self.model(x)


class NLayerDiscriminator(nn.Module):
    def __init__(self, in_c, ndf=64, layers=3):
        super().__init__()
        use_bias = False
        seq = [nn.Conv2d(in_c, ndf, 4, stride=2, padding=1), nn.LeakyReLU(0.2, True)]
        mult = 1
        for n in range(1, layers):
            prev, mult = mult, min(2 ** n, 8)
            seq += [nn.Conv2d(ndf * prev, ndf * mult, 4, stride=2, padding=1, bias=use_bias),
                    nn.BatchNorm2d(ndf * mult), nn.LeakyReLU(0.2, True)]
        prev, mult = mult, min(2 ** layers, 8)
        seq += [nn.Conv2d(ndf * prev, ndf * mult, 4, stride=1, padding=1, bias=use_bias),
                nn.BatchNorm2d(ndf * mult), nn.LeakyReLU(0.2, True)]
        seq += [nn.Conv2d(ndf * mult, 1, 4, stride=1, padding=1)]
        self.model = nn.Sequential(*seq)

    def forward(self, x):
        return self.model(x)


def init_weights(net):
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


def timed(fn, warmup, repeats, sync):
    for _ in range(warmup):
        fn()
    sync()
    runs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync()
        runs.append((time.perf_counter() - t0) * 1000.0)
    return {"medianMs": statistics.median(runs), "runsMs": [round(r, 3) for r in runs]}


def build_gan(a, dev):
    """G, D, their Adam optimizers, one fixed batch and the two step functions for shape `a`."""
    g = ResnetGenerator(a.in_channels, a.out_channels, a.ngf, a.blocks).to(dev)
    d = NLayerDiscriminator(a.in_channels + a.out_channels, a.ndf, a.layers).to(dev)
    init_weights(g)
    init_weights(d)
    opt_g = torch.optim.Adam(g.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), lr=2e-4, betas=(0.5, 0.999))
    mask = torch.rand(a.batch, a.in_channels, a.size, a.size, device=dev)
    real = torch.rand(a.batch, a.out_channels, a.size, a.size, device=dev) * 2 - 1
    with torch.no_grad():
        fake_fixed = g(mask)

    def generator_step():
        for q in d.parameters():
            q.requires_grad_(False)
        opt_g.zero_grad(set_to_none=True)
        fake = g(mask)
        pred = d(torch.cat([mask, fake], 1))
        loss = F.binary_cross_entropy_with_logits(pred, torch.ones_like(pred)) + 100.0 * F.l1_loss(fake, real)
        loss.backward()
        opt_g.step()
        for q in d.parameters():
            q.requires_grad_(True)

    def discriminator_step():
        opt_d.zero_grad(set_to_none=True)
        pr = d(torch.cat([mask, real], 1))
        pf = d(torch.cat([mask, fake_fixed], 1))
        loss = 0.5 * (F.binary_cross_entropy_with_logits(pr, torch.ones_like(pr))
                      + F.binary_cross_entropy_with_logits(pf, torch.zeros_like(pf)))
        loss.backward()
        opt_d.step()

    return g, d, generator_step, discriminator_step


def conv_case(spec, mode, dev):
    """One convolution mode (fwd, dgrad, wgrad, train) on spec {n, ci, co, h, w, k, stride, pad}."""
    s = spec
    x = torch.randn(s["n"], s["ci"], s["h"], s["w"], device=dev, requires_grad=True)
    w = (torch.randn(s["co"], s["ci"], s["k"], s["k"], device=dev) * 0.05).requires_grad_(True)
    with torch.no_grad():
        y0 = F.conv2d(x, w, stride=s["stride"], padding=s["pad"])
    dy = torch.randn_like(y0)
    kw = dict(stride=s["stride"], padding=s["pad"])
    if mode == "fwd":
        def run():
            with torch.no_grad():
                F.conv2d(x, w, **kw)
    elif mode == "dgrad":
        def run():
            torch.nn.grad.conv2d_input(x.shape, w, dy, **kw)
    elif mode == "wgrad":
        def run():
            torch.nn.grad.conv2d_weight(x, w.shape, dy, **kw)
    elif mode == "train":
        def run():
            y = F.conv2d(x, w, **kw)
            torch.autograd.grad(y, [x, w], dy)
    else:
        raise ValueError(f"unknown conv mode {mode}")
    return run


def serve(dev, sync):
    """Line protocol for tools/bench.ts, which interleaves these runs with its own.

    Requests, one JSON object per line on stdin:
      {"op": "gan", "part": "generator"|"discriminator", "shape": {size, batch, inC, outC, ngf, ndf, blocks, layers}}
      {"op": "conv", "mode": "fwd"|"dgrad"|"wgrad"|"train", "spec": {n, ci, co, h, w, k, stride, pad}}
      {"op": "run"}   one run of the case set up last; the reply carries its time
    Replies, one JSON object per line on stdout: {"ok": true, ...} or {"ok": false, "error": "..."}.
    """
    import sys
    print(json.dumps({"ok": True, "torch": torch.__version__, "threads": torch.get_num_threads(),
                      "device": platform.processor() or platform.machine()}), flush=True)
    current = None
    for line in sys.stdin:
        try:
            req = json.loads(line)
            if req["op"] == "gan":
                sh = req["shape"]
                a = argparse.Namespace(size=sh["size"], batch=sh["batch"], in_channels=sh["inC"], out_channels=sh["outC"],
                                       ngf=sh["ngf"], ndf=sh["ndf"], blocks=sh["blocks"], layers=sh["layers"])
                torch.manual_seed(1)
                g, d, gs, ds = build_gan(a, dev)
                current = gs if req["part"] == "generator" else ds
                print(json.dumps({"ok": True, "gParams": sum(q.numel() for q in g.parameters()),
                                  "dParams": sum(q.numel() for q in d.parameters())}), flush=True)
            elif req["op"] == "conv":
                torch.manual_seed(1)
                current = conv_case(req["spec"], req["mode"], dev)
                print(json.dumps({"ok": True}), flush=True)
            elif req["op"] == "run":
                if current is None:
                    raise ValueError("run before any case was set up")
                t0 = time.perf_counter()
                current()
                sync()
                print(json.dumps({"ok": True, "ms": (time.perf_counter() - t0) * 1000.0}), flush=True)
            else:
                raise ValueError(f"unknown op {req['op']!r}")
        except Exception as e:  # one bad request must not end the peer
            print(json.dumps({"ok": False, "error": f"{type(e).__name__}: {e}"}), flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--in-channels", type=int, default=1)
    p.add_argument("--out-channels", type=int, default=3)
    p.add_argument("--ngf", type=int, default=16)
    p.add_argument("--ndf", type=int, default=16)
    p.add_argument("--blocks", type=int, default=9)
    p.add_argument("--layers", type=int, default=3)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--device", default="cuda")
    p.add_argument("--cudnn-benchmark", action="store_true", help="let cuDNN autotune (off: eager defaults)")
    p.add_argument("--json", help="write results here")
    p.add_argument("--serve", action="store_true", help="line protocol on stdin/stdout for tools/bench.ts (see serve())")
    a = p.parse_args()

    dev = torch.device(a.device)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.benchmark = a.cudnn_benchmark
    torch.manual_seed(1)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    if a.serve:
        serve(dev, sync)
        return

    g, d, generator_step, discriminator_step = build_gan(a, dev)

    results = {
        "generator": timed(generator_step, a.warmup, a.repeats, sync),
        "discriminator": timed(discriminator_step, a.warmup, a.repeats, sync),
    }

    # The reference convolution: 3x3, 64->64 channels, 128x128, batch 1.
    x = torch.randn(1, 64, 128, 128, device=dev, requires_grad=True)
    w = (torch.randn(64, 64, 3, 3, device=dev) * 0.05).requires_grad_(True)
    dy = torch.randn(1, 64, 128, 128, device=dev)
    with torch.no_grad():
        results["conv3x3 fwd"] = timed(lambda: F.conv2d(x, w, padding=1), a.warmup, a.repeats, sync)
        results["conv3x3 dgrad"] = timed(
            lambda: torch.nn.grad.conv2d_input(x.shape, w, dy, padding=1), a.warmup, a.repeats, sync)
        results["conv3x3 wgrad"] = timed(
            lambda: torch.nn.grad.conv2d_weight(x, w.shape, dy, padding=1), a.warmup, a.repeats, sync)

    def conv_train():
        y = F.conv2d(x, w, padding=1)
        torch.autograd.grad(y, [x, w], dy)

    results["conv3x3 train"] = timed(conv_train, a.warmup, a.repeats, sync)

    info = {
        "torch": torch.__version__,
        "device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else platform.processor(),
        "cudnn": torch.backends.cudnn.version() if dev.type == "cuda" else None,
        "cudnnBenchmark": a.cudnn_benchmark,
        "tf32": False,
        "shape": {"size": a.size, "batch": a.batch, "inC": a.in_channels, "outC": a.out_channels,
                  "ngf": a.ngf, "ndf": a.ndf, "blocks": a.blocks, "layers": a.layers},
        "gParams": sum(q.numel() for q in g.parameters()),
        "dParams": sum(q.numel() for q in d.parameters()),
        "results": results,
    }
    for name, r in results.items():
        print(f"torch {name}: {r['medianMs']:.3f} ms")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(info, f, indent=1)
        print(f"wrote {a.json}")


if __name__ == "__main__":
    main()
