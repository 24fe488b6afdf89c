#!/bin/bash
# Carry training runs to the next session (runs/ is not kept between machines): stop every
# `alphanet train` process cleanly (SIGTERM: each writes a checkpoint at the signal and exits), then
# copy each named run directory's config, metrics, result and last checkpoint into
# training/runs-in-progress/<destination>/<run name>. Commit what it prints afterwards.
#   training/runs-in-progress/carry.sh runs/ablation-flat:ablation-flat runs/baselines-flat:baselines-flat
# Each argument is RUNS_PARENT:DESTINATION; every run directory under RUNS_PARENT is carried.
set -euo pipefail
ROOT=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
cd "$ROOT"
if pgrep -f "alphanet train" > /dev/null; then
  pkill -TERM -f "alphanet train" || true
  for _ in $(seq 120); do pgrep -f "alphanet train" > /dev/null || break; sleep 1; done
fi
for pair in "$@"; do
  parent=${pair%%:*}
  dest=training/runs-in-progress/${pair#*:}
  for run in "$parent"/*/; do
    run=${run%/}
    [ -f "$run/config.yaml" ] || continue
    target=$dest/$(basename "$run")
    mkdir -p "$target"
    for file in config.yaml metrics.jsonl baseline.json; do
      [ -f "$run/$file" ] && cp "$run/$file" "$target/"
    done
    # A finished baseline needs no checkpoint (baseline.json holds its result).
    if [ -f "$run/checkpoints/last.pt" ] && [ ! -f "$run/baseline.json" ]; then
      mkdir -p "$target/checkpoints" && cp "$run/checkpoints/last.pt" "$target/checkpoints/"
    fi
    echo "carried $run -> $target"
  done
  for file in "$parent"/*.json; do [ -f "$file" ] && cp "$file" "$dest/"; done
done
