"""Drives the real application (`run_gui`, as `diat-studio` starts it) in its own process, for the tests
that need a whole process: being killed, and quitting.

    python -m tests.gui.app_driver edit OUT PHOTO   open PHOTO, reshape a mask, apply an edit, wait until
                                                    the journal has it, print READY; then idle (to be killed)
    python -m tests.gui.app_driver restore OUT      start again (restoring), write what came back, quit
    python -m tests.gui.app_driver quit OUT PHOTO   open PHOTO, apply an edit, use Settings and the batch
                                                    dialog, then quit normally

What a step saw goes to OUT (JSON and .npy files). The model `redden-mouth` must be installed in the
per-user models folder, and QT_QPA_PLATFORM, XDG_CONFIG_HOME and XDG_DATA_HOME set by the caller.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QMessageBox

from diat_studio.core.regions import RegionKind
from diat_studio.gui.app import run_gui
from diat_studio.gui.main_window import MainWindow
from diat_studio.gui.settings_dialog import SettingsDialog

MODEL = "redden-mouth"
MASK_SHIFT = (3.0, 2.0)


def window() -> MainWindow | None:
    return next((w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow)), None)


def idle(main: MainWindow | None) -> bool:
    if main is None or main.document is None or main.edit_job is not None:
        return False
    restorer = getattr(main, "restorer", None)
    return (
        getattr(main, "models_ready", main.edits.current_entry() is not None)
        and getattr(main, "open_job", None) is None
        and (restorer is None or not restorer.running)
    )


def mask_points(main: MainWindow) -> list[list[float]]:
    assert main.document is not None
    return [list(point) for point in main.document.polygon(0, RegionKind.MOUTH).points]


class Script:
    """Steps run one after another, each once its condition holds (polled every 100 ms)."""

    def __init__(self, steps: list[tuple[Callable[[], bool], Callable[[], None]]]) -> None:
        self.steps = steps
        self.timer = QTimer()
        self.timer.timeout.connect(self.poll)
        self.timer.start(100)

    def poll(self) -> None:
        if self.steps and self.steps[0][0]():
            _condition, action = self.steps.pop(0)
            action()


def edit_steps(out: Path) -> list[tuple[Callable[[], bool], Callable[[], None]]]:
    def reshape_and_apply() -> None:
        main = window()
        assert main is not None and main.document is not None and main.edits.select_model(MODEL)
        polygon = main.document.polygon(0, RegionKind.MOUTH)
        x, y = polygon.points[0]
        main.canvas.mask_changed.emit(0, polygon.move_vertex(0, x + MASK_SHIFT[0], y + MASK_SHIFT[1]))
        main.apply_edit()

    def journalled() -> bool:
        main = window()
        if not idle(main) or not main.journal.path.is_file():  # type: ignore[union-attr]
            return False
        try:
            data = json.loads(main.journal.path.read_text())  # type: ignore[union-attr]
        except ValueError:
            return False
        return len(data["edits"]) == 1 and len(data["masks"]) == 1

    def report() -> None:
        main = window()
        assert main is not None and main.document is not None
        np.save(out / "edited.npy", main.document.pixels)
        state = {"journal": str(main.journal.path), "mask": mask_points(main), "title": main.windowTitle()}
        (out / "edited.json").write_text(json.dumps(state))
        print("READY", flush=True)

    return [(lambda: idle(window()), reshape_and_apply), (journalled, report)]


def restore_steps(out: Path) -> list[tuple[Callable[[], bool], Callable[[], None]]]:
    def report_and_quit() -> None:
        main = window()
        assert main is not None and main.document is not None
        document = main.document
        np.save(out / "restored.npy", document.pixels)
        state = {
            "restored": main.restorer is not None,
            "photo": str(document.path),
            "mask": mask_points(main),
            "mask_edited": document.is_mask_edited(0, RegionKind.MOUTH),
            "applied": [edit.label for edit in document.applied],
            "history": [main.undo_stack.text(i) for i in range(main.undo_stack.count())],
            "clean": main.undo_stack.isClean(),
            "title": main.windowTitle(),
            "banner": main.banner.text,
            "journal": str(main.journal.path),
        }
        (out / "restored.json").write_text(json.dumps(state))
        main.close()

    return [(lambda: idle(window()), report_and_quit)]


def quit_steps(out: Path) -> list[tuple[Callable[[], bool], Callable[[], None]]]:
    def apply() -> None:
        main = window()
        assert main is not None and main.edits.select_model(MODEL)
        main.apply_edit()

    def dialogs_then_quit() -> None:
        main = window()
        assert main is not None
        QTimer.singleShot(300, accept_settings)
        main.open_settings()  # the real dialog, run modally, accepted
        batch = main.open_batch_dialog()
        batch.close()
        (out / "quit.json").write_text(json.dumps({"edits": main.undo_stack.count()}))
        main.close()

    def edited() -> bool:
        main = window()
        return idle(main) and main.undo_stack.count() == 1  # type: ignore[union-attr]

    return [(lambda: idle(window()), apply), (edited, dialogs_then_quit)]


def accept_settings() -> None:
    for widget in QApplication.topLevelWidgets():
        if isinstance(widget, SettingsDialog) and widget.isVisible():
            widget.accept()


def main(argv: list[str]) -> int:
    mode, out, *photo = argv
    app = QApplication([sys.argv[0]])
    # Quitting with unsaved work asks to save: the driver discards (the journal must then go too).
    discard = staticmethod(lambda *_a, **_k: QMessageBox.StandardButton.Discard)
    QMessageBox.question = discard  # type: ignore[method-assign]
    steps = {"edit": edit_steps, "restore": restore_steps, "quit": quit_steps}[mode](Path(out))
    script = Script(steps)
    code = run_gui(photo)
    script.timer.stop()
    del app
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
