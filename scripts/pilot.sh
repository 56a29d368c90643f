#!/usr/bin/env bash
# Twins-v2 recipe pilot (issue: at most ~45 minutes of a fast machine). Each candidate trains
# with its own short cosine schedule into runs/pilot/; `python -m bnn_saliency.pilot`
# then summarizes the runs into data/pilot.json for the models appendix. Not part of CI.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
pilot() {  # name, then train args
  local name=$1; shift
  [ -f "runs/pilot/$name.json" ] && return 0
  "$PY" -m bnn_saliency.models.training --out-dir runs/pilot --suffix="-$name" \
    --seed 0 --batch-size 256 --width 64 --epochs 8 "$@"
}
pilot fp-sgd      --model vgg-fp  --optimizer sgd --lr 0.1 --warmup-epochs 1 --label-smoothing 0.1 --weight-decay 5e-4
pilot bnn-adam1e3 --model vgg-bnn --optimizer adam --lr 1e-3
pilot bnn-adam5e3 --model vgg-bnn --optimizer adam --lr 5e-3 --warmup-epochs 1
