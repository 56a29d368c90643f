#!/usr/bin/env bash
# Twins v2 (the suite the evidence chapters will use), in the issue's order of priority.
# Skips models already in data/v2/, resumes an interrupted one from its checkpoint, and after
# each model re-evaluates it in float32 and rewrites data/v2/SHA256SUMS. Recipes come from the
# pilot (scripts/pilot.sh, data/v2/pilot.json). Train on a fast machine (see
# ../shared/tools/machine-class); not part of CI. ONLY=name trains one model.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
OUT=data/v2
FP_RECIPE=(--width 64 --batch-size 256 --optimizer sgd --lr 0.1 --warmup-epochs 1
           --label-smoothing 0.1 --weight-decay 5e-4 --epochs 35)
BNN_RECIPE=(--width 64 --batch-size 256 --optimizer adam --lr 1e-3 --epochs 40)
run() {  # name, then train args
  local name=$1; shift
  [ -n "${ONLY:-}" ] && [ "$ONLY" != "$name" ] && return 0
  if [ ! -f "$OUT/$name.json" ]; then
    nice -n 19 "$PY" -m bnn_saliency.models.training --out-dir "$OUT" --run-dir "runs/v2/$name" "$@"
  fi
  "$PY" -c "import json,sys; sys.exit('subset_accuracy' not in json.load(open('$OUT/$name.json')))" \
    || "$PY" -m bnn_saliency.models.training --float32-eval-only --out-dir "$OUT" "$@"
  (cd "$OUT" && sha256sum ./*.weights.h5 | sed 's# \./# #' > SHA256SUMS)
}
for seed in 0 1 2; do
  run "vgg-fp-s$seed"  --model vgg-fp  --seed "$seed" "${FP_RECIPE[@]}"
  run "vgg-bnn-s$seed" --model vgg-bnn --seed "$seed" "${BNN_RECIPE[@]}"
done
