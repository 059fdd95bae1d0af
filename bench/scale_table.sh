#!/usr/bin/env bash
# The scale table of docs/PERFORMANCE.md: one training epoch and the sampling time (T = 100 steps)
# for N = 10^4 .. 10^7 points of D = 2, 16, 64 dimensions, one thread, with each size's peak memory
# (each size runs in its own process). Not run by CI: about ten minutes of CPU.
#
# Usage: bench/scale_table.sh [--bench PATH] [--max-n N]
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
bench=""
max_n=10000000
while [[ $# -gt 0 ]]; do
  case "$1" in
    --bench) bench=$2; shift 2 ;;
    --max-n) max_n=$2; shift 2 ;;
    -h|--help) sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "scale_table: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
done
if [[ -z "$bench" ]]; then
  for c in "$root/build/release/bench/diffuse_bench" "$root/build/rel/bench/diffuse_bench"; do
    [[ -x "$c" ]] && { bench=$c; break; }
  done
fi
if [[ -z "$bench" || ! -x "$bench" ]]; then
  echo "scale_table: no diffuse_bench: build it (make build) or pass --bench PATH" >&2
  exit 1
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load $(cut -d' ' -f1-3 /proc/loadavg)"
for n in 10000 100000 1000000 10000000; do
  [[ $n -le $max_n ]] || continue
  for d in 2 16 64; do
    for b in BM_ScaleTrainEpoch BM_ScaleSample; do
      DIFFUSE_BENCH_SCALE=1 "$bench" --benchmark_filter="^$b/N:$n/D:$d/" \
        --benchmark_format=json --benchmark_out="$tmp/$b-$n-$d.json" >/dev/null
    done
  done
done
python3 - "$tmp" <<'PY'
import glob, json, os, sys
rows = {}
for f in glob.glob(os.path.join(sys.argv[1], "*.json")):
    for b in json.load(open(f))["benchmarks"]:
        name, n, d = b["name"].split("/")[:3]
        key = (int(n.split(":")[1]), int(d.split(":")[1]))
        rows.setdefault(key, {})[name] = b
print()
print("| N | D | epoch (s) | steps/s | us/point | MiB (train) | sampling, 100 steps (s) | us/point | MiB (sample) |")
print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for (n, d) in sorted(rows):
    t, s = rows[(n, d)].get("BM_ScaleTrainEpoch"), rows[(n, d)].get("BM_ScaleSample")
    print(f"| {n:.0e} | {d} | {t['epoch_s']:.3g} | {t['steps/s']:.0f} | {t['us/point']:.2f} | "
          f"{t['max_rss_MiB']:.0f} | {s['sample_s']:.3g} | {s['us/point']:.2f} | {s['max_rss_MiB']:.0f} |")
PY
