"""A manifest's `mirror_average`: every transform run edits the face as it is and mirrored, and averages
the two outputs (the mirrored one flipped back) — through `edit_crops`, its passes and `edit_photo`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from diat_studio.core.alignment import align_face
from diat_studio.core.inference import AttributeModel, Device, load_attribute_model
from diat_studio.core.manifest import MANIFEST_FILE
from diat_studio.core.pipeline import DEFAULT_FEATHER, edit_crops, edit_photo
from diat_studio.core.regions import RegionKind, inter_ocular_distance, region_polygon
from diat_studio.core.registry import ModelRegistry
from tests.onnx_fixtures import constant_transform, model_folder, replace_transform

SIZE = 128


def _asymmetric_face() -> np.ndarray:
    """A crop whose left half is dark red and right half light blue, with a ramp: far from its mirror."""
    ramp = np.linspace(0, 255, SIZE, dtype=np.float32)
    image = np.stack([255 - ramp, np.full(SIZE, 90.0), ramp], 1)[None].repeat(SIZE, 0)
    image[:, : SIZE // 2] *= 0.5
    return np.rint(image).astype(np.uint8)


def _model(root: Path, name: str, kind: str, *, mirror: bool, passes: int = 1) -> AttributeModel:
    region = RegionKind.EYES if kind == "local" else RegionKind.FACE
    folder = model_folder(root, name, kind, region, with_enhancer=False)
    replace_transform(folder, constant_transform, image=_asymmetric_face())
    manifest = json.loads((folder / MANIFEST_FILE).read_text())
    extra = {"mirror_average": mirror, "transform_passes": passes}
    (folder / MANIFEST_FILE).write_text(json.dumps({**manifest, **extra}))
    return load_attribute_model(ModelRegistry([root]).get(name), Device.CPU)


def _averaged(image: np.ndarray) -> np.ndarray:
    """What the network's two views average to, rounded as the app rounds its float output."""
    unit = image.astype(np.float32) / np.float32(127.5) - np.float32(1.0)  # the model's own value range
    mean = (unit + unit[:, ::-1]) * np.float32(0.5)
    return np.clip(np.rint((mean + 1.0) / 2.0 * 255.0), 0, 255).astype(np.uint8)


def test_each_run_averages_the_face_and_its_mirror_image(astronaut, astronaut_face, tmp_path: Path) -> None:
    plain = _model(tmp_path, "plain", "global", mirror=False)
    mirrored = _model(tmp_path, "mirrored", "global", mirror=True)
    crop = align_face(astronaut, astronaut_face.landmarks, plain.manifest.template).crop[None]
    crops = np.concatenate([crop, crop[:, :, ::-1]])  # two faces in one batch: each averaged on its own
    face = _asymmetric_face()
    assert np.array_equal(plain.transform(crops)[0], face)
    out = mirrored.transform(crops)
    expected = _averaged(face)
    assert np.abs(out.astype(int) - expected).max() <= 1 and np.abs(out[1].astype(int) - expected).max() <= 1
    assert np.abs(expected.astype(int) - face).max() > 100  # the face was far from its mirror image
    assert np.array_equal(out[:, :, ::-1], out)  # the average is symmetric, whatever the model does
    assert np.array_equal(edit_crops(mirrored, crops)[0], out)  # and it is what edit_crops runs


def test_a_mirrored_local_model_still_changes_nothing_outside_the_mask(
    astronaut, astronaut_face, tmp_path: Path
) -> None:
    model = _model(tmp_path, "eyes", "local", mirror=True, passes=2)
    aligned = align_face(astronaut, astronaut_face.landmarks, model.manifest.template)
    polygon = region_polygon(RegionKind.EYES, astronaut_face.landmarks).transformed(aligned.matrix)
    width = DEFAULT_FEATHER * inter_ocular_distance(astronaut_face.landmarks) * aligned.scale
    masks = polygon.rasterise(SIZE, SIZE, width).full(SIZE, SIZE)[None]
    transformed, _ = edit_crops(model, aligned.crop[None], masks)
    assert np.abs(transformed[0].astype(int) - _averaged(_asymmetric_face())).max() <= 1
    before = astronaut.copy()
    result = edit_photo(astronaut, [astronaut_face], model)
    assert np.array_equal(astronaut, before)
    eyes = region_polygon(RegionKind.EYES, astronaut_face.landmarks)
    inside = eyes.rasterise(512, 512, 1).full(512, 512)
    changed = np.any(result.pixels != astronaut, axis=2)
    assert changed[inside == 1.0].mean() > 0.9 and not changed[inside == 0].any()
