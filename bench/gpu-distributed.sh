#!/usr/bin/env bash
# The two-worker run on a GPU (both workers on the one GPU of the device machine), for the device tool:
#   bash ../shared/gpu-host/prepare.sh      # here, after npm install
#   (device) bash bench/gpu-distributed.sh  # there; output under $OUT
set -uo pipefail
OUT=${OUT:-/tmp/gpu-distributed}
export OUT
mkdir -p "$OUT"
bash .device/enter.sh bash -c '
  . bench/gpu-env.sh
  echo "== launch: cifar preset, two webgpu workers, 30 steps of 64, evaluation every 10"
  timeout 120 node bin/alexnet.mjs launch --preset cifar --backend webgpu --batch 64 --steps 30 --eval-every 10 --eval-batches 2 2>&1 | grep -v "^\[worker" | grep -E "event\":\"(eval|done)|launch\]|Error|error" | cut -c1-400
  echo "== bench: two workers against one process, cifar 64"
  timeout 120 node --import tsx bench/main.ts --distributed --backend webgpu --preset cifar --batch 64 --iters 5 2>&1 | tail -8
' 2>&1 | tee "$OUT/gpu-distributed.log"
