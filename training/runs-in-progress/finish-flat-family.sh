#!/bin/bash
# Issue 11, unattended from wherever the fashion_mnist_flat supernet stands: (1) resume it to its
# last step, (2) publish its family into models/ with the plain-CNN baselines as the picking bar,
# (3) train the cheapest and the largest published member alone (20 epochs, one core each, side by
# side) unless that network was trained alone already, (4) refresh the model card with them.
# Every step resumes: rerun the same command after an interruption. Logs: runs/finish-flat/*.log.
#   training/runs-in-progress/finish-flat-family.sh          # from the repository root, in the background:
#   setsid nohup training/runs-in-progress/finish-flat-family.sh > runs/finish-flat.log 2>&1 &
set -euo pipefail
COMMIT=24c4189
source "$(dirname "$0")/frozen-source.sh"
cd "$ROOT"
PIPE=runs/pipeline/fashion_mnist_flat
RUN=$PIPE/supernet
BASELINES=runs/baselines-flat
LOGS=runs/finish-flat
mkdir -p "$PIPE" "$BASELINES" "$LOGS"
say() { echo "$(date -u +%H:%M:%S) $*"; }

if [ ! -f "$RUN/checkpoints/last.pt" ]; then
  cp -r training/runs-in-progress/flat-none "$RUN"
fi
# The publish's report and search (the card refresh below reads the report), carried once published.
for file in training/runs-in-progress/flat-pipeline/*.json; do
  [ -e "$file" ] && { [ -e "$PIPE/$(basename "$file")" ] || cp "$file" "$PIPE/"; }
done
if ! grep -q '"type": "end", "status": "completed"' "$RUN/metrics.jsonl"; then
  say "supernet: resuming ($(grep -o '"step": [0-9]*' "$RUN/metrics.jsonl" | tail -1))"
  COMMIT=$COMMIT SPACE=fashion_mnist_flat training/runs-in-progress/launch-fmnist-supernet.sh \
    --run-dir "$ROOT/$RUN" loss.distill=none >> "$PIPE/supernet.log" 2>&1
fi
say "supernet: finished"

# The baselines the family is held to and compared with (copies; existing runs are kept).
for run in training/runs-in-progress/baselines-flat/* training/runs-in-progress/baselines/cnn-*; do
  [ -e "$BASELINES/$(basename "$run")" ] || cp -r "$run" "$BASELINES/"
done

# Published already (models/ is committed, runs/ is not): do not search and publish again.
published=$(/usr/bin/python3 -c "import json; print(json.load(open('models/manifest.json'))['zoo']['source'].get('checkpoint'))")
if [ "$published" = "$RUN/checkpoints/last.pt" ]; then
  say "pipeline: models/ already holds this supernet's family"
else
  say "pipeline: publishing"
  npm run pipeline -- --config training/configs/pipeline/fashion_mnist.yaml \
    run_dir=$PIPE source.train.config=null source.checkpoint=$RUN zoo.description= \
    'family.search.overrides=[constraints.max_mflops=46]' baselines.dir=$BASELINES > "$LOGS/pipeline.log" 2>&1
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

pids=()
for name in $(/usr/bin/python3 -c "import json; print(' '.join(json.load(open('$LOGS/baselines.json'))['baselines']))"); do
  say "baseline $name: training alone"
  (cd "$SRC/training" && /usr/bin/python3 -m alphanet train --config configs/fashion_mnist.yaml \
    --baseline "$ROOT/$LOGS/baselines.json:$name" --run-dir "$ROOT/$BASELINES/$name" \
    --resume auto --no-progress space=fashion_mnist_flat runtime.threads=1 > "$ROOT/$LOGS/$name.log" 2>&1) &
  pids+=($!)
done
for pid in "${pids[@]}"; do wait "$pid"; done

say "model card: refreshing with the baselines"
npm run pipeline -- --config training/configs/pipeline/fashion_mnist.yaml run_dir=$PIPE \
  baselines.dir=$BASELINES --refresh-card > "$LOGS/refresh-card.log" 2>&1
say "done"
