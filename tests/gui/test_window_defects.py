"""The window's smaller defects of issue 12, each checked in the real MainWindow (pytest-qt, offscreen)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QMimeData, QPoint, QPointF, QRectF, QSettings, QStandardPaths, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDragMoveEvent, QDropEvent, QImage, QPainter
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QFileDialog, QPushButton

from diat_studio.core.batch import REPORT_JSON
from diat_studio.core.manifest import MANIFEST_FILE
from diat_studio.core.regions import RegionKind, region_polygon
from diat_studio.core.registry import ModelRegistry
from diat_studio.gui import batch_dialog as batch_dialog_module
from diat_studio.gui.images import from_qimage
from diat_studio.gui.main_window import MainWindow
from diat_studio.gui.settings import AppSettings
from tests.conftest import REPO_ROOT
from tests.gui.helpers import SAMPLE, TIMEOUT, finish, open_photo
from tests.onnx_fixtures import model_folder

JPEG_MAGIC, PNG_MAGIC = b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n"


@pytest.fixture()
def two_faces(tmp_path: Path, astronaut: np.ndarray) -> Path:
    path = tmp_path / "two.png"
    Image.fromarray(np.hstack([astronaut, astronaut[:, ::-1]])).save(path)
    return path


@pytest.fixture()
def photo_folder(tmp_path: Path, astronaut: np.ndarray) -> Path:
    folder = tmp_path / "in"
    folder.mkdir()
    for index in range(12):
        Image.fromarray(np.roll(astronaut, index, axis=1)).save(folder / f"p{index:02d}.png")
    return folder


def wait_for_photo(qtbot, window: MainWindow, path: Path) -> None:
    qtbot.waitUntil(lambda: window.document is not None and window.document.path == path, timeout=TIMEOUT)


def render_photo(window: MainWindow) -> np.ndarray:
    """The scene as drawn at 100% over the photo's rectangle (what the user sees, without zoom)."""
    height, width = window.document.pixels.shape[:2]  # type: ignore[union-attr]
    image = QImage(width, height, QImage.Format.Format_RGB888)
    painter = QPainter(image)
    window.canvas.scene().render(painter, QRectF(0, 0, width, height), QRectF(0, 0, width, height))
    painter.end()
    return from_qimage(image)


# -- batch dialog ------------------------------------------------------------------------------------------


def test_batch_cancel_says_cancelled_and_offers_the_report(
    qtbot, window: MainWindow, tmp_path: Path, photo_folder: Path
) -> None:
    dialog = window.open_batch_dialog()
    out = tmp_path / "out"
    dialog.input_edit.setText(str(photo_folder))
    dialog.output_edit.setText(str(out))
    dialog.start()
    job = dialog.job
    assert job is not None
    job.signals.progress.connect(lambda _text, fraction: fraction > 0 and dialog.cancel())
    qtbot.waitUntil(lambda: not dialog.running, timeout=TIMEOUT)
    assert dialog.status.text().startswith("Cancelled")
    assert dialog.report is not None and dialog.report.cancelled
    assert "cancelled" in dialog.summary.text()
    assert (out / REPORT_JSON).is_file()
    assert dialog.report_button.isEnabled() and dialog.folder_button.isEnabled()
    assert dialog.start_button.isEnabled() and not dialog.cancel_button.isEnabled()
    dialog.close()


def test_batch_eta_waits_for_the_first_finished_file(
    qtbot, window: MainWindow, tmp_path: Path, photo_folder: Path
) -> None:
    dialog = window.open_batch_dialog()
    dialog.input_edit.setText(str(photo_folder))
    dialog.output_edit.setText(str(tmp_path / "out"))
    seen: list[tuple[float, str]] = []
    dialog.start()
    assert dialog.job is not None
    # connected after the dialog's own slot: sees the status the dialog just wrote
    dialog.job.signals.progress.connect(lambda _t, fraction: seen.append((fraction, dialog.status.text())))
    qtbot.waitUntil(lambda: not dialog.running, timeout=TIMEOUT)
    before = [text for fraction, text in seen if fraction <= 0]
    after = [text for fraction, text in seen if fraction > 0]
    assert before and after
    assert all("ETA estimating…" in text and "0:00:00" not in text for text in before)
    assert all("ETA estimating" not in text for text in after)
    dialog.close()


def test_open_report_without_a_desktop_launcher_shows_the_path(
    qtbot, window: MainWindow, tmp_path: Path, monkeypatch
) -> None:
    opened: list[QUrl] = []

    def no_launcher(url: QUrl) -> bool:
        opened.append(url)
        return False

    monkeypatch.setattr(batch_dialog_module.QDesktopServices, "openUrl", no_launcher)
    dialog = window.open_batch_dialog()
    out = tmp_path / "out"
    dialog.output_edit.setText(str(out))
    dialog.open_report()
    assert opened and opened[-1].toLocalFile() == str(out / REPORT_JSON)
    assert str(out / REPORT_JSON) in dialog.status.text()
    dialog.open_output()
    assert str(out) in dialog.status.text() and "output folder" in dialog.status.text()
    dialog.close()


