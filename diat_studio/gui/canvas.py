"""The photo canvas: zoom and pan, numbered face boxes, landmarks, mask polygons, before/after comparison,
and dropping a photo onto it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QDragEnterEvent,
    QDragMoveEvent,
    QDropEvent,
    QFont,
    QKeyEvent,
    QPainter,
    QPen,
    QPixmap,
    QWheelEvent,
)
from PySide6.QtWidgets import (
    QGraphicsEllipseItem,
    QGraphicsItem,
    QGraphicsRectItem,
    QGraphicsScene,
    QGraphicsSceneMouseEvent,
    QGraphicsSimpleTextItem,
    QGraphicsView,
    QStyleOptionGraphicsItem,
    QWidget,
)

from diat_studio.core.faces import Face
from diat_studio.core.regions import Polygon
from diat_studio.gui.drops import accept_as_copy
from diat_studio.gui.images import to_pixmap
from diat_studio.gui.mask_items import MaskPolygonItem

ZOOM_STEP = 1.25
MIN_ZOOM, MAX_ZOOM = 0.02, 32.0
SELECTED = QColor(255, 160, 0)
UNSELECTED = QColor(230, 230, 230)
LANDMARK = QColor(80, 255, 120)
ItemT = TypeVar("ItemT", bound=QGraphicsItem)


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
    """A face's box, numbered like the Faces list ("1" is the largest face)."""

    def __init__(self, canvas: PhotoCanvas) -> None:
        super().__init__()
        self.canvas = canvas
        self.index = -1
        self.setZValue(10)
        self.label = QGraphicsSimpleTextItem(self)
        self.label.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations)
        font = QFont()
        font.setBold(True)
        font.setPointSizeF(11)
        self.label.setFont(font)
        self.label.setAcceptedMouseButtons(Qt.MouseButton.NoButton)

    def place(self, index: int, face: Face) -> None:
        box = face.box
        self.index = index
        self.setRect(box.left, box.top, box.width, box.height)
        self.label.setText(str(index + 1))
        self.label.setPos(box.left + 2, box.top + 1)
        self.setToolTip(f"Face {index + 1}: click to select, Ctrl+click to add to the selection")

    def set_selected(self, selected: bool) -> None:
        colour = SELECTED if selected else UNSELECTED
        pen = QPen(colour, 3 if selected else 1.5)
        pen.setCosmetic(True)
        self.setPen(pen)
        self.label.setBrush(colour)
        outline = QPen(QColor(0, 0, 0), 0.8)
        outline.setCosmetic(True)
        self.label.setPen(outline)

    def mousePressEvent(self, event: QGraphicsSceneMouseEvent) -> None:
        additive = bool(event.modifiers() & Qt.KeyboardModifier.ControlModifier)
        self.canvas.face_clicked.emit(self.index, additive)
        event.accept()


class LandmarkItem(QGraphicsEllipseItem):
    def __init__(self) -> None:
        super().__init__(-2.0, -2.0, 4.0, 4.0)
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations)
        self.setPen(QPen(Qt.PenStyle.NoPen))
        self.setBrush(LANDMARK)
        self.setZValue(15)
        self.setAcceptedMouseButtons(Qt.MouseButton.NoButton)


class ItemPool(Generic[ItemT]):
    """Scene items made once and reused: shown with new content, hidden when not needed.

    Rebuilding them on every selection change or redetection would add and remove hundreds of items
    (68 landmarks per face), and PySide6 keeps one reference to None for every item added to a scene."""

    def __init__(self, scene: QGraphicsScene, make: Callable[[], ItemT]) -> None:
        self.scene = scene
        self.make = make
        self.items: list[ItemT] = []

    def take(self, count: int) -> list[ItemT]:
        """The first `count` items (made as needed); the others are hidden."""
        while len(self.items) < count:
            item = self.make()
            item.setVisible(False)
            self.scene.addItem(item)
            self.items.append(item)
        for item in self.items[count:]:
            item.setVisible(False)
        return self.items[:count]


class PhotoCanvas(QGraphicsView):
    face_clicked = Signal(int, bool)
    mask_changed = Signal(int, object)
    """A mask edit gesture finished: (face index, new Polygon)."""
    zoom_changed = Signal(float)
    photo_dropped = Signal(object)
    """A photo file was dropped onto the canvas (as a copy): its Path."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setScene(QGraphicsScene(self))
        self.photo = ComparePixmapItem()
        self.scene().addItem(self.photo)
        self.setDragMode(QGraphicsView.DragMode.ScrollHandDrag)
        self.setAcceptDrops(True)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.setRenderHints(QPainter.RenderHint.Antialiasing | QPainter.RenderHint.SmoothPixmapTransform)
        self.setBackgroundBrush(QColor(40, 40, 44))
        self._box_pool = ItemPool(self.scene(), lambda: FaceBoxItem(self))
        self._landmark_pool = ItemPool(self.scene(), LandmarkItem)
        self._mask_pool = ItemPool(self.scene(), lambda: MaskPolygonItem(self.mask_changed.emit))
        self.boxes: list[FaceBoxItem] = []
        self.landmarks: list[LandmarkItem] = []
        self.masks: list[MaskPolygonItem] = []
        self._show_boxes = True
        self._show_landmarks = True
        self._show_masks = True

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
        self.boxes = self._box_pool.take(len(faces))
        for index, (box, face) in enumerate(zip(self.boxes, faces, strict=True)):
            box.place(index, face)
        points = [point for face in faces for point in face.landmarks]
        self.landmarks = self._landmark_pool.take(len(points))
        for item, (x, y) in zip(self.landmarks, points, strict=True):
            item.setPos(float(x), float(y))
        self.set_selection(selected)
        self.show_boxes(self._show_boxes)
        self.show_landmarks(self._show_landmarks)

    def set_selection(self, selected: set[int]) -> None:
        for box in self.boxes:
            box.set_selected(box.index in selected)

    def set_masks(self, masks: Sequence[tuple[int, Polygon]]) -> None:
        self.masks = self._mask_pool.take(len(masks))
        for item, (face, polygon) in zip(self.masks, masks, strict=True):
            item.set_polygon(face, polygon)
        self.show_masks(self._show_masks)

    def show_boxes(self, visible: bool) -> None:
        self._show_boxes = visible
        for item in self.boxes:
            item.setVisible(visible)

    def show_landmarks(self, visible: bool) -> None:
        self._show_landmarks = visible
        for item in self.landmarks:
            item.setVisible(visible)

    def show_masks(self, visible: bool) -> None:
        self._show_masks = visible
        for item in self.masks:
            item.setVisible(visible)

    @property
    def masks_shown(self) -> bool:
        return self._show_masks

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

    # -- dropping a photo ---------------------------------------------------------------------------------

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if accept_as_copy(event) is None:
            super().dragEnterEvent(event)

    def dragMoveEvent(self, event: QDragMoveEvent) -> None:
        if accept_as_copy(event) is None:
            super().dragMoveEvent(event)

    def dropEvent(self, event: QDropEvent) -> None:
        path = accept_as_copy(event)
        if path is None:
            super().dropEvent(event)
            return
        self.photo_dropped.emit(path)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        deleting = event.key() in (Qt.Key.Key_Delete, Qt.Key.Key_Backspace)
        if deleting and any(item.delete_selected_vertex() for item in self.masks):
            event.accept()
            return
        super().keyPressEvent(event)
