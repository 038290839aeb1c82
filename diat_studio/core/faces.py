"""Face detection (dlib HOG, optionally dlib's MMOD CNN) and 68-point landmarks.

Results are plain dataclasses in the coordinates of the image that was passed in, largest face first.
Detection runs on a downscaled copy (long side at most `max_side`) for speed — cut into overlapping tiles
when the image is a long strip, so its faces are not shrunk away; landmarks are then predicted on the
full-resolution image so they are as precise as the photo allows.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Literal

import cv2
import dlib
import numpy as np

from diat_studio.core.dlib_models import CNN_FACE_DETECTOR, LANDMARKS_68, dlib_model_path

DetectorKind = Literal["hog", "cnn"]

NUM_LANDMARKS = 68

# dlib's HOG scores at threshold 0 include clothing patterns (e.g. 0.06 and 0.12 on the patch of the
# astronaut test photo). At 0.2, faces were still found in 299 of 300 CelebA test-split photos.
DEFAULT_THRESHOLD = 0.2


@dataclass(frozen=True)
class Box:
    """An axis-aligned rectangle in pixel coordinates (right/bottom exclusive)."""

    left: float
    top: float
    right: float
    bottom: float

    @property
    def width(self) -> float:
        return self.right - self.left

    @property
    def height(self) -> float:
        return self.bottom - self.top

    @property
    def area(self) -> float:
        return max(self.width, 0.0) * max(self.height, 0.0)

    @property
    def center(self) -> tuple[float, float]:
        return ((self.left + self.right) / 2.0, (self.top + self.bottom) / 2.0)

    def scaled(self, factor: float) -> Box:
        return Box(self.left * factor, self.top * factor, self.right * factor, self.bottom * factor)

    def clipped(self, width: int, height: int) -> Box:
        return Box(
            min(max(self.left, 0.0), width),
            min(max(self.top, 0.0), height),
            min(max(self.right, 0.0), width),
            min(max(self.bottom, 0.0), height),
        )

    def contains(self, x: float, y: float) -> bool:
        return self.left <= x < self.right and self.top <= y < self.bottom


@dataclass(frozen=True, eq=False)
class Face:
    """One detected face: its box, 68 iBUG landmarks (x, y) and the detector's confidence."""

    box: Box
    landmarks: np.ndarray = field(repr=False)
    """68×2 float64 (x, y) in image coordinates, iBUG-300W order."""
    score: float = 0.0
    detector: str = "hog"

    def __post_init__(self) -> None:
        if self.landmarks.shape != (NUM_LANDMARKS, 2):
            raise ValueError(f"expected 68×2 landmarks, got {self.landmarks.shape}")

    def translated(self, dx: float, dy: float) -> Face:
        box = Box(self.box.left + dx, self.box.top + dy, self.box.right + dx, self.box.bottom + dy)
        return Face(box, self.landmarks + np.array([dx, dy]), self.score, self.detector)


class FaceDetector:
    """Finds faces and their 68 landmarks. Safe to share between threads (calls are serialised)."""

    def __init__(
        self,
        kind: DetectorKind = "hog",
        *,
        max_side: int = 1000,
        upsample: int | None = None,
        threshold: float = DEFAULT_THRESHOLD,
    ) -> None:
        """`upsample=None` picks automatically: a plain pass, then a 2× upsampled pass only when the plain
        one finds nothing (faces under ~80 px in the working image). `threshold` shifts dlib's decision
        threshold (negative finds more, less certain faces)."""
        if kind not in ("hog", "cnn"):
            raise ValueError(f"unknown detector {kind!r}: use 'hog' or 'cnn'")
        self.kind: DetectorKind = kind
        self.max_side = max_side
        self.upsample = upsample
        self.threshold = threshold
        self._lock = threading.Lock()
        self._predictor = dlib.shape_predictor(str(dlib_model_path(LANDMARKS_68)))
        if kind == "hog":
            self._hog = dlib.get_frontal_face_detector()
        else:
            self._cnn = dlib.cnn_face_detection_model_v1(str(dlib_model_path(CNN_FACE_DETECTOR)))

    def detect(self, rgb: np.ndarray) -> list[Face]:
        """All faces in an H×W×3 uint8 RGB image, largest first."""
        _check_rgb(rgb)
        height, width = rgb.shape[:2]
        windows = _windows(width, height, self.max_side)
        with self._lock:
            boxes = self._detect_boxes(rgb, windows)
            faces = []
            for box, score in boxes:
                full_box = box.clipped(width, height)
                if full_box.area <= 0:
                    continue
                faces.append(Face(full_box, self._predict(rgb, full_box), score, self.kind))
        faces.sort(key=lambda face: face.box.area, reverse=True)
        return faces

    def landmarks(self, rgb: np.ndarray, box: Box) -> np.ndarray:
        """68 landmarks for a face whose box is already known (no detection: e.g. pre-centred crops)."""
        _check_rgb(rgb)
        with self._lock:
            return self._predict(rgb, box)

    def _detect_boxes(self, rgb: np.ndarray, windows: list[_Window]) -> list[tuple[Box, float]]:
        """Boxes in full-image coordinates, found in each window's downscaled copy."""
        works = [window.work(rgb) for window in windows]
        # Auto: a plain pass first; the 2× upsampled pass (4× the cost, and more false positives on
        # clothing and patterns) only when the plain pass finds nothing, i.e. when the faces are small.
        passes = [self.upsample] if self.upsample is not None else [0, 1]
        for upsample in passes:
            found = [
                (window.to_image(box), score)
                for window, work in zip(windows, works, strict=True)
                for box, score in self._run_detector(work, upsample)
            ]
            if found:
                return found if len(windows) == 1 else _merge_duplicates(found)
        return []

    def _run_detector(self, work: np.ndarray, upsample: int) -> list[tuple[Box, float]]:
        if self.kind == "hog":
            rects, scores, _ = self._hog.run(work, upsample, self.threshold)
            return [(_box_from_rect(rect), float(score)) for rect, score in zip(rects, scores, strict=True)]
        detections = self._cnn(work, upsample)
        return [
            (_box_from_rect(det.rect), float(det.confidence))
            for det in detections
            if det.confidence >= self.threshold
        ]

    def _predict(self, rgb: np.ndarray, box: Box) -> np.ndarray:
        rect = dlib.rectangle(round(box.left), round(box.top), round(box.right) - 1, round(box.bottom) - 1)
        shape = self._predictor(np.ascontiguousarray(rgb), rect)
        return np.array([(point.x, point.y) for point in shape.parts()], dtype=np.float64)


