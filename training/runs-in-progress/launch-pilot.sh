#!/bin/bash
# Standalone pilots of issue 11 (session 14 on): one network of a pilot space trained alone by the
# family's recipe, EPOCHS (default 5) epochs, THREADS (default 1) threads, from a frozen copy of the
# code at COMMIT, into runs/pilots/NAME (log: runs/pilots/NAME.log). Resumable (--resume auto).
#   COMMIT=<commit> [EPOCHS=20] training/runs-in-progress/launch-pilot.sh NAME BASELINE SPACE [KEY=VALUE ...]
# BASELINE names an entry of training/configs/baselines/fashion_mnist.yaml (alphanet-min |
# alphanet-max resolve in SPACE; cnn-* ignore it); SPACE is a space name or a YAML path under training/.
source "$(dirname "$0")/frozen-source.sh"
name=$1 baseline=$2 space=$3
shift 3
mkdir -p $ROOT/runs/pilots
cd $SRC/training
exec /usr/bin/python3 -m alphanet train --config configs/fashion_mnist.yaml \
  --baseline configs/baselines/fashion_mnist.yaml:$baseline --run-dir $ROOT/runs/pilots/$name \
  --resume auto --no-progress runtime.threads=${THREADS:-1} train.epochs=${EPOCHS:-5} space=$space "$@" \
  > $ROOT/runs/pilots/$name.log 2>&1
