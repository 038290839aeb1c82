"""File → Train custom attribute…: two folders of photos (with and without the attribute), a name, a
region and a preset; `diat-studio-train custom … --install` runs in the background with progress, ETA and
Cancel, and the installed model's folder is announced by `trained` when it is done.

The window drives the same code path as the command: it starts the trainer as a separate process
(`python -m trainer.cli`, or `diat-studio-train` on the PATH) and reads the JSON progress events it writes
with `--json-progress` (trainer/custom_report.py). The app never imports the trainer or torch (an
import-linter contract): where the trainer is not installed, the dialog says how to install it.

Cancel sends SIGTERM: the trainer finishes its step, saves a checkpoint and exits 143; pressing Train
again with the same settings continues where it stopped. Closing the dialog only hides it: the training
goes on in the background and the window announces the new edit when it is done (the work lives in the
per-user data folder, under training/NAME).
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PySide6.QtCore import QProcess, QStandardPaths, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from diat_studio.core.paths import user_data_dir
from diat_studio.core.progress import format_duration

#: The presets `custom` offers, with the minutes its --help states (trainer/custom_plan.py; a test keeps
#: the two in step).
PRESETS: tuple[tuple[str, str], ...] = (
    ("quick", "Quick — about 10 minutes"),
    ("standard", "Standard — about 32 minutes"),
    ("best", "Best — about 80 minutes"),
)
REGIONS: tuple[tuple[str, str], ...] = (
    ("face", "Whole face"),
    ("mouth", "Mouth"),
    ("eyes", "Eyes"),
)
EXIT_STOPPED = (130, 143)
#: How long closing the dialog waits for a cancelled trainer to save its checkpoint.
CLOSE_WAIT_MS = 60_000


def trainer_command() -> list[str] | None:
    """How to start `diat-studio-train`: this Python with the trainer module when it and torch are
    installed beside the app (a source checkout), else the command on the PATH; None when neither."""
    frozen = getattr(sys, "frozen", False)
    if not frozen and importlib.util.find_spec("trainer") and importlib.util.find_spec("torch"):
        return [sys.executable, "-m", "trainer.cli"]
    found = shutil.which("diat-studio-train")
    return [found] if found else None


class TrainDialog(QDialog):
    trained = Signal(object)
    """The installed model's folder (a Path), when the training has finished."""

    def __init__(
        self,
        parent: QWidget | None = None,
        *,
        command: Sequence[str] | None = None,
        workspace_root: Path | None = None,
        extra_arguments: Sequence[str] = (),
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Train custom attribute")
        self.setModal(False)
        self.command = (list(command) or None) if command is not None else trainer_command()
        self.workspace_root = workspace_root or user_data_dir() / "training"
        self.extra_arguments = list(extra_arguments)
        self.process: QProcess | None = None
        self.installed: Path | None = None
        self.experimental = False
        self.exit_code: int | None = None
        self._buffer = b""
        self._error = ""
        self._step = ""

        self.with_edit = QLineEdit()
        self.without_edit = QLineEdit()
        self.name_edit = QLineEdit()
        self.name_edit.setPlaceholderText("e.g. add-beard")
        self.region = QComboBox()
        for value, label in REGIONS:
            self.region.addItem(label, value)
        self.direction = QComboBox()
        self.direction.addItem("Add the attribute (without → with)", "add")
        self.direction.addItem("Remove it (with → without)", "remove")
        self.preset = QComboBox()
        for value, label in PRESETS:
            self.preset.addItem(label, value)

        form = QFormLayout()
        form.addRow("Photos with the attribute:", self._folder_row(self.with_edit))
        form.addRow("Photos without it:", self._folder_row(self.without_edit))
        form.addRow("Name:", self.name_edit)
        form.addRow("Region:", self.region)
        form.addRow("Edit:", self.direction)
        form.addRow("Preset:", self.preset)

        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.status = QLabel("At least 20 photos in each folder; a few hundred train a far better edit.")
        self.status.setWordWrap(True)
        self.output = QPlainTextEdit()
        self.output.setReadOnly(True)
        self.output.setMaximumBlockCount(2000)
        self.train_button = QPushButton("Train")
        self.cancel_button = QPushButton("Cancel")
        self.close_button = QPushButton("Close")
        self.cancel_button.setEnabled(False)
        self.train_button.clicked.connect(self.start)
        self.cancel_button.clicked.connect(self.cancel)
        self.close_button.clicked.connect(self.close)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        for button in (self.train_button, self.cancel_button, self.close_button):
            buttons.addWidget(button)

        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addWidget(self.output, 1)
        layout.addLayout(buttons)
        if self.command is None:
            self.train_button.setEnabled(False)
            self.status.setText(
                "Training needs the trainer and torch, which this installation does not have: in a source "
                "checkout run pip install -e '.[train]'."
            )

    # -- the form --------------------------------------------------------------------------------------------

    def _folder_row(self, edit: QLineEdit) -> QWidget:
        row = QWidget()
        layout = QHBoxLayout(row)
        layout.setContentsMargins(0, 0, 0, 0)
        browse = QPushButton("Browse…")
        browse.clicked.connect(lambda: self._browse(edit))
        layout.addWidget(edit, 1)
        layout.addWidget(browse)
        return row

    def _browse(self, edit: QLineEdit) -> None:
        start = edit.text() or QStandardPaths.writableLocation(
            QStandardPaths.StandardLocation.PicturesLocation
        )
        folder = QFileDialog.getExistingDirectory(
            self, "Choose a folder of photos", start or str(Path.home())
        )
        if folder:
            edit.setText(folder)

    def arguments(self) -> list[str]:
        """The `diat-studio-train` arguments for what the form says."""
        name = self.name_edit.text().strip()
        return [
            "custom",
            self.with_edit.text().strip(),
            self.without_edit.text().strip(),
            "--name",
            name,
            "--region",
            str(self.region.currentData()),
            "--direction",
            str(self.direction.currentData()),
            "--preset",
            str(self.preset.currentData()),
            "--workspace",
            str(self.workspace_root / name),
            "--install",
            "--json-progress",
            *self.extra_arguments,
        ]

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.state() != QProcess.ProcessState.NotRunning

    # -- running -----------------------------------------------------------------------------------------

    def start(self) -> None:
        if self.running or self.command is None:
            return
        missing = [
            label
            for label, edit in (
                ("the folder with the attribute", self.with_edit),
                ("the folder without it", self.without_edit),
                ("a name", self.name_edit),
            )
            if not edit.text().strip()
        ]
        if missing:
            self.status.setText("Choose " + ", ".join(missing) + ".")
            return
        self.installed, self.exit_code, self._error, self._buffer = None, None, "", b""
        self.output.clear()
        self.progress.setValue(0)
        self.status.setText("Checking the photos and settings…")
        process = QProcess(self)
        process.setProgram(self.command[0])
        process.setArguments([*self.command[1:], *self.arguments()])
        process.readyReadStandardOutput.connect(self._read_events)
        process.readyReadStandardError.connect(self._read_messages)
        process.finished.connect(self._finished)
        process.errorOccurred.connect(self._failed_to_start)
        self.process = process
        self._set_running(True)
        process.start()

    def cancel(self) -> None:
        """SIGTERM: the trainer saves a checkpoint and stops; Train continues from there."""
        if self.running:
            assert self.process is not None
            self.status.setText("Stopping after the current step (the work so far is kept)…")
            self.cancel_button.setEnabled(False)
            self.process.terminate()

    def _set_running(self, running: bool) -> None:
        self.train_button.setEnabled(not running and self.command is not None)
        self.cancel_button.setEnabled(running)
        for widget in (self.with_edit, self.without_edit, self.name_edit, self.region, self.direction):
            widget.setEnabled(not running)
        self.preset.setEnabled(not running)

    def _read_events(self) -> None:
        assert self.process is not None
        self._buffer += bytes(self.process.readAllStandardOutput().data())
        *lines, self._buffer = self._buffer.split(b"\n")
        for line in lines:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict):
                self._event(event)

    def _event(self, event: dict[str, Any]) -> None:
        kind = event.get("event")
        if kind == "step":
            self._step = f"Step {event.get('index')} of {event.get('count')}: {event.get('title', '')}"
            self.status.setText(self._step)
        elif kind == "progress":
            self.progress.setValue(round(1000 * float(event.get("fraction", 0.0))))
            if "done" in event:
                rate, eta = float(event.get("rate", 0.0)), float(event.get("eta_seconds", 0.0))
                detail = f"{event['done']}/{event['total']} {event.get('unit', '')}"
                if rate > 0:
                    detail += f", {rate:.2f}/s, {format_duration(eta)} left in this step"
                self.status.setText(f"{self._step}\n{detail}")
        elif kind == "finished":
            self.installed = Path(event["installed"]) if event.get("installed") else None
            self.experimental = bool(event.get("experimental"))
        elif kind == "error":
            self._error = str(event.get("message", ""))

    def _read_messages(self) -> None:
        assert self.process is not None
        text = bytes(self.process.readAllStandardError().data()).decode("utf-8", "replace")
        for line in text.splitlines():
            if line.strip():
                self.output.appendPlainText(line.rstrip())

    def _failed_to_start(self, error: QProcess.ProcessError) -> None:
        if error == QProcess.ProcessError.FailedToStart:
            self._set_running(False)
            self.status.setText(f"The trainer could not be started ({' '.join(self.command or [])}).")

    def _finished(self, exit_code: int, _status: QProcess.ExitStatus) -> None:
        self._read_events()
        self._read_messages()
        self.exit_code = exit_code
        self._set_running(False)
        if exit_code == 0 and self.installed is not None:
            self.progress.setValue(1000)
            note = (
                " It missed its quality bar, so it is marked experimental: Settings › Show experimental "
                "models shows it."
                if self.experimental
                else ""
            )
            self.status.setText(f"Done: the edit is installed in {self.installed}.{note}")
            self.trained.emit(self.installed)
        elif exit_code in EXIT_STOPPED:
            self.status.setText("Stopped. Press Train with the same settings to continue where it stopped.")
        else:
            reason = self._error or self._last_error_line() or f"exit code {exit_code}"
            self.status.setText(f"Training failed: {reason}")

    def _last_error_line(self) -> str:
        lines = [line for line in self.output.toPlainText().splitlines() if line.strip()]
        problems = [line for line in lines if "error" in line.lower() or line.lstrip().startswith("- ")]
        return "\n".join(problems[-6:]) if problems else (lines[-1] if lines else "")

    def stop_and_wait(self) -> None:
        """When the app quits: cancel a running training and wait (at most CLOSE_WAIT_MS) for its
        checkpoint — a trainer killed with its QProcess would lose the steps since its last one."""
        if self.running:
            assert self.process is not None
            self.cancel()
            self.process.waitForFinished(CLOSE_WAIT_MS)
