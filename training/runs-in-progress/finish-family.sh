#!/bin/bash
# Issue 11, unattended from wherever the fashion_mnist_$NAME supernet (no distillation) stands:
# (1) resume it to its last step, (2) publish its family into models/ with the plain-CNN baselines
# as the picking bar, (3) train the cheapest and the largest published member alone (20 epochs, one
# core each, side by side) unless that network was trained alone already, (4) refresh the model card
# with them. Every step resumes: rerun the same command after an interruption; a stopped step
# (carry.sh's SIGTERM) ends the script rather than letting a later step use an unfinished run.
#   NAME=28px COMMIT=0f86f94 MAX_MFLOPS=52 training/runs-in-progress/finish-family.sh   # from the repository root
#   ... setsid nohup training/runs-in-progress/finish-family.sh > runs/finish-$NAME.log 2>&1 &
# NAME: the family's runs go to runs/pipeline/fashion_mnist_$NAME, runs/baselines-$NAME,
# runs/ablation-$NAME and runs/finish-$NAME (logs); its space is SPACE (default fashion_mnist_$NAME),
# so a new recipe on an existing space gets runs of its own (NAME=28px-wd SPACE=fashion_mnist_28px).
# COMMIT: the frozen code of the supernet and every baseline (its configs/fashion_mnist.yaml is the recipe).
# BAR_CNNS: the plain CNNs (entries of configs/baselines/fashion_mnist.yaml) trained by this recipe
# before the publish, where baselines-$NAME lacks them; SHARED_CNNS: a carried directory whose
# cnn-* runs are copied in first (default baselines/, trained by the recipe of sessions 6-17;
# SHARED_CNNS= for a new recipe: the pipeline holds members to no baseline of another recipe).
# MAX_MFLOPS: the search's upper bound (above the space's largest network = no bound); MIN_MFLOPS
# its lower bound (default the search config's 6.0; below the space's smallest network = no bound).
# ABLATION: the directory whose ablation.json the card shows (default runs/ablation-$NAME; another
# space's, e.g. ABLATION=training/runs-in-progress/ablation-flat, until this space's ablation runs).
# Carried inputs (training/runs-in-progress/): the supernet at $CARRIED_SUPERNET (default
# pipeline-$NAME/supernet), the publish's report and search at $CARRIED_PIPELINE (default
# pipeline-$NAME; the card refresh reads the report), the baselines at baselines-$NAME and
# $SHARED_CNNS/cnn-*, the distillation ablation's results at ablation-$NAME/ablation.json.
set -euo pipefail
NAME=${NAME:?set NAME} MAX_MFLOPS=${MAX_MFLOPS:?set MAX_MFLOPS}
source "$(dirname "$0")/frozen-source.sh"
cd "$ROOT"
SPACE=${SPACE:-fashion_mnist_$NAME}
CARRIED=training/runs-in-progress
CARRIED_SUPERNET=$CARRIED/${CARRIED_SUPERNET:-pipeline-$NAME/supernet}
CARRIED_PIPELINE=$CARRIED/${CARRIED_PIPELINE:-pipeline-$NAME}
SHARED_CNNS=${SHARED_CNNS-$CARRIED/baselines}
BAR_CNNS=${BAR_CNNS-cnn-6.57m cnn-20.02m cnn-41.17m}
PIPE=runs/pipeline/fashion_mnist_$NAME
RUN=$PIPE/supernet
BASELINES=runs/baselines-$NAME
ABLATION=${ABLATION:-runs/ablation-$NAME}
LOGS=runs/finish-$NAME
mkdir -p "$PIPE" "$BASELINES" "$LOGS"
say() { echo "$(date -u +%H:%M:%S) $*"; }
finished() { grep -q '"type": "end", "status": "completed"' "$1/metrics.jsonl" 2> /dev/null; }

if [ ! -f "$RUN/checkpoints/last.pt" ] && [ -d "$CARRIED_SUPERNET" ]; then
  cp -r "$CARRIED_SUPERNET" "$RUN"