def test_batch_dialog_remembers_its_folders(
    qtbot, window: MainWindow, tmp_path: Path, photo_folder: Path, monkeypatch, settings_ini: Path
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    starts: list[str] = []

    def choose(_parent, _title, start):
        starts.append(start)
        return str(photo_folder) if len(starts) == 1 else str(out)

    monkeypatch.setattr(QFileDialog, "getExistingDirectory", choose)
    dialog = window.open_batch_dialog()
    assert dialog.input_edit.text() == "" and dialog.output_edit.text() == ""
    browse = [button for button in dialog.findChildren(QPushButton) if button.text() == "Browse…"]
    for button in browse:  # input, then output
        QTest.mouseClick(button, Qt.MouseButton.LeftButton)
    assert dialog.input_edit.text() == str(photo_folder) and dialog.output_edit.text() == str(out)
    assert not Path(starts[0]).resolve().is_relative_to(REPO_ROOT)  # never the install folder
    dialog.close()
    again = window.open_batch_dialog()
    assert again is not dialog
    assert again.input_edit.text() == str(photo_folder) and again.output_edit.text() == str(out)
    stored = AppSettings(QSettings(str(settings_ini), QSettings.Format.IniFormat))
    assert stored.batch_folder("input") == str(photo_folder)
    again.close()


# -- dropping, comparing, showing ----------------------------------------------------------------------


def test_a_photo_dropped_on_the_photo_view_opens_as_a_copy(
    qtbot, window: MainWindow, tmp_path: Path, two_faces: Path
) -> None:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(two_faces))])
    viewport = window.canvas.viewport()
    point = viewport.rect().center()
    actions = Qt.DropAction.CopyAction | Qt.DropAction.MoveAction
    shift = Qt.KeyboardModifier.ShiftModifier  # a move is what Shift asks for: it must stay a copy
    enter = QDragEnterEvent(point, actions, mime, Qt.MouseButton.LeftButton, shift)
    enter.setDropAction(Qt.DropAction.MoveAction)
    enter.ignore()  # as Qt delivers it: refused unless a widget accepts it
    QApplication.sendEvent(viewport, enter)
    assert enter.isAccepted() and enter.dropAction() == Qt.DropAction.CopyAction
    drop = QDropEvent(QPointF(point), actions, mime, Qt.MouseButton.LeftButton, shift)
    drop.setDropAction(Qt.DropAction.MoveAction)
    drop.ignore()
    QApplication.sendEvent(viewport, drop)
    assert drop.isAccepted() and drop.dropAction() == Qt.DropAction.CopyAction
    wait_for_photo(qtbot, window, two_faces)
    assert two_faces.is_file()
    text = QMimeData()
    text.setText("not a photo")
    # (a graphics view accepts every drag *enter*; what it refuses, it refuses on the move)
    refused = QDragMoveEvent(point, actions, text, Qt.MouseButton.LeftButton, Qt.KeyboardModifier(0))
    refused.ignore()
    QApplication.sendEvent(viewport, refused)
    assert not refused.isAccepted()


def test_hold_backslash_compares_with_the_focus_in_the_lists(qtbot, window: MainWindow) -> None:
    open_photo(qtbot, window, SAMPLE)
    finish(qtbot, window.apply_edit())
    for widget in (window.faces_list, window.edits.models, window.canvas):
        widget.setFocus()
        QTest.keyPress(widget, Qt.Key.Key_Backslash)
        assert window.canvas.photo.show_before, type(widget).__name__
        QTest.keyRelease(widget, Qt.Key.Key_Backslash)
        assert not window.canvas.photo.show_before, type(widget).__name__
    assert window.faces_list.currentRow() in (-1, 0)  # no type-ahead search moved the list


def test_show_masks_toggle_and_apply_reveals_the_result(qtbot, window: MainWindow) -> None:
    open_photo(qtbot, window, SAMPLE)
    window.boxes_action.trigger()
    window.landmarks_action.trigger()
    assert window.canvas.masks and window.canvas.masks[0].isVisible()
    finish(qtbot, window.apply_edit())
    document = window.document
    assert document is not None
    shown = render_photo(window)
    x0, y0, x1, y1 = (round(v) for v in document.polygon(0, window.current_region()).bounds())  # type: ignore[arg-type]
    difference = np.abs(shown[y0:y1, x0:x1].astype(int) - document.pixels[y0:y1, x0:x1]).mean()
    assert difference < 1.0, "the mask overlay covers the edited result"
    assert not window.masks_action.isChecked() and not window.canvas.masks[0].isVisible()
    window.masks_action.trigger()
    assert window.canvas.masks[0].isVisible()
    window.faces_list.clearSelection()
    window.select_all_faces()  # masks rebuilt for the new selection keep the toggle
    assert window.canvas.masks[0].isVisible()
    window.masks_action.trigger()
    window.select_all_faces()
    assert not any(item.isVisible() for item in window.canvas.masks)


