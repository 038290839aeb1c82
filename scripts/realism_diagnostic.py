"""What gives an edit away to the two-sample test (docs/ABLATION.md, "What gives the edits away").

For an exported model and the evaluator of its attribute, on the held-out faces of a prepared dataset
(`--split dev`: its developers' split) as `diat-studio-train evaluate` takes them (up to 500 faces without
the target, composited through the app's masks):

- `--blur-both S,...`: both sets (edited faces and real faces with the target) blurred by σ = S px before
  the test — if the accuracy falls while the control (`--control`) does not, the tell is fine texture;
- `--lowpass-delta S,...`: the edit Δ = output − photo low-passed by σ = S px at inference (the photo's own
  texture kept), with the evaluator's success and the mean ΔE — what `--delta-lowpass` in training starts
  from;
- `--region-window` (local edits): the test on a square around the edit's region only (the mouth, or the
  eyes; trainer.region_windows), resized to 64 px — what the edit and its near surroundings give away;
- `--context` (local edits): the test with that square greyed in both sets — what the rest of the face,
  which a local edit never changes, gives away on its own;
- `--control`: the test on real faces without the target vs real faces with it (sharp and blurred), which
  shows whether the blur blinds the test itself.

Prints one JSON line per row. Each two-sample number is the best of three classifiers of 600 steps
(trainer.measures.two_sample_accuracies), as in `evaluate`.

    .venv/bin/python scripts/realism_diagnostic.py resources/models/open-mouth \\
        runs/00014-evaluator-Mouth_Slightly_Open-classifier --data data/wild --lowpass-delta 0.7,1
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np
import torch

from diat_studio.core.inference import Device, load_attribute_model
from diat_studio.core.manifest import ModelManifest
from diat_studio.core.pipeline import DEFAULT_FEATHER, edit_crops
from diat_studio.core.regions import RegionKind
from diat_studio.core.registry import ModelRegistry
from trainer.data import PreparedDataset, region_masks
from trainer.evaluate import dev_fraction_of
from trainer.measures import composite, delta_e_per_face, target_rate, two_sample_accuracies
from trainer.region_windows import cover_region, region_windows
from trainer.stages import load_trained


def blurred(images: np.ndarray, sigma: float) -> np.ndarray:
    return np.stack(
        [cv2.GaussianBlur(image, (0, 0), sigma, borderType=cv2.BORDER_REFLECT_101) for image in images]
    )


def lowpass_edit(crops: np.ndarray, output: np.ndarray, sigma: float) -> np.ndarray:
    """The photo plus its edit low-passed by σ (the output's own pixels where σ is 0)."""
    if sigma <= 0:
        return output
    delta = output.astype(np.float32) - crops.astype(np.float32)
    delta = np.stack([cv2.GaussianBlur(d, (0, 0), sigma, borderType=cv2.BORDER_REFLECT_101) for d in delta])
    return np.clip(np.rint(crops.astype(np.float32) + delta), 0, 255).astype(np.uint8)


def sigmas(text: str) -> list[float]:
    return [float(s) for s in text.split(",") if s.strip()] if text else []


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("model", type=Path)
    parser.add_argument("evaluator", type=Path, help="the attribute's evaluator run (never the guide)")
    parser.add_argument("--data", type=Path, default=Path("data/wild"))
    parser.add_argument("--limit", type=int, default=500)
    parser.add_argument("--split", choices=("heldout", "dev"), default="heldout")
    parser.add_argument("--blur-both", default="", help="σ list, e.g. 1,2")
    parser.add_argument("--lowpass-delta", default="", help="σ list, e.g. 0.7,1")
    parser.add_argument("--region-window", action="store_true", help="the test on the region's square only")
    parser.add_argument("--context", action="store_true", help="the test with the region's square greyed")
    parser.add_argument("--control", action="store_true")
    parser.add_argument("--threads", type=int, default=2)
    options = parser.parse_args()
    torch.set_num_threads(options.threads)

    model_dir = options.model.resolve()
    manifest = ModelManifest.load(model_dir)
    if (options.region_window or options.context) and manifest.kind != "local":
        parser.error("--region-window and --context are for local edits (a global edit changes every pixel)")
    entry = next(e for e in ModelRegistry([model_dir.parent]).entries if e.directory == model_dir)
    model = load_attribute_model(entry, Device.AUTO)
    dataset = PreparedDataset.open(options.data)
    if options.split == "dev":
        dataset = dataset.with_dev_split(dev_fraction_of(manifest))
    target = 1 if manifest.direction == "add" else 0
    rows = dataset.indices(options.split, manifest.attribute, 1 - target)[: options.limit]
    real_rows = dataset.indices(options.split, manifest.attribute, target)[: options.limit]
    real = np.asarray(dataset.crops[real_rows])
    region = manifest.region if manifest.kind == "local" else RegionKind.FACE
    evaluator = load_trained(options.evaluator, "classifier", "classifier_width").eval()
    crops = np.asarray(dataset.crops[rows])
    masks = region_masks(
        dataset.landmarks[rows], region, dataset.size, DEFAULT_FEATHER, manifest.region_margin
    )
    masks = masks[:, 0]
    output = np.concatenate(
        [edit_crops(model, crops[i : i + 32], masks[i : i + 32])[1] for i in range(0, len(rows), 32)]
    )

    def success(images: np.ndarray) -> float:
        return target_rate(evaluator, images, target)

    def test(first: np.ndarray, second: np.ndarray) -> dict[str, object]:
        runs = two_sample_accuracies(first, second, repeats=3, steps=600, width=8, seed=0) or []
        return {"two_sample": round(max(runs), 4) if runs else None, "runs": [round(r, 4) for r in runs]}

    def report(row: dict[str, object]) -> None:
        print(json.dumps({"model": manifest.name, "split": options.split, **row}), flush=True)

    for sigma in [0.0, *sigmas(options.lowpass_delta)]:
        edited = composite(crops, lowpass_edit(crops, output, sigma), masks)
        report(
            {
                "lowpass_delta_sigma": sigma,
                "success": success(edited),
                "delta_e": round(float(np.mean(delta_e_per_face(crops, edited, masks))), 2),
                **test(edited, real),
            }
        )
    edited = composite(crops, output, masks)
    marks, real_marks = dataset.landmarks[rows], dataset.landmarks[real_rows]

    def square(images: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        return region_windows(images, landmarks, region)

    if options.region_window:
        report({"region_window": region.value, **test(square(edited, marks), square(real, real_marks))})
    if options.context:
        greyed = [cover_region(edited, marks, region), cover_region(real, real_marks, region)]
        report({"context": region.value, **test(*greyed)})
    for sigma in sigmas(options.blur_both):
        report({"blur_both_sigma": sigma, **test(blurred(edited, sigma), blurred(real, sigma))})
    if options.control:
        report({"control": "real without vs with the target", **test(crops, real)})
        if options.region_window:
            squares = [square(crops, marks), square(real, real_marks)]
            report({"control": "real without vs with, the region's square", **test(*squares)})
        for sigma in sigmas(options.blur_both):
            report(
                {
                    "control": "real without vs with, blurred",
                    "sigma": sigma,
                    **test(blurred(crops, sigma), blurred(real, sigma)),
                }
            )


if __name__ == "__main__":
    main()
