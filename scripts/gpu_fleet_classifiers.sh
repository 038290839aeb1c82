#!/usr/bin/env bash
# One fleet on a lent GPU whose pack carries no classifiers: the fourth GPU session's schedule (2026-11-30,
# docs/TRAINING.md section 5; results in docs/ABLATION.md, "A fourth GPU session"). The fleet first trains
# the guides and evaluators of the four attributes (trainer/fleet_classifiers.py: 8 classifiers side by
# side, brought back in classifiers.tar.gz for the repository to carry), then four edits go on from the
# installed editors (`pack --continue`) against a fresh D — a 200-step D warm-up (500 for male → female),
# D's learning rate 2e-4, keep weight 5 — and every edit's D now comes back with its editor, so that the
# next session's fleet goes on against it (`pack --continue EDIT=RUN` of the run fleet-import unpacks).
#
#   remove eyeglasses: run 00031's recipe (DIAT-A held by the packed editor, weight 10, keep 3) with the
#                      new Eyeglasses guide on (attribute weight 1: the recipe had no guide)
#   male → female:     the shipped model's pull (attribute 3, adversarial 2, edit penalty 0.25)
#   close mouth:       held by the packed editor (weight 30), lr 1e-4
#   old → young:       the recipe, keep 5
#
# Prepared here (38.5 MiB, 57.0 of 64 MiB with the repository):
#   diat-studio-train pack data/wild build/gpu-pack21 \
#     --edits remove-eyeglasses,male-to-female,close-mouth,old-to-young \
#     --continue remove-eyeglasses=resources/models/remove-eyeglasses \
#     --continue male-to-female=resources/models/male-to-female \
#     --continue close-mouth=resources/models/close-mouth \
#     --continue old-to-young=resources/models/old-to-young \
#     --quality 80 --heldout-faces 2000 --classifiers-on-device --force
# On the lent machine (carry ["build/gpu-pack21"], timeout_s 575; 6 result files):
#   bash scripts/gpu_fleet_classifiers.sh build/gpu-pack21 4.5 $OUT
# Here: diat-studio-train fleet-import FILES_AT --data data/wild --install-classifiers
# Extra arguments go to the fleet (a CPU smoke test: --device cpu --batch-size 2 --evaluate-faces 6
# --two-sample-steps 2 --guide-steps 4 --evaluator-steps 4 --classifier-batch-size 4 --set discriminator_warmup=1,
# with 0.3 minutes).
set -uo pipefail
PACK=$1 MINUTES=$2 OUT=$3
shift 3
export PYTHONUNBUFFERED=1
G=$PACK/init GL=remove-eyeglasses
python3 -m trainer.cli fleet "$PACK" --minutes "$MINUTES" --work /tmp/fleet --out "$OUT" \
  --edits remove-eyeglasses,male-to-female,close-mouth,old-to-young \
  --guide-steps 3000 --evaluator-steps 4000 --classifier-batch-size 64 --classifier-minutes 2.5 --classifier-augment "" \
  --threads 3 --set keep_weight=5 --set discriminator_warmup=200 --set lr_discriminator=2e-4 \
  --set "$GL:teacher=\"$G/$GL\"" --set $GL:teacher_weight=10 --set $GL:keep_weight=3 --set $GL:lr=1e-4 \
  --set $GL:attribute_weight=1 --set $GL:identity_weight=0 --set $GL:embedding_weight=0 \
  --set $GL:colour_weight=0 --set $GL:edit_weight=0 \
  --set male-to-female:attribute_weight=3 --set male-to-female:adversarial_weight=2 \
  --set male-to-female:edit_weight=0.25 --set male-to-female:discriminator_warmup=500 \
  --set "close-mouth:teacher=\"$G/close-mouth\"" --set close-mouth:teacher_weight=30 --set close-mouth:lr=1e-4 \
  "$@" 2>&1 | tee /tmp/fleet.log | grep -v "^fleet: [0-9]*:[0-9]* left" ; status=${PIPESTATUS[0]}
grep "^fleet: [0-9]*:[0-9]* left" /tmp/fleet.log | tail -n 3
nvidia-smi --query-gpu=memory.used,utilization.gpu --format=csv 2>/dev/null
exit $status
