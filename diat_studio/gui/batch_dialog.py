"""File → Batch process folder…: the core batch in a background job, with progress, ETA and Cancel.

The edits offered are the usable models, experimental ones only when Show experimental models is on.
The input and output folders are remembered in the settings. After Cancel the dialog says so, shows the
partial summary and opens the report written so far; when no desktop application can open the report or
the folder, their path is shown instead.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from diat_studio.core.batch import REPORT_JSON, BatchReport, BatchRunner, BatchSettings, FileResult
from diat_studio.core.faces import FaceDetector
from diat_studio.core.inference import Device, SessionCache, load_attribute_model
from diat_studio.core.progress import format_duration
from diat_studio.core.registry import ModelEntry, ModelRegistry
from diat_studio.gui.file_actions import dialog_folder
from diat_studio.gui.settings import AppSettings
from diat_studio.gui.workers import Job, JobRunner


class BatchDialog(QDialog):
    def __init__(
        self,
        registry: ModelRegistry,
        sessions: SessionCache,
        detector: Callable[[], FaceDetector],
        device: Device,
        parent: QWidget | None = None,
        *,
        include_experimental: bool = False,
        settings: AppSettings | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Batch process folder")
        self.setModal(False)
        self.registry = registry
        self.sessions = sessions
        self.detector = detector
        self.jobs = JobRunner(self)
        self.job: Job | None = None
        self.runner: BatchRunner | None = None
        self.report: BatchReport | None = None
        self.started = 0.0
        self.settings = settings

        self.input_edit = QLineEdit(settings.batch_folder("input") if settings else "")
        self.output_edit = QLineEdit(settings.batch_folder("output") if settings else "")
        self.edits = QListWidget()
        self.recursive = QCheckBox("Include sub-folders")
        self.faces = QComboBox()
        self.faces.addItem("All faces", "all")
        self.faces.addItem("Largest face only", "largest")
        self.device = QComboBox()
        for label, value in (("Auto", Device.AUTO), ("CUDA", Device.CUDA), ("CPU", Device.CPU)):
            self.device.addItem(label, value)
        self.device.setCurrentIndex([Device.AUTO, Device.CUDA, Device.CPU].index(device))
        self.strength = QDoubleSpinBox()
        self.strength.setRange(0.0, 1.0)
        self.strength.setSingleStep(0.1)
        self.strength.setValue(1.0)
        self.progress = QProgressBar()
        self.progress.setRange(0, 100)
        self.status = QLabel("Choose the folders and the edits, then Start.")
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        self.start_button = QPushButton("Start")
        self.start_button.clicked.connect(self.start)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        self.report_button = QPushButton("Open report")
        self.report_button.setEnabled(False)
        self.report_button.clicked.connect(self.open_report)
        self.folder_button = QPushButton("Open output folder")
        self.folder_button.setEnabled(False)
        self.folder_button.clicked.connect(self.open_output)

        form = QFormLayout()
        form.addRow("Input folder", self._with_browse(self.input_edit, self._browse_input))
        form.addRow("Output folder", self._with_browse(self.output_edit, self._browse_output))
        form.addRow("Edits (in order)", self.edits)
        form.addRow("", self.recursive)
        form.addRow("Faces", self.faces)
        form.addRow("Strength", self.strength)
        form.addRow("Device", self.device)
        buttons = QHBoxLayout()
        for button in (self.start_button, self.cancel_button, self.report_button, self.folder_button):
            buttons.addWidget(button)
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        close.rejected.connect(self.close)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addWidget(self.summary)
        layout.addLayout(buttons)
        layout.addWidget(close)
        self.set_models(registry, include_experimental)

    def set_models(self, registry: ModelRegistry, include_experimental: bool) -> None:
        """Offer the registry's usable models (experimental ones only if asked); ticked edits that are
        still offered stay ticked."""
        ticked = set(self.chosen_edits())
        self.registry = registry
        self.edits.clear()
        entries = registry.visible(include_experimental)
        for entry in entries:
            item = QListWidgetItem(entry.label)
            item.setData(Qt.ItemDataRole.UserRole, entry.name)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            ticked_now = entry.name in ticked
            item.setCheckState(Qt.CheckState.Checked if ticked_now else Qt.CheckState.Unchecked)
            if entry.experimental:
                item.setToolTip("Experimental: does not pass its quality bar yet (see its model card)")
            self.edits.addItem(item)
        if not self.running:
            self.start_button.setEnabled(bool(entries))
        if not entries:
            hidden = 0 if include_experimental else len(registry.hidden_experimental())
            self.status.setText(
                f"No usable model is offered: {hidden} experimental model(s) are hidden (turn on Show "
                "experimental models in Settings)."
                if hidden
                else "No usable models are installed: a batch needs at least one edit."
            )
        elif not self.running and self.report is None:
            self.status.setText("Choose the folders and the edits, then Start.")

    def _with_browse(self, edit: QLineEdit, browse_slot: Callable[[], None]) -> QWidget:
        row = QWidget()
        layout = QHBoxLayout(row)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(edit, 1)
        browse = QPushButton("Browse…")
        browse.clicked.connect(browse_slot)
        layout.addWidget(browse)
        return row

    def _browse_input(self) -> None:
        self._browse(self.input_edit, "input", "Choose the folder of photos")

    def _browse_output(self) -> None:
        self._browse(self.output_edit, "output", "Choose where the edited photos go")

    def _browse(self, edit: QLineEdit, which: str, title: str) -> None:
        current = Path(edit.text()) if edit.text() else None
        start = str(current) if current is not None and current.is_dir() else ""
        if not start:
            start = dialog_folder(self.settings.last_folder if self.settings else None)
        folder = QFileDialog.getExistingDirectory(self, title, start)
        if folder:
            edit.setText(folder)
            self._remember(which, folder)

    def _remember(self, which: str, folder: str) -> None:
        if self.settings is not None and folder:
            self.settings.set_batch_folder(which, folder)

    def set_edits(self, names: list[str]) -> None:
        for row in range(self.edits.count()):
            item = self.edits.item(row)
            checked = item.data(Qt.ItemDataRole.UserRole) in names
            item.setCheckState(Qt.CheckState.Checked if checked else Qt.CheckState.Unchecked)

    def chosen_edits(self) -> list[str]:
        return [
            self.edits.item(row).data(Qt.ItemDataRole.UserRole)
            for row in range(self.edits.count())
            if self.edits.item(row).checkState() == Qt.CheckState.Checked
        ]

    @property
    def running(self) -> bool:
        return self.job is not None

    def start(self) -> None:
        from diat_studio.core.errors import DiatError

        edits = self.chosen_edits()
        if not self.input_edit.text() or not self.output_edit.text():
            self.status.setText("Choose an input and an output folder.")
            return
        if not edits:
            self.status.setText("Tick at least one edit.")
            return
        device = self.device.currentData()
        settings = BatchSettings(
            strength=self.strength.value(),
            faces=self.faces.currentData(),
            recursive=self.recursive.isChecked(),
        )
        try:
            entries = [self.registry.get(name) for name in edits]
        except DiatError as exc:
            self.status.setText(str(exc))
            return
        self._remember("input", self.input_edit.text())
        self._remember("output", self.output_edit.text())
        self.report = None
        self.runner = None
        self.summary.setText("")
        self.progress.setValue(0)
        self.started = time.monotonic()
        self.status.setText("Loading the models…")
        folders = (Path(self.input_edit.text()), Path(self.output_edit.text()))
        self.job = Job(self._run, entries, device, folders, settings, name="batch")
        self.job.signals.progress.connect(self._on_progress)
        self.job.signals.finished.connect(self._on_finished)
        self.job.signals.failed.connect(self._on_failed)
        self.job.signals.cancelled.connect(self._on_cancelled)
        self.job.signals.done.connect(self._on_done)
        self.start_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.report_button.setEnabled(False)
        self.folder_button.setEnabled(False)
        self.jobs.start(self.job)

    def _run(
        self,
        job: Job,
        entries: list[ModelEntry],
        device: Device,
        folders: tuple[Path, Path],
        settings: BatchSettings,
    ) -> BatchReport:
        """In the background: create the ONNX sessions and the face detector, then run the batch."""
        models = [load_attribute_model(entry, device, self.sessions) for entry in entries]
        notices = {model.providers.message for model in models if model.providers.message}
        job.report(" ".join(notices) or f"Running on {models[0].providers.label}", 0.0)
        runner = BatchRunner(*folders, models, self.detector(), settings)
        self.runner = runner
        if job.is_cancelled():
            runner.cancel()

        def progress(done: int, total: int, result: FileResult) -> None:
            job.report(f"{done}/{total} {result.path}: {result.status.value}", done / max(total, 1))
            if job.is_cancelled():
                runner.cancel()

        runner.progress = progress
        report = runner.run()
        # A cancelled job delivers `cancelled`, not its result: keep what the dialog shows then.
        job.partial = (report, (folders[1] / REPORT_JSON).is_file())  # type: ignore[attr-defined]
        return report

    def _on_progress(self, text: str, fraction: float) -> None:
        self.progress.setValue(round(100 * fraction))
        if fraction <= 0:  # nothing finished yet: no basis for an estimate
            self.status.setText(f"{text} — ETA estimating…")
            return
        elapsed = time.monotonic() - self.started
        eta = elapsed * (1 - fraction) / fraction
        self.status.setText(f"{text} — ETA {format_duration(eta)}")

    def _on_finished(self, report: BatchReport) -> None:
        self.report = report
        self.progress.setValue(100 if not report.cancelled else self.progress.value())
        self.summary.setText(report.summary())
        self.status.setText("Cancelled." if report.cancelled else "Finished.")
        self.report_button.setEnabled(True)
        self.folder_button.setEnabled(True)

    def _on_cancelled(self) -> None:
        job = self.job  # still set: `done` comes after `cancelled`
        report, written = getattr(job, "partial", (None, False))
        if report is not None:
            self.report = report
            self.summary.setText(report.summary())
        self.status.setText(
            "Cancelled." + ("" if written else " No file was finished, so there is no report yet.")
        )
        self.report_button.setEnabled(written)
        self.folder_button.setEnabled(True)

    def _on_failed(self, message: str) -> None:
        self.status.setText(message)

    def _on_done(self) -> None:
        self.job = None
        self.start_button.setEnabled(True)
        self.cancel_button.setEnabled(False)

    def cancel(self) -> None:
        if self.job is not None:
            self.job.cancel()
            if self.runner is not None:
                self.runner.cancel()
            self.status.setText("Cancelling after the current file…")

    def open_report(self) -> None:
        self._open(Path(self.output_edit.text()) / REPORT_JSON, "the report")

    def open_output(self) -> None:
        self._open(Path(self.output_edit.text()), "the output folder")

    def _open(self, path: Path, what: str) -> None:
        """Open `path` with the desktop's application; if there is none, show the path to copy."""
        if not QDesktopServices.openUrl(QUrl.fromLocalFile(str(path))):
            self.status.setText(f"No application could open {what}. It is here:\n{path}")

    def closeEvent(self, event) -> None:
        self.cancel()
        self.jobs.wait(60000)
        super().closeEvent(event)
