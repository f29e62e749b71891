#!/usr/bin/env bash
# The GPU comparison in one run of at most 8 minutes: alexnet-mp on gpu.js's webgpu mode (one process, and
# two workers at the paper's batch) against TensorFlow.js's WebGPU backend and PyTorch (cuda, groups=2, fp32)
# on the same GPU, model, batch and update, plus the webgpu kernel and model tests.
#
#   npm ci && bash bench/gpu-bench.sh run
#
# on a machine with a GPU, its Vulkan driver and Node.js 20, from the project root. The output goes to
# bench/results/gpu-NAME-YYYY-MM-DD.txt (NAME the GPU's model from nvidia-smi, e.g. h200; -2, -3 for later runs
# the same day; under $OUT/bench/results when OUT is set) and the tests' whole log to ${OUT:-.}/ava-webgpu.log. PyTorch is timed when python3 (or
# ALEXNET_PYTHON) imports torch.
#
# A GPU machine without Node.js or the Vulkan loader: `bash bench/gpu-bench.sh pack` here (after npm ci) puts
# a Node.js binary, the loader and a slim node_modules (@tensorflow/tfjs-core's and tfjs-backend-webgpu's
# Node bundles; no tfjs-backend-wasm/-cpu, TypeScript, Playwright, @types or other platforms' binaries) under
# .device/; copy the project with .device/ there and `bash bench/gpu-bench.sh run` uses them
# (`bash bench/gpu-bench.sh check` lists what arrived, the GPU and python3's torch).
#
# What `run` does, each part under its own time limit and all within BUDGET_S (default 450 s; a part that
# would start with less than 20 s left is skipped, and says so):
#   1. the WebGPU adapter Dawn gives (gpu.js and TensorFlow.js share it) and its limits; the worker's own
#      choice with --backend auto, --device 0 and an index with no adapter;
#   2. `npm run bench -- --backend webgpu` (bench/train-step.ts) at the paper preset, batch 128, in one
#      process and in two workers; at cifar, batch 64, and again with the GEMMs as they were before four
#      rows a thread and split K (ALEXNET_WEBGPU_GEMM=quad ALEXNET_WEBGPU_SPLIT_K=off, alexnet-mp only; also
#      at the paper's batch), with one submit a kernel call
#      (ALEXNET_WEBGPU_BATCH=1, alexnet-mp only) against the default 16 dispatches a submit, and with
#      Dawn's unpaced polling (ALEXNET_DAWN_POLL=spin); the webgpu
#      kernel and model tests (ALEXNET_TEST_BACKEND=webgpu, the core files scripts/test-webgpu.sh lists);
#      cifar, batch 128; paper, batch 64. Each bench times the TensorFlow.js
#      WebGPU and PyTorch peers in the same run and prints images/s, alexnet-mp's kernel launches a step
#      and every ratio;
#   3. `npm run bench -- --distributed --backend webgpu` at cifar, batch 64 (1, 2 and 4 micro-batches) and
#      at the paper preset, batch 128 (1 and 2): two workers on the GPU against one process, the exchange
#      waited for and hidden; cifar, batch 64 again with steps not queued (--no-queue-steps).
#
# Without a GPU: `eval "$(bash scripts/lavapipe.sh)"; export LD_LIBRARY_PATH VK_DRIVER_FILES; SMOKE=1 bash
# bench/gpu-bench.sh run` runs the same parts on the software adapter with the tiny preset at batch 16 and 8
# and the first test file only (output under $OUT, default /tmp/gpu-bench for a smoke run).
set -uo pipefail
cd "$(dirname "$0")/.."
pack=.device

