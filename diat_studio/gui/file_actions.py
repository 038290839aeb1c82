"""The main window's file work: open (dialog, recent files, drops), save, save as, export.

File dialogs start in the folder last used (remembered in the settings), else the user's Pictures
folder or home, never the application's own folder. A save writes the format its file name's extension
says; a name without an image extension gets one (the photo's own format) and the user is told; a name
asking for an image format DIAT Studio cannot write (.gif, .heic…) is refused. Loading, face detection
and saving run in background jobs; opening shows a busy indicator whose Cancel discards the result.
"""

from __future__ import annotations

import mimetypes
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QStandardPaths
from PySide6.QtGui import QDragEnterEvent, QDragMoveEvent, QDropEvent, QUndoStack
from PySide6.QtWidgets import QFileDialog, QMessageBox, QStatusBar, QWidget

from diat_studio.core.errors import ImageWriteError
from diat_studio.core.faces import Face, FaceDetector
from diat_studio.core.image_io import EXTENSION_FORMATS, Photo, format_for_extension, load_photo, save_photo
from diat_studio.core.paths import resources_root
from diat_studio.gui.banner import MessageBanner
from diat_studio.gui.busy import BusyIndicator
from diat_studio.gui.document import PhotoDocument
from diat_studio.gui.drops import accept_as_copy
from diat_studio.gui.settings import AppSettings
from diat_studio.gui.workers import Job, JobRunner

IMAGE_FILTER = "Images (" + " ".join(f"*{ext}" for ext in EXTENSION_FORMATS) + ")"
FORMAT_EXTENSIONS = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp", "TIFF": ".tif", "BMP": ".bmp"}
APP_FOLDERS = (resources_root(), Path(__file__).resolve().parents[2])
"""Where the application itself lives (a checkout, site-packages or the bundle): no dialog starts there."""


def save_target(path: Path, photo_format: str) -> tuple[Path, str]:
    """The file to write for a name the user chose, and a note for the user (empty if none).

    Raises ImageWriteError for an image type that cannot be written (e.g. `.gif`)."""
    if format_for_extension(path) is not None:
        return path, ""
    kind, _ = mimetypes.guess_type(path.name)
    if path.suffix and kind is not None and kind.startswith("image/"):
        writable = ", ".join(FORMAT_EXTENSIONS.values())
        raise ImageWriteError(
            f"{path.name}: DIAT Studio cannot write {path.suffix} images. Choose a name ending in {writable}."
        )
    fmt = photo_format.upper() if photo_format.upper() in FORMAT_EXTENSIONS else "PNG"
    extension = FORMAT_EXTENSIONS[fmt]
    return path.with_name(path.name + extension), f"added {extension}: {fmt}, the photo's format"


def is_app_folder(folder: Path) -> bool:
    folder = folder.resolve()
    return any(folder == root.resolve() or root.resolve() in folder.parents for root in APP_FOLDERS)


def dialog_folder(remembered: Path | None) -> str:
    """Where a file dialog starts: the remembered folder, else Pictures, else home."""
    pictures = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.PicturesLocation)
    for folder in (remembered, Path(pictures) if pictures else None, Path.home()):
        if folder is not None and folder.is_dir() and not is_app_folder(folder):
            return str(folder)
    return str(Path.home())


