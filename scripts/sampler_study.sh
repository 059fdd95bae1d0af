#!/usr/bin/env bash
# Writes docs/SAMPLERS.md: swd_ratio against the number of network evaluations (NFE) for each
# sampler, on the swiss roll and moons, with the time to sample 10,000 points. Not run by CI.
#   usage: scripts/sampler_study.sh [BUILD_DIR] [OUT.md]
set -euo pipefail
build=${1:-build/release}
out=${2:-docs/SAMPLERS.md}
bin="$build/diffuse"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export OMP_WAIT_POLICY=passive

now() { date +%s.%N; }
{
  echo "# Samplers: quality against network evaluations"
  echo
  echo "Written by \`scripts/sampler_study.sh\` on $(date -u +%Y-%m-%d) ($(nproc) cores,"
  echo "$(lscpu | sed -n 's/^Model name: *//p' | head -1)). One model per data set, trained with"
  echo "the default settings (\`diffuse train --data NAME\`, 1000 epochs, seed 0); 10,000 samples,"
  echo "sampling seed 0, one thread; \`swd_ratio\` from \`diffuse eval\` (1 = as good as fresh data)."
  echo "DDPM evaluates the model at every one of the T steps, so it has one row (NFE = T)."
  echo "DDIM and DPM-Solver++(2M) use the \"trailing\" timestep subsequence (Lin et al. 2024)."
  echo
  for data in swiss_roll moons; do
    "$bin" train --data "$data" --seed 0 --threads 2 -q -o "$work/$data.safetensors"
    T=$(python3 -c "import json,struct,sys;b=open(sys.argv[1],'rb').read();n=struct.unpack('<Q',b[:8])[0];print(json.loads(b[8:8+n])['__metadata__']['T'])" "$work/$data.safetensors")
    echo "## $data (T=$T)"
    echo
    echo "| sampler | NFE | swd_ratio | mmd | sampling s |"
    echo "|---|---|---|---|---|"
    rows=("ddpm:$T:0")
    for k in 5 10 20 50 100; do
      [[ $k -le $T ]] || continue
      rows+=("ddim:$k:0" "ddim:$k:1" "dpmpp2m:$k:0")
    done
    for row in "${rows[@]}"; do
      IFS=: read -r sampler nfe eta <<<"$row"
      t0=$(now)
      "$bin" sample "$work/$data.safetensors" -n 10000 --seed 0 --sampler "$sampler" --nfe "$nfe" \
        --eta "$eta" -o "$work/s.csv"
      t1=$(now)
      json=$("$bin" eval "$work/s.csv" --against "$data" --json)
      name=$sampler
      [[ $sampler == ddim ]] && name="ddim (eta=$eta)"
      python3 - "$json" "$name" "$nfe" "$t0" "$t1" <<'PY'
import json, sys
ev = json.loads(sys.argv[1])
print(f"| {sys.argv[2]} | {sys.argv[3]} | {ev['swd_ratio']:.3f} | {ev['mmd']:.2e} | "
      f"{float(sys.argv[5]) - float(sys.argv[4]):.3f} |")
PY
    done
    echo
  done
} > "$out.tmp"
mv "$out.tmp" "$out"
echo "wrote $out" >&2
