from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from diat_studio.core.colour import channel_spread, is_grey, to_grey_like
from diat_studio.core.faces import Face
from diat_studio.core.inference import AttributeModel, Device, load_attribute_model
from diat_studio.core.pipeline import EditCancelled, default_polygon, edit_crops, edit_photo, select_faces
from diat_studio.core.regions import Polygon, RegionKind, region_polygon
from diat_studio.core.registry import ModelRegistry
from tests.core.test_colour import scanned_grey


@pytest.fixture(scope="module")
def local_model(models_root: Path) -> AttributeModel:
    return load_attribute_model(ModelRegistry([models_root]).get("redden-mouth"), Device.CPU)


@pytest.fixture(scope="module")
def global_model(models_root: Path) -> AttributeModel:
    return load_attribute_model(ModelRegistry([models_root]).get("redden-face"), Device.CPU)


def changed(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.any(a != b, axis=2)


def test_local_edit_changes_only_the_mouth(astronaut: np.ndarray, astronaut_face: Face, local_model) -> None:
    before = astronaut.copy()
    result = edit_photo(astronaut, [astronaut_face], local_model)
    assert np.array_equal(astronaut, before)  # input untouched
    mouth = region_polygon(RegionKind.MOUTH, astronaut_face.landmarks)
    support = mouth.rasterise(512, 512, 1).full(512, 512) > 0
    diff = changed(result.pixels, astronaut)
    assert diff.sum() > 400
    assert not diff[~support].any()
    # the fixture reddens: inside the mouth, red went up relative to green
    inside = result.pixels[support].astype(int)
    original = astronaut[support].astype(int)
    assert (inside[:, 0] - inside[:, 1]).mean() > (original[:, 0] - original[:, 1]).mean() + 30
    assert set(result.timings) == {"align", "transform", "enhance", "paste"}
    assert result.polygons == [mouth]


def test_global_edit_changes_the_whole_face_only(
    astronaut: np.ndarray, astronaut_face: Face, global_model
) -> None:
    result = edit_photo(astronaut, [astronaut_face], global_model)
    face = region_polygon(RegionKind.FACE, astronaut_face.landmarks).rasterise(512, 512, 1).full(512, 512) > 0
    diff = changed(result.pixels, astronaut)
    assert diff[face].mean() > 0.8
    assert not diff[~face].any()


def test_strength_blends(astronaut: np.ndarray, astronaut_face: Face, global_model) -> None:
    none = edit_photo(astronaut, [astronaut_face], global_model, strength=0.0)
    assert np.array_equal(none.pixels, astronaut)
    full = edit_photo(astronaut, [astronaut_face], global_model, strength=1.0).pixels.astype(int)
    half = edit_photo(astronaut, [astronaut_face], global_model, strength=0.5).pixels.astype(int)
    face = (
        region_polygon(RegionKind.FACE, astronaut_face.landmarks).rasterise(512, 512, 30).full(512, 512) >= 1
    )
    # where the full edit did not saturate (the fixture reddens: red reaches 255 on bright skin)
    linear = face & np.all((full > 0) & (full < 255), axis=2)
    midpoint = (full[linear] + astronaut[linear]) / 2
    assert linear.sum() > 0.5 * face.sum()
    assert np.abs(half[linear] - midpoint).max() <= 1.0
    with pytest.raises(ValueError, match="strength"):
        edit_photo(astronaut, [astronaut_face], global_model, strength=1.5)


def test_an_edited_mask_is_the_one_used(astronaut: np.ndarray, astronaut_face: Face, local_model) -> None:
    x, y = astronaut_face.landmarks[30]  # nose tip: outside the default mouth mask
    custom = Polygon(((x - 15, y - 15), (x + 15, y - 15), (x + 15, y + 15), (x - 15, y + 15)))
    result = edit_photo(astronaut, [astronaut_face], local_model, polygons=[custom])
    diff = changed(result.pixels, astronaut)
    assert diff[int(y), int(x)]
    mouth_centre = astronaut_face.landmarks[62].astype(int)
    assert not diff[mouth_centre[1], mouth_centre[0]]
    assert not diff[: int(y) - 16].any() and not diff[int(y) + 16 :].any()


def test_every_face_is_edited_and_selection_works(astronaut: np.ndarray, detector, local_model) -> None:
    canvas = np.full((512, 1024, 3), 128, np.uint8)
    canvas[:, :512] = astronaut
    canvas[:, 512:] = astronaut[:, ::-1]
    faces = detector.detect(canvas)
    assert len(faces) == 2
    result = edit_photo(canvas, faces, local_model)
    diff = changed(result.pixels, canvas)
    assert diff[:, :512].sum() > 400 and diff[:, 512:].sum() > 400
    assert len(select_faces(faces, "largest")) == 1 and len(select_faces(faces, "all")) == 2


def test_cancel_between_steps(astronaut: np.ndarray, astronaut_face: Face, local_model) -> None:
    steps: list[str] = []
    with pytest.raises(EditCancelled):
        edit_photo(
            astronaut,
            [astronaut_face],
            local_model,
            progress=lambda name, _fraction: steps.append(name),
            is_cancelled=lambda: len(steps) >= 2,
        )
    assert steps == ["align", "transform"]


def test_default_polygon_follows_the_model_kind(astronaut_face: Face, local_model, global_model) -> None:
    assert default_polygon(local_model, astronaut_face) == region_polygon("mouth", astronaut_face.landmarks)
    assert default_polygon(global_model, astronaut_face) == region_polygon("face", astronaut_face.landmarks)


def test_no_faces_returns_a_copy(astronaut: np.ndarray, local_model) -> None:
    result = edit_photo(astronaut, [], local_model)
    assert np.array_equal(result.pixels, astronaut) and result.pixels is not astronaut


def test_a_grey_photo_stays_grey(
    astronaut: np.ndarray, astronaut_face: Face, local_model, global_model
) -> None:
    """The fixtures redden the face: on a black-and-white photo the output is made grey before paste-back."""
    grey = to_grey_like(astronaut)
    for model in (global_model, local_model):
        result = edit_photo(grey, [astronaut_face], model)
        assert channel_spread(result.pixels).max() == channel_spread(grey).max() == 0
        assert changed(result.pixels, grey).sum() > 400  # still edited (the luminance changed)
    # a black-and-white photo with chroma noise from scanning and JPEG: still grey, and no worse after
    noisy = scanned_grey(astronaut)
    assert is_grey(noisy) and channel_spread(noisy).max() > 0
    result = edit_photo(noisy, [astronaut_face], global_model)
    assert is_grey(result.pixels) and channel_spread(result.pixels).max() <= channel_spread(noisy).max()


def test_a_colour_photo_is_not_touched_by_the_grey_rule(
    astronaut: np.ndarray, astronaut_face: Face, global_model
) -> None:
    result = edit_photo(astronaut, [astronaut_face], global_model)
    original = result.crops["original"][0]
    raw = global_model.enhancer(global_model.transform(original[None]))[0]  # type: ignore[misc]
    assert np.array_equal(result.crops["enhanced"][0], raw) and not is_grey(raw)
    transformed, output = edit_crops(global_model, original[None])
    assert np.array_equal(output[0], raw) and np.array_equal(transformed[0], result.crops["transformed"][0])


def test_edit_crops_needs_masks_for_a_local_enhancer(astronaut: np.ndarray, local_model) -> None:
    with pytest.raises(ValueError, match="mask"):
        edit_crops(local_model, astronaut[None, :128, :128])
