#!/usr/bin/env bash
# Writes docs/SAMPLERS.md: swd_ratio against the number of network evaluations (NFE) for each
# sampler, on the swiss roll and moons, as mean ± spread over 3 training seeds (each model sampled
# with its own seed), with the time to sample 10,000 points. Not run by CI.
#   usage: scripts/sampler_study.sh [BUILD_DIR] [OUT.md] [MODELS_DIR]
# MODELS_DIR may hold NAME.SEED.safetensors from scripts/quality.sh (trained here when missing).
#   env: SEEDS="0 1 2"  NFES="5 10 20 50 100"  MODEL_NOTE= (how MODELS_DIR's models were trained)
#        EVAL_OPTS= (extra `diffuse eval` options, e.g.
#        "--pairs 96" for a faster, noisier score)
set -euo pipefail
build=${1:-build/release}
out=${2:-docs/SAMPLERS.md}
models=${3:-$(mktemp -d)}
bin="$build/diffuse"
seeds=${SEEDS:-0 1 2}
py=/usr/bin/python3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export OMP_WAIT_POLICY=passive
now() { date +%s.%N; }
results="$work/results.jsonl"
: >"$results"
for data in swiss_roll moons; do
  for seed in $seeds; do
    m="$models/$data.$seed.safetensors"
    [[ -f $m ]] || "$bin" train --data "$data" --seed "$seed" --threads 2 -q -o "$m"
    T=$("$py" -c "import json,struct,sys;b=open(sys.argv[1],'rb').read();n=struct.unpack('<Q',b[:8])[0];print(json.loads(b[8:8+n])['__metadata__']['T'])" "$m")
    rows=("ddpm:$T:0")
    for k in ${NFES:-5 10 20 50 100}; do
      [[ $k -le $T ]] || continue
      rows+=("ddim:$k:0" "ddim:$k:1" "dpmpp2m:$k:0")
    done
    for row in "${rows[@]}"; do
      IFS=: read -r sampler nfe eta <<<"$row"
      t0=$(now)
      "$bin" sample "$m" -n 10000 --seed "$seed" --threads 1 --sampler "$sampler" --nfe "$nfe" \
        --eta "$eta" -o "$work/s.csv"
      t1=$(now)
      # shellcheck disable=SC2086
      json=$("$bin" eval "$work/s.csv" --against "$data" ${EVAL_OPTS:-} --json)
      echo "{\"data\": \"$data\", \"T\": $T, \"seed\": $seed, \"sampler\": \"$sampler\", \"nfe\": $nfe, \"eta\": $eta, \"s\": $(awk "BEGIN{print $t1 - $t0}"), \"eval\": $json}" >>"$results"
    done
    echo "samplers: $data seed $seed done" >&2
  done
done
{
  echo "# Samplers: quality against network evaluations"
  echo
  echo "Written by \`scripts/sampler_study.sh\` on $(date -u +%Y-%m-%d) ($(nproc) cores,"
  echo "$(lscpu | sed -n 's/^Model name: *//p' | head -1)), on a machine shared with other jobs."
  "$py" - "$results" "$seeds" "${EVAL_OPTS:-}" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
seeds = sys.argv[2].split()
opts = f" {sys.argv[3]}" if sys.argv[3] else ""
import os
trained = os.environ.get("MODEL_NOTE", "default settings (`diffuse train --data NAME --seed S`)")
print(f"One model per data set and training seed ({', '.join(seeds)}), {trained}; "
      "10,000 samples with sampling seed S, one thread; "
      f"`swd_ratio` from `diffuse eval{opts}` (standardized units; 1 = as good as fresh data), "
      "**mean ± spread over the training seeds**: differences smaller than the spreads are not "
      "differences. DDPM evaluates the model at every one of the T steps, so it has one row "
      "(NFE = T). DDIM and DPM-Solver++(2M) use their default timestep spacing: DPM-Solver++ "
      "even in log-SNR (`--spacing logsnr`), DDIM the even \"trailing\" "
      "subsequence of Lin et al. 2024 (`--spacing 1`); docs/DEFAULTS.md compares them.")
print()
def ms(v, fmt):
    return (fmt + " ± " + fmt).format(statistics.mean(v), statistics.stdev(v)) if len(v) > 1 \
        else fmt.format(v[0])
for data in ["swiss_roll", "moons"]:
    rs = [r for r in rows if r["data"] == data]
    if not rs:
        continue
    print(f"## {data} (T={rs[0]['T']})")
    print()
    print("| sampler | NFE | swd_ratio | mmd | sampling s |")
    print("|---|---|---|---|---|")
    keys = []
    for r in rs:
        k = (r["sampler"], r["nfe"], r["eta"])
        if k not in keys:
            keys.append(k)
    for k in keys:
        g = [r for r in rs if (r["sampler"], r["nfe"], r["eta"]) == k]
        name = k[0] if k[0] != "ddim" else f"ddim (eta={k[2]})"
        print(f"| {name} | {k[1]} | {ms([r['eval']['swd_ratio'] for r in g], '{:.2f}')} | "
              f"{ms([r['eval']['mmd'] for r in g], '{:.1e}')} | "
              f"{statistics.mean(r['s'] for r in g):.2f} |")
    print()
PY
} >"$out.tmp"
mv "$out.tmp" "$out"
echo "wrote $out" >&2
