"""Restoring a session after a crash: the journalled photo, its edits redone in order, its masks put back.

The photo is opened with the faces found before (no new detection), then every edit is redone by the same
background edit job as Apply, with the model, strength, feather, faces and mask polygons it used; then
the reshaped masks and the face selection come back. Everything lands on the undo stack as if done by
hand, and the document is left unsaved (the journal keeps covering it until it is saved).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Signal

from diat_studio.core.errors import DiatError
from diat_studio.gui.commands import SetMaskCommand
from diat_studio.gui.recovery import RecoveryState

if TYPE_CHECKING:
    from diat_studio.gui.main_window import MainWindow


class SessionRestorer(QObject):
    finished = Signal(bool)
    """Emitted once: True when the photo and every edit came back."""

    def __init__(self, window: MainWindow, state: RecoveryState) -> None:
        super().__init__(window)
        self.window = window
        self.state = state
        self.redone = 0
        self.running = False

    def start(self) -> None:
        self.running = True
        if self.window.models_ready:
            self._open()
        else:
            self.window.models_loaded.connect(self._on_models_loaded)

    def _on_models_loaded(self) -> None:
        self.window.models_loaded.disconnect(self._on_models_loaded)
        self._open()

    def _open(self) -> None:
        job = self.window.open_path(self.state.photo, faces=self.state.faces)
        if job is None:
            self._finish(False, "the photo could not be opened")
            return
        job.signals.finished.connect(self._next_edit)  # after the window's own handler: document is set
        job.signals.failed.connect(lambda message: self._finish(False, message))
        job.signals.cancelled.connect(lambda: self._finish(False, "cancelled"))

    def _next_edit(self, *_args: object) -> None:
        document = self.window.document
        if document is None or document.path != self.state.photo:
            self._finish(False, "another photo was opened")
            return
        if self.redone == len(self.state.edits):
            self._put_back_masks()
            return
        recipe = self.state.edits[self.redone]
        try:
            entry = self.window.registry.get(recipe.model)
        except DiatError as exc:
            self._finish(False, f"“{recipe.label}” cannot be redone: {exc}")
            return
        job = self.window.run_edit(entry, recipe)
        if job is None:
            self._finish(False, f"“{recipe.label}” cannot be redone")
            return
        applied = len(document.applied)
        job.signals.failed.connect(lambda message: self._finish(False, f"“{recipe.label}”: {message}"))
        job.signals.cancelled.connect(lambda: self._finish(False, f"“{recipe.label}” was cancelled"))
        job.signals.done.connect(lambda: self._edit_done(applied))

    def _edit_done(self, applied_before: int) -> None:
        document = self.window.document
        if not self.running or document is None or len(document.applied) != applied_before + 1:
            return
        self.redone += 1
        self._next_edit()

    def _put_back_masks(self) -> None:
        document = self.window.document
        assert document is not None
        stack = self.window.undo_stack
        for (face, region), polygon in self.state.masks.items():
            if 0 <= face < len(document.faces):
                stack.push(SetMaskCommand(document, face, region, polygon, "Restore mask"))
        document.select(set(self.state.selected))
        if self.state.saved_path is not None:
            document.saved_path = self.state.saved_path
        self._finish(True, "")

    def _finish(self, complete: bool, problem: str) -> None:
        if not self.running:
            return
        self.running = False
        window = self.window
        if complete:
            window.banner.show_message(
                "info",
                f"Restored {self.state.describe()} from the session that did not close normally. "
                "Save it to keep it.",
            )
        else:
            window.banner.show_message(
                "warning",
                f"Restored {self.state.photo.name} with {self.redone} of {len(self.state.edits)} edits: "
                f"{problem}.",
            )
        window.undo_stack.resetClean()  # restored work is unsaved work
        window._update_title()
        self.finished.emit(complete)
