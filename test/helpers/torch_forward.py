#!/usr/bin/env python3
"""Loads one of our safetensors checkpoints into the authors' PyTorch architecture (the classes of
tools/bench/torch_step.py, which follow their networks.py), strictly, and writes its outputs.

    python3 test/helpers/torch_forward.py generator|discriminator CKPT INPUT.f32 N,C,H,W OUT_PREFIX \
        [ngf_or_ndf] [blocks_or_layers] [out_channels]

Writes OUT_PREFIX.eval.f32 (running statistics) and OUT_PREFIX.train.f32 (batch statistics).
safetensors is parsed by hand (8-byte little-endian header length, JSON header, raw data), so only
torch is needed.
"""
import json
import os
import struct
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "tools", "bench"))
from torch_step import NLayerDiscriminator, ResnetGenerator  # noqa: E402

DTYPES = {"F32": torch.float32, "I64": torch.int64, "F64": torch.float64, "I32": torch.int32}


def load_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    data = raw[8 + n :]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        t = torch.frombuffer(bytearray(data[begin:end]), dtype=DTYPES[info["dtype"]])
        out[name] = t.reshape(info["shape"])
    return out


def main():
    kind, ckpt, inp, shape = sys.argv[1:5]
    prefix = sys.argv[5]
    width = int(sys.argv[6]) if len(sys.argv) > 6 else 8
    depth = int(sys.argv[7]) if len(sys.argv) > 7 else 2
    out_c = int(sys.argv[8]) if len(sys.argv) > 8 else 3
    shape = [int(s) for s in shape.split(",")]
    x = torch.frombuffer(bytearray(open(inp, "rb").read()), dtype=torch.float32).reshape(shape)
    if kind == "generator":
        net = ResnetGenerator(shape[1], out_c, ngf=width, blocks=depth)
    else:
        net = NLayerDiscriminator(shape[1], ndf=width, layers=depth)
    missing_or_unexpected = net.load_state_dict(load_safetensors(ckpt), strict=True)
    assert not missing_or_unexpected.missing_keys and not missing_or_unexpected.unexpected_keys
    with torch.no_grad():
        net.eval()
        y_eval = net(x)
        net.train()
        y_train = net(x)
    for name, y in (("eval", y_eval), ("train", y_train)):
        values = y.contiguous().flatten().tolist()
        with open(f"{prefix}.{name}.f32", "wb") as f:
            f.write(struct.pack(f"<{len(values)}f", *values))
    print(json.dumps({"params": sum(p.numel() for p in net.parameters()), "shape": list(y_eval.shape)}))


if __name__ == "__main__":
    main()
