"""`diat-studio` without a command: the desktop window."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from diat_studio.core.paths import resource_path


def run_gui(args: Sequence[str]) -> int:
    """Open the window: on the work of a session that did not close normally if the user restores it,
    else on a photo given on the command line, or on the bundled sample on first start."""
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
    if "--smoke-test" in args:
        return _smoke_test(app, window, photos[0] if photos else resource_path("sample", "astronaut.jpg"))
    first_start = not settings.store.value("started_before", False, bool)
    if window.check_recovery() is not None:
        pass  # the unsaved work of a session that did not close normally comes back instead
    elif photos:
        open_later(window, photos[0])
    elif first_start and resource_path("sample", "astronaut.jpg").is_file():
        open_later(window, resource_path("sample", "astronaut.jpg"))
    settings.store.setValue("started_before", True)
    return int(app.exec())


def _smoke_test(app: object, window: object, photo: Path) -> int:
    """Open a photo in the real window, report the faces found and quit: 0 if at least one face."""
    from PySide6.QtCore import QTimer

    outcome = {"code": 1}

    def opened() -> None:
        document = window.document  # type: ignore[attr-defined]
        faces = len(document.faces) if document is not None else 0
        message = window.banner.text  # type: ignore[attr-defined]
        print(
            f"smoke test: {photo.name}: {faces} face(s), {len(window.canvas.landmarks)} landmarks"  # type: ignore[attr-defined]
            + (f"; {message}" if message else "")
        )
        outcome["code"] = 0 if faces else 1
        window.undo_stack.setClean()  # type: ignore[attr-defined]
        window.close()  # type: ignore[attr-defined]

    def start() -> None:
        job = window.open_path(photo)  # type: ignore[attr-defined]
        job.signals.done.connect(lambda: QTimer.singleShot(200, opened))

    QTimer.singleShot(0, start)
    QTimer.singleShot(120_000, lambda: (print("smoke test: timed out"), window.close()))  # type: ignore[attr-defined]
    app.exec()  # type: ignore[attr-defined]
    return outcome["code"]
