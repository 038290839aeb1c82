from __future__ import annotations

import cv2
import numpy as np
import pytest

from diat_studio.core.alignment import (
    CANONICAL_SHAPE,
    CanonicalTemplate,
    align_face,
    estimate_similarity,
    paste_back,
)
from diat_studio.core.faces import Face, FaceDetector
from diat_studio.core.regions import RegionKind, region_polygon


def test_canonical_shape_is_a_symmetric_face() -> None:
    assert CANONICAL_SHAPE.shape == (68, 2)
    left_eye, right_eye = CANONICAL_SHAPE[36:42].mean(0), CANONICAL_SHAPE[42:48].mean(0)
    assert np.allclose(left_eye, (-0.5, 0.0), atol=1e-3) and np.allclose(right_eye, (0.5, 0.0), atol=1e-3)
    assert (
        CANONICAL_SHAPE[8, 1] > CANONICAL_SHAPE[57, 1] > CANONICAL_SHAPE[33, 1] > 0 > CANONICAL_SHAPE[19, 1]
    )


def test_template_leaves_room_for_hair_and_chin() -> None:
    points = CanonicalTemplate(size=128).points()
    assert points[19, 1] > 0.25 * 128  # brows well below the top: forehead and hair fit
    assert points[8, 1] < 0.9 * 128  # chin above the bottom edge
    assert 0.15 * 128 < points[0, 0] < points[16, 0] < 0.85 * 128


def test_similarity_estimate_recovers_a_known_transform() -> None:
    rng = np.random.default_rng(1)
    source = rng.uniform(0, 100, (30, 2))
    angle, scale, shift = 0.3, 1.7, np.array([12.0, -5.0])
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    target = source @ (scale * rotation).T + shift
    matrix = estimate_similarity(source, target)
    assert np.allclose(matrix[:, :2], scale * rotation) and np.allclose(matrix[:, 2], shift)


@pytest.mark.parametrize("size", [64, 128, 256])
def test_alignment_round_trip_within_a_pixel(
    astronaut: np.ndarray, astronaut_face: Face, detector: FaceDetector, size: int
) -> None:
    template = CanonicalTemplate(size=size)
    aligned = align_face(astronaut, astronaut_face.landmarks, template)
    assert aligned.crop.shape == (size, size, 3) and aligned.crop.dtype == np.uint8
    in_crop = aligned.to_crop(astronaut_face.landmarks)
    assert np.abs(aligned.to_image(in_crop) - astronaut_face.landmarks).max() < 1e-6
    # the face really sits on the template: inner landmarks within a few % of the crop
    error = np.linalg.norm(in_crop[17:] - template.points()[17:], axis=1).mean()
    assert error < 0.03 * size
    # and landmarks found again in the crop map back to where they were in the photo
    big_crop = align_face(astronaut, astronaut_face.landmarks, CanonicalTemplate(size=256))
    found = detector.landmarks(big_crop.crop, _box_around(big_crop.to_crop(astronaut_face.landmarks)))
    back = big_crop.to_image(found)
    assert np.median(np.linalg.norm(back - astronaut_face.landmarks, axis=1)) < 1.0


def _box_around(points: np.ndarray):
    from diat_studio.core.faces import Box

    x0, y0 = points.min(0)
    x1, y1 = points.max(0)
    return Box(x0, y0, x1, y1)


def test_large_photo_gives_the_same_crop(astronaut: np.ndarray, astronaut_face: Face) -> None:
    template = CanonicalTemplate()
    small = align_face(astronaut, astronaut_face.landmarks, template).crop
    big = cv2.resize(astronaut, (2048, 2048), interpolation=cv2.INTER_CUBIC)
    large = align_face(big, astronaut_face.landmarks * 4 + 1.5, template).crop
    assert np.abs(small.astype(int) - large).mean() < 4.0


def test_paste_back_changes_nothing_outside_the_feathered_region(
    astronaut: np.ndarray, astronaut_face: Face
) -> None:
    template = CanonicalTemplate()
    aligned = align_face(astronaut, astronaut_face.landmarks, template)
    edited = 255 - aligned.crop  # a drastic edit everywhere in the crop
    polygon = region_polygon(RegionKind.MOUTH, astronaut_face.landmarks)
    mask = polygon.rasterise(*astronaut.shape[:2], feather=6.0)
    out = paste_back(astronaut, aligned, edited, mask)
    support = mask.full(*astronaut.shape[:2]) > 0
    assert np.array_equal(out[~support], astronaut[~support])
    # inside the mask's fully opaque core the edit is there
    core = mask.full(*astronaut.shape[:2]) >= 0.999
    assert core.sum() > 500
    assert np.abs(out[core].astype(int) - astronaut[core]).mean() > 60
    assert astronaut.flags.writeable and not np.shares_memory(out, astronaut)


def test_paste_back_of_the_unedited_crop_is_nearly_invisible(
    astronaut: np.ndarray, astronaut_face: Face
) -> None:
    aligned = align_face(astronaut, astronaut_face.landmarks, CanonicalTemplate(size=256))
    mask = region_polygon(RegionKind.FACE, astronaut_face.landmarks).rasterise(512, 512, feather=8)
    out = paste_back(astronaut, aligned, aligned.crop, mask)
    inside = mask.full(512, 512) > 0
    assert np.abs(out[inside].astype(int) - astronaut[inside]).mean() < 4.0


def test_template_serialises() -> None:
    template = CanonicalTemplate(size=96, eye_distance=0.3)
    assert CanonicalTemplate.from_dict(template.to_dict()) == template
    with pytest.raises(ValueError):
        CanonicalTemplate(size=8)
