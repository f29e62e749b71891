#!/usr/bin/env bash
# The paper preset end to end on an image folder (IMAGENETTE, required:
# 224x224 crops of 256x256 images, 10 classes, train/ and val/) on this machine's CPU: two steps of 4
# images, an evaluation, a checkpoint, then --resume with only --steps 3 (and the cache) for a third
# step on the same data. Writes bench/results/imagenette-paper-cpu.txt. Takes 4 to 6 minutes on 2 cores.
#   bash bench/imagenette-paper.sh
#   IMAGENETTE=path/to/folder bash bench/imagenette-paper.sh
# lr 0.001: the paper's 0.01 is for batches of 128; with 4 images a step it diverges.
set -uo pipefail
cd "$(dirname "$0")/.."
out=bench/results/imagenette-paper-cpu.txt
data=${IMAGENETTE:-}
if [ -z "$data" ] || [ ! -d "$data" ]; then
  echo "imagenette-paper: ${data:+no image folder at $data: }set IMAGENETTE to a folder with train/ and val/ class folders (e.g. a few images per class of Imagenette)" >&2
  exit 2
fi
run=$(mktemp -d /tmp/alexnet-imagenette-XXXXXX)
cache=${ALEXNET_CACHE_DIR:-/tmp/alexnet-cache}
: > "$out"
step() {
  echo "# node bin/alexnet.mjs $*" | sed "s#$run#RUN_DIR#g" >> "$out"
  node bin/alexnet.mjs "$@" 2>&1 | sed "s#$run#RUN_DIR#g" >> "$out"
  echo "rc=${PIPESTATUS[0]}" >> "$out"
  echo >> "$out"
}
step launch --preset paper --backend webasm --data "$data" --cache-dir "$cache" \
  --batch 4 --lr 0.001 --steps 2 --eval-batch 10 --eval-batches 1 --run-dir "$run"
step launch --resume "$run" --cache-dir "$cache" --steps 3
rm -rf "$run"
grep -E '^# |"event":"(eval|checkpoint|done)"|resuming|^rc=' "$out" | cut -c1-200