inner() {
  # runs on the machine that measures, from the project root, Node.js and node_modules in place
  local budget=${BUDGET_S:-450} start left
  # nothing to measure without a WebGPU adapter (a GPU and its Vulkan driver, or the software one): said, exit 3
  if ! timeout 60 node --import tsx --input-type=module -e "
      const { installWebGPU } = await import('./packages/core/src/device.ts');
      const a = (await installWebGPU()) ? await navigator.gpu.requestAdapter() : null;
      process.exit(a ? 0 : 3);" >/dev/null 2>&1; then
    echo "gpu-bench.sh: no WebGPU adapter answers here (a GPU with its Vulkan driver; without one, SMOKE=1 on the software adapter of scripts/lavapipe.sh): nothing measured" >&2
    return 3
  fi
  start=$(date +%s)
  left() { echo $(( start + budget - $(date +%s) )); }
  # part NAME SECONDS COMMAND...: runs COMMAND under the smaller of SECONDS and the time left
  part() {
    local name=$1 want=$2 l t t0 rc
    shift 2
    l=$(left)
    if (( l < 20 )); then echo "== $name: skipped, ${l} s left of the ${budget} s budget"; return 0; fi
    t=$(( want < l ? want : l ))
    echo "== $name (time limit ${t} s, $(date -u +%H:%M:%S) UTC)"
    t0=$(date +%s)
    timeout -k 10 "$t" "$@"
    rc=$?
    echo "-- $name: exit status ${rc} after $(( $(date +%s) - t0 )) s$( ((rc == 124 || rc == 137)) && echo ', stopped at its time limit')"
    echo
  }
  # the malloc settings the benchmark would re-execute itself with (so the time limit holds one process group)
  export GLIBC_TUNABLES=${GLIBC_TUNABLES:-glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=4294967295}
  local bench=(node --import tsx bench/main.ts --backend webgpu)
  local tests
  # the webgpu kernel and model tests: the core ones npm test's webgpu half lists
  tests=$(cat scripts/test-webgpu.sh 2>/dev/null | grep -o 'packages/[a-z]*/test/[a-z0-9-]*\.test\.ts' | sort -u | tr '\n' ' ')
  [ -n "$tests" ] || tests='packages/core/test/gemm.test.ts packages/core/test/conv2d.test.ts packages/core/test/layers.test.ts packages/core/test/model-gradient.test.ts packages/core/test/learning.test.ts packages/core/test/residency.test.ts'
  local commit
  # pack writes the commit it packed for; a copied tree may carry an older .git or none
  commit=$(cat .device/commit 2>/dev/null || git rev-parse --short HEAD 2>/dev/null || echo unknown)
  echo "alexnet-mp GPU comparison, $(date -u '+%Y-%m-%d %H:%M UTC'), commit ${commit}, ${SMOKE:+SMOKE (tiny preset), }budget ${budget} s"
  echo "host: $(nproc) CPU cores; node $(node --version); python: $(command -v "${ALEXNET_PYTHON:-python3}" || echo none)"
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null || echo "nvidia-smi: none"
  echo

  part "adapters" 40 node --import tsx --input-type=module -e "
    const { installWebGPU } = await import('./packages/core/src/device.ts');
    console.log('navigator.gpu adapter answers:', await installWebGPU());
    const a = await navigator.gpu.requestAdapter();
    const i = a?.info ?? {};
    console.log('adapter:', JSON.stringify({ vendor: i.vendor, architecture: i.architecture, device: i.device, description: i.description }));
    console.log('limits:', JSON.stringify({ maxBufferSize: a?.limits.maxBufferSize, maxStorageBufferBindingSize: a?.limits.maxStorageBufferBindingSize, maxComputeWorkgroupsPerDimension: a?.limits.maxComputeWorkgroupsPerDimension }));
    process.exit(0);
  "
  # the worker's own adapter choice: its first log line names the adapter; an index with no adapter is refused
  part "worker --backend auto, --device 0 and 5" 30 bash -c 'for d in "" "--device 0" "--device 5"; do
      echo "-- worker --backend auto $d"; timeout 8 node bin/alexnet.mjs worker --tower 0 --port 0 --backend auto $d 2>&1 | grep -v "artificially reduced" | head -3; done'
  # the sizes: the paper's and cifar's presets at batch 128 and 64; SMOKE: the same parts on the tiny
  # preset at batch 16 and 8, and only the first test file (a software adapter is slow)
  local paper=paper cifar=cifar big=128 small=64 paper_iters=3 expect=1
  if [ -n "${SMOKE:-}" ]; then
    paper=tiny cifar=tiny big=16 small=8 paper_iters=2 expect=0
    tests=${tests%% *}
  fi
  # the peers take more steps than alexnet-mp (theirs are short); alexnet-mp's last timed step counts launches
  part "bench $paper, batch $big, one process and two workers" 150 "${bench[@]}" --preset $paper --batch $big --iters $paper_iters --warmup 1 --peer-iters 10 --peer-warmup 2 --two-workers
  part "bench $cifar, batch $small" 60 "${bench[@]}" --preset $cifar --batch $small --iters 10 --warmup 2 --no-two-workers
  # the GEMMs as they were (four columns of a row per thread, K never split), alexnet-mp only: at cifar and the paper's batch
  part "bench $cifar, batch $small, ALEXNET_WEBGPU_GEMM=quad ALEXNET_WEBGPU_SPLIT_K=off" 25 env ALEXNET_WEBGPU_GEMM=quad ALEXNET_WEBGPU_SPLIT_K=off "${bench[@]}" --preset $cifar --batch $small --iters 10 --warmup 2 --no-two-workers --peer none
  part "bench $paper, batch $big, ALEXNET_WEBGPU_GEMM=quad ALEXNET_WEBGPU_SPLIT_K=off" 40 env ALEXNET_WEBGPU_GEMM=quad ALEXNET_WEBGPU_SPLIT_K=off "${bench[@]}" --preset $paper --batch $big --iters $paper_iters --warmup 1 --no-two-workers --peer none
  # one submit a kernel call, as before dispatches were batched (gpu.js patch item 12), alexnet-mp only
  part "bench $cifar, batch $small, ALEXNET_WEBGPU_BATCH=1" 25 env ALEXNET_WEBGPU_BATCH=1 "${bench[@]}" --preset $cifar --batch $small --iters 10 --warmup 2 --no-two-workers --peer none
  # Dawn's own polling for the GPU (flat out while it waits) against the paced polls (packages/core/src/dawn-polling.ts)
  part "bench $cifar, batch $small, ALEXNET_DAWN_POLL=spin" 25 env ALEXNET_DAWN_POLL=spin "${bench[@]}" --preset $cifar --batch $small --iters 10 --warmup 2 --no-two-workers --peer none
  # the GPU time per kernel, alexnet-mp only
  part "bench $cifar, batch $small, --profile" 40 "${bench[@]}" --preset $cifar --batch $small --iters 10 --warmup 2 --no-two-workers --peer none --profile
  part "kernel and model tests on webgpu: ${tests}" 140 env ALEXNET_TEST_BACKEND=webgpu ALEXNET_EXPECT_WEBGPU=$expect \
    bash -c "node node_modules/ava/entrypoints/cli.mjs ${tests} > /tmp/ava-webgpu.log 2>&1; rc=\$?; cp /tmp/ava-webgpu.log \"\$OUT/\"; grep -E '✔|✘|passed|failed|skipped|Error|rejected|Timed out|exceeded' /tmp/ava-webgpu.log | head -80; exit \$rc"
  part "bench $cifar, batch $big" 60 "${bench[@]}" --preset $cifar --batch $big --iters 10 --warmup 2 --no-two-workers
  part "bench $paper, batch $small" 100 "${bench[@]}" --preset $paper --batch $small --iters $paper_iters --warmup 1 --peer-iters 10 --peer-warmup 2 --no-two-workers
  part "bench $paper, batch $big, --profile (alexnet-mp only: the time per kernel)" 60 "${bench[@]}" --preset $paper --batch $big --iters 1 --warmup 1 --no-two-workers --peer none --profile
  # the whole program (launch: two workers, gRPC, the coordinator) at twice the paper's batch
  part "launch --preset $paper --backend webgpu --batch $((big * 2)) --steps 4" 60 bash -c "node bin/alexnet.mjs launch --preset $paper --backend webgpu --batch $((big * 2)) --steps 4 2>&1 | grep -E '\"event\":\"(step|done|failed)\"|coordinator: done|rror|refused' | sed -E 's/,\"workers\".*//'"
  # two workers on the one GPU against one process, whole batches and cut into micro-batches: the share of
  # each worker's step spent waiting on the exchange, and what is hidden behind compute
  part "bench --distributed $cifar, batch $small, micro-batches 1 2 4" 90 "${bench[@]}" --distributed --preset $cifar --batch $small --iters 5 --warmup 2 --micro-batches 1 2 4
  # steps that each wait for the one before (the default queues the next step during the one in flight)
  part "bench --distributed $cifar, batch $small, --no-queue-steps" 40 "${bench[@]}" --distributed --preset $cifar --batch $small --iters 10 --warmup 2 --no-queue-steps
  part "bench --distributed $paper, batch $big, micro-batches 1 2" 150 "${bench[@]}" --distributed --preset $paper --batch $big --iters 3 --warmup 1 --micro-batches 1 2
  echo "done after $(( $(date +%s) - start )) s"
}

