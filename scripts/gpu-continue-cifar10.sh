#!/usr/bin/env bash
# Continue the CIFAR-10 run in training/cifar10 on a GPU machine lent through the device tool, and bring
# its checkpoint back. Nothing of the data set travels with the repository, and a call's working tree is
# limited to 64 MiB (the run folder alone is about 24 MB), so what the run needs goes in three calls on a
# warm machine (ignored files a call carried stay there for the next call; the machine is given back 30 s
# after a call ends, so make the calls one right after the other):
#
#   here:    npm ci && bash ../shared/gpu-host/prepare.sh && bash scripts/gpu-continue-cifar10.sh pack
#   call 1:  carry .device/enter.sh .device/debs .device/node.xz   command: bash scripts/gpu-continue-cifar10.sh check
#   call 2:  carry .device/node_modules.tar.xz                     command: bash scripts/gpu-continue-cifar10.sh check
#   call 3:  carry .device/cifar10.tar.gz                          command: bash scripts/gpu-continue-cifar10.sh train 6m
#            (timeout_s: the minutes given + 4, and a call runs 600 s at most: unpacking, decoding the
#            images, the first kernels and the last checkpoint come on top of --stop-after, which counts
#            from the coordinator's start; 6m took 403 s on the H200, 4m 251 s with the images decoded)
#   here:    bash scripts/gpu-continue-cifar10.sh unpack FILES_AT   (the folder the call's files came back to)
#   more:    while the device time lasts: unpack at once (2 s), then call 3 again with fewer minutes
#            (each call gets this tree, so the run folder it resumes is the one just unpacked)
#
# `pack` makes a node_modules without what the run does not use (TensorFlow.js, TypeScript, Playwright:
# 21 MB instead of 32) and one archive of the CIFAR-10 JPEGs (20 MB gzipped: their identical JPEG headers
# compress away). `train` unpacks the images to ../shared/datasets/cifar10 on that machine (the path the run
# was started with, so that the checkpoint keeps naming it), resumes the run on gpu.js's webgpu mode with
# --stop-after, and puts the new checkpoint (in parts under 16 MiB), metrics.jsonl and run.json under $OUT.
# `unpack` checks the checkpoint and puts it all back into training/cifar10 here, in place of the old one.
# BACKEND=webasm NO_DEVICE=1 ... train tries `train` on a CPU machine (in a copy of the repository).
set -euo pipefail
cd "$(dirname "$0")/.."
run=training/cifar10
# Both archives go into .device/, beside prepare.sh's files: the machine keeps a carried file for the
# next call only where the repository's .gitignore ignores it (.git/info/exclude does not travel), and
# .gitignore names .device/.
pack=.device
data=../shared/datasets/cifar10

