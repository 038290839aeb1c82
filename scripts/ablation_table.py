"""Print a Markdown ablation table from exported, evaluated models.

    .venv/bin/python scripts/ablation_table.py "DIAT-A|runs/ablation/close-mouth-diat-a" \
        "DIAT|runs/ablation/close-mouth-diat" ...

Each argument is `label|MODEL_DIR`; the model must have been through `diat-studio-train evaluate`
(its evaluation.json and manifest are read). Rows keep the order given.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from diat_studio.core.manifest import ModelManifest


def row(label: str, model_dir: Path) -> str:
    manifest = ModelManifest.load(model_dir)
    metrics = json.loads((model_dir / "evaluation.json").read_text())["metrics"]
    training = manifest.training
    steps = training.get("transform", {}).get("steps", "?")
    enhancer = training.get("enhancer")
    psnr = metrics.get("psnr_outside_mask_db")
    return (
        f"| {label} | {training.get('variant', '?').upper()} | {steps} "
        f"| {'on' if training.get('perceptual_regulariser') else 'off'} "
        f"| {'E ' + str(enhancer['steps']) + ' steps' if enhancer else 'none'} "
        f"| {100 * metrics['attribute_success_rate']:.1f}% "
        f"| {100 * metrics['attribute_rate_before_edit']:.1f}% "
        f"| {100 * metrics['identity_kept_rate']:.1f}% | {metrics['identity_mean_distance']:.3f} "
        f"| {f'{psnr:.1f} dB' if psnr is not None else '—'} | {metrics.get('sharpness_ratio', '—')} "
        f"| {metrics['heldout_faces']} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("rows", nargs="+", metavar="LABEL|MODEL_DIR")
    options = parser.parse_args()
    print(
        "| setting | variant | T steps | perceptual regulariser | enhancement network | attribute success "
        "| before edit | identity kept | mean identity distance | PSNR outside mask | sharpness | faces |"
    )
    print("|---|---|---:|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for spec in options.rows:
        label, _, folder = spec.partition("|")
        print(row(label, Path(folder)))


if __name__ == "__main__":
    main()
