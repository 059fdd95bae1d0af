#!/usr/bin/python3
# Writes tests/fixtures/metrics.json: small fixed point sets with the peer reference's (PyTorch)
# swd and mmd values, for tests/metrics_test.cpp. Not part of the build; run it by hand.
"""Usage: /usr/bin/python3 scripts/make_metric_fixtures.py [--reference PATH] [--out PATH]

Needs Debian's python3-torch. The mmd values and the point generators come from the reference
itself (imported from --reference); swd uses the reference's formula with directions drawn here
and stored in the fixture, so the C++ side can use the same ones (swd_with_directions). The
reference's swd is defined for equal sizes only; for unequal sizes the expected value is the exact
1-D W1 computed the other way round, as the integral of |F_a(x) - F_b(x)| dx over the CDFs.
Point sets are float32 (as diffuse::Points) and written exactly (Python's repr round-trips).
"""
import argparse
import importlib.util
import json
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))


def load_reference(path):
    spec = importlib.util.spec_from_file_location("seed_reference", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def directions(d, k, g):
    theta = torch.randn(d, k, generator=g, dtype=torch.float64)
    return theta / theta.norm(dim=0, keepdim=True)


def swd_equal(a, b, theta):
    # The reference's swd body, with theta given instead of drawn.
    pa, _ = torch.sort(a.double() @ theta, 0)
    pb, _ = torch.sort(b.double() @ theta, 0)
    return (pa - pb).abs().mean().item()


def swd_cdf(a, b, theta):
    # Exact W1 per direction as the integral of |F_a - F_b| between consecutive merged values.
    pa, _ = torch.sort(a.double() @ theta, 0)
    pb, _ = torch.sort(b.double() @ theta, 0)
    total = 0.0
    for k in range(theta.shape[1]):
        xa, xb = pa[:, k].contiguous(), pb[:, k].contiguous()
        x, _ = torch.sort(torch.cat([xa, xb]))
        fa = torch.searchsorted(xa, x[:-1], right=True).double() / len(xa)
        fb = torch.searchsorted(xb, x[:-1], right=True).double() / len(xb)
        total += ((fa - fb).abs() * (x[1:] - x[:-1])).sum().item()
    return total / theta.shape[1]


def median_distance(ref):
    # The reference's median line in mmd().
    r = ref[:1000].double()
    return torch.cdist(r, r)[torch.triu_indices(len(r), len(r), 1).unbind()].median().item()


def gaussian(n, d, g, mean=0.0, std=1.0):
    return (mean + std * torch.randn(n, d, generator=g, dtype=torch.float64)).float()


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--reference", default="/work/shared/reference/seed_reference.py")
    p.add_argument("--out", default=os.path.join(HERE, "..", "tests", "fixtures", "metrics.json"))
    args = p.parse_args()
    ref_mod = load_reference(args.reference)
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(20240611)

    cases = []

    def add(name, a, b, ref, max_points, k):
        theta = directions(a.shape[1], k, g)
        equal = a.shape[0] == b.shape[0]
        cases.append({
            "name": name,
            "a": a.tolist(), "b": b.tolist(),
            "ref": "a" if ref is a else ref.tolist(),  # "a": the same set as a
            "max_points": max_points,
            "theta": theta.tolist(),  # (D, K), one unit direction per column
            "swd": swd_equal(a, b, theta) if equal else swd_cdf(a, b, theta),
            "swd_formula": "sorted" if equal else "cdf",
            "median": median_distance(ref),
            "mmd": ref_mod.mmd(a, b, ref, max_points),
        })

    # Two different 2-D Gaussians, equal sizes; ref = a.
    a = gaussian(500, 2, g)
    add("gauss_2d_shifted", a, gaussian(500, 2, g, mean=torch.tensor([0.3, -0.2]), std=1.2), a,
        5000, 64)
    # The reference's own shapes: two draws of moons (same distribution: mmd near 0), equal sizes.
    a, b = ref_mod.moons(600, g, 0.1), ref_mod.moons(600, g, 0.1)
    add("moons_vs_moons", a, b, a, 5000, 64)
    # Swiss roll against an s-curve, unequal sizes; ref has 1,200 points (only 1,000 used).
    add("swiss_roll_vs_s_curve", ref_mod.swiss_roll(700, g), ref_mod.s_curve(450, g),
        ref_mod.swiss_roll(1200, g), 5000, 32)
    # 5-D, unequal sizes beyond max_points: a and b are cut to their first 400 rows for mmd.
    add("gauss_5d_truncated", gaussian(600, 5, g), gaussian(500, 5, g, mean=0.25, std=0.9),
        gaussian(1020, 5, g), 400, 32)
    # 1-D, unequal small sizes.
    add("gauss_1d_small", gaussian(300, 1, g), gaussian(301, 1, g, mean=0.5), gaussian(300, 1, g),
        5000, 4)

    out = {"generator": "scripts/make_metric_fixtures.py", "torch": torch.__version__,
           "cases": cases}
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    tmp = args.out + ".tmp"
    with open(tmp, "w") as f:
        json.dump(out, f, separators=(",", ":"))
        f.write("\n")
    os.replace(tmp, args.out)
    for c in cases:
        print(f"{c['name']}: swd={c['swd']:.12g} ({c['swd_formula']}) median={c['median']:.12g} "
              f"mmd={c['mmd']:.12g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
