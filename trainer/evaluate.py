"""`diat-studio-train evaluate`: how well an exported model does its job, on held-out faces.

The model runs through the app's own registry and ONNX Runtime inference (what users will get), on
held-out faces that lack the target attribute value, composited through the same soft masks as the app:

- attribute success rate: the independent evaluator classifier (not the GAN's D) says the target value
  after editing (and, as a baseline, how often it already said so before editing);
- identity kept rate: dlib descriptor distance between input and output below 0.6, and the mean distance;
- local edits: PSNR outside the mask of the network output before compositing (the app's paste-back keeps
  those pixels bit-identical in any case);
- sharpness ratio: the edited face's detail (variance of the Laplacian of the grey image, inside the
  mask) over the input's, median over faces — 1.0 matches the photo, below 1 is blur, above 1 is added
  texture or artefacts; it shows what the enhancement network changes;
- an image grid (input | transformed | enhanced) of the first held-out faces.
Results go to MODEL_DIR/evaluation.json, MODEL_DIR/evaluation.png and the manifest's metrics.

`split="dev"` measures on the developers' split that the transform run set aside (`--dev-fraction`)
instead, for weight sweeps and comparisons: results go to evaluation-dev.json / .png and never into the
manifest, so the held-out faces are looked at only for the final numbers.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from diat_studio.core.errors import ModelError
from diat_studio.core.inference import Device, load_attribute_model
from diat_studio.core.inference import LocalEnhancer as OnnxLocalEnhancer
from diat_studio.core.manifest import ModelManifest
from diat_studio.core.registry import ModelRegistry
from trainer.data import PreparedDataset, region_masks, to_tensor
from trainer.identity import SAME_PERSON_DISTANCE, FaceIdentity
from trainer.runs import run_config, save_grid
from trainer.stages import load_trained

GRID_FACES = 8


def evaluate_model(
    model_dir: Path,
    data: Path,
    classifier_run: Path,
    *,
    limit: int = 500,
    update_manifest: bool = True,
    batch_size: int = 32,
    split: str = "heldout",
) -> dict[str, Any]:
    if split not in ("heldout", "dev"):
        raise ValueError(f"unknown split {split!r}: use heldout or dev")
    model_dir, data = Path(model_dir), Path(data)
    manifest = ModelManifest.load(model_dir)
    entry = next((e for e in ModelRegistry([model_dir.parent]).entries if e.directory == model_dir), None)
    if entry is None or not entry.available:
        raise ModelError(f"{model_dir}: not a usable model ({entry.reason if entry else 'not found'})")
    model = load_attribute_model(entry, Device.AUTO)
    dataset = PreparedDataset.open(data)
    if split == "dev":
        dataset = dataset.with_dev_split(_dev_fraction(manifest))
        update_manifest = False  # the manifest and the card carry held-out numbers only
    if dataset.size != manifest.crop_size:
        raise ValueError(f"dataset crops are {dataset.size} px, the model expects {manifest.crop_size} px")
    classifier_config = run_config(classifier_run)
    if classifier_config.get("attribute") != manifest.attribute:
        raise ValueError(
            f"the classifier run is for {classifier_config.get('attribute')!r}, "
            f"the model edits {manifest.attribute!r}"
        )
    classifier = load_trained(classifier_run, "classifier", "classifier_width").eval()
    identity = FaceIdentity(dataset.template)
    target = 1 if manifest.direction == "add" else 0
    rows = dataset.indices(split, manifest.attribute, 1 - target)[:limit]
    if len(rows) == 0:
        raise ValueError(f"no {split} faces without the target value of {manifest.attribute}")
    region = manifest.region if manifest.kind == "local" else "face"
    started = time.perf_counter()
    success_before, success_after, distances, psnrs, sharpness = [], [], [], [], []
    grid: list[list[np.ndarray]] = [[], [], []]
    for start in range(0, len(rows), batch_size):
        chunk = rows[start : start + batch_size]
        crops = np.asarray(dataset.crops[chunk])
        masks = region_masks(dataset.landmarks[chunk], region, dataset.size, 0.15)[:, 0]  # type: ignore[arg-type]
        transformed = model.transform(crops)
        if isinstance(model.enhancer, OnnxLocalEnhancer):
            enhanced = model.enhancer(transformed, crops, masks)
        elif model.enhancer is not None:
            enhanced = model.enhancer(transformed)
        else:
            enhanced = transformed
        weight = masks[..., None]
        edited = np.clip(np.rint(crops * (1 - weight) + enhanced * weight), 0, 255).astype(np.uint8)
        with torch.no_grad():
            before = classifier(to_tensor(crops)) > 0
            after = classifier(to_tensor(edited)) > 0
            distance = (
                identity.descriptors(to_tensor(edited)) - identity.descriptors(to_tensor(crops))
            ).norm(dim=1)
        success_before += (before.long() == target).tolist()
        success_after += (after.long() == target).tolist()
        distances += distance.tolist()
        if manifest.kind == "local":
            # The network's own output, before compositing: the app's paste-back leaves pixels outside the
            # mask bit-identical anyway, so this measures whether E itself leaves the rest of the face alone.
            outside = masks == 0
            for i in range(len(chunk)):
                error = (enhanced[i].astype(float) - crops[i])[outside[i]]
                mse = float((error**2).mean()) if error.size else 0.0
                psnrs.append(99.0 if mse == 0 else 10 * np.log10(255.0**2 / mse))
        for i in range(len(chunk)):
            inside = masks[i] > 0.5
            if inside.any():
                sharpness.append(_detail(edited[i], inside) / max(_detail(crops[i], inside), 1e-6))
        if len(grid[0]) < GRID_FACES:
            take = GRID_FACES - len(grid[0])
            composite_t = np.clip(np.rint(crops * (1 - weight) + transformed * weight), 0, 255).astype(
                np.uint8
            )
            grid[0] += list(crops[:take])
            grid[1] += list(composite_t[:take])
            grid[2] += list(edited[:take])
    distances_array = np.array(distances)
    metrics: dict[str, Any] = {
        f"{split}_faces": len(rows),
        "attribute_success_rate": round(float(np.mean(success_after)), 4),
        "attribute_rate_before_edit": round(float(np.mean(success_before)), 4),
        "identity_kept_rate": round(float((distances_array < SAME_PERSON_DISTANCE).mean()), 4),
        "identity_mean_distance": round(float(distances_array.mean()), 4),
        "classifier": str(Path(classifier_run).name),
        "classifier_heldout_balanced_accuracy": _classifier_accuracy(Path(classifier_run)),
        "providers": list(model.providers.active),
    }
    if psnrs:
        metrics["psnr_outside_mask_db"] = round(float(np.mean(psnrs)), 2)
    if sharpness:
        metrics["sharpness_ratio"] = round(float(np.median(sharpness)), 3)
    metrics["seconds"] = round(time.perf_counter() - started, 2)
    stem = "evaluation" if split == "heldout" else f"evaluation-{split}"
    save_grid([np.stack(column) for column in grid], model_dir / f"{stem}.png")
    report = {"model": manifest.name, "data": str(data), "split": split, "metrics": metrics}
    (model_dir / f"{stem}.json").write_text(json.dumps(report, indent=2) + "\n")
    if update_manifest:
        updated = ModelManifest(**{**manifest.__dict__, "metrics": {**manifest.metrics, **metrics}})
        updated.save(model_dir)
    return report


def _dev_fraction(manifest: ModelManifest) -> float:
    """The developers' split the model's transform run left out (from the manifest's training summary)."""
    dataset = manifest.training.get("dataset") or {}
    fraction = float(dataset.get("dev_fraction") or 0.0)
    if fraction <= 0:
        raise ValueError(
            f"{manifest.name} was trained on every training face: it has no developers' split "
            "(train with --dev-fraction to set one aside)"
        )
    return fraction


def _detail(image: np.ndarray, inside: np.ndarray) -> float:
    """Variance of the Laplacian of the grey image over the pixels in `inside`."""
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)
    return float(cv2.Laplacian(grey, cv2.CV_32F)[inside].var())


def _classifier_accuracy(run: Path) -> float | None:
    from trainer.runs import JsonlLog

    records = [r["heldout"] for r in JsonlLog(run / "log.jsonl").read() if "heldout" in r]
    return records[-1].get("heldout_balanced_accuracy") if records else None