class FileActions:
    """Mixed into MainWindow (a QMainWindow): these are the attributes it relies on."""

    settings: AppSettings
    document: PhotoDocument | None
    jobs: JobRunner
    banner: MessageBanner
    busy: BusyIndicator
    undo_stack: QUndoStack
    open_job: Job | None

    if TYPE_CHECKING:  # provided by MainWindow and QMainWindow

        def statusBar(self) -> QStatusBar: ...
        def detector(self) -> FaceDetector: ...
        def _on_opened(self, path: Path, photo: Photo, faces: list[Face]) -> None: ...
        def _update_title(self, clean: bool | None = None) -> None: ...

    def _parent_widget(self) -> QWidget:
        return self  # type: ignore[return-value]

    def remember_folder(self, path: Path) -> None:
        folder = path.parent
        if not is_app_folder(folder):
            self.settings.last_folder = folder

    # -- opening -----------------------------------------------------------------------------------------

    def choose_file(self) -> None:
        start = dialog_folder(self.settings.last_folder)
        path, _ = QFileDialog.getOpenFileName(self._parent_widget(), "Open a photo", start, IMAGE_FILTER)
        if path:
            self.open_path(Path(path))

    def open_path(self, path: Path, faces: Sequence[Face] | None = None) -> Job | None:
        """Load `path` and find its faces in the background (or take `faces` as found before)."""
        if not self._confirm_discard():
            return None
        self.cancel_open(quiet=True)
        detector_name = "CNN" if self.settings.detector == "cnn" else "HOG"

        def load(job: Job) -> tuple[Photo, list[Face]]:
            photo = load_photo(path)
            if faces is not None or job.is_cancelled():
                return photo, list(faces or [])
            job.report(f"Finding faces in {path.name} ({detector_name} detector)…", 0.5)
            return photo, self.detector().detect(photo.pixels)

        job = Job(load, name="open")
        job.signals.progress.connect(self.busy.show_step)
        job.signals.finished.connect(lambda result: self._on_open_finished(job, path, result))
        job.signals.failed.connect(lambda message: self._on_open_failed(job, path, message))
        job.signals.done.connect(lambda: self._on_open_done(job))
        self.open_job = job
        self.busy.start(f"Opening {path.name}…")
        self.statusBar().showMessage(f"Opening {path.name}…")
        return self.jobs.start(job)

    def cancel_open(self, quiet: bool = False) -> None:
        """Stop waiting for the photo being opened: its result is discarded when it comes."""
        job, self.open_job = self.open_job, None
        if job is None:
            return
        job.cancel()
        self.busy.stop()
        if not quiet:
            self.statusBar().showMessage("Opening cancelled", 5000)

    def _on_open_done(self, job: Job) -> None:
        if self.open_job is job:
            self.open_job = None
            self.busy.stop()

    def _on_open_finished(self, job: Job, path: Path, result: tuple[Photo, list[Face]]) -> None:
        # The worker may have finished just before the user cancelled: its result is already queued
        # for this thread, so the cancel is honoured here, not only in the worker.
        if job.is_cancelled():
            return
        self._on_opened(path, *result)

    def _on_open_failed(self, job: Job, path: Path, message: str) -> None:
        if job.is_cancelled():
            return  # the user stopped waiting for this photo: no error about it
        self.banner.show_message("error", f"Could not open {path.name}: {message}")
        self.statusBar().showMessage(f"Could not open {path.name}", 8000)

    def detect_again(self) -> None:
        if self.document is not None and self.document.path is not None:
            self.open_path(self.document.path)

    def _fill_recent(self) -> None:
        menu = self.recent_menu  # type: ignore[attr-defined]
        menu.clear()
        for path in self.settings.recent_files:
            action = menu.addAction(str(path))
            action.triggered.connect(lambda _checked=False, p=path: self.open_path(p))
        if not self.settings.recent_files:
            menu.addAction("(none)").setEnabled(False)

    # -- saving ------------------------------------------------------------------------------------------

    def save(self) -> Job | None:
        document = self.document
        if document is None:
            return None
        target = document.saved_path
        if target is None or (document.path is not None and target == document.path):
            return self.save_as()
        return self.save_to(target)

    def _suggestion(self, suffix: str, default_extension: str) -> str:
        assert self.document is not None
        source = self.document.saved_path or self.document.path or Path("photo.jpg")
        folder = dialog_folder(self.settings.last_folder)
        return str(Path(folder) / f"{source.stem}{suffix}{default_extension or source.suffix or '.jpg'}")

    def save_as(self) -> Job | None:
        if self.document is None:
            return None
        suggestion = self._suggestion("-edited", "")
        path, _ = QFileDialog.getSaveFileName(
            self._parent_widget(), "Save the edited photo", suggestion, IMAGE_FILTER
        )
        return self.save_to(Path(path)) if path else None

    def _resolve_target(self, path: Path, photo_format: str) -> tuple[Path, str] | None:
        """The file to write (see `save_target`), or None when refused or the user declined."""
        try:
            target, note = save_target(path, photo_format)
        except ImageWriteError as exc:
            self.banner.show_message("error", f"Not saved: {exc}")
            return None
        if note and target.exists():
            answer = QMessageBox.question(
                self._parent_widget(),
                "Replace the file?",
                f"{target.name} already exists in {target.parent}. Replace it?",
                QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            )
            if answer != QMessageBox.StandardButton.Yes:
                return None
        return target, note

    def save_to(self, path: Path) -> Job | None:
        document = self.document
        if document is None:
            return None
        photo = document.current_photo()
        resolved = self._resolve_target(Path(path), photo.format)
        if resolved is None:
            return None
        target, note = resolved
        fmt, quality = format_for_extension(target), self.settings.jpeg_quality
        job = Job(lambda _job: save_photo(photo, target, format=fmt, quality=quality), name="save")
        index = self.undo_stack.index()

        def saved(written: Path) -> None:
            document.saved_path = written
            if self.undo_stack.index() == index:
                self.undo_stack.setClean()
            self._update_title()
            self.remember_folder(written)
            self.statusBar().showMessage(f"Saved {written}" + (f" ({note})" if note else ""), 10000)

        job.signals.finished.connect(saved)
        job.signals.failed.connect(lambda message: self.banner.show_message("error", f"Not saved: {message}"))
        return self.jobs.start(job)

    def export_comparison(self) -> Job | None:
        if self.document is None:
            return None
        suggestion = self._suggestion("-before-after", ".jpg")
        path, _ = QFileDialog.getSaveFileName(
            self._parent_widget(), "Export a before/after image", suggestion, IMAGE_FILTER
        )
        return self.export_comparison_to(Path(path)) if path else None

    def export_comparison_to(self, path: Path) -> Job | None:
        assert self.document is not None
        resolved = self._resolve_target(Path(path), "JPEG")
        if resolved is None:
            return None
        target, note = resolved
        original, current = self.document.original, self.document.pixels
        gap = np.full((original.shape[0], max(original.shape[1] // 100, 4), 3), 255, np.uint8)
        side_by_side = Photo(np.hstack([original, gap, current]), format="JPEG")
        fmt = format_for_extension(target)
        job = Job(lambda _job: save_photo(side_by_side, target, format=fmt), name="export")

        def exported(written: Path) -> None:
            self.remember_folder(written)
            self.statusBar().showMessage(f"Exported {written}" + (f" ({note})" if note else ""), 8000)

        job.signals.finished.connect(exported)
        job.signals.failed.connect(
            lambda message: self.banner.show_message("error", f"Not exported: {message}")
        )
        return self.jobs.start(job)

    def _confirm_discard(self) -> bool:
        """True when there is nothing unsaved, or the user saved or chose to discard it."""
        if self.document is None or self.undo_stack.isClean():
            return True
        answer = QMessageBox.question(
            self._parent_widget(),
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

    # -- dropping a photo on the window (the canvas handles drops on the photo itself) --------------------

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        accept_as_copy(event)

    def dragMoveEvent(self, event: QDragMoveEvent) -> None:
        accept_as_copy(event)

    def dropEvent(self, event: QDropEvent) -> None:
        path = accept_as_copy(event)
        if path is not None:
            self.open_path(path)