case "${1:-}" in
  pack)
    [ -s "$pack/node.xz" ] || { echo "no $pack/: run bash ../shared/gpu-host/prepare.sh first" >&2; exit 2; }
    tar -cf - --exclude='node_modules/**/darwin*' --exclude='node_modules/**/win32*' --exclude='node_modules/**/linux-arm*' \
      --exclude='node_modules/**/*arm64*' --exclude='node_modules/**/*musl*' --exclude='node_modules/.cache' \
      --exclude='node_modules/@tensorflow' --exclude='node_modules/typescript' --exclude='node_modules/playwright-core' --exclude='node_modules/@types' \
      $(find . -name node_modules -type d -prune -not -path "./$pack/*" | sed 's|^\./||') | xz -T2 -3 > "$pack/node_modules.tar.xz"
    tar -C "$data/.." -cf - cifar10/train cifar10/test | gzip -6 > "$pack/cifar10.tar.gz"
    # what travels besides the carried paths: tracked files and untracked ones git does not ignore
    tree=$(git ls-files -z -co --exclude-standard | xargs -0 du -cb | tail -1 | cut -f1)
    mb() { echo $(( ($1 + 1048575) / 1048576 )); }
    size() { du -cb "$@" | tail -1 | cut -f1; }
    echo "the tree: $(mb "$tree") MiB; with each call's carried paths (each must stay under 64):"
    echo "  call 1: $(mb $(( tree + $(size $pack/enter.sh $pack/debs $pack/node.xz) ))) MiB"
    echo "  call 2: $(mb $(( tree + $(size $pack/node_modules.tar.xz) ))) MiB"
    echo "  call 3: $(mb $(( tree + $(size $pack/cifar10.tar.gz) ))) MiB"
    ;;
  check)
    # what has arrived so far (a call carries its part; earlier parts stay on the warm machine)
    ls -la "$pack" 2>/dev/null || true
    nvidia-smi --query-gpu=name,memory.used --format=csv,noheader 2>/dev/null || true
    ;;
  train)
    limit=${2:?"train DURATION (e.g. 6m)"}
    out=${OUT:?"OUT: the folder whose files come back"}
    need=("$pack/cifar10.tar.gz")
    [ -n "${NO_DEVICE:-}" ] || need+=("$pack/node.xz" "$pack/node_modules.tar.xz")
    for f in "${need[@]}"; do
      [ -s "$f" ] || { echo "missing $f: make the earlier calls first (on a warm machine)" >&2; exit 2; }
    done
    mkdir -p "$data/.."
    tar -C "$data/.." -xzf "$pack/cifar10.tar.gz"
    echo "images: $(find "$data/train" -type f | wc -l) training, $(find "$data/test" -type f | wc -l) test"
    launch="node bin/alexnet.mjs launch --resume $run --backend ${BACKEND:-webgpu} --stop-after $limit --cache-dir /tmp/alexnet-cache"
    set +e
    if [ -n "${NO_DEVICE:-}" ]; then bash -c "$launch"; else bash $pack/enter.sh bash -c ". bench/gpu-env.sh; $launch"; fi 2>&1 \
      | grep -v '"event":"step"' | tee "$out/launch.log" | tail -40
    rc=${PIPESTATUS[0]}
    set -e
    ck=$(ls "$run"/checkpoints/step-*.safetensors | sort | tail -1)
    echo "launch exit code $rc; latest checkpoint $ck"
    split -b 15M -d "$ck" "$out/$(basename "$ck").part"
    cp "$run/metrics.jsonl" "$run/run.json" "$out/"
    node bin/alexnet.mjs summary "$run" 2>/dev/null | head -3 || true
    exit "$rc"
    ;;
  unpack)
    from=${2:?"unpack FOLDER (where the call's files came back)"}
    parts=("$from"/step-*.safetensors.part*)
    [ -e "${parts[0]}" ] || { echo "no checkpoint parts in $from" >&2; exit 2; }
    name=$(basename "${parts[0]}" | sed 's/\.part[0-9]*$//')
    tmp="$run/checkpoints/.$name.unpacking"
    cat "${parts[@]}" > "$tmp"
    # the whole file must decode for this preset before the old checkpoint goes
    node --import tsx --input-type=module -e "
      import fs from 'node:fs';
      import { decodeCheckpoint, getPreset } from '@alexnet-mp/core';
      const { state } = decodeCheckpoint(getPreset('cifar'), fs.readFileSync(process.argv[1]), process.argv[1]);
      console.log('checkpoint of step ' + state.step + ' reads');
    " "$tmp" || { rm -f "$tmp"; echo "the parts in $from do not make a readable checkpoint" >&2; exit 1; }
    # never replace newer work with an older checkpoint (a stale folder)
    latest=$(ls "$run"/checkpoints/step-*.safetensors 2>/dev/null | sort | tail -1)
    if [ -n "$latest" ] && [[ "$(basename "$latest")" > "$name" ]]; then
      rm -f "$tmp"; echo "$from holds $name, older than $latest here: not unpacked" >&2; exit 1
    fi
    old=$(ls "$run"/checkpoints/step-*.safetensors 2>/dev/null || true)
    mv "$tmp" "$run/checkpoints/$name"
    cp "$from/metrics.jsonl" "$from/run.json" "$run/"
    for f in $old; do [ "$(basename "$f")" = "$name" ] || rm -f "$f"; done
    ls -la "$run/checkpoints"
    node bin/alexnet.mjs summary "$run" | head -3 || true
    ;;
  *)
    sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
