"""Could a classical remover of eyeglass frames teach the remove-eyeglasses editor? (docs/ABLATION.md,
"A teacher that knows what a frame is").

A real frame is a thin line darker than the skin around it: the black top-hat of the grey crop (its
closing by a disc of 0.34 inter-ocular distances, minus the crop) finds such lines, and the closing,
opened again, is the skin with the line taken out. The eyes (landmark hulls grown 1.3×) and brows
(thickened polylines) are protected. This script applies that remover to the held-out glasses faces
inside the eye region (margin 0.45, as the recipe trains) — optionally only inside a "frame zone" of
lens ellipses, bridge and temple arms — and prints how often the independent evaluator then calls them
glasses-free, beside the blur control, and what it does to the faces without glasses. An editor taught
by it could not do better than it does.

    .venv/bin/python scripts/frame_teacher_oracle.py runs/00023-evaluator-Eyeglasses-classifier
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np
import torch

from diat_studio.core.pipeline import DEFAULT_FEATHER
from diat_studio.core.regions import RegionKind
from trainer.data import PreparedDataset, region_masks
from trainer.measures import blur_inside, composite, mean_delta_e_faces, target_rate
from trainer.stages import load_trained


def _eye_distance(marks: np.ndarray) -> float:
    return float(np.hypot(*(marks[42:48].mean(0) - marks[36:42].mean(0))))


def protected(marks: np.ndarray, size: int) -> np.ndarray:
    out = np.zeros((size, size), np.uint8)
    for eye in (marks[36:42], marks[42:48]):
        centre = eye.mean(0)
        cv2.fillPoly(out, [np.round(centre + (eye - centre) * 1.3).astype(np.int32)], 1)
    for brow in (marks[17:22], marks[22:27]):
        thickness = max(1, round(0.12 * _eye_distance(marks)))
        cv2.polylines(out, [np.round(brow).astype(np.int32)], False, 1, thickness=thickness)
    return out


def frame_zone(marks: np.ndarray, size: int) -> np.ndarray:
    """Lens ellipses (0.55 × 0.42 inter-ocular distances, 0.06 below the eyes), bridge and temple arms."""
    left, right = marks[36:42].mean(0), marks[42:48].mean(0)
    axis = right - left
    distance = float(np.hypot(*axis))
    down = np.array([-axis[1], axis[0]]) / distance
    zone = np.zeros((size, size), np.uint8)
    angle = float(np.degrees(np.arctan2(axis[1], axis[0])))
    for centre in (left + 0.06 * distance * down, right + 0.06 * distance * down):
        axes = (round(0.55 * distance), round(0.42 * distance))
        cv2.ellipse(zone, (round(centre[0]), round(centre[1])), axes, angle, 0, 360, 1, -1)
    for start, end in ((left, marks[0]), (right, marks[16]), (left, right)):
        point = start + np.dot(end - start, axis / distance) * axis / distance
        cv2.polylines(zone, [np.round([start, point]).astype(np.int32)], False, 1, round(0.24 * distance))
    return zone


def remove_frames(
    crop: np.ndarray, marks: np.ndarray, region: np.ndarray, darker_by: float, zone: bool
) -> np.ndarray:
    size = crop.shape[0]
    disc_size = max(3, round(0.34 * _eye_distance(marks)) | 1)
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (disc_size, disc_size))
    grey = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY).astype(np.float32)
    blackhat = cv2.morphologyEx(grey, cv2.MORPH_CLOSE, disc) - grey
    keep_out = protected(marks, size)
    lines = (blackhat > darker_by) & (region > 0.5) & (keep_out == 0)
    if zone:
        lines &= frame_zone(marks, size) == 1
    lines = cv2.dilate(lines.astype(np.uint8), np.ones((3, 3), np.uint8))
    fill = cv2.morphologyEx(cv2.morphologyEx(crop, cv2.MORPH_CLOSE, disc), cv2.MORPH_OPEN, disc)
    fill = cv2.GaussianBlur(fill, (0, 0), 1.0)
    weight = np.maximum(cv2.GaussianBlur(lines.astype(np.float32), (0, 0), 0.7), lines)
    weight = (weight * (1 - keep_out) * (region > 0))[..., None]
    out = crop.astype(np.float32) * (1 - weight) + fill.astype(np.float32) * weight
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("evaluator", type=Path, help="the Eyeglasses evaluator run (never the guide)")
    parser.add_argument("--data", type=Path, default=Path("data/wild"))
    parser.add_argument("--margin", type=float, default=0.45)
    parser.add_argument("--darker-by", default="8,12,20", help="comma-separated grey levels")
    parser.add_argument("--threads", type=int, default=1)
    options = parser.parse_args()
    torch.set_num_threads(options.threads)
    dataset = PreparedDataset.open(options.data)
    evaluator = load_trained(options.evaluator, "classifier", "classifier_width").eval()
    sets = {}
    for value in (1, 0):
        rows = dataset.indices("heldout", "Eyeglasses", value)[:200]
        marks = np.asarray(dataset.landmarks[rows], np.float64)
        masks = region_masks(marks, RegionKind.EYES, dataset.size, DEFAULT_FEATHER, options.margin)[:, 0]
        sets[value] = (np.asarray(dataset.crops[rows]), marks, masks)
    crops, _, masks = sets[1]
    print(json.dumps({
        "glasses_faces": len(crops), "input": target_rate(evaluator, crops, 0),
        "blur_control": target_rate(evaluator, blur_inside(crops, masks), 0),
    }), flush=True)  # fmt: skip
    for zone in (False, True):
        for darker_by in (float(d) for d in options.darker_by.split(",")):
            row: dict[str, object] = {"frame_zone": zone, "darker_by": darker_by}
            for value, name in ((1, "glasses"), (0, "no_glasses")):
                crops, marks, masks = sets[value]
                faces = zip(crops, marks, masks, strict=True)
                removed = np.stack([remove_frames(c, m, r, darker_by, zone) for c, m, r in faces])
                edited = composite(crops, removed, masks)
                row[f"{name}_glasses_free"] = target_rate(evaluator, edited, 0)
                row[f"{name}_delta_e"] = round(mean_delta_e_faces(crops, edited, masks), 2)
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
