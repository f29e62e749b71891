#!/usr/bin/env bash
# The second half of `npm test`: the kernel and model tests again on gpu.js's webgpu mode (and the
# benchmark's TensorFlow.js WebGPU peer and `npm run bench -- --backend webgpu`), on the
# software WebGPU adapter of scripts/lavapipe.sh (Mesa's lavapipe: Vulkan on the CPU), so that the GPU
# path (WGSL, i32 indexing past 2^24 floats, results that stay on the device) is tested on every machine.
# A hardware GPU, where there is one, is used instead: Dawn lists GPUs first.
# ALEXNET_WEBGPU_TESTS=0 skips this half (say why when you do: the GPU path then goes untested).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${ALEXNET_WEBGPU_TESTS:-1}" = "0" ]; then
  echo "test-webgpu: skipped (ALEXNET_WEBGPU_TESTS=0): the webgpu path is not tested" >&2
  exit 0
fi
eval "$(bash scripts/lavapipe.sh)"
export LD_LIBRARY_PATH VK_DRIVER_FILES ALEXNET_TEST_BACKEND=webgpu
# Dawn's Vulkan backend notes lavapipe's small dynamic-buffer limits on every device: not a test failure
exec npx ava --concurrency 1 \
  packages/core/test/gemm.test.ts packages/core/test/conv2d.test.ts packages/core/test/layers.test.ts \
  packages/core/test/model-gradient.test.ts packages/core/test/learning.test.ts packages/core/test/residency.test.ts \
  packages/core/test/past-2-24.test.ts packages/core/test/paper-scale.test.ts packages/core/test/kernel-profile.test.ts packages/core/test/webgpu-binding.test.ts packages/core/test/webgpu-batch.test.ts test/worker-device-crossings.test.ts packages/core/test/dawn-polling.test.ts packages/core/test/dawn-polling-installed.test.ts \
  packages/core/test/segment-update.test.ts packages/core/test/micro-batch.test.ts \
  test/tfjs-webgpu-peer.test.ts test/bench-webgpu.test.ts test/webgpu-run.test.ts test/device-lost.test.ts test/slurm-gpu-lost.test.ts test/gpu-errors.test.ts packages/core/test/backend.test.ts test/adapter-choice.test.ts \
  2> >(grep -v 'artificially reduced from 1000000 to 16' >&2)
