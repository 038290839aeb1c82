"""Size and per-face latency of the shipped attribute models (transform + enhancement network).

    .venv/bin/python bench/bench_models.py [--models resources/models] [--batch 16] [--repeat 5]

For every available model in the folder: the ONNX files' total size, and the time of transform +
enhancer (every transform pass the manifest asks for, and the grey rule: `pipeline.edit_crops`) through
the app's own sessions (ONNX Runtime, the device the app would pick) on the aligned
astronaut face, for one face and for a batch (per face = batch time / batch size). Median of --repeat
runs after one warm-up. Targets from the bundled-models issue: ≤ 20 MB and ≤ 60 ms per face.
Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import sys
from functools import partial
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.timing import median_ms
from diat_studio.core.alignment import align_face
from diat_studio.core.faces import FaceDetector
from diat_studio.core.image_io import load_photo
from diat_studio.core.inference import AttributeModel, Device, load_attribute_model
from diat_studio.core.paths import bundled_models_dir, resource_path
from diat_studio.core.pipeline import edit_crops
from diat_studio.core.regions import RegionKind, region_polygon
from diat_studio.core.registry import ModelRegistry

SIZE_TARGET_MB = 20.0
LATENCY_TARGET_MS = 60.0


def edit_batch(model: AttributeModel, crops: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """The app's crop-level edit: every transform pass, the enhancer and the grey rule."""
    return edit_crops(model, crops, masks)[1]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", type=Path, default=bundled_models_dir())
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--device", choices=[d.value for d in Device], default=Device.AUTO.value)
    options = parser.parse_args()

    photo = load_photo(resource_path("sample", "astronaut.jpg")).pixels
    face = FaceDetector().detect(photo)[0]
    rows = []
    for entry in ModelRegistry([options.models]).available():
        manifest = entry.manifest
        assert manifest is not None
        model = load_attribute_model(entry, Device(options.device))
        aligned = align_face(photo, face.landmarks, manifest.template)
        region = manifest.region if manifest.kind == "local" else RegionKind.FACE
        polygon = region_polygon(region, aligned.to_crop(face.landmarks))
        mask = polygon.rasterise(manifest.crop_size, manifest.crop_size, feather=0.15).full(
            manifest.crop_size, manifest.crop_size
        )
        one_crop, one_mask = aligned.crop[None], mask.astype(np.float32)[None]
        crops = np.repeat(one_crop, options.batch, axis=0)
        masks = np.repeat(one_mask, options.batch, axis=0)
        size_mb = entry.onnx_bytes() / 1e6
        single = median_ms(partial(edit_batch, model, one_crop, one_mask), options.repeat)
        batched = median_ms(partial(edit_batch, model, crops, masks), options.repeat) / options.batch
        rows.append(
            f"| {manifest.name} | {manifest.kind} | {size_mb:.2f} | {single:.1f} | {batched:.1f} "
            f"| {'yes' if size_mb <= SIZE_TARGET_MB and batched <= LATENCY_TARGET_MS else 'NO'} |"
        )
        print(f"{manifest.name}: providers {', '.join(model.providers.active)}", file=sys.stderr)
    print(f"Models in {options.models}; batch {options.batch}, median of {options.repeat}.\n")
    print("| model | kind | ONNX MB | T+E ms, 1 face | T+E ms per face, batch | within 20 MB / 60 ms |")
    print("|---|---|---:|---:|---:|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
