#!/usr/bin/python3
"""Measures class-conditional models and classifier-free guidance (docs/CONDITIONING.md).

For each training seed it trains `diffuse train --label-column` on a labelled table, samples every
class at each guidance scale W with `diffuse sample --class C --guidance W`, and scores
  accuracy   the share of a class's samples that a 5-nearest-neighbour classifier fitted on the
             real training rows (scikit-learn, the table's own units) assigns to that class;
  swd_ratio  `diffuse eval` of a class's samples against that class's held-out rows (its mean
             over the classes; 1 is as close as two real draws).
Prints one Markdown row per (table, W) with mean ± std over the seeds, then per-class accuracy.

  /usr/bin/python3 scripts/conditioning_study.py [--build build/release] [--seeds 0 1 2]
      [--tables 8gaussians digits] [--weights 0 1 2 3 5] [--n 200] [--net H L]
      [--grid docs/digits_by_class.png [--grid-w 1]]

Tables: 8gaussians (`diffuse data 8gaussians`, 8000 rows; label = the mixture component, the
nearest mode: the modes are 1.53 apart and the noise 0.1, so no row is misassigned), split 80/20;
digits (scikit-learn's load_digits, 1797 rows of 8x8 pixels 0..16, label = the digit), split
80/20. Not run by CI (minutes of CPU per seed); needs Debian's python3-sklearn and numpy.
"""
import argparse
import json
import math
import os
import subprocess
import sys
import tempfile

import numpy as np
from sklearn import datasets
from sklearn.neighbors import KNeighborsClassifier

NET = ("--model resmlp --hidden {hidden} --depth {depth} --schedule cosine --steps 1000 "
       "--predict v --loss-weighting min-snr")
# DPM-Solver++(2M) at 50 evaluations: a guided step costs two network calls, and a table of 10
# classes x 5 scales x 3 seeds at DDPM's 1000 would take hours on 2 cores.
SAMPLER = "--sampler dpmpp2m --nfe 50"
TABLES = {  # name: (hidden, depth); --net H L replaces them
    "8gaussians": (64, 2),
    "digits": (64, 2),
}


def run(cmd):
    r = subprocess.run(cmd, shell=True, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"failed ({r.returncode}): {cmd}\n{r.stdout}{r.stderr}")
    return r.stdout


def write_csv(path, x, names, labels=None, label_name="label"):
    with open(path, "w") as f:
        f.write(",".join(names + ([label_name] if labels is not None else [])) + "\n")
        for i, row in enumerate(x):
            fields = [f"{v:.9g}" for v in row]
            if labels is not None:
                fields.append(str(labels[i]))
            f.write(",".join(fields) + "\n")


def read_csv(path):
    with open(path) as f:
        header = f.readline().strip().split(",")
    return header, np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)


def table(name, bin_, work):
    """(x, y, feature names) of the whole table."""
    if name == "8gaussians":
        path = os.path.join(work, "8g.csv")
        run(f"{bin_} data 8gaussians -n 8000 --seed 11 -o {path}")
        _, x = read_csv(path)
        centres = np.array([[2 * math.cos(k * math.pi / 4), 2 * math.sin(k * math.pi / 4)]
                            for k in range(8)])
        y = np.argmin(((x[:, None, :] - centres[None]) ** 2).sum(-1), axis=1)
        return x, y, ["x", "y"]
    d = datasets.load_digits()
    return np.asarray(d.data, dtype=np.float64), np.asarray(d.target), \
        [f"pixel_{i // 8}_{i % 8}" for i in range(64)]


def split(x, y, seed=0):
    perm = np.random.default_rng(seed).permutation(len(x))
    k = len(x) // 5
    test, train = np.sort(perm[:k]), np.sort(perm[k:])
    return (x[train], y[train]), (x[test], y[test])


