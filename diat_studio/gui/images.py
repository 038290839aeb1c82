"""numpy RGB arrays ↔ Qt images (the one place that converts)."""

from __future__ import annotations

import numpy as np
from PySide6.QtGui import QImage, QPixmap


def to_qimage(rgb: np.ndarray) -> QImage:
    """An H×W×3 uint8 RGB array as a QImage that owns a copy of the pixels."""
    rgb = np.ascontiguousarray(rgb)
    height, width = rgb.shape[:2]
    return QImage(rgb.data, width, height, 3 * width, QImage.Format.Format_RGB888).copy()


def to_pixmap(rgb: np.ndarray) -> QPixmap:
    return QPixmap.fromImage(to_qimage(rgb))


def from_qimage(image: QImage) -> np.ndarray:
    """A QImage as an H×W×3 uint8 RGB array (a copy)."""
    image = image.convertToFormat(QImage.Format.Format_RGB888)
    width, height = image.width(), image.height()
    buffer = np.frombuffer(image.constBits(), np.uint8, count=image.bytesPerLine() * height)
    return buffer.reshape(height, image.bytesPerLine())[:, : 3 * width].reshape(height, width, 3).copy()
