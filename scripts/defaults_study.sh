#!/usr/bin/env bash
# Measures candidate training defaults at the tutorial's budget (1000 epochs of 10,000 swiss-roll
# points, batch 128) and prints a Markdown table of swd_ratio per configuration. Not run by CI.
#   usage: [CONFIGS="1 3"] scripts/defaults_study.sh [BUILD_DIR] [EPOCHS] [SEEDS...]
set -euo pipefail
build=${1:-build/release}
epochs=${2:-1000}
shift 2 || true
seeds=("${@:-0}")
bin="$build/diffuse"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export OMP_WAIT_POLICY=passive

configs=(
  "tutorial (sigmoid T=100, lr 1e-3)|--schedule sigmoid --steps 100 --ema 0"
  "+ EMA 0.999|--schedule sigmoid --steps 100 --ema 0.999"
  "sigmoid, beta_end 0.1, EMA|--schedule sigmoid --steps 100 --beta-end 0.1 --ema 0.999"
  "cosine T=100, EMA|--schedule cosine --steps 100 --ema 0.999"
  "cosine T=100, EMA, lr 2e-3 warm-up+cosine|--schedule cosine --steps 100 --ema 0.999 --lr 2e-3 --warmup 1000 --lr-schedule cosine --lr-min 1e-5"
  "linear 1e-4..0.1 T=100, EMA|--schedule linear --steps 100 --beta-end 0.1 --ema 0.999"
  "linear 1e-4..0.1 T=100, no EMA|--schedule linear --steps 100 --beta-end 0.1 --ema 0"
  "linear 1e-4..0.1, EMA, lr 2e-3 warm-up+cosine|--schedule linear --steps 100 --beta-end 0.1 --ema 0.999 --lr 2e-3 --warmup 1000 --lr-schedule cosine --lr-min 1e-5"
  "sigmoid 1e-4..0.1, EMA, lr 2e-3 warm-up+cosine|--schedule sigmoid --steps 100 --beta-end 0.1 --ema 0.999 --lr 2e-3 --warmup 1000 --lr-schedule cosine --lr-min 1e-5"
  "linear 1e-4..0.1, EMA, lr 1e-3 cosine|--schedule linear --steps 100 --beta-end 0.1 --ema 0.999 --lr-schedule cosine --lr-min 1e-5"
)
# CONFIGS="7 8" runs only those entries (1-based), e.g. to add seeds to the best ones.
if [[ -n "${CONFIGS:-}" ]]; then
  picked=()
  for i in $CONFIGS; do picked+=("${configs[$((i - 1))]}"); done
  configs=("${picked[@]}")
fi

echo "| configuration | seed | final loss | swd_ratio | mmd | train s |"
echo "|---|---|---|---|---|---|"
for entry in "${configs[@]}"; do
  name=${entry%%|*}
  args=${entry#*|}
  for seed in "${seeds[@]}"; do
    # shellcheck disable=SC2086
    "$bin" train --data swiss_roll --epochs "$epochs" --seed "$seed" --threads 1 -q $args \
      -o "$work/m.safetensors"
    "$bin" sample "$work/m.safetensors" -n 10000 --seed "$seed" -o "$work/s.csv"
    json=$("$bin" eval "$work/s.csv" --against swiss_roll --seed $((seed + 1000)) --json)
    info=$(python3 - "$work/m.safetensors" "$json" <<'PY'
import json, struct, sys
blob = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", blob[:8])[0]
meta = json.loads(blob[8:8 + n]).get("__metadata__", {})
ev = json.loads(sys.argv[2])
print(f"{float(meta.get('info.final_loss', 'nan')):.4f} | {ev['swd_ratio']:.3f} | {ev['mmd']:.2e} | "
      f"{float(meta.get('info.train_seconds', 'nan')):.1f}")
PY
)
    echo "| $name | $seed | $info |"
  done
done
