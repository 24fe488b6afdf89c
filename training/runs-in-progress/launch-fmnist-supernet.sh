#!/bin/bash
# Long supernet run of the fashion_mnist_gdc space (or $SPACE; issue 11), from a frozen copy of the code at
# commit $COMMIT, into the pipeline's run directory (the pipeline then resumes/uses it as is).
# Resumable: rerun the same command (--resume auto; checkpoints every 200 steps).
set -e
source "$(dirname "$0")/frozen-source.sh"
cd $SRC/training
exec torchrun --redirects 1 --tee 1 --nproc_per_node 2 -m alphanet train \
  --config configs/fashion_mnist.yaml --run-dir $ROOT/runs/pipeline/fashion_mnist_gdc/supernet \
  --resume auto --no-progress space=${SPACE:-fashion_mnist_gdc} runtime.threads=1 data.batch_size=64 "$@"
