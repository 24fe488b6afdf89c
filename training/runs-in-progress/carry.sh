#!/bin/bash
# Carry training runs to the next session (runs/ is not kept between machines): stop every
# `alphanet train` process cleanly (SIGTERM: each checkpoints at its next step boundary and exits), then
# copy each named run directory's config, metrics, result and last checkpoint into
# training/runs-in-progress/<destination>/<run name>. Commit what it prints afterwards.
#   training/runs-in-progress/carry.sh runs/ablation-flat:ablation-flat runs/baselines-flat:baselines-flat
# Each argument is RUNS_PARENT:DESTINATION; every run directory under RUNS_PARENT is carried.
set -euo pipefail
ROOT=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
cd "$ROOT"
# Signal the training processes only, never a torchrun agent: the agent forwards SIGTERM to its
# workers, and a second signal makes a trainer give up at once, without its checkpoint.
trainers=$(for pid in $(pgrep -f "alphanet train"); do
  case "$(tr '\0' ' ' < "/proc/$pid/cmdline" 2> /dev/null)" in
    *torch.distributed.run* | *torchrun*) ;;
    *) echo "$pid" ;;
  esac
done)
if [ -n "$trainers" ]; then
  kill -TERM $trainers 2> /dev/null || true
  for _ in $(seq 300); do pgrep -f "alphanet train" > /dev/null || break; sleep 1; done
fi
for pair in "$@"; do
  parent=${pair%%:*}
  dest=training/runs-in-progress/${pair#*:}
  for run in "$parent"/*/; do
    run=${run%/}
    [ -f "$run/config.yaml" ] || continue
    # A finished baseline carried already (e.g. the plain CNNs, copied in from baselines/) stays where
    # it is: the same result file under any carried directory (names such as alphanet-min recur per space).
    if [ -f "$run/baseline.json" ]; then
      for carried in training/runs-in-progress/*/"$(basename "$run")"/baseline.json; do
        cmp -s "$carried" "$run/baseline.json" && continue 2
      done
    fi
    target=$dest/$(basename "$run")
    mkdir -p "$target"
    for file in config.yaml metrics.jsonl baseline.json; do
      [ -f "$run/$file" ] && cp "$run/$file" "$target/"
    done
    # A finished baseline needs no checkpoint (baseline.json holds its result): one carried while
    # it trained goes.
    if [ -f "$run/baseline.json" ]; then
      rm -rf "$target/checkpoints"
    elif [ -f "$run/checkpoints/last.pt" ]; then
      mkdir -p "$target/checkpoints" && cp "$run/checkpoints/last.pt" "$target/checkpoints/"
    fi
    echo "carried $run -> $target"
  done
  for file in "$parent"/*.json "$parent"/*.jsonl; do if [ -f "$file" ]; then cp "$file" "$dest/"; fi; done
done
