#!/bin/bash
# Pilot of the recipe lead from issue 11's ablation: distillation ramped in (loss.distill_ramp_epochs)
# instead of switched on at once at peak LR, which drops the teacher's training accuracy. The same
# 4-epoch schedule and evaluation as ablation-flat.sh, so its arms compare with the ablation's.
# Arms and seeds as arguments (default: alpha_divergence, seed 0); RAMP epochs (default 1.5).
#   setsid nohup training/runs-in-progress/ablation-ramp.sh > runs/ablation-ramp.log 2>&1 &
set -euo pipefail
ROOT=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
cd "$ROOT"
ARMS=${1:-alpha_divergence}
SEEDS=${2:-0}
RAMP=${RAMP:-1.5}
OUT=runs/ablation-ramp
mkdir -p "$OUT"
if [ -d training/runs-in-progress/ablation-ramp ]; then  # carried from an earlier session
  for run in training/runs-in-progress/ablation-ramp/*; do
    [ -e "$OUT/$(basename "$run")" ] || cp -r "$run" "$OUT/"
  done
fi
echo "$(date -u +%H:%M:%S) ablation-ramp: arms $ARMS, seeds $SEEDS, ramp $RAMP epochs"
npm run --silent ablation -- --config training/configs/pipeline/fashion_mnist.yaml \
  run_dir=runs/pipeline/fashion_mnist_flat source.train.nproc_per_node=2 \
  "source.train.overrides=[space=fashion_mnist_flat,runtime.threads=1,data.batch_size=64,loss.distill_ramp_epochs=$RAMP]" \
  --arms "$ARMS" --seeds "$SEEDS" --epochs 4 --out-dir "$OUT"
echo "$(date -u +%H:%M:%S) ablation-ramp: done"
