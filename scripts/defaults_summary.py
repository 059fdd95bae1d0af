#!/usr/bin/python3
"""Reads the rows scripts/defaults_study.sh printed (stdin) and prints mean +- std over the seeds
per configuration and shape, for DDPM and DPM-Solver++(2M)@10, as a Markdown table."""
import statistics
import sys
from collections import OrderedDict

runs = OrderedDict()
for line in sys.stdin:
    cells = [c.strip() for c in line.strip().strip("|").split("|")]
    if len(cells) != 6 or not cells[2].isdigit():
        continue
    key = (cells[0], cells[1])
    runs.setdefault(key, []).append((float(cells[3]), float(cells[4]), float(cells[5])))


def ms(values):
    if len(values) < 2:
        return f"{values[0]:.2f}"
    return f"{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f}"


print("| configuration | shape | seeds | DDPM swd_ratio | DPM-Solver++(2M)@10 | train s |")
print("|---|---|---|---|---|---|")
for (config, shape), rows in runs.items():
    print(f"| {config} | {shape} | {len(rows)} | {ms([r[0] for r in rows])} | "
          f"{ms([r[1] for r in rows])} | {statistics.mean(r[2] for r in rows):.0f} |")
