"""The photo canvas: zoom and pan, face boxes, landmarks, mask polygons, and before/after comparison."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QKeyEvent, QPainter, QPen, QPixmap, QWheelEvent
from PySide6.QtWidgets import (
    QGraphicsEllipseItem,
    QGraphicsItem,
    QGraphicsRectItem,
    QGraphicsScene,
    QGraphicsSceneMouseEvent,
    QGraphicsView,
    QStyleOptionGraphicsItem,
    QWidget,
)

from diat_studio.core.faces import Face
from diat_studio.core.regions import Polygon
from diat_studio.gui.images import to_pixmap
from diat_studio.gui.mask_items import MaskPolygonItem

ZOOM_STEP = 1.25
MIN_ZOOM, MAX_ZOOM = 0.02, 32.0
SELECTED = QColor(255, 160, 0)
UNSELECTED = QColor(230, 230, 230)
LANDMARK = QColor(80, 255, 120)


class ComparePixmapItem(QGraphicsItem):
    """The photo. Shows the edited image, the original ("before") left of a split line, or all of it."""

    def __init__(self) -> None:
        super().__init__()
        self.after = QPixmap()
        self.before = QPixmap()
        self.split: float | None = None
        self.show_before = False

    def set_pixmaps(self, after: QPixmap, before: QPixmap) -> None:
        self.prepareGeometryChange()
        self.after, self.before = after, before
        self.update()

    def boundingRect(self) -> QRectF:
        return QRectF(0, 0, self.after.width(), self.after.height())

    def paint(
        self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None
    ) -> None:
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
        painter.drawPixmap(0, 0, self.after)
        if self.before.isNull():
            return
        if self.show_before:
            painter.drawPixmap(0, 0, self.before)
        elif self.split is not None:
            x = self.split * self.after.width()
            painter.drawPixmap(
                QRectF(0, 0, x, self.before.height()), self.before, QRectF(0, 0, x, self.before.height())
            )
            pen = QPen(QColor(255, 255, 255), 2)
            pen.setCosmetic(True)
            painter.setPen(pen)
            painter.drawLine(QPointF(x, 0), QPointF(x, self.after.height()))


class FaceBoxItem(QGraphicsRectItem):
    def __init__(self, canvas: PhotoCanvas, index: int, face: Face) -> None:
        box = face.box
        super().__init__(box.left, box.top, box.width, box.height)
        self.canvas = canvas
        self.index = index
        self.setZValue(10)
        self.setToolTip(f"Face {index + 1}: click to select, Ctrl+click to add to the selection")

    def set_selected(self, selected: bool) -> None:
        pen = QPen(SELECTED if selected else UNSELECTED, 3 if selected else 1.5)
        pen.setCosmetic(True)
        self.setPen(pen)

    def mousePressEvent(self, event: QGraphicsSceneMouseEvent) -> None:
        additive = bool(event.modifiers() & Qt.KeyboardModifier.ControlModifier)
        self.canvas.face_clicked.emit(self.index, additive)
        event.accept()


class LandmarkItem(QGraphicsEllipseItem):
    def __init__(self, x: float, y: float) -> None:
        super().__init__(-2.0, -2.0, 4.0, 4.0)
        self.setPos(x, y)
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations)
        self.setPen(QPen(Qt.PenStyle.NoPen))
        self.setBrush(LANDMARK)
        self.setZValue(15)
        self.setAcceptedMouseButtons(Qt.MouseButton.NoButton)


class PhotoCanvas(QGraphicsView):
    face_clicked = Signal(int, bool)
    mask_changed = Signal(int, object)
    """A mask edit gesture finished: (face index, new Polygon)."""
    zoom_changed = Signal(float)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setScene(QGraphicsScene(self))
        self.photo = ComparePixmapItem()
        self.scene().addItem(self.photo)
        self.setDragMode(QGraphicsView.DragMode.ScrollHandDrag)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.setRenderHints(QPainter.RenderHint.Antialiasing | QPainter.RenderHint.SmoothPixmapTransform)
        self.setBackgroundBrush(QColor(40, 40, 44))
        self.boxes: list[FaceBoxItem] = []
        self.landmarks: list[LandmarkItem] = []
        self.masks: list[MaskPolygonItem] = []
        self._show_boxes = True
        self._show_landmarks = True

    # -- content -----------------------------------------------------------------------------------------

    def set_images(self, after: np.ndarray, before: np.ndarray | None) -> None:
        first = self.photo.after.isNull()
        self.photo.set_pixmaps(to_pixmap(after), to_pixmap(before) if before is not None else QPixmap())
        self.scene().setSceneRect(self.photo.boundingRect())
        if first:
            self.fit()

    def clear(self) -> None:
        self.set_faces([], set())
        self.set_masks([])
        self.photo.set_pixmaps(QPixmap(), QPixmap())

    def set_faces(self, faces: Sequence[Face], selected: set[int]) -> None:
        for item in [*self.boxes, *self.landmarks]:
            self.scene().removeItem(item)
        self.boxes = [FaceBoxItem(self, i, face) for i, face in enumerate(faces)]
        self.landmarks = [LandmarkItem(x, y) for face in faces for x, y in face.landmarks]
        for item in [*self.boxes, *self.landmarks]:
            self.scene().addItem(item)
        self.set_selection(selected)
        self.show_boxes(self._show_boxes)
        self.show_landmarks(self._show_landmarks)

    def set_selection(self, selected: set[int]) -> None:
        for box in self.boxes:
            box.set_selected(box.index in selected)

    def set_masks(self, masks: Sequence[tuple[int, Polygon]]) -> None:
        for item in self.masks:
            for handle in item.handles:
                self.scene().removeItem(handle)
            self.scene().removeItem(item)
        self.masks = [MaskPolygonItem(face, polygon, self.mask_changed.emit) for face, polygon in masks]
        for item in self.masks:
            self.scene().addItem(item)
            for handle in item.handles:
                self.scene().addItem(handle)

    def show_boxes(self, visible: bool) -> None:
        self._show_boxes = visible
        for item in self.boxes:
            item.setVisible(visible)

    def show_landmarks(self, visible: bool) -> None:
        self._show_landmarks = visible
        for item in self.landmarks:
            item.setVisible(visible)

    # -- comparison --------------------------------------------------------------------------------------

    def set_split(self, fraction: float | None) -> None:
        self.photo.split = fraction
        self.photo.update()

    def set_show_before(self, show: bool) -> None:
        self.photo.show_before = show
        self.photo.update()

    # -- zoom --------------------------------------------------------------------------------------------

    @property
    def zoom(self) -> float:
        return self.transform().m11()

    def set_zoom(self, zoom: float) -> None:
        zoom = min(max(zoom, MIN_ZOOM), MAX_ZOOM)
        factor = zoom / self.zoom
        self.scale(factor, factor)
        self.zoom_changed.emit(self.zoom)

    def zoom_in(self) -> None:
        self.set_zoom(self.zoom * ZOOM_STEP)

    def zoom_out(self) -> None:
        self.set_zoom(self.zoom / ZOOM_STEP)

    def actual_size(self) -> None:
        self.set_zoom(1.0)

    def fit(self) -> None:
        if not self.photo.after.isNull():
            self.fitInView(self.photo, Qt.AspectRatioMode.KeepAspectRatio)
            self.zoom_changed.emit(self.zoom)

    def wheelEvent(self, event: QWheelEvent) -> None:
        steps = event.angleDelta().y() / 120.0
        if steps:
            self.set_zoom(self.zoom * ZOOM_STEP**steps)
        event.accept()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        deleting = event.key() in (Qt.Key.Key_Delete, Qt.Key.Key_Backspace)
        if deleting and any(item.delete_selected_vertex() for item in self.masks):
            event.accept()
            return
        super().keyPressEvent(event)
