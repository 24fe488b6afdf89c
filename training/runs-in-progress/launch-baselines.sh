#!/bin/bash
# Baselines of issue 11, one after another, from the same frozen code as the supernet run.
COMMIT=${COMMIT:?set COMMIT}
ROOT=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
cd $ROOT/runs/src-$COMMIT/training
for name in "$@"; do
  nice -n 15 /usr/bin/python3 -m alphanet train --config configs/fashion_mnist.yaml \
    --baseline configs/baselines/fashion_mnist.yaml:$name --run-dir $ROOT/runs/baselines/$name \
    --resume auto --no-progress runtime.threads=1 > $ROOT/runs/baselines/$name.log 2>&1
done
