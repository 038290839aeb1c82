"""Print the Markdown table of the edit-recipe ablation (docs/ABLATION.md) from `evaluate --split dev`.

    .venv/bin/python scripts/recipe_ablation_table.py runs/ablation-models runs/ablation

For every model folder `<edit>-<row>` under the first folder (as scripts/ablation_recipe.sh writes them),
reads evaluation-dev.json and the training speed (median images/s of its run's log, the run found by name
under the second folder). Rows keep the order of scripts/ablation_recipe.sh.
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

ROWS = [
    ("male-to-female-full", "male → female, the whole recipe"),
    ("male-to-female-no-residual", "− residual editor (the paper's T, random start)"),
    ("male-to-female-no-diffaugment", "− DiffAugment"),
    ("male-to-female-no-r1", "− lazy R1"),
    ("male-to-female-no-ema", "− weight average (EMA)"),
    ("male-to-female-no-classifier", "− frozen-classifier attribute loss"),
    ("male-to-female-fp32", "float32 instead of bf16 autocast"),
    ("male-to-female-keep", "+ already-target faces kept (keep weight 5)"),
    ("open-mouth-full", "open mouth, the whole recipe"),
    ("open-mouth-no-region-d", "− region discriminator"),
    ("open-mouth-keep", "+ already-target faces kept (keep weight 5)"),
]


def _pct(metrics: dict, key: str) -> str:
    return f"{100 * metrics[key]:.1f}%" if key in metrics else "—"


def _num(metrics: dict, key: str, form: str) -> str:
    return format(metrics[key], form) if key in metrics else "—"


def main() -> None:
    models = Path(sys.argv[1] if len(sys.argv) > 1 else "runs/ablation-models")
    runs = Path(sys.argv[2] if len(sys.argv) > 2 else "runs/ablation")
    print(
        "| setting | steps | success (dev) | blur control | over blur (points) | identity kept "
        "| mean distance | two-sample accuracy | ΔE in the mask | already-target ΔE | images/s |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for folder, label in ROWS:
        path = models / folder / "evaluation-dev.json"
        if not path.is_file():
            print(f"| {label} | not run | | | | | | | | | |")
            continue
        m = json.loads(path.read_text())["metrics"]
        run = sorted(runs.glob(f"*-edit-{folder}"))[-1]
        logs = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines() if line]
        speed = statistics.median(r["images_per_second"] for r in logs if "images_per_second" in r)
        steps = json.loads((run / "status.json").read_text())["step"]
        print(
            f"| {label} | {steps} | {_pct(m, 'attribute_success_rate')} "
            f"| {_pct(m, 'blur_control_success_rate')} | {_num(m, 'success_over_blur_points', '.1f')} "
            f"| {_pct(m, 'identity_kept_rate')} | {_num(m, 'identity_mean_distance', '.3f')} "
            f"| {_pct(m, 'two_sample_accuracy')} | {_num(m, 'mean_delta_e_face', '.1f')} "
            f"| {_num(m, 'already_target_delta_e', '.1f')} | {speed:.1f} |"
        )


if __name__ == "__main__":
    main()
