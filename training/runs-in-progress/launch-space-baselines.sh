#!/bin/bash
# Baselines of the fashion_mnist_gdc family (or $SPACE's; issue 11): networks of training/configs/
# baselines/fashion_mnist.yaml trained alone one after the other, 20 epochs, same recipe, from the
# supernet run's frozen code, into runs/baselines-<space without fashion_mnist_> (baselines-gdc,
# baselines-flat). The plain-CNN baselines do not depend on the space and are shared with the
# fashion_mnist family (copied there). THREADS (default 1): CPU threads of each run (the recipe is
# the same; speed and the order of floating-point sums change).
#   [SPACE=fashion_mnist_flat] COMMIT=<supernet run's commit> training/runs-in-progress/launch-space-baselines.sh alphanet-min alphanet-max
SPACE=${SPACE:-fashion_mnist_gdc}
for name in "$@"; do
  OUT=runs/baselines-${SPACE#fashion_mnist_} EPOCHS=20 "$(dirname "$0")/launch-pilot.sh" "$name" "$name" "$SPACE"
done
