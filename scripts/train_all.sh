#!/usr/bin/env bash
# Trains every shipped twin in sequence (skips those already in data/), then re-evaluates each
# in float32 for its provenance record. Not part of CI. A killed run resumes from its checkpoint.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
WIDTH=${WIDTH:-32}
run() {  # name, then train args
  local name=$1; shift
  if [ ! -f "data/$name.json" ]; then "$PY" -m bnn_saliency.models.training --width "$WIDTH" "$@"; fi
  "$PY" -c "import json,sys; sys.exit('subset_accuracy' not in json.load(open('data/$name.json')))" \
    || "$PY" -m bnn_saliency.models.training --float32-eval-only "$@"
}
run vgg-fp-s0   --model vgg-fp   --seed 0 --epochs 8
run vgg-bnn-s0  --model vgg-bnn  --seed 0 --epochs 8
run vgg-fp-s1   --model vgg-fp   --seed 1 --epochs 8
run vgg-bnn-s1  --model vgg-bnn  --seed 1 --epochs 8
run vgg-binw-s0 --model vgg-binw --seed 0 --epochs 8
run vgg-bina-s0 --model vgg-bina --seed 0 --epochs 8
run resnet-fp-s0  --model resnet-fp  --seed 0 --epochs 6
run resnet-bnn-s0 --model resnet-bnn --seed 0 --epochs 6
run vgg-fp-s0-randlabels  --model vgg-fp  --seed 0 --epochs 30 --random-labels --train-subset 2000 --no-augment
run vgg-bnn-s0-randlabels --model vgg-bnn --seed 0 --epochs 30 --random-labels --train-subset 2000 --no-augment
(cd data && sha256sum ./*.weights.h5 | sed 's# \./# #' > SHA256SUMS)
