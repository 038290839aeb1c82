"""Hold `\\` to compare: the photo before the edits shows while the key is down, wherever the focus is.

A key press goes to the focused widget first, and the Edits and Faces lists take `\\` for their
type-ahead search, so a window-level key handler never saw it. This filter sits on the application and
catches the key for every widget of its window (except text fields, where `\\` is typed).
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QAbstractSpinBox, QApplication, QLineEdit, QPlainTextEdit, QTextEdit, QWidget

COMPARE_KEY = Qt.Key.Key_Backslash
TEXT_INPUTS = (QLineEdit, QTextEdit, QPlainTextEdit, QAbstractSpinBox)


class CompareKeyFilter(QObject):
    """Calls `show_before(True)` when `\\` goes down in `window`, `show_before(False)` when it comes up."""

    def __init__(self, window: QWidget, show_before: Callable[[bool], None]) -> None:
        super().__init__(window)  # deleted with the window, which removes the filter from the app
        self.window = window
        self.show_before = show_before
        app = QApplication.instance()
        assert app is not None
        app.installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        kind = event.type()
        if kind not in (QEvent.Type.KeyPress, QEvent.Type.KeyRelease, QEvent.Type.ShortcutOverride):
            return False
        if not isinstance(event, QKeyEvent) or event.key() != COMPARE_KEY:
            return False
        if not isinstance(watched, QWidget) or isinstance(watched, TEXT_INPUTS):
            return False
        if watched.window() is not self.window:
            return False
        if kind == QEvent.Type.ShortcutOverride:
            event.accept()  # the key is ours: no shortcut fires and the focused list does not search
            return True
        if not event.isAutoRepeat():
            self.show_before(kind == QEvent.Type.KeyPress)
        return True
