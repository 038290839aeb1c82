from __future__ import annotations

import numpy as np
import pytest

from diat_studio.core.faces import Face
from diat_studio.core.regions import Polygon, RegionKind, inter_ocular_distance, region_polygon


def test_regions_cover_their_landmarks(astronaut_face: Face) -> None:
    import cv2

    marks = astronaut_face.landmarks
    for kind, indices in [
        (RegionKind.MOUTH, range(48, 68)),
        (RegionKind.EYES, range(36, 48)),
        (RegionKind.FACE, range(0, 68)),
    ]:
        polygon = region_polygon(kind, marks)
        contour = polygon.as_array().astype(np.float32)
        for index in indices:
            assert cv2.pointPolygonTest(contour, tuple(map(float, marks[index])), False) >= 0, (kind, index)


def test_mouth_region_excludes_the_eyes_and_eyes_region_the_mouth(astronaut_face: Face) -> None:
    import cv2

    marks = astronaut_face.landmarks
    mouth = region_polygon(RegionKind.MOUTH, marks).as_array().astype(np.float32)
    eyes = region_polygon(RegionKind.EYES, marks).as_array().astype(np.float32)
    for index in range(36, 48):
        assert cv2.pointPolygonTest(mouth, tuple(map(float, marks[index])), False) < 0
    for index in range(48, 68):
        assert cv2.pointPolygonTest(eyes, tuple(map(float, marks[index])), False) < 0


def test_face_region_reaches_the_forehead(astronaut_face: Face) -> None:
    marks = astronaut_face.landmarks
    polygon = region_polygon(RegionKind.FACE, marks)
    top = polygon.bounds()[1]
    assert top < marks[17:27, 1].min() - 0.4 * inter_ocular_distance(marks)


def test_polygon_editing_returns_new_polygons() -> None:
    square = Polygon(((0, 0), (10, 0), (10, 10), (0, 10)))
    moved = square.move_vertex(2, 20, 20)
    assert square.points[2] == (10, 10) and moved.points[2] == (20, 20)
    inserted = square.insert_vertex(0, 5, -3)
    assert inserted.points == ((0, 0), (5, -3), (10, 0), (10, 10), (0, 10))
    assert inserted.delete_vertex(1) == square
    triangle = square.delete_vertex(0)
    with pytest.raises(ValueError, match="at least 3"):
        triangle.delete_vertex(0)
    edge, distance = square.nearest_edge(5, 11)
    assert edge == 2 and distance == pytest.approx(1.0)


def test_reset_from_landmarks_gives_the_original_polygon(astronaut_face: Face) -> None:
    original = region_polygon(RegionKind.MOUTH, astronaut_face.landmarks)
    edited = original.move_vertex(0, 0, 0)
    assert edited != original
    assert region_polygon(RegionKind.MOUTH, astronaut_face.landmarks) == original


def test_feathered_mask_is_zero_outside_and_one_deep_inside() -> None:
    square = Polygon(((20, 20), (80, 20), (80, 80), (20, 80)))
    mask = square.rasterise(100, 120, feather=10)
    full = mask.full(100, 120)
    assert full.dtype == np.float32 and full.shape == (100, 120)
    assert full[:19].max() == 0 and full[:, :19].max() == 0 and full[82:].max() == 0
    assert full[40:60, 40:60].min() == pytest.approx(1.0)
    ramp = full[50, 20:35]
    assert np.all(np.diff(ramp) >= 0) and 0 < ramp[3] < 1  # soft edge inside the polygon
    hard = square.rasterise(100, 120, feather=0).full(100, 120)
    assert set(np.unique(hard)) == {0.0, 1.0}
    assert abs(hard.sum() - 60 * 60) < 2 * 60 * 2


def test_mask_of_a_polygon_partly_outside_the_image() -> None:
    polygon = Polygon(((-50, -50), (30, -50), (30, 30), (-50, 30)))
    full = polygon.rasterise(40, 40, feather=4).full(40, 40)
    assert full[:25, :25].max() == pytest.approx(1.0) and full[35:, 35:].max() == 0


def test_polygon_transforms(astronaut_face: Face) -> None:
    polygon = region_polygon(RegionKind.EYES, astronaut_face.landmarks)
    matrix = np.array([[2.0, 0.0, 5.0], [0.0, 2.0, -3.0]])
    assert np.allclose(polygon.transformed(matrix).as_array(), polygon.as_array() * 2 + (5, -3))


def test_the_feathered_ramp_follows_the_exact_distance_to_a_slanted_edge() -> None:
    """A ramp built from the pixel fill's distance transform steps 1, 1.41, 1, … along a slanted edge: times a
    strong edit that is a dotted line along the mask's edge. The ramp must follow the true distance."""
    feather = 5.0
    triangle = Polygon(((10.0, 10.0), (190.0, 10.0), (10.0, 70.0)))  # hypotenuse of slope -1/3
    full = triangle.rasterise(100, 200, feather=feather).full(100, 200)
    ys, xs = np.mgrid[0:100, 0:200].astype(np.float64)
    # distance of each pixel centre to the hypotenuse x + 3y = 220, and to the two legs
    to_hypotenuse = (220.0 - xs - 3.0 * ys) / np.sqrt(10.0)
    distance = np.minimum(to_hypotenuse, np.minimum(xs - 10.0, ys - 10.0))
    ramp = np.clip(distance / feather, 0.0, 1.0)
    expected = ramp * ramp * (3.0 - 2.0 * ramp)
    along = (
        (full > 0) & (distance > 0.5) & (xs > 40) & (ys > 20)
    )  # the slanted edge's band, away from corners
    assert along.sum() > 300
    assert np.abs(full[along] - expected[along]).max() < 1e-3


def test_edge_distance_is_exact_near_the_edge_and_zero_outside() -> None:
    square = Polygon(((20.0, 20.0), (80.0, 20.0), (80.0, 80.0), (20.0, 80.0)))
    distance = square.edge_distance(100, 120, reach=6)
    assert distance[50, 23] == pytest.approx(3.0) and distance[23, 50] == pytest.approx(3.0)
    assert distance[50, 10] == 0 and distance[90, 50] == 0
    assert distance[50, 50] >= 6  # deep inside: at least the reach (not measured exactly)
    assert square.edge_distance(100, 120)[50, 50] == pytest.approx(30.0)
