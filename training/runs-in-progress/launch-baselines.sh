#!/bin/bash
# Baselines of issue 11, one after another, from the same frozen code as the supernet run.
source "$(dirname "$0")/frozen-source.sh"
mkdir -p $ROOT/runs/baselines
cd $SRC/training
# glibc malloc settings of alphanet/allocator.py, for frozen code older than it (up to 6x faster steps)
export MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=1073741824 MALLOC_TOP_PAD_=67108864
for name in "$@"; do
  nice -n 15 /usr/bin/python3 -m alphanet train --config configs/fashion_mnist.yaml \
    --baseline configs/baselines/fashion_mnist.yaml:$name --run-dir $ROOT/runs/baselines/$name \
    --resume auto --no-progress runtime.threads=1 > $ROOT/runs/baselines/$name.log 2>&1
done
