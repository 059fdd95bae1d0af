#!/usr/bin/env python3
"""Measures what issue 12 items 3-5 change: trains a data set over several seeds with given training
options, samples each model with several sampling options, and records per run swd_ratio (held-out
rows for tables, fresh draws for shapes), the share of sampled values inside each column's training
range and, for iris, the share of samples inside the gap in petal length that holds no real row.

usage:
  /usr/bin/python3 scripts/range_study.py run --bin build/release/diffuse --tables DIR \
      --data iris,wine,digits,s_curve --seeds 0,1,2 --label after --train-args "..." \
      --variants "ddpm=;dpm10=--sampler dpmpp2m --nfe 10" --out results.jsonl [-n 10000]
  /usr/bin/python3 scripts/range_study.py summary results.jsonl
DIR holds NAME.train.csv and NAME.heldout.csv (scripts/sklearn_tables.py). Each run appends one
JSON line per (data, seed, variant). The summary prints mean ± sample std over the seeds.
"""
import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time

import numpy as np


def read_csv(path):
    with open(path) as f:
        header = f.readline()
    first = header.split(",")[0].strip()
    try:
        float(first)
        skip = 0
    except ValueError:
        skip = 1
    return np.loadtxt(path, delimiter=",", skiprows=skip, ndmin=2)


def is_table(tables, name):
    return os.path.exists(os.path.join(tables, name + ".train.csv"))


def run(a):
    variants = []
    for v in a.variants.split(";"):
        name, _, args = v.partition("=")
        args = shlex.split(args)
        post_clip = "--post-clip" in args  # clip the output to the range here, not in diffuse
        variants.append((name, [x for x in args if x != "--post-clip"], post_clip))
    work = tempfile.mkdtemp(prefix="range_study_")
    for data in a.data.split(","):
        table = is_table(a.tables, data)
        if table:
            train_csv = os.path.join(a.tables, data + ".train.csv")
            heldout = os.path.join(a.tables, data + ".heldout.csv")
            x_train = read_csv(train_csv).astype(np.float32)  # as diffuse reads it
            full = np.vstack([x_train, read_csv(heldout)])
            lo, hi = x_train.min(0), x_train.max(0)
            gap = None
            if data == "iris":  # the widest empty interval of petal length (column 3) in all rows
                v = np.unique(full[:, 2])
                k = int(np.argmax(np.diff(v)))
                gap = (float(v[k]), float(v[k + 1]))
        for seed in [int(s) for s in a.seeds.split(",")]:
            model = os.path.join(work, f"{data}.{seed}.safetensors")
            cmd = [a.bin, "train", "--data", train_csv if table else data, "--seed", str(seed),
                   "--threads", "1", "-q", "-o", model] + shlex.split(a.train_args)
            t0 = time.time()
            p = subprocess.run(cmd, capture_output=True, text=True)
            train_s = time.time() - t0
            if p.returncode != 0:
                print("FAILED:", " ".join(cmd), p.stderr, file=sys.stderr)
                continue
            warning = p.stderr.strip()
            for name, args, post_clip in variants:
                out = os.path.join(work, "s.csv")
                subprocess.run([a.bin, "sample", model, "-n", str(a.n), "--seed", str(100 + seed),
                                "-o", out] + args, check=True, capture_output=True)
                if post_clip and table:
                    with open(out) as f:
                        header = f.readline().strip()
                    clipped = np.clip(read_csv(out).astype(np.float32), lo, hi)
                    np.savetxt(out, clipped, delimiter=",", fmt="%.9g", header=header, comments="")
                ev = json.loads(subprocess.run(
                    [a.bin, "eval", out, "--against", heldout if table else data, "--json"],
                    check=True, capture_output=True, text=True).stdout)
                rec = {"label": a.label, "data": data, "seed": seed, "variant": name,
                       "train_args": a.train_args,
                       "sample_args": " ".join(args) + (" (output clipped)" if post_clip else ""),
                       "swd_ratio": ev["swd_ratio"], "train_s": round(train_s, 2)}
                if "modes_hit" in ev:
                    rec["modes_hit"] = ev["modes_hit"]
                if warning:
                    rec["warning"] = warning
                if table:
                    s = read_csv(out).astype(np.float32)
                    rec["in_range"] = float(np.mean((s >= lo) & (s <= hi)))
                    rec["min"] = float(s.min())
                    rec["max"] = float(s.max())
                    if gap is not None:
                        rec["gap"] = list(gap)
                        pl = s[:, 2]
                        rec["in_gap"] = float(np.mean((pl > gap[0]) & (pl < gap[1])))
                with open(a.out, "a") as f:
                    f.write(json.dumps(rec) + "\n")
                print(json.dumps(rec), flush=True)
            if a.keep_models:
                os.replace(model, os.path.join(a.keep_models, f"{data}.{seed}.safetensors"))
            else:
                os.remove(model)


def summary(a):
    rows = [json.loads(l) for l in open(a.results) if l.strip()]
    groups = {}
    for r in rows:
        groups.setdefault((r["data"], r["label"], r["variant"]), []).append(r)

    def ms(vals, fmt):
        v = np.array(vals, dtype=float)
        sd = v.std(ddof=1) if len(v) > 1 else 0.0
        return (fmt % v.mean()) + " ± " + (fmt % sd)

    print("| data | training | sampling | seeds | swd_ratio | in range | in iris gap | train s |")
    print("|---|---|---|---|---|---|---|---|")
    for (data, label, variant), g in groups.items():
        inr = ms([100 * r["in_range"] for r in g], "%.2f") + "%" if "in_range" in g[0] else "-"
        gap = ms([100 * r["in_gap"] for r in g], "%.1f") + "%" if "in_gap" in g[0] else "-"
        print(f"| {data} | {label} | {variant} | {len(g)} | {ms([r['swd_ratio'] for r in g], '%.2f')}"
              f" | {inr} | {gap} | {np.mean([r['train_s'] for r in g]):.0f} |")


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--bin", default="build/release/diffuse")
    r.add_argument("--tables", default="/tmp/range_data")
    r.add_argument("--data", required=True)
    r.add_argument("--seeds", default="0,1,2")
    r.add_argument("--label", required=True)
    r.add_argument("--train-args", default="")
    r.add_argument("--variants", default="ddpm=")
    r.add_argument("-n", type=int, default=10000)
    r.add_argument("--keep-models", default="", help="move the trained models into this folder")
    r.add_argument("--out", required=True)
    s = sub.add_parser("summary")
    s.add_argument("results")
    a = ap.parse_args()
    run(a) if a.cmd == "run" else summary(a)


if __name__ == "__main__":
    main()
