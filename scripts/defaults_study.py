#!/usr/bin/env python3
"""Measures candidate training defaults at the default budget (79,000 optimizer steps) over several
training seeds, on every built-in shape and on four of scikit-learn's tables (held out), and
writes one JSON line per run plus a Markdown summary (mean ± std over seeds) for docs/DEFAULTS.md.

Each run trains with `diffuse train` (standardized data, EMA weights), samples 10,000 points with
DDPM (all T steps) and with DPM-Solver++(2M) at 10 evaluations, and scores both with `diffuse
eval` (swd_ratio: 1 = as close as a fresh draw of the reference). Shapes are scored against the
shape, tables against the 20% of rows held out of training (scripts/sklearn_tables.py's split).
Besides swd_ratio it records: for the mixtures, the share of the samples nearest to the least
visited mode over its fair share (1 = every mode equally kept, 0 = a mode lost); for tables, the
share of sampled values inside the training rows' column ranges; for iris, the share of samples
whose petal length falls in the gap between setosa and the other species (no real row there).
Not run by CI.

usage: /usr/bin/python3 scripts/defaults_study.py [--bin build/release/diffuse] [--jobs 2]
         [--configs candidate,tutorial] [--datasets moons,iris,...] [--seeds 0,1,2]
         [--out study.jsonl] [--summary-only] [--keep DIR[=CONFIG]] [--define NAME='--ema 0.9999' ...]
"""
import argparse
import concurrent.futures
import json
import os
import shutil
import shlex
import subprocess
import sys
import tempfile
import time

import numpy as np

# name -> train options (added to --data ... --seed ... --threads 1). "current" is whatever the
# binary's defaults are; the others name every option they depend on.
CONFIGS = {
    "current": [],
    "tutorial": ["--model", "tutorial", "--hidden", "128", "--schedule", "sigmoid", "--steps",
                 "100", "--predict", "eps", "--loss-weighting", "uniform"],
    "resmlp64x2": ["--model", "resmlp", "--hidden", "64", "--depth", "2", "--schedule", "cosine",
                   "--steps", "1000", "--predict", "v", "--loss-weighting", "min-snr"],
    "resmlp128x3": ["--model", "resmlp", "--hidden", "128", "--depth", "3", "--schedule",
                    "cosine", "--steps", "1000", "--predict", "v", "--loss-weighting", "min-snr"],
    "resmlp128x2": ["--model", "resmlp", "--hidden", "128", "--depth", "2", "--schedule",
                    "cosine", "--steps", "1000", "--predict", "v", "--loss-weighting", "min-snr"],
    "resmlp96x3": ["--model", "resmlp", "--hidden", "96", "--depth", "3", "--schedule", "cosine",
                   "--steps", "1000", "--predict", "v", "--loss-weighting", "min-snr"],
    "resmlp64x3": ["--model", "resmlp", "--hidden", "64", "--depth", "3", "--schedule", "cosine",
                   "--steps", "1000", "--predict", "v", "--loss-weighting", "min-snr"],
}
SHAPES = ["swiss_roll", "s_curve", "moons", "circles", "checkerboard", "8gaussians",
          "25gaussians", "spiral"]
TABLES = ["iris", "wine", "digits", "breast_cancer"]
KEEP = None  # (folder, config) from --keep
HERE = os.path.dirname(os.path.abspath(__file__))


sys.path.insert(0, HERE)
from sklearn_tables import inside_share, write_tables as write  # noqa: E402 (the one split)


def write_tables(folder):
    write(folder, TABLES, seed=0)


def read(path):
    return np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)


def mode_balance(samples, shape):
    if shape == "8gaussians":
        a = np.arange(8) * 2 * np.pi / 8
        centres = 2 * np.stack([np.cos(a), np.sin(a)], 1)
    elif shape == "25gaussians":
        g = np.arange(-2, 3, dtype=float)
        centres = np.stack(np.meshgrid(g, g), -1).reshape(-1, 2)
    else:
        return None
    d = ((samples[:, None, :] - centres[None]) ** 2).sum(-1)
    counts = np.bincount(d.argmin(1), minlength=len(centres))
    return float(counts.min() / (len(samples) / len(centres)))


