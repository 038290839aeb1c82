"""A manifest's `transform_passes`: the app runs the transform on its own output, each earlier pass
composited through the face's mask, and pastes the last pass back — nothing outside the mask changes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from diat_studio.core.alignment import align_face
from diat_studio.core.colour import is_grey, to_grey_like
from diat_studio.core.faces import Face
from diat_studio.core.inference import AttributeModel, Device, load_attribute_model
from diat_studio.core.manifest import MANIFEST_FILE
from diat_studio.core.pipeline import DEFAULT_FEATHER, edit_crops, edit_photo
from diat_studio.core.regions import RegionKind, inter_ocular_distance, region_polygon
from diat_studio.core.registry import ModelRegistry
from tests.onnx_fixtures import model_folder


def _model(root: Path, name: str, kind: str, passes: int) -> AttributeModel:
    region = RegionKind.MOUTH if kind == "local" else RegionKind.FACE
    folder = model_folder(root, name, kind, region, with_enhancer=False)
    if passes != 1:
        manifest = json.loads((folder / MANIFEST_FILE).read_text())
        (folder / MANIFEST_FILE).write_text(json.dumps({**manifest, "transform_passes": passes}))
    return load_attribute_model(ModelRegistry([root]).get(name), Device.CPU)


def _crop_and_mask(astronaut: np.ndarray, face: Face, model: AttributeModel) -> tuple[np.ndarray, np.ndarray]:
    aligned = align_face(astronaut, face.landmarks, model.manifest.template)
    n = model.manifest.crop_size
    polygon = region_polygon(model.manifest.region, face.landmarks).transformed(aligned.matrix)
    width = DEFAULT_FEATHER * inter_ocular_distance(face.landmarks) * aligned.scale
    return aligned.crop[None], polygon.rasterise(n, n, width).full(n, n)[None]


@pytest.fixture
def mouth_models(tmp_path: Path) -> tuple[AttributeModel, AttributeModel]:
    """The same reddening mouth model, with one pass and with two."""
    return _model(tmp_path, "once", "local", 1), _model(tmp_path, "twice", "local", 2)


def test_a_second_pass_edits_the_composited_first_pass(astronaut, astronaut_face, mouth_models) -> None:
    once, twice = mouth_models
    crops, masks = _crop_and_mask(astronaut, astronaut_face, once)
    first = edit_crops(once, crops, masks)[1]
    m = masks[..., None]
    composited = np.clip(np.rint(crops * (1.0 - m) + first.astype(np.float32) * m), 0, 255).astype(np.uint8)
    expected_transformed, expected = edit_crops(once, composited, masks)
    transformed, output = edit_crops(twice, crops, masks)
    assert np.array_equal(output, expected) and np.array_equal(transformed, expected_transformed)
    assert not np.array_equal(output, first)
    with pytest.raises(ValueError, match="needs the region masks"):
        edit_crops(twice, crops, None)
    # a grey face stays grey through both passes; without the grey rule (the evaluation's networks-alone
    # check) the reddening shows
    grey = to_grey_like(crops)
    assert is_grey(edit_crops(twice, grey, masks)[1][0])
    assert not is_grey(edit_crops(twice, grey, masks, grey_rule=False)[1][0])


def test_the_photo_is_edited_further_inside_the_mask_and_not_at_all_outside(
    astronaut, astronaut_face, mouth_models
) -> None:
    before = astronaut.copy()
    once, twice = (edit_photo(astronaut, [astronaut_face], model) for model in mouth_models)
    assert np.array_equal(astronaut, before)
    mouth = region_polygon(RegionKind.MOUTH, astronaut_face.landmarks)
    inside = mouth.rasterise(512, 512, 1).full(512, 512)
    assert not np.any(twice.pixels != astronaut, axis=2)[inside == 0].any()
    core = inside == 1.0

    def redness(pixels: np.ndarray) -> float:
        return float((pixels[core][:, 0].astype(int) - pixels[core][:, 1]).mean())

    assert redness(twice.pixels) > redness(once.pixels) + 10 > redness(astronaut) + 20  # the fixture reddens
    assert twice.polygons == once.polygons == [mouth]


def test_a_global_model_runs_on_its_own_whole_output(
    astronaut: np.ndarray, astronaut_face: Face, tmp_path: Path
) -> None:
    once = _model(tmp_path, "once-face", "global", 1)
    thrice = _model(tmp_path, "thrice-face", "global", 3)
    crops, _ = _crop_and_mask(astronaut, astronaut_face, once)
    expected = crops
    for _ in range(3):
        expected = edit_crops(once, expected)[1]
    assert np.array_equal(edit_crops(thrice, crops)[1], expected)
