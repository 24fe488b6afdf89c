#!/bin/bash
# The distillation ablation on the fashion_mnist_flat family (sessions 12-13): ablation-family.sh
# with NAME=flat; the same variables (EPOCHS, ARMS, SEEDS, OUT, RAMP, WEIGHT) apply.
#   SEEDS=1 setsid nohup training/runs-in-progress/ablation-flat.sh > runs/ablation-flat.log 2>&1 &
NAME=flat exec "$(dirname "$0")/ablation-family.sh"
