"""Help → About and Help → Keyboard and mouse: the two message boxes, kept out of the main window."""

from __future__ import annotations

from PySide6.QtWidgets import QMessageBox, QWidget

from diat_studio import __version__


def show_about(parent: QWidget) -> None:
    QMessageBox.about(
        parent,
        "About DIAT Studio",
        f"<b>DIAT Studio {__version__}</b><p>Changes one facial attribute while keeping the person "
        "recognisable: Deep Identity-aware Transfer of Facial Attributes (DIAT / DIAT-A, "
        "arXiv 1610.05586)."
        "</p><p>Bundled models are trained on CelebA / UTKFace: non-commercial research use only.</p>",
    )


def show_keys(parent: QWidget) -> None:
    QMessageBox.information(
        parent,
        "Keyboard and mouse",
        "Wheel: zoom · drag: pan · Ctrl+0 fit · Ctrl+1 100%\n"
        "Click a face to select it, Ctrl+click for several\n"
        "Mask: drag a handle to move it, double-click the outline to add a vertex, select a handle and "
        "press Delete to remove it; Ctrl+R resets the mask\n"
        "Hold \\ to see the photo before the edits · S toggles the split view\n"
        "Ctrl+Z undo · Ctrl+Shift+Z or Ctrl+Y redo · Ctrl+Enter apply the selected edit",
    )