def test_face_boxes_carry_the_numbers_of_the_faces_list(qtbot, window: MainWindow, two_faces: Path) -> None:
    open_photo(qtbot, window, two_faces)
    assert len(window.canvas.boxes) == window.faces_list.count() == 2
    for index, box in enumerate(window.canvas.boxes):
        assert box.label.text() == str(index + 1) and box.label.isVisible()
        assert window.faces_list.item(index).text().startswith(f"Face {index + 1} ")
        assert box.rect().contains(box.label.pos())
    window.canvas.face_clicked.emit(1, False)
    assert [window.faces_list.row(item) for item in window.faces_list.selectedItems()] == [1]


# -- editing panel -----------------------------------------------------------------------------------------


def test_cancel_button_stays_put_when_the_progress_bar_appears(qtbot, window: MainWindow) -> None:
    open_photo(qtbot, window, SAMPLE)
    panel = window.edits
    QApplication.processEvents()
    before = panel.cancel_button.mapTo(window, QPoint(0, 0))
    job = window.apply_edit()
    assert job is not None and panel.progress.isVisible()
    QApplication.processEvents()
    assert panel.cancel_button.mapTo(window, QPoint(0, 0)) == before
    finish(qtbot, job)
    QApplication.processEvents()
    assert panel.cancel_button.mapTo(window, QPoint(0, 0)) == before


def test_apply_is_disabled_with_the_reason_shown(
    qtbot, window: MainWindow, tmp_path: Path, astronaut: np.ndarray
) -> None:
    def reason() -> str:
        assert not window.apply_action.isEnabled() and not window.edits.apply_button.isEnabled()
        assert window.edits.apply_button.toolTip() == window.edits.status.text() != ""
        return window.edits.status.text()

    assert "Open a photo" in reason()
    blank = tmp_path / "blank.png"
    Image.fromarray(np.full((200, 300, 3), 128, np.uint8)).save(blank)
    open_photo(qtbot, window, blank)
    assert "No face" in reason()
    open_photo(qtbot, window, SAMPLE)
    assert window.apply_action.isEnabled() and window.edits.status.text() == ""
    window.document.select(set())  # type: ignore[union-attr]
    assert "Select a face" in reason()
    window.select_all_faces()
    job = window.apply_edit()
    assert "edit is running" in reason()
    finish(qtbot, job)
    window.edits.models.setCurrentRow(-1)
    assert "Choose an edit" in reason()
    window.registry = ModelRegistry([tmp_path / "no-models"])
    window.edits.set_registry(window.registry, include_experimental=False)
    window._update_actions()
    assert "No usable edit model" in reason()


# -- files -------------------------------------------------------------------------------------------------


def test_save_writes_the_format_its_extension_says(qtbot, window: MainWindow, tmp_path: Path) -> None:
    open_photo(qtbot, window, SAMPLE)  # a JPEG
    finish(qtbot, window.apply_edit())
    finish(qtbot, window.save_to(tmp_path / "edited.png"))
    assert (tmp_path / "edited.png").read_bytes().startswith(PNG_MAGIC)
    assert window.save_to(tmp_path / "edited.gif") is None
    assert not (tmp_path / "edited.gif").exists()
    assert window.banner.level == "error" and ".gif" in window.banner.text
    finish(qtbot, window.save_to(tmp_path / "edited"))
    assert not (tmp_path / "edited").exists()
    assert (tmp_path / "edited.jpg").read_bytes().startswith(JPEG_MAGIC)
    assert "added .jpg" in window.statusBar().currentMessage()


def test_save_as_dialog_refuses_gif(qtbot, window: MainWindow, tmp_path: Path, monkeypatch) -> None:
    open_photo(qtbot, window, SAMPLE)
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *_a, **_k: (str(tmp_path / "x.gif"), ""))
    assert window.save_as() is None
    assert list(tmp_path.glob("x*")) == [] and ".gif" in window.banner.text


def test_title_follows_save_as(qtbot, window: MainWindow, tmp_path: Path) -> None:
    open_photo(qtbot, window, SAMPLE)
    finish(qtbot, window.apply_edit())
    assert window.windowTitle().startswith("astronaut.jpg*")
    finish(qtbot, window.save_to(tmp_path / "renamed.png"))
    assert window.windowTitle() == "renamed.png — DIAT Studio"
    finish(qtbot, window.apply_edit())
    assert window.windowTitle() == "renamed.png* — DIAT Studio"


