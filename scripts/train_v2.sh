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
# Data randomization: a 2,000-image training subset without augmentation, shuffled labels
# (-randlabels) or the true ones (-truelabels, the control: identical subset and recipe).
SUBSET=(--train-subset 2000 --no-augment --batch-size 128 --epochs 100)
control() {  # seed: the checkpoint of vgg-fp-s<seed> closest to vgg-bnn-s<seed>'s accuracy
  local seed=$1 name="vgg-fp-s$1-at-bnn-acc" runs="runs/v2/vgg-fp-s$1"
  [ -n "${ONLY:-}" ] && [ "$ONLY" != "$name" ] && return 0
  [ -f "$OUT/$name.json" ] && return 0
  if [ ! -f "$runs/log.csv" ]; then  # the original run's epochs are gone: re-run its start
    runs="$runs-rerun"
    nice -n 19 "$PY" -m bnn_saliency.models.training --out-dir "$OUT" --run-dir "$runs" \
      --model vgg-fp --seed "$seed" "${FP_RECIPE[@]}" --stop-after "${STOP_AFTER:-10}"
  fi
  nice -n 19 "$PY" -m bnn_saliency.models.training --out-dir "$OUT" --run-dir "$runs" \
    --matched-checkpoint "vgg-fp-s$seed" "vgg-bnn-s$seed"
  (cd "$OUT" && sha256sum ./*.weights.h5 | sed 's# \./# #' > SHA256SUMS)
}
narrow() {  # seed: an FP network of width NARROW_WIDTH trained on the full FP recipe, shipped
  # only if its float32 test accuracy is within 1.5 points of vgg-bnn-s<seed>'s
  local seed=$1 name="vgg-fp-s$1-narrow" width=${NARROW_WIDTH:-16}
  [ -n "${ONLY:-}" ] && [ "$ONLY" != "$name" ] && return 0
  [ -f "$OUT/$name.json" ] && return 0
  nice -n 19 "$PY" -m bnn_saliency.models.training --out-dir "$OUT" --run-dir "runs/v2/$name-w$width" \
    --model vgg-fp --seed "$seed" "${FP_RECIPE[@]}" --width "$width" --suffix=-narrow \
    --matched-to "vgg-bnn-s$seed" --role "accuracy-matched control for vgg-bnn-s$seed: a narrower FP network (width $width) on the FP recipe"
  "$PY" -m bnn_saliency.models.training --float32-eval-only --out-dir "$OUT" --model vgg-fp \
    --seed "$seed" --suffix=-narrow
  "$PY" - "$OUT" "$name" "vgg-bnn-s$seed" <<'PY' || { mkdir -p runs/v2/rejected; mv "$OUT/$name".* runs/v2/rejected/; return 1; }
import json, sys
out, name, bnn = sys.argv[1:]
acc = lambda n: json.load(open(f"{out}/{n}.json"))["float32_test_accuracy"]
gap = acc(name) - acc(bnn)
print(f"{name} {acc(name):.2%} vs {bnn} {acc(bnn):.2%}: {100 * gap:+.2f} points")
sys.exit(abs(gap) > 0.015)
PY
  (cd "$OUT" && sha256sum ./*.weights.h5 | sed 's# \./# #' > SHA256SUMS)
}
for seed in 0 1 2; do
  run "vgg-fp-s$seed"  --model vgg-fp  --seed "$seed" "${FP_RECIPE[@]}"
  run "vgg-bnn-s$seed" --model vgg-bnn --seed "$seed" "${BNN_RECIPE[@]}"
  control "$seed"
done
for seed in 0 1 2; do narrow "$seed"; done
for variant in bnn fp; do
  recipe=FP_RECIPE; [ "$variant" = bnn ] && recipe=BNN_RECIPE
  declare -n chosen=$recipe
  run "vgg-$variant-s0-randlabels" --model "vgg-$variant" --seed 0 "${chosen[@]}" "${SUBSET[@]}" \
    --random-labels --role "data randomization: shuffled labels"
  run "vgg-$variant-s0-truelabels" --model "vgg-$variant" --seed 0 "${chosen[@]}" "${SUBSET[@]}" \
    --suffix=-truelabels --role "data randomization control: true labels, identical recipe"
done
