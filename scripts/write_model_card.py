"""Write a model card (docs/models/<name>.md + its evaluation grid) from an exported, evaluated model.

    .venv/bin/python scripts/write_model_card.py resources/models/open-mouth --notes notes.md

Everything in the card comes from the model's manifest (training summary, metrics, licence) and
evaluation.png; `--notes` adds free text (e.g. what would close a gap to the targets).
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from PIL import Image

from diat_studio.core.manifest import ModelManifest
from diat_studio.core.registry import ModelRegistry
from trainer.evaluate import EVALUATOR_MIN_ACCURACY, GRID_FACES
from trainer.quality import GRID_ARTEFACTS, QUALITY_BAR, missed_targets

# Informational rows (no target): shown when the evaluation has them.
INFO = {
    "mean_delta_e_face": ("mean colour change inside the mask (ΔE, CIE76)", "{:.1f}"),
    "blur_control_success_rate": ("blur control: success of the same faces only blurred", "{:.1%}"),
    "grey_stays_grey_without_rule": ("grey faces stay grey through the networks alone", "{:.0%}"),
    "psnr_outside_mask_db": (
        "PSNR outside the mask of the raw output (the app pastes only inside)",
        "{:.1f} dB",
    ),
    "outer_feather_change_p99": (
        "change where the mask fades out (0 < m ≤ 0.25), 99th percentile, mean over faces (grey levels)",
        "{:.1f}",
    ),
    "outer_feather_faces_over_8": ("faces whose fading-out band changes by more than 8 levels", "{:.1%}"),
    "raw_outside_change_p99": (
        "raw output's change outside the mask, 99th percentile (grey levels; never pasted)",
        "{:.1f}",
    ),
    "green_mouth_pixels": ("mouth pixels the edit made greener than red (real mouths: 0.01%)", "{:.2%}"),
    "green_mouth_faces_over_2pct": ("faces with more than 2% of their mouth made green", "{:.1%}"),
    "faded_lips_pixels": (
        "where the teeth were, pixels over 8 a* units less red than the face's own lips "
        "(real closed mouths: 4.4%)",
        "{:.1%}",
    ),
    "faded_lips_faces_over_30pct": ("faces with more than 30% of that region faded (real: 0.9%)", "{:.1%}"),
    "paled_lips_ranks": (
        "opened lips: redness ranks of the face's own lips that fell over 8 a* units short",
        "{:.1%}",
    ),
    "paled_lips_faces_over_30pct": ("faces with more than 30% of those ranks short", "{:.1%}"),
    "lip_warmth_shift": ("opened lips: mean change of their warmth (CIE b*, units)", "{:.1f}"),
    "lip_warmth_faces_over_8": ("faces whose lips' warmth moved more than 8 b* units", "{:.1%}"),
    "upper_lip_delta_e": (
        "opened mouths: colour change of the upper lip's outer half (ΔE, mean)",
        "{:.1f}",
    ),
    "upper_lip_faces_over_5": ("faces whose upper lip changed by more than 5 ΔE", "{:.1%}"),
    "occluder_change_p99": (
        "a hand or an object drawn over the mouth: the edit's change on it, 99th percentile, mean over "
        "faces (levels)",
        "{:.1f}",
    ),
    "occluder_faces_over_16": ("faces whose drawn occluder changes by more than 16 levels", "{:.1%}"),
    "mouth_detail_ratio": (
        "the mouth's fine detail over the skin's around it, median over edited faces",
        "{:.2f}",
    ),
    "mouth_detail_ratio_real": ("the same over real faces that have the target value", "{:.2f}"),
    "soft_mouth_faces": (
        "edited mouths softer than nine tenths of the real ones (real: 10% by construction)",
        "{:.1%}",
    ),
    "sharpness_ratio": ("sharpness ratio inside the mask (1 = as the photo)", "{:.2f}"),
    "attribute_rate_before_edit": ("evaluator says 'target' before editing", "{:.1%}"),
}


def _stage_row(label: str, run: dict) -> str:
    minutes = f"{run['seconds'] / 60:.1f} min" if run.get("seconds") else "?"
    return (
        f"| {label} | {run['run']} | {run['steps']} | {run.get('batch_size')} "
        f"| {minutes} | {run.get('device')} × {run.get('world_size')} |"
    )


def _schedule(training: dict) -> str:
    transform = training.get("transform", {})
    lent = "`pack` → `fleet` on a lent GPU → `fleet-import`"
    if str(transform.get("device", "")).startswith("cuda"):
        return f"The schedule: {lent} (docs/TRAINING.md, sections 4 and 5)."
    earlier = transform.get("continued_from") or {}
    if earlier.get("model"):
        taught = " with it as the frozen `--teacher`" if (training.get("recipe") or {}).get("teacher") else ""
        return (
            f"The schedule: the installed model {earlier['model']}'s (the rows above), then `train "
            f"--init-transform` from its folder on the CPU{taught} (docs/TRAINING.md, section 4)."
        )
    if str(earlier.get("device", "")).startswith("cuda"):
        then = "then `train --init-transform` on the CPU"
        return f"The schedule: {lent}, {then} (docs/TRAINING.md, section 4)."
    return "The schedule: `scripts/train_bundled.sh` (docs/TRAINING.md, section 4)."


def _recipe_changes(training: dict) -> list[str]:
    """One line per resume that changed a setting of the edit run (its config.json keeps only the last)."""
    changes = (training.get("transform") or {}).get("recipe_changes") or []
    lines = []
    for change in changes:
        settings = ", ".join(f"{key} {old} → {new}" for key, (old, new) in change["changed"].items())
        lines.append(f"- resumed at step {change['step']} with {settings}")
    return [*lines, ""] if lines else []


def _stage_rows(training: dict) -> list[str]:
    rows = []
    for key in ("transform", "enhancer"):
        run = training.get(key)
        if run:
            # a second session went on from the first one's editor, or a run from an installed model's
            # (which may itself have gone on from another): the oldest first
            chain, earlier = [], run.get("continued_from")
            while earlier:
                label = f"{key}, the installed model {earlier['model']}" if "model" in earlier else None
                chain.append(_stage_row(label or f"{key}, the session it continues", earlier))
                earlier = earlier.get("continued_from")
            rows.extend(reversed(chain))
            rows.append(_stage_row(f"{key} ({run['stage']})", run))
    return rows


def evaluator_warning(metrics: dict) -> list[str]:
    """A loud paragraph when the evaluator was near chance (`evaluate` sets `evaluator_near_chance`)."""
    if not metrics.get("evaluator_near_chance"):
        return []
    accuracy = metrics.get("classifier_heldout_balanced_accuracy")
    shown = "unknown" if accuracy is None else f"{100 * accuracy:.1f}%"
    return [
        "",
        f"**Warning: the evaluator classifier is near chance** (held-out balanced accuracy {shown}, below "
        f"{100 * EVALUATOR_MIN_ACCURACY:.0f}%): it can hardly tell the attribute, so the attribute success "
        "rates above mean little.",
    ]


def record_grid_verdict(folder: Path, manifest: ModelManifest, faces: int) -> ModelManifest:
    """The person's count of artefact faces in the grid into the manifest, with the verdict it implies."""
    if faces < 0:
        raise SystemExit("--grid-artefacts: a count of faces, 0 or more")
    metrics = {**manifest.metrics, GRID_ARTEFACTS: faces}
    fields: dict = {"metrics": metrics}
    if "quality_bar_missed" in metrics:  # evaluated against the bar: the grid joins the verdict
        metrics["quality_bar_missed"] = missed_targets(metrics)
        fields["experimental"] = bool(metrics["quality_bar_missed"])
    updated = ModelManifest(**{**manifest.__dict__, **fields})
    updated.save(folder)
    return updated


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("model", type=Path)
    parser.add_argument("--out", type=Path, default=Path("docs/models"))
    parser.add_argument("--notes", type=Path)
    parser.add_argument(
        "--grid-artefacts",
        type=int,
        metavar="N",
        help="how many of the random grid's faces show blotches, stripes, mosaics or patches, looked at at "
        "100%%: recorded in the manifest; above 0 misses the quality bar (the model becomes experimental)",
    )
    options = parser.parse_args()
    manifest = ModelManifest.load(options.model)
    if options.grid_artefacts is not None:
        manifest = record_grid_verdict(options.model, manifest, options.grid_artefacts)
    metrics, training = manifest.metrics, manifest.training
    options.out.mkdir(parents=True, exist_ok=True)
    if (options.model / "evaluation.png").is_file():
        shutil.copyfile(options.model / "evaluation.png", options.out / f"{manifest.name}.png")
    if (options.model / "evaluation-photos.png").is_file():
        # the photo grid as a JPEG (quality 95, full-resolution colour: no artefact of its own at 100%) —
        # a third of the PNG's size, and the repository travels to lent GPUs within 64 MiB with the pack
        with Image.open(options.model / "evaluation-photos.png") as grid:
            grid.convert("RGB").save(options.out / f"{manifest.name}-photos.jpg", quality=95, subsampling=0)
        (options.out / f"{manifest.name}-photos.png").unlink(missing_ok=True)
    dataset = training.get("dataset", {})
    split = dataset.get("split") or {}
    lines = [
        f"# {manifest.label} (`{manifest.name}`)",
        "",
        f"{manifest.description}. Kind: {manifest.kind}"
        + (f", region: {manifest.region.value}" if manifest.kind == "local" else "")
        + f"; crop {manifest.crop_size} px (template `{manifest.template.name}`)."
        + (
            f" The app runs the transform {manifest.transform_passes} times, each pass on the one before it "
            "composited through the mask (`transform_passes`); every number below is of all the passes."
            if manifest.transform_passes > 1
            else ""
        )
        + (
            " Each run of the transform edits the face as it is and mirrored and averages the two "
            "(`mirror_average`)."
            if manifest.mirror_average
            else ""
        ),
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
        + (
            f"the edit recipe {training['recipe']} (docs/TRAINING.md)"
            if training.get("recipe")
            else f"perceptual regulariser {'on' if training.get('perceptual_regulariser') else 'off'}"
        ),
        f"- widths: {training.get('widths')}; loss weights: {training.get('weights')}",
        "",
        "| network | run | steps | batch | wall time | device |",
        "|---|---|---:|---:|---:|---|",
        *_stage_rows(training),
        "",
        *_recipe_changes(training),
        _schedule(training),
        "",
        "## Evaluation (`diat-studio-train evaluate`, held-out faces)",
        "",
        "| metric | measured | target |",
        "|---|---:|---:|",
    ]
    for target in QUALITY_BAR:
        if target.key in metrics:
            value = float(metrics[target.key])
            met = "met" if target.met(value) else "**missed**"
            lines.append(f"| {target.label} | {target.shown(value)} | {target.text} ({met}) |")
        else:
            lines.append(f"| {target.label} | not measured | {target.text} (**missed**) |")
    for key, (label, form) in INFO.items():
        if key in metrics:
            lines.append(f"| {label} | {form.format(metrics[key])} | |")
    grid_faces = metrics.get(GRID_ARTEFACTS)
    lines.append(
        "| random grid at 100% (looked at): faces with blotches, stripes, mosaics or patches | "
        + ("not looked at yet |" if grid_faces is None else f"{grid_faces} of {GRID_FACES} |")
        + (" 0 (**missed**) |" if grid_faces else " 0 (met) |" if grid_faces == 0 else " 0 |")
    )
    missed = metrics.get("quality_bar_missed")
    if missed is not None:
        verdict = (
            "passes the quality bar: offered by default in the app"
            if not missed
            else f"misses {len(missed)} target(s), so it ships **experimental** (hidden unless "
            "Settings › Show experimental models, or `--experimental`)"
        )
        lines += ["", f"Verdict (`evaluate --quality-bar`): {verdict}."]
    lines += evaluator_warning(metrics)
    onnx_mb = ModelRegistry([options.model.parent]).get(manifest.name).onnx_bytes() / 1e6
    lines += [
        "",
        f"{metrics.get('heldout_faces')} held-out faces; evaluator classifier `{metrics.get('classifier')}` "
        f"(held-out balanced accuracy {100 * (metrics.get('classifier_heldout_balanced_accuracy') or 0):.1f}%"
        "). "
        f"ONNX files: {onnx_mb:.2f} MB in all (target ≤ 20 MB); per-face "
        "latency on the development CPU: docs/PERFORMANCE.md (`bench/bench_models.py`).",
        "",
        f"![input | transformed | edited]({manifest.name}.png)",
        "",
        "Grid: input | transformed | edited (what the app pastes back), for 16 held-out faces lacking the "
        "attribute, drawn at random with a fixed seed (not chosen).",
        "",
        f"![the same faces edited in their photos]({manifest.name}-photos.jpg)",
        "",
        "The same draw, each face's whole photo edited by the app (`edit_photo`: detection, alignment, "
        "the edit, paste-back).",
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
