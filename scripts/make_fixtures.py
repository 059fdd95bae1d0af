#!/usr/bin/python3
# Writes the PyTorch reference fixtures in tests/fixtures/ (schedules.json, model_*.json) that the
# C++ tests compare against. Not run by CI: its output is committed; rerun by hand when it changes.
"""Reference values from PyTorch (Debian python3-torch 1.13) for diffuse's C++ tests.

  schedules.json  the tutorial's get_betas (linear, sigmoid, quadratic; s=1e-4, e=0.02) and the
                  cosine schedule (Nichol & Dhariwal 2021, s=0.008) with every derived quantity,
                  at T=100 and T=37: "float32" as the tutorial computes them, "float64" the same
                  formulas in double (what diffuse computes).
  model_*.json    the tutorial's ConditionalModel generalized to D and H. "params", "y", "loss",
                  "grads", "dx": a model with a few units scaled so softplus inputs pass +-20, one
                  batch (repeated t), its output, MSE loss and gradients wrt every parameter and x.
                  "train": 20 steps (zero_grad, loss, backward, clip_grad_norm_(1.0), Adam) from
                  PyTorch's default init (own seed): batches, losses, pre-clip norms, the
                  parameters before and after. Checked to agree with the same steps in float64.

All arrays are flat lists in row-major order next to their shape.
Usage: /usr/bin/python3 scripts/make_fixtures.py [OUT_DIR]   (default tests/fixtures)
"""
import json
import math
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

BETA_START, BETA_END, COSINE_S = 1e-4, 0.02, 0.008


def flat(x, dtype):
    """Row-major flat list; float32 values with 9 significant digits (exact round trip)."""
    vals = x.detach().reshape(-1).tolist()
    if dtype == "float32":
        return [float("%.9g" % v) for v in vals]
    return vals


def tensor_json(x, dtype="float32"):
    return {"shape": list(x.shape), "data": flat(x, dtype)}


# ---- schedules (as the tutorial computes them) ----

def get_betas(T, s, e, kind, dtype):  # the tutorial's get_betas, in a chosen precision
    if kind == "linear":
        return torch.linspace(s, e, T, dtype=dtype)
    if kind == "sigmoid":
        return torch.sigmoid(torch.linspace(-6, 6, T, dtype=dtype)) * (e - s) + s
    if kind == "quadratic":
        return torch.linspace(s ** 0.5, e ** 0.5, T, dtype=dtype) ** 2
    if kind == "cosine":  # Nichol & Dhariwal 2021, eq. 17, always computed in float64
        def f(t):
            return math.cos((t / T + COSINE_S) / (1 + COSINE_S) * math.pi / 2) ** 2
        ab = [f(t) / f(0) for t in range(T + 1)]
        b = [min(1 - ab[t + 1] / ab[t], 0.999) for t in range(T)]
        return torch.tensor(b, dtype=torch.float64).to(dtype)
    raise ValueError(kind)


def schedule(T, kind, dtype):
    betas = get_betas(T, BETA_START, BETA_END, kind, dtype)
    alphas = 1 - betas
    alpha_bar = torch.cumprod(alphas, dim=0)
    alpha_bar_prev = F.pad(alpha_bar[:-1], (1, 0), value=1.0)
    out = {
        "beta": betas,
        "alpha": alphas,
        "alpha_bar": alpha_bar,
        "alpha_bar_prev": alpha_bar_prev,
        "sqrt_alpha_bar": torch.sqrt(alpha_bar),
        "sqrt_one_minus_alpha_bar": torch.sqrt(1 - alpha_bar),
        "posterior_variance": betas * (1 - alpha_bar_prev) / (1 - alpha_bar),
    }
    name = "float32" if dtype == torch.float32 else "float64"
    return {k: flat(v, name) for k, v in out.items()}


def make_schedules():
    cases = []
    for kind in ("linear", "sigmoid", "quadratic", "cosine"):
        for T in (100, 37):
            cases.append({"kind": kind, "T": T, "beta_start": BETA_START, "beta_end": BETA_END,
                          "cosine_s": COSINE_S, "float32": schedule(T, kind, torch.float32),
                          "float64": schedule(T, kind, torch.float64)})
    return {"generator": "scripts/make_fixtures.py", "torch": torch.__version__, "cases": cases}


# ---- the tutorial's model (copied from seed_reference.py) ----

class ConditionalLinear(nn.Module):
    def __init__(self, num_in, num_out, n_steps):
        super().__init__()
        self.num_out = num_out
        self.lin = nn.Linear(num_in, num_out)
        self.embed = nn.Embedding(n_steps, num_out)
        self.embed.weight.data.uniform_()

    def forward(self, x, t):
        return self.embed(t).view(-1, self.num_out) * self.lin(x)


class ConditionalModel(nn.Module):
    def __init__(self, n_steps, dim=2, hidden=128):
        super().__init__()
        self.lin1 = ConditionalLinear(dim, hidden, n_steps)
        self.lin2 = ConditionalLinear(hidden, hidden, n_steps)
        self.lin3 = ConditionalLinear(hidden, hidden, n_steps)
        self.lin4 = nn.Linear(hidden, dim)

    def forward(self, x, t):
        x = F.softplus(self.lin1(x, t))
        x = F.softplus(self.lin2(x, t))
        x = F.softplus(self.lin3(x, t))
        return self.lin4(x)


def pre_activations(model, x, t):
    """z1, z2, z3: the softplus inputs."""
    zs = []
    h = x
    for layer in (model.lin1, model.lin2, model.lin3):
        z = layer(h, t)
        zs.append(z)
        h = F.softplus(z)
    return zs


