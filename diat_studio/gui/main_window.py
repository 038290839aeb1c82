"""The main window: wires the canvas, panels, menus and background jobs to the open document.

File work (open, save, export, drops) is in file_actions.py, hold-to-compare in compare.py, the crash
journal in recovery.py and restoring from it in restore.py.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QCloseEvent, QUndoStack
from PySide6.QtWidgets import (
    QApplication,
    QLabel,
    QListWidget,
    QMainWindow,
    QMessageBox,
    QUndoView,
    QVBoxLayout,
    QWidget,
)

from diat_studio.core.faces import Face, FaceDetector
from diat_studio.core.image_io import Photo
from diat_studio.core.inference import (
    Device,
    ProviderReport,
    SessionCache,
    load_attribute_model,
    probe_device,
)
from diat_studio.core.pipeline import EditResult, edit_photo
from diat_studio.core.regions import RegionKind
from diat_studio.core.registry import ModelEntry, ModelRegistry
from diat_studio.gui.banner import MessageBanner
from diat_studio.gui.batch_dialog import BatchDialog
from diat_studio.gui.busy import BusyIndicator
from diat_studio.gui.canvas import PhotoCanvas
from diat_studio.gui.commands import ApplyEditCommand, SetMaskCommand
from diat_studio.gui.compare import CompareKeyFilter
from diat_studio.gui.document import EditRecipe, PhotoDocument
from diat_studio.gui.edits_panel import EditsPanel
from diat_studio.gui.file_actions import FileActions
from diat_studio.gui.help_dialogs import show_about, show_keys
from diat_studio.gui.recovery import ANSWER_ENV, RecoveryJournal, RecoveryState, find_abandoned
from diat_studio.gui.restore import SessionRestorer
from diat_studio.gui.settings import AppSettings
from diat_studio.gui.settings_dialog import SettingsDialog
from diat_studio.gui.theme import apply_theme
from diat_studio.gui.training_actions import TrainingActions
from diat_studio.gui.window_menus import WindowMenus
from diat_studio.gui.workers import Job, JobRunner


class MainWindow(FileActions, TrainingActions, WindowMenus, QMainWindow):
    models_loaded = Signal()
    """The model registry was (re)loaded."""

    def __init__(
        self,
        settings: AppSettings | None = None,
        parent: QWidget | None = None,
        *,
        journal: RecoveryJournal | None = None,
    ) -> None:
        super().__init__(parent)
        self.settings = settings or AppSettings()
        self.setWindowTitle("DIAT Studio")
        self.setAcceptDrops(True)
        self.resize(1280, 820)
        self.jobs = JobRunner(self)
        self.sessions = SessionCache()
        self.registry = ModelRegistry([])
        self.document: PhotoDocument | None = None
        self.undo_stack = QUndoStack(self)
        self.undo_stack.cleanChanged.connect(self._update_title)
        self.undo_stack.indexChanged.connect(self._journal_later)
        self.undo_stack.cleanChanged.connect(self._journal_later)
        self.edit_job: Job | None = None
        self.open_job: Job | None = None
        self.models_ready = False
        self.restorer: SessionRestorer | None = None
        self.journal = journal or RecoveryJournal(parent=self)
        self.journal.failed.connect(self._on_journal_failed)
        self._journal_timer = QTimer(self)
        self._journal_timer.setSingleShot(True)
        self._journal_timer.timeout.connect(self._journal_now)
        self.batch_dialog: BatchDialog | None = None
        self._detectors: dict[str, FaceDetector] = {}
        self._detector_lock = threading.Lock()

        self.canvas = PhotoCanvas()
        self.canvas.face_clicked.connect(self._on_face_clicked)
        self.canvas.mask_changed.connect(self._on_mask_changed)
        self.canvas.zoom_changed.connect(self._on_zoom_changed)
        self.canvas.photo_dropped.connect(self.open_path)
        self.compare_filter = CompareKeyFilter(self, self.canvas.set_show_before)
        self.banner = MessageBanner()
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.banner)
        layout.addWidget(self.canvas, 1)
        self.setCentralWidget(central)

        self.edits = EditsPanel()
        self.edits.model_changed.connect(self._on_model_changed)
        self.edits.apply_requested.connect(self.apply_edit)
        self.edits.cancel_requested.connect(self.cancel_edit)
        self.faces_list = QListWidget()
        self.faces_list.setSelectionMode(QListWidget.SelectionMode.ExtendedSelection)
        self.faces_list.itemSelectionChanged.connect(self._on_faces_list_selection)
        self.history = QUndoView(self.undo_stack)
        self.history.setEmptyLabel("Opened photo")
        self._add_dock("Edits", self.edits, Qt.DockWidgetArea.RightDockWidgetArea)
        self._add_dock("Faces", self.faces_list, Qt.DockWidgetArea.RightDockWidgetArea)
        self._add_dock("History", self.history, Qt.DockWidgetArea.RightDockWidgetArea)

        self.provider_label = QLabel("Checking the execution device…")
        self.timing_label = QLabel("")
        self.zoom_label = QLabel("")
        self.busy = BusyIndicator()
        self.busy.cancel_requested.connect(self.cancel_open)
        for widget in (self.busy, self.timing_label, self.zoom_label, self.provider_label):
            self.statusBar().addPermanentWidget(widget)
        self._build_actions()
        self._restore_window()
        self.reload_models()
        self._probe_device()
        self._update_actions()

    # -- models ------------------------------------------------------------------------------------------

    def reload_models(self) -> None:
        """Scan the model folders in the background (hashing model files is disk work)."""
        job = Job(lambda _job: ModelRegistry.default(self.settings.model_folders), name="models")
        job.signals.finished.connect(self._on_models)
        job.signals.failed.connect(lambda message: self.banner.show_message("error", message))
        self.jobs.start(job)

    def _on_model_changed(self, _entry: object) -> None:
        self._refresh_masks()
        self._update_actions()

    def _on_models(self, registry: ModelRegistry) -> None:
        self.registry = registry
        self.edits.set_registry(registry, self.settings.show_experimental)
        if self.batch_dialog is not None:
            self.batch_dialog.set_models(registry, self.settings.show_experimental)
        self._refresh_masks()
        self._update_actions()
        self.models_ready = True
        self._select_trained()
        self.models_loaded.emit()

    def current_entry(self) -> ModelEntry | None:
        return self.edits.current_entry()

    def current_region(self) -> RegionKind | None:
        entry = self.current_entry()
        if entry is None or entry.manifest is None:
            return None
        return entry.manifest.region if entry.manifest.kind == "local" else RegionKind.FACE

    def current_margin(self) -> float | None:
        """The chosen model's margin around its region (the mask it was trained with); None: the default."""
        entry = self.current_entry()
        return entry.manifest.region_margin if entry is not None and entry.manifest is not None else None

    def detector(self) -> FaceDetector:
        kind = self.settings.detector
        with self._detector_lock:
            if kind not in self._detectors:
                self._detectors[kind] = FaceDetector(kind)  # type: ignore[arg-type]
            return self._detectors[kind]

    # -- opening (the rest is in file_actions.py) ---------------------------------------------------------

    def _on_opened(self, path: Path, photo: Photo, faces: list[Face]) -> None:
        self.undo_stack.clear()
        self.document = PhotoDocument(photo, faces, self)
        self.document.pixels_changed.connect(self._on_pixels_changed)
        self.document.masks_changed.connect(self._refresh_masks)
        self.document.selection_changed.connect(self._on_selection_changed)
        self.document.selection_changed.connect(self._journal_later)
        self.canvas.clear()
        self.canvas.set_images(photo.pixels, photo.pixels)
        self.canvas.set_faces(faces, self.document.selected)
        self.canvas.fit()
        self._fill_faces_list()
        self._refresh_masks()
        self.settings.add_recent(path)
        self.remember_folder(path)
        self.undo_stack.setClean()
        if not faces:
            self.banner.show_message(
                "warning",
                f"No face found in {path.name}. Edits need a face; try the CNN "
                "detector in Settings for small or turned faces.",
            )
        elif len(faces) > 1:
            self.banner.show_message(
                "info",
                f"{len(faces)} faces found. Edits apply to the selected faces: click "
                "a face (Ctrl+click for several) or pick them in the Faces list.",
            )
        else:
            self.banner.hide()
        self.statusBar().showMessage(
            f"Opened {path.name}: {photo.width}×{photo.height}, "
            f"{len(faces)} face{'s' if len(faces) != 1 else ''}",
            8000,
        )
        self._update_title()
        self._update_actions()

    # -- faces and masks ---------------------------------------------------------------------------------

    def _fill_faces_list(self) -> None:
        """One row per face, numbered like the boxes on the photo (rows are reused, not rebuilt)."""
        faces = self.document.faces if self.document is not None else []
        self.faces_list.blockSignals(True)
        if self.faces_list.count() != len(faces):
            self.faces_list.clear()
            self.faces_list.addItems([""] * len(faces))
        for index, face in enumerate(faces):
            item = self.faces_list.item(index)
            label = f"Face {index + 1} — {face.box.width:.0f}×{face.box.height:.0f} px"
            item.setText(label + (" (largest)" if index == 0 else ""))
            item.setSelected(index in self.document.selected)  # type: ignore[union-attr]
        self.faces_list.blockSignals(False)

    def _on_faces_list_selection(self) -> None:
        if self.document is not None:
            self.document.select({self.faces_list.row(item) for item in self.faces_list.selectedItems()})

    def _on_face_clicked(self, index: int, additive: bool) -> None:
        if self.document is None:
            return
        selected = set(self.document.selected)
        if additive:
            selected ^= {index}
        else:
            selected = {index}
        self.document.select(selected)

    def select_all_faces(self) -> None:
        if self.document is not None:
            self.document.select(set(range(len(self.document.faces))))

    def _on_selection_changed(self) -> None:
        assert self.document is not None
        self.canvas.set_selection(self.document.selected)
        self._fill_faces_list()
        self._refresh_masks()
        self._update_actions()

    def _refresh_masks(self) -> None:
        region = self.current_region()
        if self.document is None or region is None:
            self.canvas.set_masks([])
            return
        margin = self.current_margin()
        self.canvas.set_masks(
            [(i, self.document.polygon(i, region, margin)) for i in self.document.selected_faces()]
        )

    def _on_mask_changed(self, face: int, polygon: object) -> None:
        region = self.current_region()
        if self.document is not None and region is not None:
            self.undo_stack.push(SetMaskCommand(self.document, face, region, polygon))  # type: ignore[arg-type]

    def reset_masks(self) -> None:
        region = self.current_region()
        if self.document is None or region is None:
            return
        faces = [i for i in self.document.selected_faces() if self.document.is_mask_edited(i, region)]
        if faces:
            self.undo_stack.beginMacro("Reset masks from landmarks")
            for face in faces:
                self.undo_stack.push(SetMaskCommand(self.document, face, region, None, "Reset mask"))
            self.undo_stack.endMacro()

    # -- editing -----------------------------------------------------------------------------------------

    def apply_edit(self) -> Job | None:
        """Apply the chosen edit to the selected faces, with their current masks."""
        document, entry, region = self.document, self.current_entry(), self.current_region()
        if document is None or entry is None or region is None or self.edit_job is not None:
            return None
        faces = document.selected_faces()
        if not faces:
            self.banner.show_message(
                "warning", "Select at least one face to edit (click a face on the photo)."
            )
            return None
        strength, margin = self.edits.strength_value, self.current_margin()
        name = entry.manifest.display_name if entry.manifest else entry.name
        recipe = EditRecipe(
            model=entry.name,
            label=f"{name} ({strength:.0%})" if strength < 1 else name,
            strength=strength,
            feather=self.edits.feather_value,
            faces=tuple(faces),
            polygons=tuple(document.polygon(i, region, margin) for i in faces),
        )
        return self.run_edit(entry, recipe)

    def run_edit(self, entry: ModelEntry, recipe: EditRecipe) -> Job | None:
        """Run one edit in the background; when it is done it goes on the undo stack."""
        document = self.document
        if document is None or self.edit_job is not None:
            return None
        before = document.pixels
        chosen = [document.faces[i] for i in recipe.faces]
        device = self.settings.device
        detail = self.settings.keep_detail

        def run(job: Job) -> tuple[EditResult, ProviderReport]:
            job.report("Loading model", 0.0)
            model = load_attribute_model(entry, device, self.sessions)
            result = edit_photo(
                before,
                chosen,
                model,
                strength=recipe.strength,
                polygons=list(recipe.polygons),
                feather=recipe.feather,
                progress=job.report,
                is_cancelled=job.is_cancelled,
                detail=detail,
            )
            return result, model.providers

        job = Job(run, name="edit")
        job.signals.progress.connect(self.edits.show_progress)
        job.signals.finished.connect(lambda result: self._on_edit_finished(job, before, recipe, result))
        job.signals.failed.connect(
            lambda message: self.banner.show_message("error", f"The edit failed: {message}")
        )
        job.signals.cancelled.connect(self._show_edit_cancelled)
        job.signals.done.connect(self._on_edit_done)
        self.edit_job = job
        self.edits.set_busy(True)
        self._update_actions()
        return self.jobs.start(job)

    def _show_edit_cancelled(self) -> None:
        self.statusBar().showMessage("Edit cancelled", 5000)

    def _on_edit_finished(
        self, job: Job, before: np.ndarray, recipe: EditRecipe, result: tuple[EditResult, ProviderReport]
    ) -> None:
        # Cancel clicked after the worker finished but before its result reached this thread: honour it.
        if job.is_cancelled():
            self._show_edit_cancelled()
            return
        self._on_edited(before, recipe, *result)

    def _on_edited(
        self, before: np.ndarray, recipe: EditRecipe, result: EditResult, providers: ProviderReport
    ) -> None:
        if self.document is None or self.document.pixels is not before:
            return  # the photo changed while the edit ran (another photo was opened)
        self.undo_stack.push(ApplyEditCommand(self.document, before, result.pixels, recipe))
        timings = " · ".join(f"{step} {1000 * seconds:.0f} ms" for step, seconds in result.timings.items())
        self.timing_label.setText(timings)
        self._update_provider(providers)
        if self.masks_action.isChecked():
            self.masks_action.setChecked(False)  # the outline and its tint would cover the result
            self.statusBar().showMessage("Masks hidden to show the result: View → Show masks (M)", 8000)

    def _on_edit_done(self) -> None:
        self.edit_job = None
        self.edits.set_busy(False)
        self._update_actions()

    def cancel_edit(self) -> None:
        if self.edit_job is not None:
            self.edit_job.cancel()

    def _on_pixels_changed(self) -> None:
        assert self.document is not None
        self.canvas.set_images(self.document.pixels, self.document.original)
        self._update_actions()

    def _update_provider(self, report: ProviderReport) -> None:
        self.provider_label.setText(f"Running on {report.label}")
        self.provider_label.setToolTip(report.message or ", ".join(report.active))
        if report.message and self.settings.device is Device.CUDA:
            self.banner.show_message("warning", report.message)

    # -- dialogs -----------------------------------------------------------------------------------------

    def open_batch_dialog(self) -> BatchDialog:
        if self.batch_dialog is None or not self.batch_dialog.isVisible():
            if self.batch_dialog is not None:
                self.batch_dialog.deleteLater()
            self.batch_dialog = BatchDialog(
                self.registry,
                self.sessions,
                self.detector,
                self.settings.device,
                self,
                include_experimental=self.settings.show_experimental,
                settings=self.settings,
            )
            if self.current_entry() is not None:
                self.batch_dialog.set_edits([self.current_entry().name])  # type: ignore[union-attr]
        self.batch_dialog.show()
        self.batch_dialog.raise_()
        return self.batch_dialog

    def open_settings(self) -> None:
        dialog = SettingsDialog(self.settings, self)
        try:
            if dialog.exec():
                dialog.store()
                self.apply_settings()
        finally:
            dialog.deleteLater()  # a child of the window: not left to be deleted at exit

    def apply_settings(self) -> None:
        app = QApplication.instance()
        if isinstance(app, QApplication):
            apply_theme(app, self.settings.theme)
        self._probe_device()
        self.reload_models()

    def _probe_device(self) -> None:
        """Find out in the background which provider really runs (initialising CUDA can take seconds)."""
        device = self.settings.device
        job = Job(lambda _job: probe_device(device), name="probe")
        job.signals.finished.connect(self._update_provider)
        self.jobs.start(job)

    def show_about(self) -> None:
        show_about(self)

    def show_keys(self) -> None:
        show_keys(self)

    # -- state -------------------------------------------------------------------------------------------

    def _update_title(self, clean: bool | None = None) -> None:
        if clean is None:
            clean = self.undo_stack.isClean()
        document = self.document
        shown = (document.saved_path or document.path) if document is not None else None
        name = shown.name if shown is not None else "Untitled"
        dirty = "*" if document is not None and not clean else ""
        self.setWindowTitle(f"{name}{dirty} — DIAT Studio" if document is not None else "DIAT Studio")

    def apply_blocker(self) -> str:
        """Why Apply cannot run now ("" when it can)."""
        document = self.document
        if self.edit_job is not None:
            return "An edit is running (Cancel stops it)."
        if document is None:
            return "Open a photo first (File → Open)."
        if not document.faces:
            return "No face was found in this photo: try the CNN detector in Settings."
        if self.current_entry() is None:
            if not self.registry.visible(self.settings.show_experimental):
                return "No usable edit model is installed (see the Edits list for why)."
            return "Choose an edit in the Edits list."
        if not document.selected:
            return "Select a face to edit: click it on the photo or in the Faces list."
        return ""

    def _update_actions(self) -> None:
        has_doc = self.document is not None
        reason = self.apply_blocker()
        self.apply_action.setEnabled(not reason)
        self.apply_action.setToolTip(reason or "Apply the selected edit to the selected faces (Ctrl+Enter)")
        self.apply_action.setStatusTip(reason)
        self.edits.set_apply_state(not reason, reason)
        for action in (
            self.save_action,
            self.save_as_action,
            self.export_action,
            self.select_all_action,
            self.detect_action,
            self.reset_mask_action,
        ):
            action.setEnabled(has_doc)

    # -- crash recovery ----------------------------------------------------------------------------------

    def _journal_later(self, *_args: object) -> None:
        """Journal the document once the current change is complete (several signals fire per change)."""
        self._journal_timer.start(0)

    def _journal_now(self) -> None:
        document = self.document
        dirty = document is not None and not self.undo_stack.isClean()
        self.journal.record(RecoveryState.of(document) if dirty else None)  # type: ignore[arg-type]

    def _on_journal_failed(self, message: str) -> None:
        self.banner.show_message("warning", message)

    def check_recovery(self, ask: Callable[[str], bool] | None = None) -> SessionRestorer | None:
        """After a crash: offer to restore the newest session that did not close normally.

        `ask(description)` decides (default: a dialog, or the DIAT_STUDIO_RESTORE variable when set)."""
        abandoned = find_abandoned(self.journal.folder)
        restorer = None
        for index, found in enumerate(abandoned):
            if index == 0 and found.state is not None:
                if (ask or self._ask_restore)(found.state.describe()):
                    restorer = SessionRestorer(self, found.state)
                found.discard()
            elif found.state is None:
                found.discard()  # unreadable: nothing could be restored from it
            else:
                found.lock.unlock()  # offered again at the next start
        if restorer is not None:
            self.restorer = restorer
            restorer.start()
        return restorer

    def _ask_restore(self, description: str) -> bool:
        answer = os.environ.get(ANSWER_ENV, "").strip().lower()
        if answer in ("yes", "no"):
            return answer == "yes"
        reply = QMessageBox.question(
            self,
            "Restore unsaved work?",
            f"DIAT Studio did not close normally last time. Restore the unsaved work on {description}?",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
        )
        return reply == QMessageBox.StandardButton.Yes

    # -- Qt events ---------------------------------------------------------------------------------------

    def closeEvent(self, event: QCloseEvent) -> None:
        if not self._confirm_discard():
            event.ignore()
            return
        self.cancel_edit()
        self.cancel_open(quiet=True)
        if self.batch_dialog is not None:
            self.batch_dialog.close()
        self._close_train_dialog()
        self.settings.geometry = self.saveGeometry()
        self.settings.window_state = self.saveState()
        self.jobs.wait(10000)
        self._journal_timer.stop()
        self.journal.close()  # a normal exit: nothing to restore next time
        event.accept()


def open_later(window: MainWindow, path: Path) -> None:
    """Open a photo once the event loop runs (the window paints first)."""
    QTimer.singleShot(0, lambda: window.open_path(path))
