"""Painting and editing a mask polygon on the canvas.

The polygon itself is plain data (diat_studio.core.regions.Polygon); these items only draw it and turn
mouse gestures into new polygons, handed to `on_change` (which puts them on the undo stack):
drag a vertex handle to move it, double-click near an edge to insert a vertex there, select a handle and
press Delete to remove it.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QPointF, Qt, QTimer
from PySide6.QtGui import QBrush, QColor, QPainterPath, QPainterPathStroker, QPen, QPolygonF
from PySide6.QtWidgets import (
    QGraphicsEllipseItem,
    QGraphicsItem,
    QGraphicsPathItem,
    QGraphicsSceneMouseEvent,
)

from diat_studio.core.regions import Polygon

MASK_COLOUR = QColor(0, 200, 255)
HANDLE_RADIUS = 5.0


class VertexHandle(QGraphicsEllipseItem):
    """A draggable vertex: a child of its polygon item (which sits at the scene origin)."""

    def __init__(self, owner: MaskPolygonItem, index: int) -> None:
        super().__init__(-HANDLE_RADIUS, -HANDLE_RADIUS, 2 * HANDLE_RADIUS, 2 * HANDLE_RADIUS, owner)
        self.owner = owner
        self.index = index
        self.setFlags(
            QGraphicsItem.GraphicsItemFlag.ItemIsMovable
            | QGraphicsItem.GraphicsItemFlag.ItemIsSelectable
            | QGraphicsItem.GraphicsItemFlag.ItemSendsGeometryChanges
            | QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations
        )
        self.setZValue(10)
        self.setCursor(Qt.CursorShape.SizeAllCursor)
        self.setPen(QPen(QColor(0, 0, 0), 1))
        self.setBrush(QBrush(MASK_COLOUR))
        self.setToolTip("Drag to move · Delete to remove · double-click the outline to add a vertex")

    def itemChange(self, change: QGraphicsItem.GraphicsItemChange, value: object) -> object:
        if change == QGraphicsItem.GraphicsItemChange.ItemPositionHasChanged and not self.owner.placing:
            self.owner.vertex_moved(self.index, self.pos())
        elif change == QGraphicsItem.GraphicsItemChange.ItemSelectedHasChanged:
            self.setBrush(QBrush(QColor(255, 140, 0) if self.isSelected() else MASK_COLOUR))
        return super().itemChange(change, value)

    def mouseReleaseEvent(self, event: QGraphicsSceneMouseEvent) -> None:
        super().mouseReleaseEvent(event)
        self.owner.commit_drag()


class MaskPolygonItem(QGraphicsPathItem):
    """One face's mask outline with its vertex handles (its children).

    The canvas reuses these items (`set_polygon`) rather than creating new ones for every change: see
    canvas.py for why."""

    def __init__(self, on_change: Callable[[int, Polygon], None]) -> None:
        super().__init__()
        self.on_change = on_change
        self.face = -1
        self.polygon: Polygon | None = None
        self.points: list[QPointF] = []
        self.handles: list[VertexHandle] = []
        self._handle_pool: list[VertexHandle] = []
        self.moved = False
        self.placing = False
        """True while `set_polygon` positions the handles (not a user's drag)."""
        pen = QPen(MASK_COLOUR, 2, Qt.PenStyle.DashLine)
        pen.setCosmetic(True)
        self.setPen(pen)
        self.setBrush(QBrush(QColor(0, 200, 255, 40)))
        self.setZValue(20)

    def set_polygon(self, face: int, polygon: Polygon) -> None:
        """Show `polygon` as face `face`'s mask: handles are reused, added only when more are needed."""
        self.face = face
        self.polygon = polygon
        self.points = [QPointF(x, y) for x, y in polygon.points]
        self.moved = False
        while len(self._handle_pool) < len(self.points):
            self._handle_pool.append(VertexHandle(self, len(self._handle_pool)))
        self.handles = self._handle_pool[: len(self.points)]
        self.placing = True
        try:
            for handle, point in zip(self.handles, self.points, strict=True):
                handle.setSelected(False)
                handle.setPos(point)
                handle.setVisible(True)
            for handle in self._handle_pool[len(self.points) :]:
                handle.setSelected(False)
                handle.setVisible(False)
        finally:
            self.placing = False
        self._rebuild()

    def _rebuild(self) -> None:
        path = QPainterPath()
        path.addPolygon(QPolygonF(self.points))
        path.closeSubpath()
        self.setPath(path)

    def shape(self) -> QPainterPath:
        stroker = QPainterPathStroker()
        stroker.setWidth(max(self.edge_tolerance() * 2, 1.0))
        return stroker.createStroke(self.path()) + self.path()

    def edge_tolerance(self) -> float:
        """How close (in image pixels) a double-click must be to an edge: 8 screen pixels."""
        views = self.scene().views() if self.scene() else []
        scale = views[0].transform().m11() if views else 1.0
        return 8.0 / max(scale, 1e-6)

    def vertex_moved(self, index: int, position: QPointF) -> None:
        self.points[index] = QPointF(position)
        self.moved = True
        self._rebuild()

    def commit_drag(self) -> None:
        if not self.moved:
            return
        self.moved = False
        polygon = Polygon(tuple((p.x(), p.y()) for p in self.points))
        # The canvas rebuilds its items when the document changes: not from inside this item's event.
        QTimer.singleShot(0, lambda: self.on_change(self.face, polygon))

    def mouseDoubleClickEvent(self, event: QGraphicsSceneMouseEvent) -> None:
        if self.polygon is None:
            return
        point = event.scenePos()
        edge, distance = self.polygon.nearest_edge(point.x(), point.y())
        if distance <= self.edge_tolerance():
            polygon = self.polygon.insert_vertex(edge, point.x(), point.y())
            QTimer.singleShot(0, lambda: self.on_change(self.face, polygon))
            event.accept()
            return
        super().mouseDoubleClickEvent(event)

    def delete_selected_vertex(self) -> bool:
        """Remove the selected handle's vertex (a polygon keeps at least 3). True if one was removed."""
        selected = [handle.index for handle in self.handles if handle.isSelected()]
        if self.polygon is None or not self.isVisible() or not selected or len(self.points) <= 3:
            return False
        polygon = self.polygon.delete_vertex(selected[0])
        QTimer.singleShot(0, lambda: self.on_change(self.face, polygon))
        return True
