"""File → Train custom attribute…: opens the training dialog and, when it has installed a model, reloads
the models and selects the new edit in the list."""

from __future__ import annotations

from pathlib import Path

from diat_studio.gui.train_dialog import TrainDialog


class TrainingActions:
    """Mixed into MainWindow (which provides registry, edits, banner, settings and reload_models)."""

    train_dialog: TrainDialog | None = None
    _select_after_reload: str | None = None

    def open_train_dialog(self) -> TrainDialog:
        """One dialog at a time: reopening shows the running one (its training keeps going while hidden)."""
        if self.train_dialog is None:
            self.train_dialog = TrainDialog(self)  # type: ignore[arg-type]
            self.train_dialog.trained.connect(self._on_trained)
        self.train_dialog.show()
        self.train_dialog.raise_()
        self.train_dialog.activateWindow()
        return self.train_dialog

    def _on_trained(self, folder: Path) -> None:
        self._select_after_reload = Path(folder).name
        self.reload_models()  # type: ignore[attr-defined]

    def _select_trained(self) -> None:
        """After a reload that follows a training: select the new edit, or say why it is not listed."""
        name, self._select_after_reload = self._select_after_reload, None
        if name is None:
            return
        if self.edits.select_model(name):  # type: ignore[attr-defined]
            self.banner.show_message("info", f"The new edit “{name}” is ready in the list.")  # type: ignore[attr-defined]
            return
        entry = next((e for e in self.registry.entries if e.name == name), None)  # type: ignore[attr-defined]
        if entry is not None and entry.experimental and not self.settings.show_experimental:  # type: ignore[attr-defined]
            reason = "it missed its quality bar: Settings › Show experimental models lists it"
        elif entry is not None and not entry.available:
            reason = f"it cannot be used: {entry.reason}"
        else:
            reason = "it was not found in the model folders"
        self.banner.show_message("warning", f"The new edit “{name}” is installed but not listed: {reason}.")  # type: ignore[attr-defined]

    def _close_train_dialog(self) -> None:
        """Closing the window stops a running training cleanly (checkpoint, resumable), not by a kill."""
        if self.train_dialog is not None:
            self.train_dialog.stop_and_wait()