@dataclass(frozen=True)
class _Window:
    """A part of the image that is searched at `scale` (the whole image, or one tile of a long one)."""

    left: int
    top: int
    right: int
    bottom: int
    scale: float

    def work(self, rgb: np.ndarray) -> np.ndarray:
        crop = rgb[self.top : self.bottom, self.left : self.right]
        if self.scale == 1.0:
            return np.ascontiguousarray(crop)
        size = (max(1, round(crop.shape[1] * self.scale)), max(1, round(crop.shape[0] * self.scale)))
        return np.ascontiguousarray(cv2.resize(crop, size, interpolation=cv2.INTER_AREA))

    def to_image(self, box: Box) -> Box:
        scaled = box.scaled(1.0 / self.scale)
        return Box(
            scaled.left + self.left, scaled.top + self.top, scaled.right + self.left, scaled.bottom + self.top
        )


def _windows(width: int, height: int, max_side: int) -> list[_Window]:
    """Where to look, and at which scale.

    Usually the whole image, downscaled so its long side is at most `max_side`. A long strip (more than
    2:1 and longer than `max_side`) downscaled whole would shrink its faces below what the detector can
    see (a 20000×200 strip became 1000×10 px), so it is cut into tiles along its long side instead: each
    at least 2× the short side and `max_side` long, overlapping by one short side — a face is never
    larger than the short side, so every face lies whole in at least one tile.
    """
    long_side, short_side = max(width, height), min(width, height)
    if long_side <= max_side or long_side <= 2 * short_side:
        return [_Window(0, 0, width, height, min(1.0, max_side / long_side))]
    tile = max(2 * short_side, max_side)
    step = tile - short_side
    starts = [*range(0, long_side - tile, step), long_side - tile]
    scale = min(1.0, max_side / tile)
    if width >= height:
        return [_Window(start, 0, start + tile, height, scale) for start in starts]
    return [_Window(0, start, width, start + tile, scale) for start in starts]


def _merge_duplicates(found: list[tuple[Box, float]]) -> list[tuple[Box, float]]:
    """One box per face where tiles overlap: the best-scoring of boxes that mostly cover each other."""
    kept: list[tuple[Box, float]] = []
    for box, score in sorted(found, key=lambda item: item[1], reverse=True):
        if all(_overlap(box, other) < 0.5 for other, _ in kept):
            kept.append((box, score))
    return kept


def _overlap(a: Box, b: Box) -> float:
    """Intersection over the smaller box's area (1.0 when one box lies inside the other)."""
    inter = Box(max(a.left, b.left), max(a.top, b.top), min(a.right, b.right), min(a.bottom, b.bottom))
    smaller = min(a.area, b.area)
    return inter.area / smaller if inter.width > 0 and inter.height > 0 and smaller > 0 else 0.0


def _box_from_rect(rect: dlib.rectangle) -> Box:
    return Box(float(rect.left()), float(rect.top()), float(rect.right() + 1), float(rect.bottom() + 1))


def _check_rgb(rgb: np.ndarray) -> None:
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an H×W×3 uint8 RGB image, got {rgb.shape} {rgb.dtype}")
