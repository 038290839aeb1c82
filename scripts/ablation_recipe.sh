#!/usr/bin/env bash
# The recipe ablation (docs/ABLATION.md, "The edit recipe"): every row trains the same number of steps on
# the 64 px copy of the data (`downscale`), leaves out one component, and is measured on the developers'
# split (5%) with the independent evaluator. Resumable: finished rows are skipped.
#
#   scripts/ablation_recipe.sh [STEPS]     (default 200)
#   ROWS_MATCHING='full|no-r1' scripts/ablation_recipe.sh   # only the matching rows
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS=${1:-200}
RUNS=${RUNS:-runs/ablation}
DATA=${DATA:-data/wild64}
OUT=${OUT:-runs/ablation-models}
T=${T:-.venv/bin/diat-studio-train}
[[ -f "$DATA/prepare.json" ]] || "$T" downscale data/wild "$DATA" --size 64

run_named() { ls -d "$RUNS"/*-"$1" 2>/dev/null | tail -n 1 || true; }
done_run() { [[ -n "$1" && -f "$1/status.json" ]] && grep -q '"status": "done"' "$1/status.json"; }

for A in Male Mouth_Slightly_Open; do
  done_run "$(run_named "classify-guide-$A")" || "$T" train --stage classify --data "$DATA" --attribute "$A" \
    --direction add --name "guide-$A" --discriminator-width 16 --batch-size 32 --steps 1000 --threads 1 \
    --runs-dir "$RUNS" --checkpoint-every 500 --sample-every 500 -q
  done_run "$(run_named "evaluator-$A-classifier")" || \
    "$T" classifier --data "$DATA" --attribute "$A" --steps 1000 --classifier-width 16 --runs-dir "$RUNS" -q
done

# row name | edit | extra options
ROWS=(
  "full|male-to-female|"
  "no-residual|male-to-female|--editor plain"
  "no-diffaugment|male-to-female|--augment="
  "no-r1|male-to-female|--r1-weight 0"
  "no-ema|male-to-female|--ema-decay 0"
  "no-classifier|male-to-female|--attribute-weight 0"
  "fp32|male-to-female|--no-amp"
  "full|open-mouth|"
  "no-region-d|open-mouth|--region-adversarial-weight 0"
  "keep|male-to-female|--keep-weight 5"
  "keep|open-mouth|--keep-weight 5"
)
for row in "${ROWS[@]}"; do
  IFS='|' read -r name edit extra <<<"$row"
  # ROWS_MATCHING (an extended regex on EDIT-ROW) splits the rows between processes run side by side
  [[ -z "${ROWS_MATCHING:-}" || "$edit-$name" =~ $ROWS_MATCHING ]] || continue
  if [[ $edit == male-to-female ]]; then  # the bundled global edits' weights (scripts/train_bundled.sh)
    attr=(--attribute Male --direction remove --edit-weight 0.5 --colour-weight 3); A=Male
  else
    attr=(--attribute Mouth_Slightly_Open --direction add --region mouth); A=Mouth_Slightly_Open
  fi
  run=$(run_named "edit-$edit-$name")
  if ! done_run "$run"; then
    if [[ -n "$run" ]]; then
      "$T" train --resume "$run" -q
    else
      # shellcheck disable=SC2086
      "$T" train --stage edit --data "$DATA" --runs-dir "$RUNS" --name "$edit-$name" "${attr[@]}" \
        --attribute-classifier "$(run_named "classify-guide-$A")" --dev-fraction 0.05 \
        --transform-width 16 --discriminator-width 32 --batch-size 8 --lr 2e-4 --gan-loss hinge \
        --identity-weight 1 --embedding-weight 1 --ema-decay 0.995 --steps "$STEPS" \
        --augment colour,translation,cutout \
        --checkpoint-every 100 --sample-every "$STEPS" --log-every 10 --threads 1 $extra -q
    fi
    run=$(run_named "edit-$edit-$name")
  fi
  model="$OUT/$edit-$name"
  if [[ ! -f "$model/evaluation-dev.json" ]]; then
    "$T" export "$run" --out "$model"
    "$T" evaluate "$model" --data "$DATA" --classifier "$(run_named "evaluator-$A-classifier")" --split dev
  fi
done
