"""Edit regions: convex-hull polygons built from landmarks, and the soft masks they rasterise to.

A `Polygon` is plain, immutable, editable data (move, insert, delete a vertex); every edit returns a new
polygon, which makes undo trivial. Painting polygons is the GUI's business, not this module's.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import cv2
import numpy as np


class RegionKind(str, Enum):
    """The named regions an attribute model can edit."""

    MOUTH = "mouth"
    EYES = "eyes"
    """Eyes, brows and nose bridge, out to the temples: where eyeglasses sit."""
    FACE = "face"
    """The whole face from chin to forehead: used by global attributes."""


# iBUG-68 index sets. Jaw 0-16, brows 17-26, nose 27-35, eyes 36-47, mouth 48-67.
REGION_LANDMARKS: dict[RegionKind, tuple[int, ...]] = {
    RegionKind.MOUTH: tuple(range(48, 60)),
    RegionKind.EYES: (0, 1, 15, 16, *range(17, 30), *range(36, 48)),
    RegionKind.FACE: tuple(range(0, 27)),
}

# Margin around the hull, in units of the inter-ocular distance (scale-free, so the same on any photo).
REGION_MARGIN: dict[RegionKind, float] = {
    RegionKind.MOUTH: 0.30,
    RegionKind.EYES: 0.18,
    RegionKind.FACE: 0.08,
}

# The face region's upper edge is the brows lifted by this many inter-ocular distances (the forehead).
FOREHEAD_LIFT = 0.55

_MIN_VERTICES = 3
_MARGIN_SAMPLES = 16
_SIMPLIFY_TOLERANCE = 0.02  # × inter-ocular distance
_MIN_VERTEX_SPACING = 0.12  # × inter-ocular distance: handles a user can grab one at a time


@dataclass(frozen=True, eq=False)
class SoftMask:
    """A mask with values in [0, 1], stored only over its bounding box at (left, top) of a larger image."""

    left: int
    top: int
    alpha: np.ndarray
    """h×w float32 in [0, 1]."""

    @property
    def right(self) -> int:
        return self.left + int(self.alpha.shape[1])

    @property
    def bottom(self) -> int:
        return self.top + int(self.alpha.shape[0])

    def full(self, height: int, width: int) -> np.ndarray:
        """The mask as a height×width float32 array (zero outside the stored box)."""
        out = np.zeros((height, width), np.float32)
        x0, y0 = max(self.left, 0), max(self.top, 0)
        x1, y1 = min(self.right, width), min(self.bottom, height)
        if x1 > x0 and y1 > y0:
            out[y0:y1, x0:x1] = self.alpha[y0 - self.top : y1 - self.top, x0 - self.left : x1 - self.left]
        return out

    def scaled(self, factor: float) -> SoftMask:
        return SoftMask(self.left, self.top, (self.alpha * np.float32(factor)).astype(np.float32))


@dataclass(frozen=True)
class Polygon:
    """A closed polygon of (x, y) vertices in pixel coordinates."""

    points: tuple[tuple[float, float], ...]

    def __post_init__(self) -> None:
        if len(self.points) < _MIN_VERTICES:
            raise ValueError(f"a polygon needs at least {_MIN_VERTICES} vertices, got {len(self.points)}")

    @classmethod
    def from_array(cls, array: np.ndarray) -> Polygon:
        return cls(tuple((float(x), float(y)) for x, y in np.asarray(array, np.float64).reshape(-1, 2)))

    def as_array(self) -> np.ndarray:
        return np.array(self.points, dtype=np.float64)

    def __len__(self) -> int:
        return len(self.points)

    def move_vertex(self, index: int, x: float, y: float) -> Polygon:
        points = list(self.points)
        points[index] = (float(x), float(y))
        return Polygon(tuple(points))

    def insert_vertex(self, edge: int, x: float, y: float) -> Polygon:
        """Insert a vertex on edge `edge` (from vertex `edge` to vertex `edge + 1`)."""
        points = list(self.points)
        points.insert(edge + 1, (float(x), float(y)))
        return Polygon(tuple(points))

    def delete_vertex(self, index: int) -> Polygon:
        if len(self.points) <= _MIN_VERTICES:
            raise ValueError(f"a polygon keeps at least {_MIN_VERTICES} vertices")
        points = list(self.points)
        del points[index]
        return Polygon(tuple(points))

    def nearest_edge(self, x: float, y: float) -> tuple[int, float]:
        """(edge index, distance) of the edge closest to (x, y)."""
        pts = self.as_array()
        starts, ends = pts, np.roll(pts, -1, axis=0)
        seg = ends - starts
        lengths = np.maximum((seg**2).sum(axis=1), 1e-12)
        t = np.clip(((np.array([x, y]) - starts) * seg).sum(axis=1) / lengths, 0.0, 1.0)
        closest = starts + seg * t[:, None]
        distances = np.hypot(closest[:, 0] - x, closest[:, 1] - y)
        edge = int(np.argmin(distances))
        return edge, float(distances[edge])

    def transformed(self, matrix: np.ndarray) -> Polygon:
        """The polygon mapped through a 2×3 affine matrix."""
        pts = self.as_array()
        return Polygon.from_array(pts @ np.asarray(matrix)[:, :2].T + np.asarray(matrix)[:, 2])

    def bounds(self) -> tuple[float, float, float, float]:
        pts = self.as_array()
        return float(pts[:, 0].min()), float(pts[:, 1].min()), float(pts[:, 0].max()), float(pts[:, 1].max())

    def fill(self, height: int, width: int, left: int = 0, top: int = 0) -> np.ndarray:
        """uint8 (0/1) fill of the polygon over the height×width box at (left, top) of the image: a pixel is
        in when its centre is (cv2.fillPoly's rule, at 1/16-pixel precision)."""
        shift = 4
        local = (self.as_array() - (left, top)) * (1 << shift)
        binary = np.zeros((height, width), np.uint8)
        cv2.fillPoly(binary, [np.round(local).astype(np.int32)], 1, lineType=cv2.LINE_8, shift=shift)
        return binary

    def edge_distance(
        self, height: int, width: int, left: int = 0, top: int = 0, reach: float = np.inf
    ) -> np.ndarray:
        """float32 distance from each pixel centre inside the polygon (its `fill`) to the polygon's edge,
        over the height×width box at (left, top); 0 outside.

        Exact (point to segment), not a distance transform of the pixel fill: that one measures to the
        nearest outside *pixel*, so along a slanted edge it steps 1, 1.41, 1, … and a feathered mask made
        from it carries a dotted line wherever the edit is strong at the edge (the mouth editors' "dotted
        chin line"). Pixels deeper than `reach` may hold their approximate distance (still ≥ reach): only
        the band a ramp uses is measured exactly."""
        binary = self.fill(height, width, left, top)
        padded = cv2.copyMakeBorder(binary, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
        distance = cv2.distanceTransform(padded, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)[1:-1, 1:-1]
        # The pixel distance exceeds the exact one by at most √2/2 + rounding: measure below reach + 1.5.
        rows, cols = np.nonzero((binary > 0) & (distance < reach + 1.5))
        if len(rows):
            distance[rows, cols] = _distance_to_edges(
                self.as_array() - (left, top), cols.astype(np.float64), rows.astype(np.float64)
            )
        return distance

    def rasterise(self, height: int, width: int, feather: float = 0.0) -> SoftMask:
        """Soft mask of this polygon inside a height×width image.

        The mask is exactly 0 outside the polygon and ramps from 0 at the edge to 1 at `feather` pixels
        inside it (smoothstep of the exact distance to the edge), so a feathered edit never reaches past the
        polygon the user sees and its edge carries no pixel staircase."""
        x_min, y_min, x_max, y_max = self.bounds()
        left, top = max(int(np.floor(x_min)) - 1, 0), max(int(np.floor(y_min)) - 1, 0)
        right, bottom = min(int(np.ceil(x_max)) + 2, width), min(int(np.ceil(y_max)) + 2, height)
        if right <= left or bottom <= top:
            return SoftMask(0, 0, np.zeros((0, 0), np.float32))
        if feather <= 0:
            return SoftMask(left, top, self.fill(bottom - top, right - left, left, top).astype(np.float32))
        distance = self.edge_distance(bottom - top, right - left, left, top, reach=feather)
        ramp = np.clip(distance / np.float32(feather), 0.0, 1.0)
        return SoftMask(left, top, (ramp * ramp * (3.0 - 2.0 * ramp)).astype(np.float32))


def _distance_to_edges(points: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """float32 distance from each (xs[i], ys[i]) to the nearest segment of the closed polygon `points`."""
    best = np.full(xs.shape, np.inf)
    for (ax, ay), (bx, by) in zip(points, np.roll(points, -1, axis=0), strict=True):
        dx, dy = bx - ax, by - ay
        px, py = xs - ax, ys - ay
        t = np.clip((px * dx + py * dy) / max(dx * dx + dy * dy, 1e-12), 0.0, 1.0)
        np.minimum(best, (px - t * dx) ** 2 + (py - t * dy) ** 2, out=best)
    return np.sqrt(best).astype(np.float32)


def inter_ocular_distance(landmarks: np.ndarray) -> float:
    """Distance between the two eye centres (iBUG-68 points 36-41 and 42-47)."""
    left = landmarks[36:42].mean(axis=0)
    right = landmarks[42:48].mean(axis=0)
    return float(np.hypot(*(right - left)))


def region_polygon(kind: RegionKind | str, landmarks: np.ndarray, margin: float | None = None) -> Polygon:
    """The convex-hull polygon of a region, grown by a margin (× inter-ocular distance) and simplified."""
    kind = RegionKind(kind)
    landmarks = np.asarray(landmarks, np.float64)
    iod = max(inter_ocular_distance(landmarks), 1.0)
    points = landmarks[list(REGION_LANDMARKS[kind])]
    if kind is RegionKind.FACE:
        points = np.concatenate([points, _forehead(landmarks, iod)])
    grow = (REGION_MARGIN[kind] if margin is None else margin) * iod
    if grow > 0:
        angles = np.linspace(0.0, 2.0 * np.pi, _MARGIN_SAMPLES, endpoint=False)
        ring = np.stack([np.cos(angles), np.sin(angles)], axis=1) * grow
        points = (points[:, None, :] + ring[None, :, :]).reshape(-1, 2)
    hull = cv2.convexHull(points.astype(np.float32)).reshape(-1, 2)
    simplified = cv2.approxPolyDP(hull.reshape(-1, 1, 2), _SIMPLIFY_TOLERANCE * iod, closed=True)
    simplified = _spaced(simplified.reshape(-1, 2), _MIN_VERTEX_SPACING * iod)
    return Polygon.from_array(simplified if len(simplified) >= _MIN_VERTICES else hull)


def _spaced(points: np.ndarray, spacing: float) -> np.ndarray:
    """Drop vertices closer than `spacing` to the previous kept one (and to the first, at the end)."""
    kept = [points[0]]
    for point in points[1:]:
        if np.hypot(*(point - kept[-1])) >= spacing:
            kept.append(point)
    while len(kept) > _MIN_VERTICES and np.hypot(*(kept[-1] - kept[0])) < spacing:
        kept.pop()
    return np.array(kept)


def _forehead(landmarks: np.ndarray, iod: float) -> np.ndarray:
    """The brow points lifted along the face's upward axis (perpendicular to the eye line)."""
    left = landmarks[36:42].mean(axis=0)
    right = landmarks[42:48].mean(axis=0)
    eye_axis = (right - left) / max(np.hypot(*(right - left)), 1e-9)
    up = np.array([eye_axis[1], -eye_axis[0]])
    return landmarks[17:27] + up * (FOREHEAD_LIFT * iod)
