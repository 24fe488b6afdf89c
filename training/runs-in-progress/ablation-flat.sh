#!/bin/bash
# Issue 11's distillation ablation on the published `fashion_mnist_flat` family: adaptive
# α-divergence, KL and none (label-smoothed CE for every subnet), seeds 0 and 1, every arm the same
# shortened schedule (EPOCHS, default 4, of the family's recipe: torchrun 2 × 1 thread, batch 64 per
# process). Seed 0 of every arm first, so a partial ablation still compares the arms. Each arm
# evaluates min, the fixed middle, max and every published member on the test split.
# Resumable: rerun the same command (a finished arm is not trained again; an unfinished one resumes).
# Needs the flat family published in models/ (finish-flat-family.sh). Results: runs/ablation-flat/.
#   setsid nohup training/runs-in-progress/ablation-flat.sh > runs/ablation-flat.log 2>&1 &
set -euo pipefail
ROOT=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
cd "$ROOT"
EPOCHS=${EPOCHS:-4}
OUT=runs/ablation-flat
mkdir -p "$OUT"
if [ -d training/runs-in-progress/ablation-flat ]; then  # carried from an earlier session
  for run in training/runs-in-progress/ablation-flat/*; do
    [ -e "$OUT/$(basename "$run")" ] || cp -r "$run" "$OUT/"
  done
fi
for seed in 0 1; do
  echo "$(date -u +%H:%M:%S) ablation: seed $seed"
  npm run --silent ablation -- --config training/configs/pipeline/fashion_mnist.yaml \
    run_dir=runs/pipeline/fashion_mnist_flat source.train.nproc_per_node=2 \
    'source.train.overrides=[space=fashion_mnist_flat,runtime.threads=1,data.batch_size=64]' \
    --arms alpha_divergence,kl,none --seeds "$seed" --epochs "$EPOCHS" --out-dir "$OUT"
done
echo "$(date -u +%H:%M:%S) ablation: done"
