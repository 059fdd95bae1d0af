#!/usr/bin/env bash
# Writes docs/QUALITY.md: every built-in shape trained at the default settings, with swd_ratio,
# mmd, mode coverage where it applies, and training time. Not run by CI.
#   usage: scripts/quality.sh [BUILD_DIR] [OUT.md] [EPOCHS]
set -euo pipefail
build=${1:-build/release}
out=${2:-docs/QUALITY.md}
epochs=${3:-1000}
bin="$build/diffuse"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export OMP_WAIT_POLICY=passive
{
  echo "# Sample quality on every built-in shape"
  echo
  echo "Written by \`scripts/quality.sh\` on $(date -u +%Y-%m-%d) ($(nproc) cores,"
  echo "$(lscpu | sed -n 's/^Model name: *//p' | head -1)). Each shape: 10,000 points, default"
  echo "settings (\`diffuse train --data NAME --epochs $epochs --threads 2\`), 10,000 DDPM samples,"
  echo "\`diffuse eval --against NAME\`. swd_ratio = swd / floor (1 = as good as fresh data);"
  echo "coverage (mixtures only) = modes hit / modes, and the share of samples within 3 std of a"
  echo "mode."
  echo
  echo "| data set | swd_ratio | mmd | mmd floor | coverage | train s |"
  echo "|---|---|---|---|---|---|"
  for data in $("$bin" data --list | awk '{print $1}'); do
    t0=$(date +%s.%N)
    "$bin" train --data "$data" --epochs "$epochs" --threads 2 -q -o "$work/m.safetensors"
    t1=$(date +%s.%N)
    "$bin" sample "$work/m.safetensors" -n 10000 --threads 2 -o "$work/s.csv"
    json=$("$bin" eval "$work/s.csv" --against "$data" --json)
    python3 - "$json" "$data" "$t0" "$t1" <<'PY'
import json, sys
ev = json.loads(sys.argv[1])
cov = "-"
if "modes" in ev:
    cov = f"{ev['modes_hit']}/{ev['modes']}, {100 * ev['in_mode_share']:.1f}%"
print(f"| {sys.argv[2]} | {ev['swd_ratio']:.3f} | {ev['mmd']:.2e} | {ev['mmd_floor']:.1e} | "
      f"{cov} | {float(sys.argv[4]) - float(sys.argv[3]):.1f} |")
PY
  done
} > "$out.tmp"
mv "$out.tmp" "$out"
echo "wrote $out" >&2
