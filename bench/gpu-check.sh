#!/usr/bin/env bash
# The checks that need a GPU, as one script for the device tool (see ../shared/gpu-host/README.md):
#   bash ../shared/gpu-host/prepare.sh        # here, after npm install
#   (device) bash bench/gpu-check.sh           # there; results under $OUT
# 1. the kernel and model tests on gpu.js's webgpu mode (Dawn, the webgpu npm package)
# 2. the training-step benchmark: cifar preset batch 64, paper preset batch 128
set -uo pipefail
OUT=${OUT:-/tmp/gpu-check}
export OUT
mkdir -p "$OUT"
bash .device/enter.sh bash -c '
  export ALEXNET_TEST_BACKEND=webgpu ALEXNET_EXPECT_WEBGPU=1
  . bench/gpu-env.sh
  echo "== webgpu adapter"
  timeout 60 node --import tsx --input-type=module -e "
    const { installWebGPU } = await import(\"./packages/core/src/device.ts\");
    console.log(\"adapter:\", await installWebGPU());
    const a = await navigator.gpu.requestAdapter();
    console.log(JSON.stringify(a?.info ?? {}));
  " 2>&1 | tail -5
  echo "== kernel tests on webgpu"
  timeout 150 node node_modules/ava/entrypoints/cli.mjs packages/core/test/gemm.test.ts packages/core/test/conv2d.test.ts packages/core/test/layers.test.ts packages/core/test/model-gradient.test.ts packages/core/test/learning.test.ts packages/core/test/residency.test.ts > /tmp/ava-webgpu.log 2>&1; cp /tmp/ava-webgpu.log "$OUT/"; grep -E "✔|✘|passed|failed|Error" /tmp/ava-webgpu.log | head -60
  echo "== bench cifar 64"
  timeout 90 node --import tsx bench/train-step.ts --backend webgpu --preset cifar --batch 64 --peer none --iters 5 --profile 2>&1 | tail -30
  echo "== bench paper 64"
  timeout 150 node --import tsx bench/train-step.ts --backend webgpu --preset paper --batch 64 --peer none --iters 4 --warmup 1 --profile 2>&1 | tail -30
  echo "== bench paper 128"
  timeout 60 node --import tsx bench/train-step.ts --backend webgpu --preset paper --batch 128 --peer none --iters 2 --warmup 1 2>&1 | tail -5
' 2>&1 | tee "$OUT/gpu-check.log"
