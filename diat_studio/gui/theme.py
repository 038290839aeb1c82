"""Dark (qdarkstyle, the default) and light (Fusion) themes."""

from __future__ import annotations

from PySide6.QtWidgets import QApplication, QStyleFactory


def apply_theme(app: QApplication, theme: str) -> None:
    app.setStyle(QStyleFactory.create("Fusion"))
    if theme == "dark":
        import qdarkstyle

        app.setStyleSheet(qdarkstyle.load_stylesheet(qt_api="pyside6"))
    else:
        app.setStyleSheet("")
        app.setPalette(app.style().standardPalette())