def batch(g, B, D, T, eps_scale):
    x = torch.randn(B, D, generator=g)
    t = torch.randint(0, T, (B,), generator=g)
    t[: B // 3] = t[0]  # repeated timesteps, so embedding rows accumulate gradients
    eps = eps_scale * torch.randn(B, D, generator=g)
    return x, t, eps


def make_model_fixture(seed, D, H, T, B, lr, steps=20):
    torch.manual_seed(seed)
    model = ConditionalModel(T, dim=D, hidden=H)
    with torch.no_grad():
        # Scale a few units up so some softplus inputs pass 20 (its threshold branch) and some go
        # below -20; the large gradients this causes make clip_grad_norm_ bind.
        model.lin1.lin.weight[:3] *= 25.0
        model.lin2.lin.weight[:2] *= 30.0
        model.lin3.lin.bias[0] += 60.0
        model.lin3.lin.bias[1] -= 60.0
        model.lin3.embed.weight[:, :2] = 0.5 + 0.5 * model.lin3.embed.weight[:, :2]
    initial = {k: v.clone() for k, v in model.state_dict().items()}

    g = torch.Generator().manual_seed(seed + 1)
    x, t, eps = batch(g, B, D, T, 1.0)
    x.requires_grad_(True)
    y = model(x, t)
    loss = F.mse_loss(y, eps)
    loss.backward()
    zs = pre_activations(model, x, t)
    n_big = int(sum((z > 20).sum().item() for z in zs))
    n_small = int(sum((z < -20).sum().item() for z in zs))
    assert n_big >= 4 and n_small >= 4, (n_big, n_small)
    assert len(set(t.tolist())) < B

    out = {
        "generator": "scripts/make_fixtures.py",
        "torch": torch.__version__,
        "config": {"dim": D, "hidden": H, "T": T, "B": B, "seed": seed},
        "params": [{"name": k, **tensor_json(v)} for k, v in initial.items()],
        "x": tensor_json(x),
        "t": t.tolist(),
        "eps": tensor_json(eps),
        "y": tensor_json(y),
        "loss": loss.item(),
        "grads": [{"name": k, **tensor_json(p.grad)} for k, p in model.named_parameters()],
        "dx": tensor_json(x.grad),
        "softplus_inputs_above_20": n_big,
        "softplus_inputs_below_minus_20": n_small,
    }
    assert [k for k, _ in model.named_parameters()] == list(initial.keys())

    out["train"] = make_training(seed + 100, D, H, T, B, lr, steps)
    return out


def train(seed, D, H, T, B, lr, steps, dtype):
    """zero_grad, MSE loss, backward, clip_grad_norm_(1.0), Adam.step, from PyTorch's default init.

    Returns the initial and final state_dicts and the steps' batches, losses and pre-clip norms.
    """
    torch.manual_seed(seed)
    model = ConditionalModel(T, dim=D, hidden=H).to(dtype)
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    g = torch.Generator().manual_seed(seed + 1)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    log = []
    for k in range(steps):
        # Even steps: loud targets, the clip binds. Odd steps: the model's own output plus a little
        # noise, small gradients the clip leaves alone.
        xb, tb, eb = batch(g, B, D, T, 4.0 if k % 2 == 0 else 0.2)
        xb, eb = xb.to(dtype), eb.to(dtype)
        if k % 2 == 1:
            with torch.no_grad():
                eb = model(xb, tb) + eb
        opt.zero_grad()
        loss = F.mse_loss(model(xb, tb), eb)
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        log.append({"x": flat(xb, "float32"), "t": tb.tolist(), "eps": flat(eb, "float32"),
                    "loss": loss.item(), "grad_norm": norm.item()})
    return initial, model.state_dict(), log


def make_training(seed, D, H, T, B, lr, steps):
    initial, final, log = train(seed, D, H, T, B, lr, steps, torch.float32)
    norms = [s["grad_norm"] for s in log]
    assert any(n > 1.0 for n in norms) and any(n < 1.0 for n in norms), norms
    # The trajectory must be well conditioned, or float32 rounding (ours or torch's) would decide
    # the result: the same steps in float64 must land within 1e-6 of float32's parameters.
    _, final64, _ = train(seed, D, H, T, B, lr, steps, torch.float64)
    drift = max(((final[k].double() - final64[k]).norm() / final64[k].norm()).item() for k in final)
    assert drift < 1e-6, drift
    return {"lr": lr, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "max_norm": 1.0, "seed": seed,
            "float64_drift": drift,
            "initial_params": [{"name": k, **tensor_json(v)} for k, v in initial.items()],
            "steps": log,
            "final_params": [{"name": k, **tensor_json(v)} for k, v in final.items()]}


def write(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, separators=(",", ":"))
        f.write("\n")
    size = os.path.getsize(path)
    assert size < 1 << 20, (path, size)
    print(f"{path}: {size} bytes")


def main():
    out_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures")
    os.makedirs(out_dir, exist_ok=True)
    torch.set_num_threads(1)
    write(os.path.join(out_dir, "schedules.json"), make_schedules())
    cases = [("model_d2_h32.json", dict(seed=1, D=2, H=32, T=10, B=16, lr=1e-2)),
             ("model_d3_h16.json", dict(seed=2, D=3, H=16, T=7, B=9, lr=1e-3))]
    for name, cfg in cases:
        fx = make_model_fixture(**cfg)
        norms = ["%.3g" % s["grad_norm"] for s in fx["train"]["steps"]]
        print(f"  float64 drift {fx['train']['float64_drift']:.1e}, loss {fx['loss']:.4f}, softplus inputs >20: {fx['softplus_inputs_above_20']},"
              f" <-20: {fx['softplus_inputs_below_minus_20']}, pre-clip norms {' '.join(norms)}")
        write(os.path.join(out_dir, name), fx)
    return 0


if __name__ == "__main__":
    sys.exit(main())
