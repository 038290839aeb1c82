"""Helpers shared by the window tests: waiting for background jobs and opening photos."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from diat_studio.core.paths import resource_path
from diat_studio.gui.images import from_qimage
from diat_studio.gui.main_window import MainWindow

SAMPLE = resource_path("sample", "astronaut.jpg")
TIMEOUT = 60_000


def finish(qtbot, job) -> None:
    """Wait until a background job is done and all its signals have reached the window."""
    assert job is not None
    qtbot.waitUntil(lambda: job.completed, timeout=TIMEOUT)


def open_photo(qtbot, window: MainWindow, path: Path) -> None:
    finish(qtbot, window.open_path(path))


def canvas_pixels(window: MainWindow) -> np.ndarray:
    return from_qimage(window.canvas.photo.after.toImage())
