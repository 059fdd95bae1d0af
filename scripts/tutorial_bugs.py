#!/usr/bin/python3
"""What each of the tutorial's bugs costs, measured with the PyTorch peer reference.

Trains the tutorial's model (swiss roll, T=100, sigmoid, 1000 epochs) with all fixes, then with
each bug put back alone, then with all bugs (the tutorial's code as written), and prints the
swd_ratio of each (metrics as in ../shared/reference/seed_reference.py). Not run by CI.

  usage: OPENBLAS_NUM_THREADS=1 scripts/tutorial_bugs.py [--epochs 1000] [--seeds 0]
Needs Debian's python3-torch (apt-get install python3-torch libopenblas0-pthread).
"""
import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "shared", "reference"))
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
import seed_reference as ref  # noqa: E402

VARIANTS = {
    "fixed": dict(zero_grad=True, std_is_var=False, stop_at_1=False),
    "no zero_grad": dict(zero_grad=False, std_is_var=False, stop_at_1=False),
    "variance as std": dict(zero_grad=True, std_is_var=True, stop_at_1=False),
    "stops at t=1": dict(zero_grad=True, std_is_var=False, stop_at_1=True),
    "as written": dict(zero_grad=False, std_is_var=True, stop_at_1=True),
}


def run(variant, epochs, seed, n=10000, T=100):
    v = VARIANTS[variant]
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed + 1)
    data = ref.swiss_roll(n, g)
    betas = ref.betas_for("sigmoid", T, 1e-4, 0.02)
    alphas = 1 - betas
    ab = torch.cumprod(alphas, 0)
    sqrt_ab, sqrt_1mab = ab.sqrt(), (1 - ab).sqrt()
    ab_prev = F.pad(ab[:-1], (1, 0), value=1.0)
    post_var = betas * (1 - ab_prev) / (1 - ab)
    model = ref.ConditionalModel(T)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(epochs):
        perm = torch.randperm(n)
        for i in range(0, n, 128):
            x0 = data[perm[i:i + 128]]
            t = torch.randint(0, T, (len(x0),))
            eps = torch.randn_like(x0)
            xt = sqrt_ab[t][:, None] * x0 + sqrt_1mab[t][:, None] * eps
            loss = F.mse_loss(model(xt, t), eps)
            if v["zero_grad"]:
                opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
    with torch.no_grad():
        x = torch.randn(n, 2)
        last = 1 if v["stop_at_1"] else 0
        for tt in range(T - 1, last - 1, -1):
            t = torch.full((n,), tt, dtype=torch.long)
            x = (x - (1 - alphas[tt]) / sqrt_1mab[tt] * model(x, t)) / alphas[tt].sqrt()
            if tt > last:
                std = post_var[tt] if v["std_is_var"] else post_var[tt].sqrt()
                x = x + std * torch.randn_like(x)
    ev = torch.Generator().manual_seed(seed + 1000)
    fresh = [ref.swiss_roll(n, ev) for _ in range(10)]
    s = sum(ref.swd(x, f, ev) for f in fresh[:5]) / 5
    floor = sum(ref.swd(fresh[i], fresh[i + 5], ev) for i in range(5)) / 5
    return s / floor


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--epochs", type=int, default=1000)
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--variants", nargs="+", default=list(VARIANTS))
    a = p.parse_args()
    torch.set_num_threads(1)
    for name in a.variants:
        t0 = time.time()
        ratios = [run(name, a.epochs, s) for s in a.seeds]
        print(json.dumps({"variant": name, "swd_ratio": [round(r, 3) for r in ratios],
                          "seconds": round(time.time() - t0, 1)}), flush=True)


if __name__ == "__main__":
    sys.exit(main())
