#!/usr/bin/env python3
"""Draws sampled 8x8 digits beside real ones: a grid of the first ROWS x COLS rows of each CSV
(64 columns, pixel values 0..16, as scikit-learn's load_digits), side by side, into one PNG.

usage: /usr/bin/python3 scripts/digits_grid.py REAL.csv SAMPLES.csv OUT.png [TITLE]
"""
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

ROWS, COLS = 8, 12


def grid(x):
    x = np.clip(x[: ROWS * COLS], 0, 16).reshape(ROWS, COLS, 8, 8)
    out = np.full((ROWS * 9 + 1, COLS * 9 + 1), 16.0)  # white lines between digits
    for r in range(ROWS):
        for c in range(COLS):
            out[1 + r * 9:1 + r * 9 + 8, 1 + c * 9:1 + c * 9 + 8] = x[r, c]
    return out


def main():
    real = np.loadtxt(sys.argv[1], delimiter=",", skiprows=1, ndmin=2)
    samples = np.loadtxt(sys.argv[2], delimiter=",", skiprows=1, ndmin=2)
    title = sys.argv[4] if len(sys.argv) > 4 else "sampled"
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.6))
    for ax, x, name in [(axes[0], real, "real (held-out rows)"), (axes[1], samples, title)]:
        ax.imshow(grid(x), cmap="gray_r", vmin=0, vmax=16, interpolation="nearest")
        ax.set_title(name)
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(sys.argv[3], dpi=80)


if __name__ == "__main__":
    main()
