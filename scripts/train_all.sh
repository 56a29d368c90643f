#!/usr/bin/env bash
# Trains every shipped twin in sequence (skips those already in data/). Not part of CI.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
EPOCHS=${EPOCHS:-8}
WIDTH=${WIDTH:-32}
run() {  # name-stem, then train args
  local out="data/$1.json"; shift
  [ -f "$out" ] && { echo "skip $out"; return; }
  "$PY" -m bnn_saliency.train --width "$WIDTH" "$@"
}
run vgg-fp-s0   --model vgg-fp   --seed 0 --epochs "$EPOCHS"
run vgg-bnn-s0  --model vgg-bnn  --seed 0 --epochs "$EPOCHS"
run vgg-fp-s1   --model vgg-fp   --seed 1 --epochs "$EPOCHS"
run vgg-bnn-s1  --model vgg-bnn  --seed 1 --epochs "$EPOCHS"
run vgg-binw-s0 --model vgg-binw --seed 0 --epochs "$EPOCHS"
run vgg-bina-s0 --model vgg-bina --seed 0 --epochs "$EPOCHS"
run resnet-fp-s0  --model resnet-fp  --seed 0 --epochs "$EPOCHS"
run resnet-bnn-s0 --model resnet-bnn --seed 0 --epochs "$EPOCHS"
run vgg-fp-s0-randlabels  --model vgg-fp  --seed 0 --epochs 25 --random-labels --train-subset 10000
run vgg-bnn-s0-randlabels --model vgg-bnn --seed 0 --epochs 25 --random-labels --train-subset 10000
