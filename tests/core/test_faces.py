from __future__ import annotations

import numpy as np
import pytest

from diat_studio.core.faces import Box, Face, FaceDetector
from diat_studio.core.image_io import load_photo
from tests.conftest import shared_data


def test_astronaut_has_one_face_with_sensible_landmarks(astronaut_face: Face) -> None:
    face = astronaut_face
    box = face.box
    assert 150 < box.left < box.right < 300 and 50 < box.top < box.bottom < 200
    marks = face.landmarks
    assert marks.shape == (68, 2)
    eyes_y = marks[36:48, 1].mean()
    nose_tip_y = marks[30, 1]
    mouth_y = marks[48:68, 1].mean()
    chin_y = marks[8, 1]
    brows_y = marks[17:27, 1].mean()
    assert brows_y < eyes_y < nose_tip_y < mouth_y < chin_y
    # image-left eye is left of the image-right eye, the nose between them
    assert marks[36:42, 0].mean() < marks[27:36, 0].mean() < marks[42:48, 0].mean()
    inner = marks[17:68]  # everything but the jaw lies inside the detector's box
    assert np.all((inner[:, 0] >= box.left) & (inner[:, 0] <= box.right))
    assert np.all((inner[:, 1] >= box.top) & (inner[:, 1] <= box.bottom))


def test_detection_in_a_large_photo_is_done_downscaled_but_reported_full_size(
    astronaut: np.ndarray, astronaut_face: Face, detector: FaceDetector
) -> None:
    import cv2

    big = cv2.resize(astronaut, (2048, 2048), interpolation=cv2.INTER_CUBIC)
    faces = detector.detect(big)
    assert len(faces) == 1
    # same face, four times the coordinates (within a few px of the 512 px result)
    assert np.abs(faces[0].landmarks / 4.0 - astronaut_face.landmarks).mean() < 3.0


def test_two_faces_are_found_largest_first(astronaut: np.ndarray, detector: FaceDetector) -> None:
    import cv2

    small = cv2.resize(astronaut, (384, 384), interpolation=cv2.INTER_AREA)
    canvas = np.full((512, 1024, 3), 200, np.uint8)
    canvas[:, :512] = astronaut
    canvas[64:448, 600:984] = small
    faces = detector.detect(canvas)
    assert len(faces) == 2
    assert faces[0].box.area > faces[1].box.area
    assert faces[0].box.center[0] < 512 < faces[1].box.center[0]


@pytest.mark.parametrize("vertical", [False, True], ids=["20000x200", "200x20000"])
def test_faces_in_a_long_strip_are_found(
    astronaut: np.ndarray, detector: FaceDetector, vertical: bool
) -> None:
    """Downscaled whole, a 20000×200 strip is 1000×10 px and its faces vanish: it is searched in tiles."""
    import cv2

    face = cv2.resize(astronaut[0:300, 100:400], (200, 200), interpolation=cv2.INTER_AREA)
    alone = detector.detect(face)
    assert len(alone) == 1
    strip = np.full((20000, 200, 3) if vertical else (200, 20000, 3), 128, np.uint8)
    at = (13000, 850)  # the second lies where two tiles overlap: found twice, reported once
    for x in at:
        if vertical:
            strip[x : x + 200, :] = face
        else:
            strip[:, x : x + 200] = face
    faces = detector.detect(strip)
    assert len(faces) == 2
    axis = 1 if vertical else 0
    for found, x in zip(sorted(faces, key=lambda f: f.box.center[axis], reverse=True), at, strict=True):
        offset = np.array([0, x]) if vertical else np.array([x, 0])
        assert np.abs(found.landmarks - offset - alone[0].landmarks).mean() < 2.0


def test_no_face_in_a_flat_image(detector: FaceDetector) -> None:
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 255, (300, 400, 3), dtype=np.uint8)
    assert detector.detect(noise) == []


def test_small_face_is_found_by_the_upsampled_pass(astronaut: np.ndarray, detector: FaceDetector) -> None:
    import cv2

    tiny = cv2.resize(astronaut, (256, 256), interpolation=cv2.INTER_AREA)  # face ≈ 45 px wide
    faces = detector.detect(tiny)
    assert len(faces) >= 1
    assert 60 < faces[0].box.center[0] < 80 * 2


def test_landmarks_for_a_known_box(
    astronaut: np.ndarray, astronaut_face: Face, detector: FaceDetector
) -> None:
    marks = detector.landmarks(astronaut, astronaut_face.box)
    assert np.allclose(marks, astronaut_face.landmarks)


def test_cnn_detector_finds_the_astronaut(astronaut: np.ndarray) -> None:
    faces = FaceDetector("cnn", max_side=400).detect(astronaut)
    assert len(faces) == 1 and faces[0].detector == "cnn"
    assert faces[0].box.contains(*faces[0].landmarks[30])


def test_bad_input_is_rejected(detector: FaceDetector) -> None:
    with pytest.raises(ValueError, match="RGB"):
        detector.detect(np.zeros((10, 10), np.uint8))
    with pytest.raises(ValueError, match="unknown detector"):
        FaceDetector("magic")  # type: ignore[arg-type]


def test_box_geometry() -> None:
    box = Box(10, 20, 50, 100)
    assert (box.width, box.height, box.area, box.center) == (40, 80, 3200, (30, 60))
    assert box.clipped(30, 30) == Box(10, 20, 30, 30)


@pytest.mark.shared_data
def test_faces_found_in_95_percent_of_200_real_photos(detector: FaceDetector) -> None:
    folder = shared_data("celeba-wild", "images")
    photos = sorted(folder.iterdir())[:200]
    assert len(photos) == 200
    found = sum(1 for path in photos if detector.detect(load_photo(path).pixels))
    assert found / len(photos) >= 0.95, f"faces found in {found} of {len(photos)} photos"
