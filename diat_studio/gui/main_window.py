"""The main window: wires the canvas, panels, menus and background jobs to the open document."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import (
    QAction,
    QCloseEvent,
    QDragEnterEvent,
    QDropEvent,
    QKeyEvent,
    QKeySequence,
    QUndoStack,
)
from PySide6.QtWidgets import (
    QApplication,
    QDockWidget,
    QFileDialog,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QMessageBox,
    QSlider,
    QUndoView,
    QVBoxLayout,
    QWidget,
)

from diat_studio.core.faces import Face, FaceDetector
from diat_studio.core.image_io import EXTENSION_FORMATS, Photo, is_image_path, load_photo, save_photo
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
from diat_studio.gui.canvas import PhotoCanvas
from diat_studio.gui.commands import ApplyEditCommand, SetMaskCommand
from diat_studio.gui.document import PhotoDocument
from diat_studio.gui.edits_panel import EditsPanel
from diat_studio.gui.help_dialogs import show_about, show_keys
from diat_studio.gui.settings import AppSettings
from diat_studio.gui.settings_dialog import SettingsDialog
from diat_studio.gui.theme import apply_theme
from diat_studio.gui.workers import Job, JobRunner

IMAGE_FILTER = "Images (" + " ".join(f"*{ext}" for ext in EXTENSION_FORMATS) + ")"
COMPARE_KEY = Qt.Key.Key_Backslash


class MainWindow(QMainWindow):
    def __init__(self, settings: AppSettings | None = None, parent: QWidget | None = None) -> None:
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
        self.edit_job: Job | None = None
        self.batch_dialog: BatchDialog | None = None
        self._detectors: dict[str, FaceDetector] = {}
        self._detector_lock = threading.Lock()

        self.canvas = PhotoCanvas()
        self.canvas.face_clicked.connect(self._on_face_clicked)
        self.canvas.mask_changed.connect(self._on_mask_changed)
        self.canvas.zoom_changed.connect(lambda zoom: self.zoom_label.setText(f"{zoom * 100:.0f}%"))
        self.banner = MessageBanner()
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.banner)
        layout.addWidget(self.canvas, 1)
        self.setCentralWidget(central)

        self.edits = EditsPanel()
        self.edits.model_changed.connect(lambda _entry: self._refresh_masks())
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
        for widget in (self.timing_label, self.zoom_label, self.provider_label):
            self.statusBar().addPermanentWidget(widget)
        self._build_actions()
        self._restore_window()
        self.reload_models()
        self._probe_device()
        self._update_actions()

    # -- building ----------------------------------------------------------------------------------------

    def _add_dock(self, title: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(f"dock-{title}")
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        return dock

    def _action(
        self, text: str, slot: object, shortcut: QKeySequence | str | None = None, checkable: bool = False
    ) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        action.setCheckable(checkable)
        action.triggered.connect(slot)  # type: ignore[arg-type]
        return action

    def _build_actions(self) -> None:
        key = QKeySequence.StandardKey
        self.open_action = self._action("&Open…", self.choose_file, key.Open)
        self.save_action = self._action("&Save", self.save, key.Save)
        self.save_as_action = self._action("Save &As…", self.save_as, key.SaveAs)
        self.export_action = self._action("Export &comparison…", self.export_comparison)
        self.batch_action = self._action("&Batch process folder…", self.open_batch_dialog, "Ctrl+B")
        self.quit_action = self._action("&Quit", self.close, key.Quit)
        self.undo_action = self.undo_stack.createUndoAction(self, "&Undo")
        self.undo_action.setShortcuts([QKeySequence(key.Undo)])
        self.redo_action = self.undo_stack.createRedoAction(self, "&Redo")
        self.redo_action.setShortcuts([QKeySequence("Ctrl+Shift+Z"), QKeySequence("Ctrl+Y")])
        self.reset_mask_action = self._action("Reset &mask from landmarks", self.reset_masks, "Ctrl+R")
        self.settings_action = self._action("&Settings…", self.open_settings, key.Preferences)
        self.zoom_in_action = self._action("Zoom &in", self.canvas.zoom_in, key.ZoomIn)
        self.zoom_out_action = self._action("Zoom &out", self.canvas.zoom_out, key.ZoomOut)
        self.fit_action = self._action("&Fit to window", self.canvas.fit, "Ctrl+0")
        self.actual_action = self._action("&100%", self.canvas.actual_size, "Ctrl+1")
        self.boxes_action = self._action("Show face &boxes", self.canvas.show_boxes, "B", checkable=True)
        self.landmarks_action = self._action(
            "Show &landmarks", self.canvas.show_landmarks, "L", checkable=True
        )
        self.boxes_action.setChecked(True)
        self.landmarks_action.setChecked(True)
        self.split_action = self._action("&Split before/after", self._toggle_split, "S", checkable=True)
        self.split_slider = QSlider(Qt.Orientation.Horizontal)
        self.split_slider.setRange(0, 100)
        self.split_slider.setValue(50)
        self.split_slider.setMaximumWidth(160)
        self.split_slider.setToolTip("Where the split between before (left) and after (right) is")
        self.split_slider.valueChanged.connect(lambda _v: self._toggle_split(self.split_action.isChecked()))
        self.compare_action = self._action("Hold to compare (\\)", lambda: None)
        self.compare_action.setToolTip("Press and hold (or hold \\) to see the photo before the edits")
        self.select_all_action = self._action("Select &all faces", self.select_all_faces, "Ctrl+A")
        self.detect_action = self._action("&Detect faces again", self.detect_again)
        self.apply_action = self._action("&Apply selected edit", self.apply_edit, "Ctrl+Return")
        self.reload_action = self._action("&Reload models", self.reload_models)
        self.about_action = self._action("&About DIAT Studio", self.show_about)
        self.keys_action = self._action("&Keyboard and mouse", self.show_keys)

        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        file_menu.addAction(self.open_action)
        self.recent_menu = file_menu.addMenu("Open &recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent)
        for action in (self.save_action, self.save_as_action, self.export_action, self.batch_action):
            file_menu.addAction(action)
        file_menu.addSeparator()
        file_menu.addAction(self.quit_action)
        edit_menu = bar.addMenu("&Edit")
        for action in (self.undo_action, self.redo_action, self.reset_mask_action):
            edit_menu.addAction(action)
        edit_menu.addSeparator()
        edit_menu.addAction(self.settings_action)
        view_menu = bar.addMenu("&View")
        for action in (
            self.zoom_in_action,
            self.zoom_out_action,
            self.fit_action,
            self.actual_action,
            self.boxes_action,
            self.landmarks_action,
            self.split_action,
        ):
            view_menu.addAction(action)
        faces_menu = bar.addMenu("F&aces")
        faces_menu.addAction(self.select_all_action)
        faces_menu.addAction(self.detect_action)
        edits_menu = bar.addMenu("E&dits")
        edits_menu.addAction(self.apply_action)
        edits_menu.addAction(self.reload_action)
        help_menu = bar.addMenu("&Help")
        help_menu.addAction(self.keys_action)
        help_menu.addAction(self.about_action)

        toolbar = self.addToolBar("Main")
        toolbar.setObjectName("toolbar-main")
        for action in (
            self.open_action,
            self.save_action,
            self.undo_action,
            self.redo_action,
            self.fit_action,
            self.actual_action,
            self.boxes_action,
            self.landmarks_action,
            self.split_action,
        ):
            toolbar.addAction(action)
        toolbar.addWidget(self.split_slider)
        toolbar.addAction(self.compare_action)
        compare_button = toolbar.widgetForAction(self.compare_action)
        compare_button.pressed.connect(lambda: self.canvas.set_show_before(True))
        compare_button.released.connect(lambda: self.canvas.set_show_before(False))
        toolbar.addAction(self.apply_action)

    def _restore_window(self) -> None:
        if self.settings.geometry is not None:
            self.restoreGeometry(self.settings.geometry)
        if self.settings.window_state is not None:
            self.restoreState(self.settings.window_state)

    # -- models ------------------------------------------------------------------------------------------

    def reload_models(self) -> None:
        """Scan the model folders in the background (hashing model files is disk work)."""
        job = Job(lambda _job: ModelRegistry.default(self.settings.model_folders), name="models")
        job.signals.finished.connect(self._on_models)
        job.signals.failed.connect(lambda message: self.banner.show_message("error", message))
        self.jobs.start(job)

    def _on_models(self, registry: ModelRegistry) -> None:
        self.registry = registry
        self.edits.set_registry(registry, self.settings.show_experimental)
        if self.batch_dialog is not None:
            self.batch_dialog.set_models(registry, self.settings.show_experimental)
        self._refresh_masks()
        self._update_actions()

    def current_entry(self) -> ModelEntry | None:
        return self.edits.current_entry()

    def current_region(self) -> RegionKind | None:
        entry = self.current_entry()
        if entry is None or entry.manifest is None:
            return None
        return entry.manifest.region if entry.manifest.kind == "local" else RegionKind.FACE

    def detector(self) -> FaceDetector:
        kind = self.settings.detector
        with self._detector_lock:
            if kind not in self._detectors:
                self._detectors[kind] = FaceDetector(kind)  # type: ignore[arg-type]
            return self._detectors[kind]

    # -- opening -----------------------------------------------------------------------------------------

    def choose_file(self) -> None:
        start = str(self.document.path.parent) if self.document and self.document.path else ""
        path, _ = QFileDialog.getOpenFileName(self, "Open a photo", start, IMAGE_FILTER)
        if path:
            self.open_path(Path(path))

    def open_path(self, path: Path) -> Job | None:
        if not self._confirm_discard():
            return None
        self.statusBar().showMessage(f"Opening {path.name}…")

        def load(job: Job) -> tuple[Photo, list[Face]]:
            photo = load_photo(path)
            job.report("Finding faces", 0.5)
            return photo, self.detector().detect(photo.pixels)

        job = Job(load, name="open")
        job.signals.finished.connect(lambda result: self._on_opened(path, *result))
        job.signals.failed.connect(lambda message: self._on_open_failed(path, message))
        return self.jobs.start(job)

    def _on_open_failed(self, path: Path, message: str) -> None:
        self.banner.show_message("error", f"Could not open {path.name}: {message}")
        self.statusBar().showMessage(f"Could not open {path.name}", 8000)

    def _on_opened(self, path: Path, photo: Photo, faces: list[Face]) -> None:
        self.undo_stack.clear()
        self.document = PhotoDocument(photo, faces, self)
        self.document.pixels_changed.connect(self._on_pixels_changed)
        self.document.masks_changed.connect(self._refresh_masks)
        self.document.selection_changed.connect(self._on_selection_changed)
        self.canvas.clear()
        self.canvas.set_images(photo.pixels, photo.pixels)
        self.canvas.set_faces(faces, self.document.selected)
        self.canvas.fit()
        self._fill_faces_list()
        self._refresh_masks()
        self.settings.add_recent(path)
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

    def detect_again(self) -> None:
        if self.document is not None and self.document.path is not None:
            self.open_path(self.document.path)

    # -- faces and masks ---------------------------------------------------------------------------------

    def _fill_faces_list(self) -> None:
        self.faces_list.blockSignals(True)
        self.faces_list.clear()
        if self.document is not None:
            for index, face in enumerate(self.document.faces):
                label = f"Face {index + 1} — {face.box.width:.0f}×{face.box.height:.0f} px"
                item = QListWidgetItem(label + (" (largest)" if index == 0 else ""))
                self.faces_list.addItem(item)
                item.setSelected(index in self.document.selected)
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
        self.canvas.set_masks([(i, self.document.polygon(i, region)) for i in self.document.selected_faces()])

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
        document, entry, region = self.document, self.current_entry(), self.current_region()
        if document is None or entry is None or region is None or self.edit_job is not None:
            return None
        faces = document.selected_faces()
        if not faces:
            self.banner.show_message(
                "warning", "Select at least one face to edit (click a face on the photo)."
            )
            return None
        before = document.pixels
        chosen = [document.faces[i] for i in faces]
        polygons = [document.polygon(i, region) for i in faces]
        strength, feather, device = self.edits.strength_value, self.edits.feather_value, self.settings.device

        def run(job: Job) -> tuple[EditResult, ProviderReport]:
            job.report("Loading model", 0.0)
            model = load_attribute_model(entry, device, self.sessions)
            result = edit_photo(
                before,
                chosen,
                model,
                strength=strength,
                polygons=polygons,
                feather=feather,
                progress=job.report,
                is_cancelled=job.is_cancelled,
            )
            return result, model.providers

        job = Job(run, name="edit")
        name = entry.manifest.display_name if entry.manifest else entry.name
        label = f"{name} ({strength:.0%})" if strength < 1 else name
        job.signals.progress.connect(self.edits.show_progress)
        job.signals.finished.connect(lambda result: self._on_edited(before, label, *result))
        job.signals.failed.connect(
            lambda message: self.banner.show_message("error", f"The edit failed: {message}")
        )
        job.signals.cancelled.connect(lambda: self.statusBar().showMessage("Edit cancelled", 5000))
        job.signals.done.connect(self._on_edit_done)
        self.edit_job = job
        self.edits.set_busy(True)
        self._update_actions()
        return self.jobs.start(job)

    def _on_edited(
        self, before: np.ndarray, label: str, result: EditResult, providers: ProviderReport
    ) -> None:
        if self.document is None or self.document.pixels is not before:
            return  # the photo changed while the edit ran (another photo was opened)
        self.undo_stack.push(ApplyEditCommand(self.document, before, result.pixels, label))
        timings = " · ".join(f"{step} {1000 * seconds:.0f} ms" for step, seconds in result.timings.items())
        self.timing_label.setText(timings)
        self._update_provider(providers)

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

    # -- comparison --------------------------------------------------------------------------------------

    def _toggle_split(self, enabled: bool) -> None:
        self.canvas.set_split(self.split_slider.value() / 100.0 if enabled else None)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() == COMPARE_KEY and not event.isAutoRepeat():
            self.canvas.set_show_before(True)
            return
        super().keyPressEvent(event)

    def keyReleaseEvent(self, event: QKeyEvent) -> None:
        if event.key() == COMPARE_KEY and not event.isAutoRepeat():
            self.canvas.set_show_before(False)
            return
        super().keyReleaseEvent(event)

    # -- saving ------------------------------------------------------------------------------------------

    def save(self) -> Job | None:
        document = self.document
        if document is None:
            return None
        target = document.saved_path
        if target is None or (document.path is not None and target == document.path):
            return self.save_as()
        return self.save_to(target)

    def save_as(self) -> Job | None:
        document = self.document
        if document is None:
            return None
        source = document.path or Path("photo.jpg")
        suggestion = source.with_name(f"{source.stem}-edited{source.suffix or '.jpg'}")
        path, _ = QFileDialog.getSaveFileName(self, "Save the edited photo", str(suggestion), IMAGE_FILTER)
        return self.save_to(Path(path)) if path else None

    def save_to(self, path: Path) -> Job | None:
        document = self.document
        if document is None:
            return None
        photo = document.current_photo()
        quality = self.settings.jpeg_quality
        job = Job(lambda _job: save_photo(photo, path, quality=quality), name="save")
        index = self.undo_stack.index()

        def saved(written: Path) -> None:
            document.saved_path = written
            if self.undo_stack.index() == index:
                self.undo_stack.setClean()
            self.statusBar().showMessage(f"Saved {written}", 8000)

        job.signals.finished.connect(saved)
        job.signals.failed.connect(lambda message: self.banner.show_message("error", f"Not saved: {message}"))
        return self.jobs.start(job)

    def export_comparison(self) -> Job | None:
        document = self.document
        if document is None:
            return None
        source = document.path or Path("photo.jpg")
        suggestion = source.with_name(f"{source.stem}-before-after.jpg")
        path, _ = QFileDialog.getSaveFileName(
            self, "Export a before/after image", str(suggestion), IMAGE_FILTER
        )
        return self.export_comparison_to(Path(path)) if path else None

    def export_comparison_to(self, path: Path) -> Job:
        assert self.document is not None
        original, current = self.document.original, self.document.pixels
        gap = np.full((original.shape[0], max(original.shape[1] // 100, 4), 3), 255, np.uint8)
        side_by_side = Photo(np.hstack([original, gap, current]), format="JPEG")
        job = Job(lambda _job: save_photo(side_by_side, path), name="export")
        job.signals.finished.connect(
            lambda written: self.statusBar().showMessage(f"Exported {written}", 8000)
        )
        job.signals.failed.connect(
            lambda message: self.banner.show_message("error", f"Not exported: {message}")
        )
        return self.jobs.start(job)

    # -- dialogs -----------------------------------------------------------------------------------------

    def open_batch_dialog(self) -> BatchDialog:
        if self.batch_dialog is None or not self.batch_dialog.isVisible():
            self.batch_dialog = BatchDialog(
                self.registry,
                self.sessions,
                self.detector,
                self.settings.device,
                self,
                include_experimental=self.settings.show_experimental,
            )
            if self.current_entry() is not None:
                self.batch_dialog.set_edits([self.current_entry().name])  # type: ignore[union-attr]
        self.batch_dialog.show()
        self.batch_dialog.raise_()
        return self.batch_dialog

    def open_settings(self) -> None:
        dialog = SettingsDialog(self.settings, self)
        if dialog.exec():
            dialog.store()
            self.apply_settings()

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

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        for path in self.settings.recent_files:
            action = self.recent_menu.addAction(str(path))
            action.triggered.connect(lambda _checked=False, p=path: self.open_path(p))
        if not self.settings.recent_files:
            self.recent_menu.addAction("(none)").setEnabled(False)

    # -- state -------------------------------------------------------------------------------------------

    def _update_title(self, clean: bool | None = None) -> None:
        if clean is None:
            clean = self.undo_stack.isClean()
        name = self.document.path.name if self.document and self.document.path else "DIAT Studio"
        dirty = "*" if self.document is not None and not clean else ""
        self.setWindowTitle(f"{name}{dirty} — DIAT Studio" if self.document else "DIAT Studio")

    def _update_actions(self) -> None:
        has_doc = self.document is not None
        can_edit = (
            has_doc
            and self.current_entry() is not None
            and bool(self.document.selected)  # type: ignore[union-attr]
            and self.edit_job is None
        )
        self.apply_action.setEnabled(can_edit)
        self.edits.apply_button.setEnabled(can_edit)
        for action in (
            self.save_action,
            self.save_as_action,
            self.export_action,
            self.select_all_action,
            self.detect_action,
            self.reset_mask_action,
        ):
            action.setEnabled(has_doc)

    def _confirm_discard(self) -> bool:
        """True when there is nothing unsaved, or the user saved or chose to discard it."""
        if self.document is None or self.undo_stack.isClean():
            return True
        answer = QMessageBox.question(
            self,
            "Unsaved changes",
            "The photo has unsaved edits. Save them first?",
            QMessageBox.StandardButton.Save
            | QMessageBox.StandardButton.Discard
            | QMessageBox.StandardButton.Cancel,
        )
        if answer == QMessageBox.StandardButton.Save:
            job = self.save()
            if job is None:
                return False
            self.jobs.wait()
            return self.undo_stack.isClean()
        return answer == QMessageBox.StandardButton.Discard

    # -- Qt events ---------------------------------------------------------------------------------------

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        urls = event.mimeData().urls()
        if urls and urls[0].isLocalFile() and is_image_path(urls[0].toLocalFile()):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        self.open_path(Path(event.mimeData().urls()[0].toLocalFile()))
        event.acceptProposedAction()

    def closeEvent(self, event: QCloseEvent) -> None:
        if not self._confirm_discard():
            event.ignore()
            return
        self.cancel_edit()
        if self.batch_dialog is not None:
            self.batch_dialog.close()
        self.settings.geometry = self.saveGeometry()
        self.settings.window_state = self.saveState()
        self.jobs.wait(10000)
        event.accept()


def open_later(window: MainWindow, path: Path) -> None:
    """Open a photo once the event loop runs (the window paints first)."""
    QTimer.singleShot(0, lambda: window.open_path(path))
