#!/bin/bash
# Issue 11's distillation ablation on the published `fashion_mnist_$NAME` family: adaptive
# α-divergence, KL and none (label-smoothed CE for every subnet), seeds 0 and 1, every arm the same
# shortened schedule (EPOCHS, default 4, of the family's recipe: torchrun 2 × 1 thread, batch 64 per
# process). Seed 0 of every arm first, so a partial ablation still compares the arms. Each arm
# evaluates min, the fixed middle, max and every published member on the test split.
# The recipe leads the ablation points to run the same arms with distillation ramped in over RAMP
# epochs (loss.distill_ramp_epochs) and/or kept to a WEIGHT share beside the labels
# (loss.distill_weight), into their own OUT directory; ARMS and SEEDS narrow what runs, e.g.
#   NAME=flat RAMP=1.5 WEIGHT=0.5 OUT=runs/ablation-mix ARMS=alpha_divergence SEEDS=0 training/runs-in-progress/ablation-family.sh
# Resumable: rerun the same command (a finished arm is not trained again; an unfinished one resumes).
# Needs the family published in models/ (finish-family.sh). Results: runs/ablation-$NAME/.
#   NAME=28px setsid nohup training/runs-in-progress/ablation-family.sh > runs/ablation-28px.log 2>&1 &
set -euo pipefail
ROOT=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
cd "$ROOT"
NAME=${NAME:?set NAME (the space is fashion_mnist_NAME)}
EPOCHS=${EPOCHS:-4}
ARMS=${ARMS:-alpha_divergence,kl,none}
SEEDS=${SEEDS:-0 1}
OUT=${OUT:-runs/ablation-$NAME}
OVERRIDES=space=fashion_mnist_$NAME,runtime.threads=1,data.batch_size=64
OVERRIDES+=${RAMP:+,loss.distill_ramp_epochs=$RAMP}${WEIGHT:+,loss.distill_weight=$WEIGHT}
CARRIED=training/runs-in-progress/$(basename "$OUT")
TARGET=(ablation.dir="$OUT")  # the ablation the model card shows
[ "$OUT" = "runs/ablation-$NAME" ] || TARGET=(--out-dir "$OUT")  # a pilot: kept off the card
mkdir -p "$OUT"
if [ -d "$CARRIED" ]; then  # carried from an earlier session
  for run in "$CARRIED"/*; do
    [ -e "$OUT/$(basename "$run")" ] || cp -r "$run" "$OUT/"
  done
fi
for seed in $SEEDS; do
  echo "$(date -u +%H:%M:%S) ablation: seed $seed into $OUT"
  npm run --silent ablation -- --config training/configs/pipeline/fashion_mnist.yaml \
    run_dir=runs/pipeline/fashion_mnist_$NAME source.train.nproc_per_node=2 \
    "source.train.overrides=[$OVERRIDES]" \
    --arms "$ARMS" --seeds "$seed" --epochs "$EPOCHS" "${TARGET[@]}"
done
echo "$(date -u +%H:%M:%S) ablation: done"
