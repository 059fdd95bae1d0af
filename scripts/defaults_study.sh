#!/usr/bin/env bash
# Measures candidate training defaults at the tutorial's budget (1000 epochs of 10,000 points,
# batch 128: 79,000 optimizer steps) on built-in shapes over several training seeds, and prints one
# Markdown row per run, then mean +- std per configuration and shape (docs/DEFAULTS.md). Each run
# scores 10,000 samples with DDPM (all T steps) and with DPM-Solver++(2M) at 10 evaluations.
# Not run by CI. The shapes are written to CSV and trained from it, so they are standardized as
# user data are (the built-in shapes are not, on a build without standardized shapes).
#   usage: [CONFIGS="1 3"] [SHAPES="moons circles"] [THREADS=2] \
#          scripts/defaults_study.sh [BUILD_DIR] [EPOCHS] [SEEDS...]
set -euo pipefail
build=${1:-build/release}
epochs=${2:-1000}
shift 2 || true
seeds=("${@:-0 1 2}")
read -r -a seeds <<< "${seeds[*]}"
bin="$build/diffuse"
threads=${THREADS:-2}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export OMP_WAIT_POLICY=passive

# name|train options. The first is the old default (the tutorial's network), kept for comparison.
configs=(
  "tutorial net, sigmoid T=100 to 0.1, eps (old default)|--model tutorial"
  "resmlp H=128 L=3, cosine T=1000, eps|--model resmlp --hidden 128 --depth 3 --schedule cosine --steps 1000"
  "resmlp H=128 L=3, cosine T=1000, v, min-snr|--model resmlp --hidden 128 --depth 3 --schedule cosine --steps 1000 --predict v --loss-weighting min-snr"
  "resmlp H=128 L=3, cosine T=1000, x0, min-snr|--model resmlp --hidden 128 --depth 3 --schedule cosine --steps 1000 --predict x0 --loss-weighting min-snr"
  "resmlp H=128 L=3, cosine T=1000, eps, min-snr|--model resmlp --hidden 128 --depth 3 --schedule cosine --steps 1000 --loss-weighting min-snr"
  "resmlp H=64 L=2, cosine T=1000, v, min-snr|--model resmlp --hidden 64 --depth 2 --schedule cosine --steps 1000 --predict v --loss-weighting min-snr"
  "resmlp H=128 L=3, sigmoid T=100 to 0.1, eps|--model resmlp --hidden 128 --depth 3"
)
if [[ -n "${CONFIGS:-}" ]]; then
  picked=()
  for i in $CONFIGS; do picked+=("${configs[$((i - 1))]}"); done
  configs=("${picked[@]}")
fi
shapes=${SHAPES:-$("$bin" data --list | awk '{print $1}' | tr '\n' ' ')}

score() {  # samples.csv shape seed -> swd_ratio
  "$bin" eval "$1" --against "$2" --seed $(($3 + 1000)) --json |
    python3 -c 'import json, sys; print("%.3f" % json.load(sys.stdin)["swd_ratio"])'
}

echo "| configuration | shape | seed | DDPM | DPM-Solver++(2M)@10 | train s |"
echo "|---|---|---|---|---|---|"
for entry in "${configs[@]}"; do
  name=${entry%%|*}
  args=${entry#*|}
  for shape in $shapes; do
    for seed in "${seeds[@]}"; do
      "$bin" data "$shape" -n 10000 --seed $((seed + 1)) -o "$work/d.csv"
      t0=$(date +%s.%N)
      # shellcheck disable=SC2086
      "$bin" train --data "$work/d.csv" --epochs "$epochs" --seed "$seed" --threads "$threads" -q \
        $args -o "$work/m.safetensors"
      t1=$(date +%s.%N)
      "$bin" sample "$work/m.safetensors" -n 10000 --seed "$seed" --threads "$threads" \
        -o "$work/ddpm.csv"
      "$bin" sample "$work/m.safetensors" -n 10000 --seed "$seed" --threads "$threads" \
        --sampler dpmpp2m --nfe 10 -o "$work/dpm.csv"
      echo "| $name | $shape | $seed | $(score "$work/ddpm.csv" "$shape" "$seed") |" \
        "$(score "$work/dpm.csv" "$shape" "$seed") | $(echo "$t1 - $t0" | bc) |"
    done
  done
done
