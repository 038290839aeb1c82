"""`diat-studio` without a command: the desktop window."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from diat_studio.core.paths import resource_path


def run_gui(args: Sequence[str]) -> int:
    """Open the window on a photo given on the command line, or on the bundled sample on first start."""
    from PySide6.QtGui import QIcon
    from PySide6.QtWidgets import QApplication

    from diat_studio.gui.main_window import MainWindow, open_later
    from diat_studio.gui.settings import AppSettings
    from diat_studio.gui.theme import apply_theme

    app = QApplication.instance() or QApplication([sys.argv[0], *args])
    app.setApplicationName("DIAT Studio")
    app.setOrganizationName("DIAT Studio")
    icon = resource_path("icons", "diat-studio.svg")
    if icon.is_file():
        app.setWindowIcon(QIcon(str(icon)))
    settings = AppSettings()
    apply_theme(app, settings.theme)  # type: ignore[arg-type]
    window = MainWindow(settings)
    window.show()
    photos = [Path(arg) for arg in args if not arg.startswith("-")]
    first_start = not settings.store.value("started_before", False, bool)
    if photos:
        open_later(window, photos[0])
    elif first_start and resource_path("sample", "astronaut.jpg").is_file():
        open_later(window, resource_path("sample", "astronaut.jpg"))
    settings.store.setValue("started_before", True)
    return int(app.exec())
