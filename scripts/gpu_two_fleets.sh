#!/usr/bin/env bash
# Two `fleet` commands side by side on one lent GPU: the third GPU session's schedule (2026-11-29,
# docs/TRAINING.md section 5; results in docs/ABLATION.md, "A third GPU session"). Every edit goes on from
# the editor its pack carries (`pack --continue`), with D afresh: a 200-step D warm-up, D's learning rate
# at 2e-4 (the edit stage's default is T's: the same for the global edits, 1e-4 for the held ones).
#
#   fleet a: remove eyeglasses (the recipe of its shipped run 00031, held by the packed editor, weight 10),
#            male → female, close mouth (held by the packed editor, weight 30), old → young; keep weight 5
#   fleet b: remove eyeglasses held at weight 3; male → female with a stronger pull (attribute 3,
#            adversarial 2, edit penalty 0.25)
#
# Prepared here (the pack of 2026-11-29: 42.5 MiB, 61.0 of 64 MiB with the repository):
#   diat-studio-train pack data/wild build/gpu-pack20 \
#     --edits remove-eyeglasses,male-to-female,close-mouth,old-to-young \
#     --continue remove-eyeglasses=runs/00031-edit-glasses-a26-keep3 \
#     --continue male-to-female=resources/models/male-to-female \
#     --continue close-mouth=resources/models/close-mouth \
#     --continue old-to-young=resources/models/old-to-young --quality 80 --heldout-faces 150 --force
# On the lent machine (carry ["build/gpu-pack20"], timeout_s 590; 8 result files, the most it returns):
#   bash scripts/gpu_two_fleets.sh build/gpu-pack20 7.5 $OUT
# Here: diat-studio-train fleet-import FILES_AT/a --data data/wild (and FILES_AT/b, with another --work).
# Extra arguments go to both fleets (a CPU smoke test: --device cpu --batch-size 2 --evaluate-faces 6
# --two-sample-steps 2 --set discriminator_warmup=1, with 0.5 minutes).
set -uo pipefail
PACK=$1 MINUTES=$2 OUT=$3
shift 3
export PYTHONUNBUFFERED=1
G=$PACK/init GL=remove-eyeglasses
# run 00031's recipe: DIAT-A, no guide, no identity terms, the packed editor as the frozen teacher
GLASSES=(--set "$GL:teacher=\"$G/$GL\"" --set $GL:keep_weight=3 --set $GL:lr=1e-4 --set $GL:lr_discriminator=2e-4
  --set $GL:attribute_weight=0 --set $GL:identity_weight=0 --set $GL:embedding_weight=0 --set $GL:colour_weight=0
  --set $GL:edit_weight=0)
COMMON=(--threads 2 --set keep_weight=5 --set discriminator_warmup=200 --set lr_discriminator=2e-4)
python3 -m trainer.cli fleet "$PACK" --minutes "$MINUTES" --work /tmp/fleet-a --out "$OUT/a" \
  --edits remove-eyeglasses,male-to-female,close-mouth,old-to-young "${COMMON[@]}" \
  "${GLASSES[@]}" --set $GL:teacher_weight=10 \
  --set "close-mouth:teacher=\"$G/close-mouth\"" --set close-mouth:teacher_weight=30 --set close-mouth:lr=1e-4 \
  "$@" >/tmp/fleet-a.log 2>&1 &
A=$!
python3 -m trainer.cli fleet "$PACK" --minutes "$MINUTES" --work /tmp/fleet-b --out "$OUT/b" \
  --edits remove-eyeglasses,male-to-female "${COMMON[@]}" \
  "${GLASSES[@]}" --set $GL:teacher_weight=3 \
  --set male-to-female:attribute_weight=3 --set male-to-female:adversarial_weight=2 \
  --set male-to-female:edit_weight=0.25 \
  "$@" >/tmp/fleet-b.log 2>&1 &
B=$!
status=0
wait $A || status=$?
echo "fleet a: exit $status"
wait $B || status=$?
echo "fleet b: exit $status"
echo "=== a"; tail -n 40 /tmp/fleet-a.log
echo "=== b"; tail -n 25 /tmp/fleet-b.log
exit $status
