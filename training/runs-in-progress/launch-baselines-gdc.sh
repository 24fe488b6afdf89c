#!/bin/bash
# Baselines of the fashion_mnist_gdc family (issue 11): its smallest / largest network trained alone,
# 20 epochs, same recipe, from the supernet run's frozen code. The plain-CNN baselines do not depend
# on the space and are shared with the fashion_mnist family (copied into runs/baselines-gdc).
#   COMMIT=<supernet run's commit> training/runs-in-progress/launch-baselines-gdc.sh alphanet-min alphanet-max
COMMIT=${COMMIT:?set COMMIT}
ROOT=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
SRC=$ROOT/runs/src-$COMMIT
if [ ! -d $SRC ]; then mkdir -p $SRC && (cd $ROOT && git archive $COMMIT training | tar -x -C $SRC); fi
mkdir -p $ROOT/runs/baselines-gdc
cd $SRC/training
for name in "$@"; do
  /usr/bin/python3 -m alphanet train --config configs/fashion_mnist.yaml \
    --baseline configs/baselines/fashion_mnist.yaml:$name --run-dir $ROOT/runs/baselines-gdc/$name \
    --resume auto --no-progress space=fashion_mnist_gdc runtime.threads=1 > $ROOT/runs/baselines-gdc/$name.log 2>&1
done
