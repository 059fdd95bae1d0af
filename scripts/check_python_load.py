#!/usr/bin/python3
"""Loads a diffuse checkpoint into its PyTorch module and checks its outputs: the tutorial's
ConditionalModel, or scripts/resmlp_reference.py's ResMlp when the metadata says "model": "resmlp".

usage: check_python_load.py MODEL.safetensors INPUTS.csv EXPECTED.csv
  INPUTS.csv   rows "t,x1,...,xD" ("t,label,x1,...,xD" for a class-conditional model, whose
               metadata has "classes"; label C is the null class); EXPECTED.csv rows
               "out1,...,outD" (the network's raw output: eps, x0 or v as its "prediction" says)
               computed by diffuse.
Exits 0 when load_state_dict(strict=True) succeeds and the outputs agree within 1e-5.
Needs Debian's python3-torch; reads safetensors with the standard library (no extra package).
"""
import json
import os
import struct
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F


def load_safetensors(path):
    """The safetensors format: u64 header length, JSON header, raw little-endian data."""
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n])
    meta = header.pop("__metadata__", {})
    data = blob[8 + n:]
    tensors = {}
    for name, info in header.items():
        assert info["dtype"] == "F32", (name, info["dtype"])
        b, e = info["data_offsets"]
        tensors[name] = torch.frombuffer(bytearray(data[b:e]), dtype=torch.float32).reshape(info["shape"])
    return tensors, meta


class ConditionalLinear(nn.Module):  # the tutorial's, unchanged
    def __init__(self, num_in, num_out, n_steps):
        super().__init__()
        self.num_out = num_out
        self.lin = nn.Linear(num_in, num_out)
        self.embed = nn.Embedding(n_steps, num_out)
        self.embed.weight.data.uniform_()

    def forward(self, x, y):
        out = self.lin(x)
        gamma = self.embed(y)
        return gamma.view(-1, self.num_out) * out


class ConditionalModel(nn.Module):  # the tutorial's, with D and H as arguments
    def __init__(self, n_steps, dim=2, hidden=128):
        super().__init__()
        self.lin1 = ConditionalLinear(dim, hidden, n_steps)
        self.lin2 = ConditionalLinear(hidden, hidden, n_steps)
        self.lin3 = ConditionalLinear(hidden, hidden, n_steps)
        self.lin4 = nn.Linear(hidden, dim)

    def forward(self, x, y):
        x = F.softplus(self.lin1(x, y))
        x = F.softplus(self.lin2(x, y))
        x = F.softplus(self.lin3(x, y))
        return self.lin4(x)


def main():
    model_path, inputs_path, expected_path = sys.argv[1:4]
    state, meta = load_safetensors(model_path)
    kind = meta.get("model", "tutorial")  # version 1 files hold the tutorial's model
    if kind == "resmlp":
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        from resmlp_reference import ResMlp
        classes = len(json.loads(meta["classes"])) if "classes" in meta else 0
        model = ResMlp(int(meta["T"]), int(meta["dim"]), int(meta["hidden"]), int(meta["depth"]),
                       classes, int(meta.get("fourier_features", "0")))
    else:
        model = ConditionalModel(int(meta["T"]), int(meta["dim"]), int(meta["hidden"]))
    model.load_state_dict({k: v for k, v in state.items() if not k.startswith("train.")}, strict=True)
    rows = [list(map(float, line.split(","))) for line in open(inputs_path) if line.strip()]
    t = torch.tensor([int(r[0]) for r in rows])
    conditional = "classes" in meta
    labels = torch.tensor([int(r[1]) for r in rows]) if conditional else None
    x = torch.tensor([r[2 if conditional else 1:] for r in rows], dtype=torch.float32)
    expected = torch.tensor([list(map(float, line.split(","))) for line in open(expected_path)
                             if line.strip()], dtype=torch.float32)
    with torch.no_grad():
        got = model(x, t, labels) if conditional else model(x, t)
    err = ((got - expected).norm() / expected.norm()).item()
    print(f"loaded {len(state)} tensors into {kind}, T={meta['T']} dim={meta['dim']} "
          f"hidden={meta['hidden']}" + (f" classes={meta['classes']}" if conditional else "") +
          (f" fourier_features={meta['fourier_features']}" if "fourier_features" in meta else "") +
          "; "
          f"relative error of the outputs {err:.2e}")
    return 0 if err < 1e-5 else 1


if __name__ == "__main__":
    sys.exit(main())