def study(name, args, work):
    bin_ = os.path.join(args.build, "diffuse")
    x, y, names = table(name, bin_, work)
    (xtr, ytr), (xte, yte) = split(x, y)
    train_csv = os.path.join(work, f"{name}.train.csv")
    write_csv(train_csv, xtr, names, ytr)
    classes = sorted(set(int(v) for v in y))
    held = {}
    for c in classes:
        held[c] = os.path.join(work, f"{name}.heldout.{c}.csv")
        write_csv(held[c], xte[yte == c], names)
    knn = KNeighborsClassifier(n_neighbors=5).fit(xtr, ytr)
    hidden, depth = args.net or TABLES[name]
    net = NET.format(hidden=hidden, depth=depth)
    acc = {w: [] for w in args.weights}       # per seed: mean accuracy over classes
    swd = {w: [] for w in args.weights}       # per seed: mean swd_ratio over classes
    per_class = {w: {c: [] for c in classes} for w in args.weights}
    for seed in args.seeds:
        model = os.path.join(work, f"{name}.{seed}.safetensors")
        run(f"nice {bin_} train --data {train_csv} --label-column label {net} "
            f"--seed {seed} --threads {args.threads} -q -o {model}")
        for w in args.weights:
            accs, ratios = [], []
            for c in classes:
                out = os.path.join(work, f"{name}.{seed}.{w}.{c}.csv")
                run(f"nice {bin_} sample {model} --class {c} --guidance {w} -n {args.n} {SAMPLER} "
                    f"--seed {1000 + seed} --threads {args.threads} -o {out}")
                _, s = read_csv(out)
                s = s[:, :-1]  # the label column (the class asked for)
                a = float(np.mean(knn.predict(s) == c))
                accs.append(a)
                per_class[w][c].append(a)
                features = os.path.join(work, "features.csv")
                write_csv(features, s, names)
                e = json.loads(run(f"{bin_} eval {features} --against {held[c]} --seed 7 --json"))
                ratios.append(e["swd_ratio"])
                if args.grid and name == "digits" and seed == args.seeds[0] and w == args.grid_w:
                    os.replace(out, os.path.join(work, f"grid.{c}.csv"))
            acc[w].append(float(np.mean(accs)))
            swd[w].append(float(np.mean(ratios)))
            print(f"  {name} seed {seed} W={w}: accuracy {acc[w][-1]:.3f}, "
                  f"swd_ratio {swd[w][-1]:.2f}", file=sys.stderr, flush=True)
    if args.grid and name == "digits":
        draw_grid([os.path.join(work, f"grid.{c}.csv") for c in classes], args.grid, args.grid_w)
    return acc, swd, per_class, classes


def pm(v):
    v = np.asarray(v, dtype=float)
    return f"{v.mean():.3f} ± {v.std(ddof=1) if len(v) > 1 else 0:.3f}"


def draw_grid(files, out, w, cols=12):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    img = np.zeros((len(files) * 9 + 1, cols * 9 + 1))  # white lines between digits
    for r, f in enumerate(files):
        _, s = read_csv(f)
        for c in range(cols):
            img[1 + r * 9:1 + r * 9 + 8, 1 + c * 9:1 + c * 9 + 8] = np.clip(s[c, :64], 0, 16).reshape(8, 8)
    fig, ax = plt.subplots(figsize=(cols * 0.55 + 0.8, len(files) * 0.55 + 0.6))
    ax.imshow(img, cmap="gray_r", vmin=0, vmax=16, interpolation="nearest")
    ax.set_yticks([4.5 + 9 * r for r in range(len(files))])
    ax.set_yticklabels([str(r) for r in range(len(files))])
    ax.set_xticks([])
    ax.set_title(f"diffuse sample --class DIGIT --guidance {w:g} (rows: digits 0-9)", fontsize=9)
    fig.tight_layout()
    fig.savefig(out, dpi=100)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--build", default="build/release")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--tables", nargs="+", default=["8gaussians", "digits"])
    p.add_argument("--weights", type=float, nargs="+", default=[0, 1, 2, 3, 5])
    p.add_argument("--n", type=int, default=200, help="samples per class")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--grid", default="", help="PNG of digit samples per class (first seed)")
    p.add_argument("--grid-w", type=float, default=1.0)
    p.add_argument("--net", type=int, nargs=2, metavar=("H", "L"),
                   help="hidden width and residual blocks for every table")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as work:
        for name in args.tables:
            acc, swd, per_class, classes = study(name, args, work)
            h, l = args.net or TABLES[name]
            print(f"\n{name}, resmlp H={h} depth {l}, {len(args.seeds)} training seeds, "
                  f"{args.n} samples per class\n")
            print("| W | 5-NN accuracy | swd_ratio (mean over classes) |")
            print("|---|---|---|")
            for w in args.weights:
                print(f"| {w:g} | {pm(acc[w])} | {pm(swd[w])} |")
            print("\nper-class 5-NN accuracy (mean over seeds)\n")
            print("| W | " + " | ".join(str(c) for c in classes) + " |")
            print("|---|" + "---|" * len(classes))
            for w in args.weights:
                print(f"| {w:g} | " + " | ".join(f"{np.mean(per_class[w][c]):.2f}" for c in classes)
                      + " |")
            sys.stdout.flush()


if __name__ == "__main__":
    main()
