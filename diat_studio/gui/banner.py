"""A message strip above the canvas: errors and notices the user must see, without a modal dialog."""

from __future__ import annotations

from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QToolButton, QWidget

STYLES = {
    "error": "background: #7a1f1f; color: white;",
    "warning": "background: #7a5a12; color: white;",
    "info": "background: #1f4f7a; color: white;",
}


class MessageBanner(QFrame):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.level = ""
        self.label = QLabel()
        self.label.setWordWrap(True)
        close = QToolButton()
        close.setText("✕")
        close.setAutoRaise(True)
        close.clicked.connect(self.hide)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(10, 6, 6, 6)
        layout.addWidget(self.label, 1)
        layout.addWidget(close)
        self.hide()

    def show_message(self, level: str, text: str) -> None:
        self.level = level
        self.setStyleSheet(STYLES.get(level, STYLES["info"]))
        self.label.setText(text)
        self.show()

    @property
    def text(self) -> str:
        return self.label.text() if self.isVisible() else ""
