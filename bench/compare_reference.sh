#!/usr/bin/env bash
# Speed of `diffuse` next to the PyTorch peer (../shared/reference/seed_reference.py) on the same
# data, epochs and threads, run one after the other: training steps/s, sampling time, ratios.
# Not run by CI (it needs PyTorch and minutes of CPU); it is skipped cleanly when the peer is missing.
#
# Usage: bench/compare_reference.sh [--epochs E] [--threads K] [--n N] [--diffuse PATH]
#   E  training epochs (default 20; 79 steps each at the default N=10000, batch 128)
#   K  threads for both programs (default 1)
#   N  training points and samples (default 10000; sampling is N points over T=100 steps)
#
# The peer needs Debian's PyTorch and OpenBLAS:
#   sudo apt-get install python3-torch libopenblas0-pthread
# and runs as /usr/bin/python3 with OPENBLAS_NUM_THREADS=1 and without OPENBLAS_CORETYPE (its fastest
# setting on this machine; torch's own intra-op threads are set to K). The machine is often shared:
# the load average before each run is printed, read the ratio rather than the absolute figures.
set -euo pipefail

epochs=20
threads=1
n=10000
root=$(cd "$(dirname "$0")/.." && pwd)
diffuse=${DIFFUSE:-}
while [[ $# -gt 0 ]]; do
  case "$1" in
    --epochs) epochs=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --n) n=$2; shift 2 ;;
    --diffuse) diffuse=$2; shift 2 ;;
    -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "compare_reference: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
done

# The peer sits in shared/ beside the checkout (../shared), or beside the folder of worktrees.
peer=${PEER:-}
if [[ -z "$peer" ]]; then
  for c in "$root/../shared" "$root/../../shared"; do
    [[ -f "$c/reference/seed_reference.py" ]] && { peer="$c/reference/seed_reference.py"; break; }
  done
fi
python=/usr/bin/python3
if [[ -z "$peer" || ! -f "$peer" ]]; then
  echo "compare_reference: skipped: the peer ../shared/reference/seed_reference.py is missing" \
       "(or set PEER=path)"
  exit 0
fi
if ! "$python" -c 'import torch' 2>/dev/null; then
  echo "compare_reference: skipped: $python cannot import torch;" \
       "install it with: sudo apt-get install python3-torch libopenblas0-pthread"
  exit 0
fi
if [[ -z "$diffuse" ]]; then
  for c in "$root/build/release/diffuse" "$root/build/rel/diffuse"; do
    [[ -x "$c" ]] && { diffuse=$c; break; }
  done
fi
if [[ -z "$diffuse" || ! -x "$diffuse" ]]; then
  echo "compare_reference: no diffuse binary: build it (make build) or pass --diffuse PATH" >&2
  exit 1
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
load() { cut -d' ' -f1-3 /proc/loadavg; }
now() { date +%s.%N; }

# Reads one metadata string from a safetensors header (8-byte little-endian length, then JSON).
meta() {
  "$python" - "$1" "$2" <<'PY'
import json, struct, sys
with open(sys.argv[1], "rb") as f:
    (size,) = struct.unpack("<Q", f.read(8))
    print(json.loads(f.read(size))["__metadata__"][sys.argv[2]])
PY
}

echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores"
echo "settings: swiss_roll, N=$n, epochs=$epochs, batch 128, T=100, H=128, threads=$threads"

echo "diffuse train  (load $(load))"
# The peer's (the tutorial's) settings, not diffuse's own defaults (EMA, cosine decay, beta to 0.1).
"$diffuse" train --data swiss_roll -n "$n" --epochs "$epochs" --threads "$threads" --seed 0 \
  --schedule sigmoid --steps 100 --beta-start 1e-4 --beta-end 0.02 --lr 1e-3 --lr-schedule constant \
  --warmup 0 --ema 0 --hidden 128 --batch-size 128 --grad-clip 1 -o "$tmp/m.safetensors" --quiet
d_steps=$(meta "$tmp/m.safetensors" info.steps_per_s)
echo "diffuse sample (load $(load))"
t0=$(now)
"$diffuse" sample "$tmp/m.safetensors" -n "$n" --threads "$threads" -o "$tmp/s.csv"
d_sample=$(awk -v a="$t0" -v b="$(now)" 'BEGIN { print b - a }')

echo "peer train + sample (load $(load))"
peer_json=$(OPENBLAS_NUM_THREADS=1 env -u OPENBLAS_CORETYPE "$python" "$peer" --dataset swiss_roll \
  --n "$n" --epochs "$epochs" --threads "$threads" --seed 0 --no-eval)
p_steps=$("$python" -c 'import json,sys; print(json.loads(sys.argv[1])["train_steps_per_s"])' "$peer_json")
p_sample=$("$python" -c 'import json,sys; print(json.loads(sys.argv[1])["sample_s"])' "$peer_json")

printf '\n%-34s %12s %12s %8s\n' "" diffuse peer ratio
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { print a / b }'; }
printf '%-34s %12.1f %12.1f %7.2fx\n' "training steps/s" "$d_steps" "$p_steps" \
  "$(ratio "$d_steps" "$p_steps")"
printf '%-34s %12.3f %12.3f %7.2fx\n' "sampling $n points, 100 steps (s)" "$d_sample" "$p_sample" \
  "$(ratio "$p_sample" "$d_sample")"
echo "(ratio: how many times faster diffuse is; its sampling time is the whole 'diffuse sample'"
echo " process, loading and CSV writing included; the peer's is its sampling loop alone)"
