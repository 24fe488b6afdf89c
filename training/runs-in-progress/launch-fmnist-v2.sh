#!/bin/bash
# Long supernet run of the Fashion-MNIST family (issue 11). Runs from a frozen copy of the code at
# commit $COMMIT (the working tree is being refactored by others); resumable with the same script.
set -e
source "$(dirname "$0")/frozen-source.sh"
cd $SRC/training
exec nice -n 10 torchrun --redirects 1 --tee 1 --nproc_per_node 2 -m alphanet train \
  --config configs/fashion_mnist.yaml --run-dir $ROOT/runs/fmnist-v2 --resume auto \
  runtime.threads=1 data.batch_size=64 "$@"