fi
for file in "$CARRIED_PIPELINE"/*.json "$CARRIED_PIPELINE"/*.jsonl; do
  [ -e "$file" ] && { [ -e "$PIPE/$(basename "$file")" ] || cp "$file" "$PIPE/"; }
done
# The distillation ablation's results, if any (the card's ablation table reads them).
if [ -f "$CARRIED/ablation-$NAME/ablation.json" ] && [ ! -f "$ABLATION/ablation.json" ]; then
  mkdir -p "$ABLATION" && cp "$CARRIED/ablation-$NAME/ablation.json" "$ABLATION/"
fi
if ! finished "$RUN"; then
  say "supernet: resuming ($(grep -o '"step": [0-9]*' "$RUN/metrics.jsonl" 2> /dev/null | tail -1))"
  COMMIT=$COMMIT SPACE=$SPACE training/runs-in-progress/launch-fmnist-supernet.sh \
    --run-dir "$ROOT/$RUN" loss.distill=none >> "$PIPE/supernet.log" 2>&1 || true
  finished "$RUN" || { say "supernet: stopped before its last step; rerun to resume"; exit 1; }
fi
say "supernet: finished"

# The baselines the family is held to and compared with (copies; existing runs are kept).
for run in "$CARRIED/baselines-$NAME"/* ${SHARED_CNNS:+"$SHARED_CNNS"/cnn-*}; do
  [ -e "$run" ] && { [ -e "$BASELINES/$(basename "$run")" ] || cp -r "$run" "$BASELINES/"; }
done
# The plain-CNN bar by this recipe, two at a time (one core each), before the publish picks by it.
train_alone() {  # NAME BASELINE_FILE:ENTRY: one network alone into $BASELINES/NAME (resumable)
  (cd "$SRC/training" && /usr/bin/python3 -m alphanet train --config configs/fashion_mnist.yaml \
    --baseline "$2" --run-dir "$ROOT/$BASELINES/$1" --resume auto --no-progress space=$SPACE \
    runtime.threads=1 > "$ROOT/$LOGS/$1.log" 2>&1)
}
wait_all() {  # NAME...: wait for the background runs, then require each one's result
  wait
  for name in "$@"; do
    [ -f "$BASELINES/$name/baseline.json" ] || { say "baseline $name: stopped before its end; rerun to resume"; exit 1; }
  done
}
cnns=()
for name in $BAR_CNNS; do
  [ -f "$BASELINES/$name/baseline.json" ] || cnns+=("$name")
done
for ((i = 0; i < ${#cnns[@]}; i += 2)); do
  pair=("${cnns[@]:i:2}")
  for name in "${pair[@]}"; do
    say "baseline $name: training (the plain-CNN bar)"
    train_alone "$name" "configs/baselines/fashion_mnist.yaml:$name" &
  done
  wait_all "${pair[@]}"
done

# Published already (models/ is committed, runs/ is not): do not search and publish again.
published=$(/usr/bin/python3 -c "import json; print(json.load(open('models/manifest.json'))['zoo']['source'].get('checkpoint'))")
if [ "$published" = "$RUN/checkpoints/last.pt" ]; then
  say "pipeline: models/ already holds this supernet's family"
else
  # Every core for the search and the evaluations (the supernet's config says one thread per process).
  say "pipeline: publishing"
  npm run pipeline -- --config training/configs/pipeline/fashion_mnist.yaml \
    run_dir=$PIPE source.train.config=null source.checkpoint=$RUN zoo.description= \
    "family.search.overrides=[constraints.max_mflops=$MAX_MFLOPS${MIN_MFLOPS:+,constraints.min_mflops=$MIN_MFLOPS}]" \
    "data_overrides=[runtime.threads=0]" baselines.dir=$BASELINES ablation.dir=$ABLATION > "$LOGS/pipeline.log" 2>&1
  say "pipeline: done"
fi

# The published extremes' architectures; a network already trained alone (same arch) is reused.
PYTHONPATH=training /usr/bin/python3 - "$BASELINES" "$LOGS" "$SRC/training" <<'EOF'
import json, os, sys
from pathlib import Path

from alphanet.space import ArchConfig

baselines, logs, trainer_dir = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
models = sorted(json.loads(Path("models/manifest.json").read_text())["models"], key=lambda m: m["mflops"])
trained = {}
for result in baselines.glob("*/baseline.json"):
    network = json.loads(result.read_text())["network"]
    if network.get("kind") == "arch":
        trained[ArchConfig.from_dict(network["arch"])] = result.parent.name
entries = {}
for model in {m["name"]: m for m in (models[0], models[-1])}.values():
    arch = ArchConfig.from_dict(model["arch"])
    if arch in trained:
        print(f"{model['name']}: already trained alone as {trained[arch]}")
        continue
    name = f"alone-{model['name']}"
    arch_file = (logs / f"{name}.arch.json").resolve()
    arch_file.write_text(json.dumps(model["arch"], indent=2) + "\n")
    # Relative to where the trainer runs (the frozen copy's training/): the run's recorded config
    # then names no machine's directories.
    entries[name] = {"kind": "arch", "arch": os.path.relpath(arch_file, trainer_dir)}
(logs / "baselines.json").write_text(json.dumps({"baselines": entries}, indent=2) + "\n")
print("to train alone:", ", ".join(entries) or "none")
EOF

alone=$(/usr/bin/python3 -c "import json; print(' '.join(json.load(open('$LOGS/baselines.json'))['baselines']))")
for name in $alone; do
  say "baseline $name: training alone"
  train_alone "$name" "$ROOT/$LOGS/baselines.json:$name" &
done
wait_all $alone

say "model card: refreshing with the baselines"
npm run pipeline -- --config training/configs/pipeline/fashion_mnist.yaml run_dir=$PIPE \
  baselines.dir=$BASELINES ablation.dir=$ABLATION --refresh-card > "$LOGS/refresh-card.log" 2>&1
say "done"
