"""Core pipeline timings on this machine: detection, landmarks, alignment, inference, paste-back.

    .venv/bin/python bench/bench_core.py [--repeat 5]

Photos of 0.25, 2 and 12 MP are made from the astronaut test photo (the face keeps the same share of the
frame). Inference uses the test fixtures (a colour-transform T and the mask-blending local enhancer,
128 px, batch of one face): it measures the pipeline's overhead around a model, not a trained network.
Prints a Markdown table (median of --repeat runs, milliseconds).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.timing import median_ms
from diat_studio.core.alignment import align_face, paste_back
from diat_studio.core.faces import FaceDetector
from diat_studio.core.inference import Device, load_attribute_model
from diat_studio.core.regions import RegionKind, region_polygon
from diat_studio.core.registry import ModelRegistry
from tests import onnx_fixtures

SIZES = {"0.25 MP": (512, 512), "2 MP": (1632, 1224), "12 MP": (4000, 3000)}


def photo_of_size(width: int, height: int) -> np.ndarray:
    from skimage import data

    face = data.astronaut()
    side = min(width, height)
    scaled = cv2.resize(face, (side, side), interpolation=cv2.INTER_CUBIC if side > 512 else cv2.INTER_AREA)
    canvas = cv2.copyMakeBorder(
        scaled, 0, height - side, (width - side) // 2, width - side - (width - side) // 2, cv2.BORDER_REFLECT
    )
    return np.ascontiguousarray(canvas)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=5)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        onnx_fixtures.model_folder(Path(folder), "bench-local", "local", RegionKind.MOUTH)
        model = load_attribute_model(ModelRegistry([Path(folder)]).get("bench-local"), Device.CPU)
        detector = FaceDetector()
        template = model.manifest.template
        rows = []
        for label, (width, height) in SIZES.items():
            photo = photo_of_size(width, height)
            faces = detector.detect(photo)
            assert len(faces) == 1, f"{label}: expected one face, found {len(faces)}"
            face = faces[0]
            aligned = align_face(photo, face.landmarks, template)
            polygon = region_polygon(RegionKind.MOUTH, face.landmarks)
            crop_mask = polygon.transformed(aligned.matrix).rasterise(128, 128, 4).full(128, 128)[None]
            edited = model.transform(aligned.crop[None])
            enhanced = model.enhancer(edited, aligned.crop[None], crop_mask)[0]  # type: ignore[misc]

            def infer(crop: np.ndarray = aligned.crop, mask: np.ndarray = crop_mask) -> None:
                t = model.transform(crop[None])
                model.enhancer(t, crop[None], mask)  # type: ignore[misc]

            def paste(
                p: np.ndarray = photo, a=aligned, e: np.ndarray = enhanced, poly=polygon, f=face
            ) -> None:
                feather = 0.15 * np.hypot(*(f.landmarks[42:48].mean(0) - f.landmarks[36:42].mean(0)))
                paste_back(p, a, e, poly.rasterise(p.shape[0], p.shape[1], feather))

            rows.append(
                (
                    label,
                    f"{width}×{height}",
                    median_ms(lambda p=photo: detector.detect(p), options.repeat),
                    median_ms(lambda p=photo, f=face: detector.landmarks(p, f.box), options.repeat),
                    median_ms(lambda p=photo, f=face: align_face(p, f.landmarks, template), options.repeat),
                    median_ms(infer, options.repeat),
                    median_ms(paste, options.repeat),
                )
            )
    print(
        "| photo | pixels | detect + landmarks | landmarks only | align | inference (fixture) | paste-back |"
    )
    print("|---|---|---:|---:|---:|---:|---:|")
    for label, size, *times in rows:
        print(f"| {label} | {size} | " + " | ".join(f"{t:.1f} ms" for t in times) + " |")


if __name__ == "__main__":
    main()
