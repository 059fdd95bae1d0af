#!/usr/bin/env python3
"""Writes scikit-learn's iris, wine and digits (features only) as CSVs split 80/20 into training
and held-out rows, for the range study (scripts/range_study.sh), docs figures and, through
write_tables (any of scikit-learn's tables), scripts/defaults_study.py.

usage: /usr/bin/python3 scripts/sklearn_tables.py OUT_DIR [SEED]
Writes OUT_DIR/NAME.train.csv and OUT_DIR/NAME.heldout.csv (header from the feature names; the
held-out rows are a seeded random 20%).
"""
import sys

import numpy as np
from sklearn import datasets


def inside_share(samples, train):
    """The share of sampled values inside the training rows' column ranges, compared in float32:
    diffuse reads, computes and writes floats, so a sample clipped to a column's maximum 7.9 is
    written as 7.9000001, the float nearest 7.9, which a float64 comparison counts as outside."""
    s = np.asarray(samples, dtype=np.float32)
    t = np.asarray(train, dtype=np.float32)
    return float(((s >= t.min(0)) & (s <= t.max(0))).mean())


def write_tables(out, names=("iris", "wine", "digits"), seed=0):
    """Writes OUT/NAME.train.csv and OUT/NAME.heldout.csv for each scikit-learn table named."""
    for name in names:
        d = getattr(datasets, "load_" + name)()
        x = np.asarray(d.data, dtype=np.float64)
        columns = [str(f).replace(" ", "_").replace("(cm)", "cm").replace(",", "") for f in
                   d.feature_names]
        perm = np.random.default_rng(seed).permutation(len(x))
        k = len(x) // 5
        for part, rows in [("heldout", perm[:k]), ("train", perm[k:])]:
            with open(f"{out}/{name}.{part}.csv", "w") as f:
                f.write(",".join(columns) + "\n")
                for r in x[np.sort(rows)]:
                    f.write(",".join(f"{v:.9g}" for v in r) + "\n")


def main():
    write_tables(sys.argv[1], seed=int(sys.argv[2]) if len(sys.argv) > 2 else 0)


if __name__ == "__main__":
    main()
