"""Hands and objects drawn over the mouth (trainer.occluders), the measure of what an editor does to them
(trainer.measures.occluder_change) and `evaluate`'s report of it."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from diat_studio.core.alignment import CanonicalTemplate, align_face
from trainer.measures import occluder_change
from trainer.occluders import (
    MAX_COVERAGE,
    MIN_COVERAGE,
    OccluderStyle,
    draw_occluder,
    mouth_coverage,
    occlude_batch,
    skin_colour,
)


@pytest.fixture(scope="module")
def crop_and_marks(astronaut, astronaut_face) -> tuple[np.ndarray, np.ndarray]:
    """The astronaut's 128 px crop and its 68 landmarks in the crop."""
    aligned = align_face(astronaut, astronaut_face.landmarks, CanonicalTemplate(size=128))
    return aligned.crop, aligned.to_crop(astronaut_face.landmarks)


def test_occluders_cover_part_of_the_mouth_and_change_nothing_else(crop_and_marks) -> None:
    """Twenty drawings on a real face: each covers between 30% and 90% of the lips, leaves every pixel
    outside its mask bit-identical, is centred within a mouth's width of the mouth, and comes back the
    same for the same seed; the input is not modified."""
    crop, marks = crop_and_marks
    original = crop.copy()
    faces, masks = np.repeat(crop[None], 20, 0), np.repeat(marks[None], 20, 0)
    drawn, covered = occlude_batch(faces, masks, np.random.default_rng(3))
    assert np.array_equal(crop, original)
    coverages = [mouth_coverage(covered[i], marks) for i in range(20)]
    assert sum(MIN_COVERAGE <= c <= MAX_COVERAGE for c in coverages) >= 18
    assert ((covered > 0) | (drawn == crop).all(-1)).all()  # outside the occluder: untouched
    mouth_width = np.linalg.norm(marks[54] - marks[48])
    for mask in covered:  # held over the mouth, not somewhere on the face
        ys, xs = np.nonzero(mask > 0.5)
        assert np.hypot(xs.mean() - marks[48:60, 0].mean(), ys.mean() - marks[48:60, 1].mean()) < mouth_width
    changed = [np.abs(drawn[i].astype(int) - crop).max(-1)[covered[i] > 0.9].mean() for i in range(20)]
    assert min(changed) > 5  # something is drawn where the mask says
    again, _ = occlude_batch(faces, masks, np.random.default_rng(3))
    assert np.array_equal(drawn, again)


def test_fingers_take_the_faces_skin_and_objects_their_own_colour(crop_and_marks) -> None:
    crop, marks = crop_and_marks
    skin = skin_colour(crop, marks)
    cheek = crop[int(marks[3, 1]) - 4 : int(marks[3, 1]) + 4, int(marks[3, 0]) + 6 : int(marks[3, 0]) + 14]
    assert np.abs(skin - cheek.reshape(-1, 3).mean(0)).max() < 40  # the astronaut's cheek
    assert skin[0] > skin[2]  # skin is warm: more red than blue
    style = OccluderStyle(3, 0.3, 0.0, 0.0, 0.0, 1.0, None, 0.5)
    drawn, mask = draw_occluder(crop, marks, style)
    inside = drawn[mask > 0.99].astype(np.float32)
    assert np.abs(np.median(inside, 0) - skin).max() < 0.2 * skin.max()  # shaded, within 20%
    blue = replace(style, fingers=0, width=0.6, colour=(30, 40, 180))
    drawn, mask = draw_occluder(crop, marks, blue)
    inside = drawn[mask > 0.99].astype(np.float32)
    assert np.median(inside[:, 2]) > 2 * np.median(inside[:, 0])


def test_skin_colour_is_the_cheeks_median() -> None:
    face = np.full((64, 64, 3), (200, 150, 130), np.uint8)
    marks = np.tile([[32.0, 32.0]], (68, 1))
    marks[[2, 3]], marks[[13, 14]] = (10, 30), (54, 30)
    marks[[31, 48]], marks[[35, 54]] = (26, 36), (38, 36)
    assert skin_colour(face, marks).tolist() == [200.0, 150.0, 130.0]


def test_occluder_change_is_the_percentile_of_the_change_on_the_occluder() -> None:
    drawn = np.full((32, 32, 3), 120, np.uint8)
    occluder = np.zeros((32, 32), np.float32)
    occluder[8:24, 8:24] = 1.0  # 256 pixels
    assert occluder_change(drawn, drawn, occluder) == 0.0
    edited = drawn.copy()
    edited[10:14, 10:14, 0] = 160  # a 16-pixel mark (6% of the occluder), red +40
    edited[0:4, 0:4] = 0  # off the occluder: not counted
    assert occluder_change(drawn, edited, occluder) == pytest.approx(40.0)
    assert occluder_change(drawn, edited, occluder, q=50) == 0.0
    assert occluder_change(drawn, edited, np.zeros_like(occluder)) is None


def test_evaluate_reports_what_a_mouth_editor_does_to_a_hand_over_the_mouth(
    evaluator: Path, tmp_path: Path, dataset_dir: Path
) -> None:
    """A mouth model that repaints its region changes the occluders drawn over the mouth; one that leaves
    the face alone does not; the eye region has no such check; 0 faces turn it off."""
    from diat_studio.core.manifest import ModelManifest
    from diat_studio.core.regions import RegionKind
    from tests.onnx_fixtures import model_folder
    from trainer.evaluate import EvaluationSizes, evaluate_model

    sizes = EvaluationSizes(
        two_sample_steps=0, grey_faces=1, already_target=1, grid_faces=0, occluded_faces=6
    )
    keys = ("occluded_faces", "occluder_change_p99", "occluder_faces_over_16")

    def metrics(name: str, region: RegionKind, check: EvaluationSizes = sizes, **options) -> dict:
        folder = model_folder(
            tmp_path / name, name, "local", region, crop_size=64, with_enhancer=False, **options
        )
        replace(ModelManifest.load(folder), attribute="Eyeglasses", direction="add").save(folder)
        return evaluate_model(folder, dataset_dir, evaluator, update_manifest=False, sizes=check)["metrics"]

    painting = metrics("paint", RegionKind.MOUTH, gain=(0.2, 0.2, 0.2), bias=(0.4, 0.1, 0.1))
    leaving = metrics("leave", RegionKind.MOUTH, gain=(1.0, 1.0, 1.0), bias=(0.0, 0.0, 0.0))
    assert painting["occluded_faces"] == leaving["occluded_faces"] >= 2  # this set holds out few faces
    assert painting["occluder_change_p99"] > 30 and painting["occluder_faces_over_16"] == 1.0
    assert leaving["occluder_change_p99"] <= 1.0 and leaving["occluder_faces_over_16"] == 0.0
    assert not any(key in metrics("eyes", RegionKind.EYES) for key in keys)
    assert not any(key in metrics("off", RegionKind.MOUTH, replace(sizes, occluded_faces=0)) for key in keys)
