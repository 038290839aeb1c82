"""A busy indicator with Cancel for the status bar: opening a photo and finding its faces.

dlib's detectors report no progress (the CNN one takes seconds on a big photo), so the bar shows the
step ("Loading", "Finding faces") and runs indeterminate while a step has no fraction to show. Cancel
returns control at once; the job's result is discarded when it arrives.
"""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QWidget


class BusyIndicator(QWidget):
    cancel_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.label = QLabel()
        self.bar = QProgressBar()
        self.bar.setMaximumWidth(140)
        self.bar.setTextVisible(False)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop and keep the photo that is open now")
        self.cancel_button.clicked.connect(self.cancel_requested)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.label)
        layout.addWidget(self.bar)
        layout.addWidget(self.cancel_button)
        self.hide()

    def start(self, text: str) -> None:
        self.label.setText(text)
        self.bar.setRange(0, 0)
        self.cancel_button.setEnabled(True)
        self.show()

    def show_step(self, text: str, _fraction: float) -> None:
        """A job's progress: the step's name; the bar stays indeterminate (no detector reports more)."""
        self.label.setText(text)

    def stop(self) -> None:
        self.hide()

    @property
    def busy(self) -> bool:
        return self.isVisible()
