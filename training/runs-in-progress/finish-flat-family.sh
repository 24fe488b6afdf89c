#!/bin/bash
# The published fashion_mnist_flat family (sessions 10-12), restored or finished unattended by
# finish-family.sh from its carried runs (flat-none/, flat-pipeline/, baselines-flat/).
#   setsid nohup training/runs-in-progress/finish-flat-family.sh > runs/finish-flat.log 2>&1 &
NAME=flat COMMIT=24c4189 MAX_MFLOPS=46 CARRIED_SUPERNET=flat-none CARRIED_PIPELINE=flat-pipeline \
  exec "$(dirname "$0")/finish-family.sh"