def run_one(binary, work, config, data, seed):
    tag = f"{config}.{data}.{seed}"
    model = f"{work}/{tag}.safetensors"
    train = ["--data", data]
    against = ["--against", data]
    if data in TABLES:
        train = ["--data", f"{work}/{data}.train.csv"]
        against = ["--against", f"{work}/{data}.heldout.csv", "--train",
                   f"{work}/{data}.train.csv"]
    t0 = time.time()
    subprocess.run([binary, "train", *train, "--seed", str(seed), "--threads", "1", "-q",
                    *CONFIGS[config], "-o", model, "--log", f"{work}/{tag}.log.csv"], check=True)
    train_s = time.time() - t0
    row = {"config": config, "data": data, "seed": seed, "train_s": round(train_s, 1)}
    for name, extra in [("ddpm", []), ("dpm10", ["--sampler", "dpmpp2m", "--nfe", "10"])]:
        out = f"{work}/{tag}.{name}.csv"
        subprocess.run([binary, "sample", model, "-n", "10000", "--seed", str(seed), "--threads",
                        "1", *extra, "-o", out], check=True)
        ev = json.loads(subprocess.run([binary, "eval", out, *against, "--seed",
                                        str(seed + 1000), "--json"], check=True,
                                       capture_output=True, text=True).stdout)
        row[name] = round(ev["swd_ratio"], 3)
        if "copy_share" in ev:
            row[name + "_copy"] = round(ev["copy_share"], 4)
        s = read(out)
        if data in TABLES:
            t = read(f"{work}/{data}.train.csv")
            row[name + "_inside"] = round(inside_share(s, t), 5)
            if data == "iris":  # petal length: setosa <= 1.9 < gap < 3.0 <= the others
                row[name + "_gap"] = round(float(((s[:, 2] > 1.9) & (s[:, 2] < 3.0)).mean()), 4)
        balance = mode_balance(s, data)
        if balance is not None:
            row[name + "_modes"] = round(balance, 3)
    if KEEP and config == KEEP[1]:
        # scripts/quality.sh's models folder: it scores these instead of training again.
        stem = f"{KEEP[0]}/{data}.{seed}"
        shutil.copy(model, stem + ".safetensors")
        shutil.copy(f"{work}/{tag}.ddpm.csv", stem + ".csv")
        shutil.copy(f"{work}/{tag}.dpm10.csv", stem + ".dpm10.csv")
        with open(stem + ".safetensors.train_s", "w") as f:
            f.write(f"{train_s:.1f}\n")
    for f in [model, f"{work}/{tag}.log.csv", f"{work}/{tag}.ddpm.csv", f"{work}/{tag}.dpm10.csv"]:
        os.remove(f)
    return row


def summarize(rows):
    keys = ["ddpm", "dpm10", "ddpm_modes", "ddpm_inside", "ddpm_gap", "ddpm_copy", "train_s"]
    heads = ["DDPM swd_ratio", "DPM++(2M)@10", "mode balance", "inside range", "iris gap",
             "copy_share", "train s (1 thread)"]
    out = ["| config | data | seeds | " + " | ".join(heads) + " |",
           "|---|---|---|" + "---|" * len(heads)]
    order = SHAPES + TABLES
    groups = {}
    for r in rows:
        groups.setdefault((r["config"], r["data"]), []).append(r)
    for (config, data) in sorted(groups, key=lambda k: (k[0], order.index(k[1]))):
        g = groups[(config, data)]
        cells = []
        for k in keys:
            v = [r[k] for r in g if k in r]
            if not v:
                cells.append("")
            elif k == "train_s":
                cells.append(f"{np.mean(v):.0f}")
            elif k == "ddpm_inside":  # a share near 1: in percent, enough digits to see 99.9
                cells.append(f"{100 * np.mean(v):.3f}% ± {100 * np.std(v):.3f}")
            elif len(v) == 1:
                cells.append(f"{v[0]:.3g}")
            else:
                cells.append(f"{np.mean(v):.3g} ± {np.std(v):.2g}")
        out.append(f"| {config} | {data} | {len(g)} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def main():
    global KEEP
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="build/release/diffuse")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--configs", default="current")
    ap.add_argument("--datasets", default=",".join(SHAPES + TABLES))
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--out", default="study.jsonl")
    ap.add_argument("--summary-only", action="store_true")
    ap.add_argument("--define", action="append", default=[], metavar="NAME=OPTIONS",
                    help="a config of its own: the binary's defaults plus these train options")
    ap.add_argument("--keep", metavar="DIR[=CONFIG]",
                    help="keep CONFIG's models, samples and table splits in DIR, laid out as "
                         "scripts/quality.sh's models folder (it then scores them, no training)")
    a = ap.parse_args()
    if a.keep:
        folder, _, config = a.keep.partition("=")
        os.makedirs(folder, exist_ok=True)
        KEEP = (os.path.abspath(folder), config or a.configs.split(",")[0])
    for d in a.define:
        name, _, options = d.partition("=")
        CONFIGS[name] = shlex.split(options)
    if not a.summary_only:
        binary = os.path.abspath(a.bin)
        work = tempfile.mkdtemp(prefix="defaults_study.")
        write_tables(work)
        if KEEP:
            for name in TABLES:
                shutil.copy(f"{work}/{name}.train.csv", f"{KEEP[0]}/{name}.train.csv")
                shutil.copy(f"{work}/{name}.heldout.csv", f"{KEEP[0]}/{name}.test.csv")
        done = set()
        if os.path.exists(a.out):
            for line in open(a.out):
                r = json.loads(line)
                done.add((r["config"], r["data"], r["seed"]))
        jobs = [(c, d, int(s)) for c in a.configs.split(",") for s in a.seeds.split(",")
                for d in a.datasets.split(",") if (c, d, int(s)) not in done]
        with concurrent.futures.ThreadPoolExecutor(a.jobs) as pool, open(a.out, "a") as f:
            futures = {pool.submit(run_one, binary, work, *j): j for j in jobs}
            for fut in concurrent.futures.as_completed(futures):
                try:
                    row = fut.result()
                except subprocess.CalledProcessError as e:
                    print(f"defaults_study: {futures[fut]} failed: {e}", file=sys.stderr)
                    continue
                f.write(json.dumps(row) + "\n")
                f.flush()
                print(json.dumps(row), file=sys.stderr)
    print(summarize([json.loads(line) for line in open(a.out)]))


if __name__ == "__main__":
    main()
