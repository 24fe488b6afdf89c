#!/bin/bash
# One network of a space trained alone by the family's recipe (issue 11's pilots and baselines),
# EPOCHS (default 5) epochs, THREADS (default 1) threads, from a frozen copy of the code at COMMIT,
# into OUT/NAME (OUT default runs/pilots; log: OUT/NAME.log). Resumable (--resume auto).
#   COMMIT=<commit> [EPOCHS=20] [OUT=runs/baselines-flat] training/runs-in-progress/launch-pilot.sh NAME BASELINE SPACE [KEY=VALUE ...]
# BASELINE names an entry of training/configs/baselines/fashion_mnist.yaml (alphanet-min |
# alphanet-max resolve in SPACE; cnn-* ignore it); SPACE is a space name or a YAML path under training/.
source "$(dirname "$0")/frozen-source.sh"
name=$1 baseline=$2 space=$3
shift 3
out=$ROOT/${OUT:-runs/pilots}
mkdir -p $out
cd $SRC/training
exec /usr/bin/python3 -m alphanet train --config configs/fashion_mnist.yaml \
  --baseline configs/baselines/fashion_mnist.yaml:$baseline --run-dir $out/$name \
  --resume auto --no-progress runtime.threads=${THREADS:-1} train.epochs=${EPOCHS:-5} space=$space "$@" \
  > $out/$name.log 2>&1
