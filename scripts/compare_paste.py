"""Old vs current paste-back of an installed model on its card's grid photos (docs/ABLATION.md, "Outside the
mask"): how much the photo changes in the band along the mask's edge between the compositing module of
an earlier commit and the current one.

    .venv/bin/python scripts/compare_paste.py resources/models/close-mouth --commit a202eb7 \\
        --photos ../shared/data/celeba-wild --out build/paste-compare

Prints one line per photo and the mean; writes old | new pairs into --out when given.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

from diat_studio.core import pipeline
from diat_studio.core.faces import FaceDetector
from diat_studio.core.image_io import load_photo
from diat_studio.core.inference import Device, load_attribute_model
from diat_studio.core.pipeline import DEFAULT_FEATHER
from diat_studio.core.regions import inter_ocular_distance
from diat_studio.core.registry import ModelRegistry


def module_at(commit: str, path: str, name: str):
    """`path` as it was at `commit`, imported as module `name`."""
    source = subprocess.run(["git", "show", f"{commit}:{path}"], check=True, capture_output=True).stdout
    folder = Path(tempfile.mkdtemp())
    (folder / f"{name}.py").write_bytes(source)
    spec = importlib.util.spec_from_file_location(name, folder / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("model", type=Path, help="an installed model folder with evaluation.json")
    parser.add_argument("--commit", required=True, help="the commit whose compositing.py is the 'old' paste")
    parser.add_argument("--photos", type=Path, required=True, help="the folder the grid's photo names are in")
    parser.add_argument("--out", type=Path)
    options = parser.parse_args()

    old = module_at(options.commit, "diat_studio/core/compositing.py", "old_compositing")
    folder = options.model.resolve()
    entry = next(e for e in ModelRegistry([folder.parent]).entries if e.directory == folder)
    model = load_attribute_model(entry, Device.CPU)
    names = json.loads((folder / "evaluation.json").read_text())["grids"]["photos"]
    detector = FaceDetector()
    current = pipeline.paste_edit
    means = []
    for index, name in enumerate(names):
        pixels = load_photo(options.photos / name).pixels
        faces = detector.detect(pixels)
        if not faces:
            continue
        pipeline.paste_edit = old.paste_edit
        before = pipeline.edit_photo(pixels, faces, model)
        pipeline.paste_edit = current
        after = pipeline.edit_photo(pixels, faces, model)
        height, width = pixels.shape[:2]
        band = np.zeros((height, width), bool)
        for polygon, face in zip(after.polygons, faces, strict=True):
            mask = polygon.rasterise(height, width, DEFAULT_FEATHER * inter_ocular_distance(face.landmarks))
            alpha = mask.full(height, width)
            band |= (alpha > 0) & (alpha < 1)
        difference = np.abs(before.pixels.astype(int) - after.pixels.astype(int)).max(axis=2)
        mean = float(difference[band].mean()) if band.any() else 0.0
        means.append(mean)
        print(f"{name}: max {int(difference.max())}, mean in the edge band {mean:.2f}")
        if options.out:
            options.out.mkdir(parents=True, exist_ok=True)
            pair = cv2.cvtColor(np.hstack([before.pixels, after.pixels]), cv2.COLOR_RGB2BGR)
            cv2.imwrite(str(options.out / f"{index:02d}.png"), pair)
    print(f"{len(means)} photos: mean change in the edge band {np.mean(means):.2f}")


if __name__ == "__main__":
    main()
