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
    def __init__(self, owner: MaskPolygonItem, index: int, point: tuple[float, float]) -> None:
        super().__init__(-HANDLE_RADIUS, -HANDLE_RADIUS, 2 * HANDLE_RADIUS, 2 * HANDLE_RADIUS)
        self.owner = owner
        self.index = index
        self.setPos(QPointF(*point))
        self.setFlags(
            QGraphicsItem.GraphicsItemFlag.ItemIsMovable
            | QGraphicsItem.GraphicsItemFlag.ItemIsSelectable
            | QGraphicsItem.GraphicsItemFlag.ItemSendsGeometryChanges
            | QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations
        )
        self.setZValue(30)
        self.setCursor(Qt.CursorShape.SizeAllCursor)
        self.setPen(QPen(QColor(0, 0, 0), 1))
        self.setBrush(QBrush(MASK_COLOUR))
        self.setToolTip("Drag to move · Delete to remove · double-click the outline to add a vertex")

    def itemChange(self, change: QGraphicsItem.GraphicsItemChange, value: object) -> object:
        if change == QGraphicsItem.GraphicsItemChange.ItemPositionHasChanged:
            self.owner.vertex_moved(self.index, self.pos())
        elif change == QGraphicsItem.GraphicsItemChange.ItemSelectedHasChanged:
            self.setBrush(QBrush(QColor(255, 140, 0) if self.isSelected() else MASK_COLOUR))
        return super().itemChange(change, value)

    def mouseReleaseEvent(self, event: QGraphicsSceneMouseEvent) -> None:
        super().mouseReleaseEvent(event)
        self.owner.commit_drag()


class MaskPolygonItem(QGraphicsPathItem):
    """One face's mask outline with its vertex handles (added to the scene by the canvas)."""

    def __init__(self, face: int, polygon: Polygon, on_change: Callable[[int, Polygon], None]) -> None:
        super().__init__()
        self.face = face
        self.polygon = polygon
        self.points = [QPointF(x, y) for x, y in polygon.points]
        self.on_change = on_change
        self.moved = False
        pen = QPen(MASK_COLOUR, 2, Qt.PenStyle.DashLine)
        pen.setCosmetic(True)
        self.setPen(pen)
        self.setBrush(QBrush(QColor(0, 200, 255, 40)))
        self.setZValue(20)
        self.handles = [VertexHandle(self, i, point) for i, point in enumerate(polygon.points)]
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
        if not selected or len(self.points) <= 3:
            return False
        polygon = self.polygon.delete_vertex(selected[0])
        QTimer.singleShot(0, lambda: self.on_change(self.face, polygon))
        return True
