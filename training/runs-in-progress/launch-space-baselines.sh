#!/bin/bash
# Baselines of the fashion_mnist_gdc family (or $SPACE's; issue 11): its smallest / largest network
# trained alone, 20 epochs, same recipe, from the supernet run's frozen code, into
# runs/baselines-<space without fashion_mnist_> (baselines-gdc, baselines-flat). The plain-CNN
# baselines do not depend on the space and are shared with the fashion_mnist family (copied there).
# THREADS (default 1): CPU threads of each run (the recipe is the same; speed and the order of
# floating-point sums change).
#   [SPACE=fashion_mnist_flat] COMMIT=<supernet run's commit> training/runs-in-progress/launch-space-baselines.sh alphanet-min alphanet-max
source "$(dirname "$0")/frozen-source.sh"
SPACE=${SPACE:-fashion_mnist_gdc}
THREADS=${THREADS:-1}
OUT=$ROOT/runs/baselines-${SPACE#fashion_mnist_}
mkdir -p $OUT
cd $SRC/training
for name in "$@"; do
  /usr/bin/python3 -m alphanet train --config configs/fashion_mnist.yaml \
    --baseline configs/baselines/fashion_mnist.yaml:$name --run-dir $OUT/$name \
    --resume auto --no-progress space=$SPACE runtime.threads=$THREADS > $OUT/$name.log 2>&1
done