def test_file_dialogs_start_in_pictures_or_the_last_folder(
    qtbot, window: MainWindow, tmp_path: Path, two_faces: Path, monkeypatch, settings_ini: Path
) -> None:
    starts: list[str] = []

    def open_dialog(_parent, _title, start, _filter):
        starts.append(start)
        return str(two_faces), ""

    def save_dialog(_parent, _title, suggestion, _filter):
        starts.append(suggestion)
        return "", ""

    monkeypatch.setattr(QFileDialog, "getOpenFileName", open_dialog)
    monkeypatch.setattr(QFileDialog, "getSaveFileName", save_dialog)
    open_photo(qtbot, window, SAMPLE)  # the bundled sample lives in the install folder
    window.save_as()
    first = Path(starts[-1]).parent
    pictures = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.PicturesLocation)
    assert first in (Path(pictures), Path.home()) and not first.resolve().is_relative_to(REPO_ROOT)
    window.choose_file()
    assert Path(starts[-1]) == first
    wait_for_photo(qtbot, window, two_faces)
    window.choose_file()
    assert Path(starts[-1]) == tmp_path  # the folder last used
    window.save_as()
    assert Path(starts[-1]) == tmp_path / "two-edited.png"
    stored = AppSettings(QSettings(str(settings_ini), QSettings.Format.IniFormat))
    assert stored.last_folder == tmp_path


def test_a_cancel_that_comes_after_the_worker_finished_still_discards_its_result(
    qtbot, window: MainWindow, two_faces: Path
) -> None:
    """The CI race of the CNN test, made certain: the worker is done, its result queued, then Cancel."""
    open_photo(qtbot, window, SAMPLE)
    job = window.open_path(two_faces)
    assert job is not None and window.jobs.pool.waitForDone(TIMEOUT)  # the UI thread has not seen it yet
    assert not job.completed
    window.cancel_open()
    finish(qtbot, job)
    assert window.document is not None and window.document.path == SAMPLE
    assert not window.banner.isVisible()
    pixels = window.document.pixels
    edit = window.apply_edit()
    assert edit is not None and window.jobs.pool.waitForDone(TIMEOUT)
    assert not edit.completed
    window.cancel_edit()
    finish(qtbot, edit)
    assert window.document.pixels is pixels and not window.document.applied
    assert "cancelled" in window.statusBar().currentMessage()


def test_cnn_detection_shows_progress_and_cancel_discards_it(
    qtbot, window: MainWindow, tmp_path: Path, astronaut: np.ndarray
) -> None:
    big = tmp_path / "big.png"
    Image.fromarray(astronaut).resize((3000, 3000)).save(big, compress_level=1)
    open_photo(qtbot, window, SAMPLE)
    window.settings.detector = "cnn"
    job = window.open_path(big)
    assert job is not None
    busy = window.busy
    assert busy.isVisible() and busy.cancel_button.isEnabled()
    assert (busy.bar.minimum(), busy.bar.maximum()) == (0, 0)  # running, no fraction to show
    qtbot.waitUntil(lambda: "Finding faces" in busy.label.text(), timeout=TIMEOUT)
    assert "CNN" in busy.label.text()
    QTest.mouseClick(busy.cancel_button, Qt.MouseButton.LeftButton)
    assert not busy.isVisible() and window.open_job is None  # control is back at once
    assert "cancelled" in window.statusBar().currentMessage()
    window.canvas.zoom_in()
    finish(qtbot, job)
    assert window.document is not None and window.document.path == SAMPLE  # the result was discarded


def test_the_mask_follows_the_chosen_models_margin(
    qtbot, window: MainWindow, tmp_path: Path, models_root: Path
) -> None:
    """A model trained with a wider region (its manifest's region_margin) is shown and applied with it."""
    folder = model_folder(tmp_path / "wide", "redden-eyes", "local", RegionKind.EYES, with_enhancer=False)
    manifest = json.loads((folder / MANIFEST_FILE).read_text())
    (folder / MANIFEST_FILE).write_text(json.dumps({**manifest, "region_margin": 0.45}))
    window.settings.model_folders = [models_root, tmp_path / "wide"]
    window.reload_models()
    qtbot.waitUntil(lambda: "redden-eyes" in [e.name for e in window.registry.entries], timeout=TIMEOUT)
    window.edits.select_model("redden-eyes")
    open_photo(qtbot, window, SAMPLE)
    assert window.current_margin() == 0.45
    finish(qtbot, window.apply_edit())
    landmarks = window.document.faces[0].landmarks  # type: ignore[union-attr]
    (applied,) = window.document.applied  # type: ignore[union-attr]
    assert applied.polygons[0] == region_polygon(RegionKind.EYES, landmarks, 0.45)
    assert applied.polygons[0] != region_polygon(RegionKind.EYES, landmarks)
