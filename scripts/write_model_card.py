"""Write a model card (docs/models/<name>.md + its evaluation grid) from an exported, evaluated model.

    .venv/bin/python scripts/write_model_card.py resources/models/open-mouth --notes notes.md

Everything in the card comes from the model's manifest (training summary, metrics, licence) and
evaluation.png; `--notes` adds free text (e.g. what would close a gap to the targets).
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from diat_studio.core.manifest import ModelManifest
from diat_studio.core.registry import ModelRegistry

TARGETS = {
    "attribute_success_rate": ("attribute success", 0.80, "≥ 80%"),
    "identity_kept_rate": ("identity kept (dlib distance < 0.6)", 0.90, "≥ 90%"),
    "psnr_outside_mask_db": ("PSNR outside the mask", 35.0, "≥ 35 dB"),
}


def _stage_rows(training: dict) -> list[str]:
    rows = []
    for key in ("transform", "enhancer"):
        run = training.get(key)
        if run:
            minutes = f"{run['seconds'] / 60:.1f} min" if run.get("seconds") else "?"
            rows.append(
                f"| {key} ({run['stage']}) | {run['run']} | {run['steps']} | {run.get('batch_size')} "
                f"| {minutes} | {run.get('device')} × {run.get('world_size')} |"
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("model", type=Path)
    parser.add_argument("--out", type=Path, default=Path("docs/models"))
    parser.add_argument("--notes", type=Path)
    options = parser.parse_args()
    manifest = ModelManifest.load(options.model)
    metrics, training = manifest.metrics, manifest.training
    options.out.mkdir(parents=True, exist_ok=True)
    grid = options.model / "evaluation.png"
    if grid.is_file():
        shutil.copyfile(grid, options.out / f"{manifest.name}.png")
    dataset = training.get("dataset", {})
    split = dataset.get("split") or {}
    lines = [
        f"# {manifest.label} (`{manifest.name}`)",
        "",
        f"{manifest.description}. Kind: {manifest.kind}"
        + (f", region: {manifest.region.value}" if manifest.kind == "local" else "")
        + f"; crop {manifest.crop_size} px (template `{manifest.template.name}`).",
        "",
        "## Data",
        "",
        f"- source: `{dataset.get('source')}` — {dataset.get('faces')} aligned faces",
        f"- split (seed {split.get('seed')}): {split.get('train')} train, {split.get('heldout')} held out;",
        "  the held-out faces are never trained on, and the evaluation uses only them",
        *(
            [
                f"- developers' split: {100 * dataset['dev_fraction']:.0f}% of the training faces set aside "
                "(not trained on) for weight sweeps (`evaluate --split dev`); see docs/TRAINING.md"
            ]
            if dataset.get("dev_fraction")
            else []
        ),
        "",
        "## Training",
        "",
        f"- variant: **{training.get('variant', '?').upper()}**, GAN loss {training.get('gan_loss')}, "
        f"perceptual regulariser {'on' if training.get('perceptual_regulariser') else 'off'}",
        f"- widths: {training.get('widths')}; loss weights: {training.get('weights')}",
        "",
        "| network | run | steps | batch | wall time | device |",
        "|---|---|---:|---:|---:|---|",
        *_stage_rows(training),
        "",
        "The pretraining runs (T as reconstruction, D as classifier, g and f) follow docs/TRAINING.md.",
        "",
        "## Evaluation (`diat-studio-train evaluate`, held-out faces)",
        "",
        "| metric | measured | target |",
        "|---|---:|---:|",
    ]
    for key, (label, target, text) in TARGETS.items():
        if key in metrics:
            value = metrics[key]
            shown = f"{100 * value:.1f}%" if key != "psnr_outside_mask_db" else f"{value:.1f} dB"
            met = "met" if value >= target else "**missed**"
            lines.append(f"| {label} | {shown} | {text} ({met}) |")
    if "identity_mean_distance" in metrics:
        lines.append(f"| mean identity distance | {metrics['identity_mean_distance']:.3f} | |")
    if "sharpness_ratio" in metrics:
        sharpness = metrics["sharpness_ratio"]
        lines.append(f"| sharpness ratio inside the mask (1 = as the photo) | {sharpness:.2f} | |")
    if "attribute_rate_before_edit" in metrics:
        lines.append(
            f"| classifier says 'target' before editing "
            f"| {100 * metrics['attribute_rate_before_edit']:.1f}% | |"
        )
    onnx_mb = ModelRegistry([options.model.parent]).get(manifest.name).onnx_bytes() / 1e6
    lines += [
        "",
        f"{metrics.get('heldout_faces')} held-out faces; evaluator classifier `{metrics.get('classifier')}` "
        f"(held-out balanced accuracy {100 * (metrics.get('classifier_heldout_balanced_accuracy') or 0):.1f}%"
        "). "
        f"ONNX files: {onnx_mb:.2f} MB in all (target ≤ 20 MB); per-face "
        "latency on the development CPU: docs/PERFORMANCE.md (`bench/bench_models.py`).",
        "",
        f"![input | transformed | enhanced]({manifest.name}.png)",
        "",
        "Grid: input | transformed (composited through the mask) | enhanced, for the first held-out faces "
        "lacking the attribute (fixed by the split, chosen before any result was seen).",
        "",
        "## Licence",
        "",
        manifest.licence,
    ]
    if options.notes:
        lines += ["", "## Notes", "", options.notes.read_text().strip()]
    (options.out / f"{manifest.name}.md").write_text("\n".join(lines) + "\n")
    print(options.out / f"{manifest.name}.md")


if __name__ == "__main__":
    main()