case "${1:-}" in
  pack)
    set -e
    if ! { [ -s "$pack/node.xz" ] && [ -s "$pack/enter.sh" ]; }; then
      # Node.js (node.xz), the Vulkan loader (debs/) and enter.sh, which unpacks them and runs a command with them
      [ -f ../shared/gpu-host/prepare.sh ] || { echo "pack: no $pack/node.xz and $pack/enter.sh, and no ../shared/gpu-host/prepare.sh to make them" >&2; exit 2; }
      bash ../shared/gpu-host/prepare.sh
    fi
    git rev-parse --short HEAD > "$pack/commit"
    # node_modules for the run: no other platforms' binaries, no TypeScript, Playwright or type
    # declarations, and of TensorFlow.js only the two Node bundles the WebGPU peer loads
    list=$(mktemp)
    find $(find . -name node_modules -type d -prune -not -path "./$pack/*" | sed 's|^\./||') \
      \( -path '*/.cache' -o -path 'node_modules/typescript' -o -path 'node_modules/playwright-core' -o -path 'node_modules/@types' \
         -o -path 'node_modules/@tensorflow' -o -name '*darwin*' -o -name '*win32*' -o -name '*linux-arm*' -o -name '*arm64*' -o -name '*musl*' \) -prune \
      -o -print > "$list"
    for p in tfjs-core/dist/tf-core.node.js tfjs-backend-webgpu/dist/tf-backend-webgpu.node.js; do
      d=node_modules/@tensorflow/${p%%/*}
      [ -f "node_modules/@tensorflow/$p" ] || { echo "missing node_modules/@tensorflow/$p: npm ci first" >&2; exit 2; }
      printf '%s\n' node_modules/@tensorflow "$d" "$d/package.json" "$d/dist" "node_modules/@tensorflow/$p" >> "$list"
    done
    sort -u "$list" | tar --no-recursion -cf - -T - | xz -T2 -6 > "$pack/node_modules.tar.xz"
    rm -f "$list"
    tree=$(git ls-files -z -co --exclude-standard | xargs -0 du -cb | tail -1 | cut -f1)
    mb() { echo $(( ($1 + 1048575) / 1048576 )); }
    size() { du -cb "$@" | tail -1 | cut -f1; }
    echo "the project's files: $(mb "$tree") MiB; .device/ Node.js and Vulkan loader: $(mb "$(size $pack/enter.sh $pack/debs $pack/node.xz)") MiB; .device/node_modules.tar.xz: $(mb "$(size $pack/node_modules.tar.xz)") MiB"
    ;;
  check)
    # what of .device/ is here, the GPU, and whether python3 has torch with CUDA
    ls -la "$pack" 2>/dev/null || true
    nvidia-smi --query-gpu=name,memory.used --format=csv,noheader 2>/dev/null || true
    python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.cuda.is_available())' 2>&1 | tail -1
    ;;
  run)
    if [ -n "${SMOKE:-}" ]; then OUT=${OUT:-/tmp/gpu-bench}; else OUT=${OUT:-.}; fi
    export OUT
    mkdir -p "$OUT/bench/results"
    # the GPU's model for the file: "NVIDIA H200" -> h200, "NVIDIA H100 80GB HBM3" -> h100, "NVIDIA GeForce
    # RTX 4090" -> rtx-4090, "Tesla V100-SXM2-16GB" -> v100: vendor and brand words dropped, then the first word
    # with a digit (after a word without one, such as RTX, joined to it), cut at its first '-'
    gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1 | tr 'A-Z' 'a-z' |
      awk '{ out = ""; for (i = 1; i <= NF; i++) { w = $i; if (w ~ /^(nvidia|geforce|tesla|quadro|amd|radeon|intel)$/) continue;
             sub(/-.*/, "", w); if (w ~ /[0-9]/) { out = out (out == "" ? "" : "-") w; break } else out = out (out == "" ? "" : "-") w } print out }' |
      tr -cd 'a-z0-9-')
    results="$OUT/bench/results/gpu-${gpu:-webgpu}-$(date -u +%F).txt"
    [ -z "${SMOKE:-}" ] || results="$OUT/bench/results/gpu-smoke-$(date -u +%F).txt"
    # a second run the same day keeps the first's file
    n=2; base=${results%.txt}
    while [ -e "$results" ]; do results="$base-$n.txt"; n=$((n + 1)); done
    export -f inner
    if [ -s "$pack/enter.sh" ] && [ -z "${NO_DEVICE:-}" ]; then
      # the packed Node.js, Vulkan loader and node_modules (pack, above)
      for f in "$pack/node.xz" "$pack/node_modules.tar.xz"; do
        [ -s "$f" ] || { echo "missing $f: copy all of .device/ that pack made" >&2; exit 2; }
      done
      bash "$pack/enter.sh" bash -c '. bench/gpu-env.sh; inner' 2>&1 | tee "$results"
      rc=${PIPESTATUS[0]}
    else
      command -v node >/dev/null && [ -d node_modules ] || { echo "run needs Node.js and node_modules here (npm ci), or the .device/ that pack makes" >&2; exit 2; }
      # NVIDIA's headless Vulkan driver unless a driver is named already
      bash -c '[ -n "${VK_DRIVER_FILES:-}" ] || . bench/gpu-env.sh; inner' 2>&1 | tee "$results"
      rc=${PIPESTATUS[0]}
    fi
    # no adapter: no results file
    if [ "$rc" = 3 ]; then rm -f "$results"; exit 2; fi
    echo "written: $results"
    ;;
  *)
    sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
