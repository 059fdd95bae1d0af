#!/usr/bin/env bash
# Runs each libFuzzer target for SECONDS (default 60) on a scratch copy of its committed seed
# corpus and prints one summary line per target: seconds, executions, corpus size, result.
# Usage: fuzz/run.sh BUILD_DIR [SECONDS]. A crash leaves build/fuzz/artifacts/TARGET-crash-*.
set -uo pipefail
cd "$(dirname "$0")/.."
build=${1:?usage: fuzz/run.sh BUILD_DIR [SECONDS]}
seconds=${2:-60}
mkdir -p "$build/artifacts"
status=0
for target in csv checkpoint; do
  work="$build/corpus/$target"  # new inputs go here, never into the committed seeds
  mkdir -p "$work"
  log="$build/$target.log"
  start=$(date +%s)
  "$build/${target}_fuzz" "$work" "fuzz/corpus/$target" -dict="fuzz/$target.dict" \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$build/artifacts/$target-" >"$log" 2>&1
  rc=$?
  took=$(($(date +%s) - start))
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  corpus=$(find "$work" -type f | wc -l)
  if [[ $rc -eq 0 ]]; then
    result="no crash"
  else
    result="FAILED (exit $rc): $(grep -m1 -E 'ERROR|runtime error|deadly signal|broken invariant' "$log")"
    status=1
  fi
  echo "fuzz $target: ${took} s, ${execs:-?} executions, ${corpus} corpus inputs, $result"
done
exit $status
