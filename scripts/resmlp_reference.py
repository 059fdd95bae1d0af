#!/usr/bin/python3
"""The PyTorch reference of diffuse's residual-MLP denoiser (include/diffuse/resmlp.h), and the
fixtures its C++ kernels are tested against.

  ResMlp            the module; its state_dict names and shapes are the checkpoint's tensors, so
                    `model.load_state_dict(tensors, strict=True)` loads a diffuse checkpoint
                    (scripts/check_python_load.py does, for --model resmlp checkpoints).
                    ResMlp(..., classes=C) is the class-conditional network (--label-column):
                    label_emb = Embedding(C + 1, H), row C the null class, added to the first
                    layer's output; forward(x, t, y) with y None meaning the null class.
                    ResMlp(..., fourier_features=K) also feeds the first layer sin(2^k x_d),
                    cos(2^k x_d) for k < K (--fourier-features; the checkpoint's
                    "fourier_features", absent meaning 0): inp = Linear(D + E + 2 K D, H).
  fixtures          /usr/bin/python3 scripts/resmlp_reference.py [OUT_DIR] writes resmlp_*.json
                    (default tests/fixtures): params, one batch x (B, D) with t (and the labels
                    y of a conditional network, "labels"), the output y,
                    the MSE against a target, and the gradients wrt every parameter and x.
                    Not run by CI: the output is committed; rerun by hand when the model changes.

Needs Debian's python3-torch.
"""
import json
import math
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

TIME_FEATURES = 32  # E: 16 sines, 16 cosines (kTimeFeatures)


def time_embedding(t, T, E=TIME_FEATURES):
    """(B, E): [sin(tau f), cos(tau f)], tau = 1000 t / T, f_k = 10000^(-k / (E/2)); in float64,
    rounded to float32 (as diffuse computes it)."""
    half = E // 2
    k = torch.arange(half, dtype=torch.float64)
    f = torch.exp(-math.log(10000.0) * k / half)
    tau = 1000.0 * t.to(torch.float64) / T
    arg = tau[:, None] * f[None, :]
    return torch.cat([torch.sin(arg), torch.cos(arg)], dim=1).to(torch.float32)


def input_fourier_features(x, K):
    """(B, 2 K D): for each coordinate d, for each octave k < K: sin(2^k x_d), cos(2^k x_d), in
    float32 (2^k x is exact). (B, 0) for K = 0."""
    a = x[:, :, None] * (2.0 ** torch.arange(K, dtype=torch.float32))  # (B, D, K)
    return torch.stack([torch.sin(a), torch.cos(a)], dim=3).reshape(x.shape[0], 2 * K * x.shape[1])


class Block(nn.Module):
    def __init__(self, hidden):
        super().__init__()
        self.norm = nn.LayerNorm(hidden)
        self.fc1 = nn.Linear(hidden, hidden)
        self.fc2 = nn.Linear(hidden, hidden)

    def forward(self, h):
        return h + self.fc2(F.silu(self.fc1(self.norm(h))))


class ResMlp(nn.Module):
    def __init__(self, T, dim=2, hidden=128, depth=3, classes=0, fourier_features=0):
        super().__init__()
        self.T = T
        self.classes = classes
        self.fourier_features = fourier_features
        self.inp = nn.Linear(dim + TIME_FEATURES + 2 * fourier_features * dim, hidden)
        self.blocks = nn.ModuleList([Block(hidden) for _ in range(depth)])
        self.norm = nn.LayerNorm(hidden)
        self.out = nn.Linear(hidden, dim)
        if classes > 0:  # registered last: its state_dict entry follows out.bias
            self.label_emb = nn.Embedding(classes + 1, hidden)

    def forward(self, x, t, y=None):
        inputs = [x, time_embedding(t, self.T)]
        if self.fourier_features > 0:
            inputs.append(input_fourier_features(x, self.fourier_features))
        h = self.inp(torch.cat(inputs, dim=1))
        if self.classes > 0:
            if y is None:
                y = torch.full((x.shape[0],), self.classes, dtype=torch.long)
            h = h + self.label_emb(y)
        for b in self.blocks:
            h = b(h)
        return self.out(F.silu(self.norm(h)))


def flat(x):
    return [float("%.9g" % v) for v in x.detach().reshape(-1).tolist()]


def tensor_json(x):
    return {"shape": list(x.shape), "data": flat(x)}


def make_fixture(dim, hidden, depth, T, B, seed, classes=0, fourier_features=0):
    torch.manual_seed(seed)
    model = ResMlp(T, dim, hidden, depth, classes, fourier_features)
    with torch.no_grad():  # LayerNorm away from its 1, 0 init, so its gradients are tested
        for name, p in model.named_parameters():
            if "norm" in name:
                p.add_(0.3 * torch.randn_like(p))
    x = torch.randn(B, dim)
    if fourier_features > 0:  # standardized data reach |x| ~ 4: large arguments of sin(2^k x)
        x[0, 0], x[1, -1] = 3.9, -4.2
    x.requires_grad_(True)
    t = torch.randint(0, T, (B,))
    t[0], t[1] = 0, T - 1
    target = torch.randn(B, dim)
    labels = None
    if classes > 0:  # every class and the null class, one class left out (its gradient is 0)
        labels = torch.randint(0, classes, (B,))
        labels[labels == 1] = 0
        labels[0], labels[2], labels[3] = classes, classes, classes - 1
    y = model(x, t, labels)
    loss = F.mse_loss(y, target)
    loss.backward()
    out = {
        "generator": "scripts/resmlp_reference.py", "torch": torch.__version__,
        "config": {"dim": dim, "hidden": hidden, "depth": depth, "T": T, "B": B,
                   "classes": classes, "fourier_features": fourier_features},
        "params": [dict(name=n, **tensor_json(p)) for n, p in model.state_dict().items()],
        "grads": [dict(name=n, **tensor_json(p.grad)) for n, p in model.named_parameters()],
        "x": tensor_json(x), "t": t.tolist(), "target": tensor_json(target),
        "y": tensor_json(y), "loss": float("%.9g" % loss.item()), "dx": tensor_json(x.grad),
    }
    if labels is not None:
        out["labels"] = labels.tolist()
    return out


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..",
                                                              "tests", "fixtures")
    for dim, hidden, depth, T, B, seed, classes, K in ((2, 32, 2, 100, 23, 1, 0, 0),
                                                       (5, 24, 3, 1000, 17, 2, 0, 0),
                                                       (3, 20, 2, 1000, 19, 3, 4, 0),
                                                       (2, 32, 2, 1000, 23, 4, 0, 6),
                                                       (4, 20, 2, 1000, 19, 5, 3, 3)):
        name = (f"resmlp_d{dim}_h{hidden}_l{depth}" + (f"_c{classes}" if classes else "") +
                (f"_f{K}" if K else "") + ".json")
        with open(os.path.join(out, name), "w") as f:
            json.dump(make_fixture(dim, hidden, depth, T, B, seed, classes, K), f)
        print("wrote", name)


if __name__ == "__main__":
    main()
