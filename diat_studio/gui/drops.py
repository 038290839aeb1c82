"""Dropping a photo file onto the window: accepted as a copy, never a move.

A drop accepted with the proposed action could be a move (Shift while dragging, or a file manager that
proposes it), and the source would then delete the user's original: every drop here is a CopyAction.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QDragEnterEvent, QDragMoveEvent, QDropEvent

from diat_studio.core.image_io import is_image_path


def dropped_photo(event: QDragEnterEvent | QDragMoveEvent | QDropEvent) -> Path | None:
    """The local image file being dragged, when the drag offers it as a copy; else None."""
    if not event.possibleActions() & Qt.DropAction.CopyAction:
        return None
    urls = event.mimeData().urls()
    if not urls or not urls[0].isLocalFile():
        return None
    path = Path(urls[0].toLocalFile())
    return path if is_image_path(path) else None


def accept_as_copy(event: QDragEnterEvent | QDragMoveEvent | QDropEvent) -> Path | None:
    """Accept the drag or drop as a copy if it carries a photo; return that photo's path (else None)."""
    path = dropped_photo(event)
    if path is not None:
        event.setDropAction(Qt.DropAction.CopyAction)
        event.accept()
    return path
