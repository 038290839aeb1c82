"""The real MainWindow, driven through pytest-qt (offscreen)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QEvent, QPointF, QSettings, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from diat_studio.core.regions import RegionKind
from diat_studio.gui.images import from_qimage
from diat_studio.gui.main_window import MainWindow
from diat_studio.gui.settings import AppSettings
from tests.gui.helpers import SAMPLE, TIMEOUT, canvas_pixels, finish, open_photo


def drag(view, start: QPointF, end: QPointF) -> None:
    """A real left-button drag on the canvas viewport, from scene point `start` to `end`."""
    viewport = view.viewport()
    a, b = view.mapFromScene(start), view.mapFromScene(end)
    QTest.mousePress(viewport, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, a)
    for t in (0.3, 0.6, 1.0):
        point = QPointF(a.x() + (b.x() - a.x()) * t, a.y() + (b.y() - a.y()) * t)
        move = QMouseEvent(
            QEvent.Type.MouseMove,
            point,
            viewport.mapToGlobal(point),
            Qt.MouseButton.NoButton,
            Qt.MouseButton.LeftButton,
            Qt.KeyboardModifier.NoModifier,
        )
        QApplication.sendEvent(viewport, move)
    QTest.mouseRelease(viewport, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, b)


def test_open_sample_shows_faces_and_landmarks(qtbot, window: MainWindow) -> None:
    open_photo(qtbot, window, SAMPLE)
    assert window.document is not None and len(window.document.faces) == 1
    assert len(window.canvas.boxes) == 1 and len(window.canvas.landmarks) == 68
    assert window.faces_list.count() == 1
    assert len(window.canvas.masks) == 1  # the mouth mask of the selected local model
    assert window.windowTitle().startswith("astronaut.jpg")
    qtbot.waitUntil(lambda: "Running on CPU" in window.provider_label.text(), timeout=TIMEOUT)


def test_drag_a_mask_vertex_then_undo_restores_it_exactly(qtbot, window: MainWindow) -> None:
    open_photo(qtbot, window, SAMPLE)
    document = window.document
    assert document is not None
    before = document.polygon(0, RegionKind.MOUTH)
    window.canvas.set_zoom(4.0)
    handle = window.canvas.masks[0].handles[0]
    window.canvas.centerOn(handle)
    start = handle.scenePos()
    assert window.canvas.itemAt(window.canvas.mapFromScene(start)) is handle
    drag(window.canvas, start, start + QPointF(3, 2))
    qtbot.waitUntil(lambda: window.undo_stack.count() == 1, timeout=5000)
    after = document.polygon(0, RegionKind.MOUTH)
    assert after != before
    assert np.allclose(np.array(after.points[0]) - before.points[0], (3, 2), atol=0.5)
    assert after.points[1:] == before.points[1:]
    window.undo_action.trigger()
    assert document.polygon(0, RegionKind.MOUTH) == before
    assert window.canvas.masks[0].polygon == before
    window.redo_action.trigger()
    assert document.polygon(0, RegionKind.MOUTH) == after


def test_insert_and_delete_vertices(qtbot, window: MainWindow) -> None:
    open_photo(qtbot, window, SAMPLE)
    document = window.document
    assert document is not None
    window.canvas.set_zoom(4.0)
    polygon = document.polygon(0, RegionKind.MOUTH)
    (x0, y0), (x1, y1) = polygon.points[0], polygon.points[1]
    middle = QPointF((x0 + x1) / 2, (y0 + y1) / 2)
    window.canvas.centerOn(middle)
    QTest.mouseDClick(
        window.canvas.viewport(),
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
        window.canvas.mapFromScene(middle),
    )
    qtbot.waitUntil(lambda: len(document.polygon(0, RegionKind.MOUTH)) == len(polygon) + 1, timeout=5000)
    window.canvas.masks[0].handles[3].setSelected(True)
    window.canvas.setFocus()
    QTest.keyClick(window.canvas, Qt.Key.Key_Delete)
    qtbot.waitUntil(lambda: len(document.polygon(0, RegionKind.MOUTH)) == len(polygon), timeout=5000)
    window.reset_mask_action.trigger()
    assert not document.is_mask_edited(0, RegionKind.MOUTH)
    assert window.undo_stack.count() == 3


def test_apply_edit_changes_only_the_face_and_undo_redo(qtbot, window: MainWindow) -> None:
    open_photo(qtbot, window, SAMPLE)
    document = window.document
    assert document is not None
    original = canvas_pixels(window)
    assert np.array_equal(original, document.original)
    job = window.apply_edit()
    assert job is not None
    finish(qtbot, job)
    edited = canvas_pixels(window)
    changed = np.any(edited != original, axis=2)
    assert changed.sum() > 300
    box = document.faces[0].box
    ys, xs = np.nonzero(changed)
    assert xs.min() >= box.left - 10 and xs.max() <= box.right + 10
    assert ys.min() >= box.top - 10 and ys.max() <= box.bottom + 30
    mask = document.polygon(0, RegionKind.MOUTH).rasterise(*original.shape[:2], 1).full(*original.shape[:2])
    assert not changed[mask == 0].any()  # nothing outside the mask moved
    assert window.undo_stack.count() == 1 and "ms" in window.timing_label.text()
    assert "*" in window.windowTitle()
    window.undo_action.trigger()
    assert np.array_equal(canvas_pixels(window), original)
    window.redo_action.trigger()
    assert np.array_equal(canvas_pixels(window), edited)


def test_window_stays_responsive_while_an_edit_runs(qtbot, window: MainWindow) -> None:
    open_photo(qtbot, window, SAMPLE)
    job = window.apply_edit()
    assert job is not None
    assert not window.edits.apply_button.isEnabled() and window.edits.cancel_button.isEnabled()
    window.canvas.zoom_in()  # the UI thread handles input while the job runs
    QApplication.processEvents()
    finish(qtbot, job)
    assert window.edit_job is None
    assert window.edits.apply_button.isEnabled()


def test_unreadable_file_shows_an_error_and_the_app_stays_usable(
    qtbot, window: MainWindow, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.jpg"
    broken.write_text("not a picture")
    open_photo(qtbot, window, broken)
    assert window.banner.isVisible() and window.banner.level == "error"
    assert "broken.jpg" in window.banner.text and "not a recognised image" in window.banner.text
    open_photo(qtbot, window, SAMPLE)
    assert window.document is not None and len(window.canvas.landmarks) == 68
    assert not window.banner.isVisible()


def test_no_face_and_several_faces_are_announced(
    qtbot, window: MainWindow, tmp_path: Path, astronaut
) -> None:
    blank = tmp_path / "blank.png"
    Image.fromarray(np.full((200, 300, 3), 128, np.uint8)).save(blank)
    open_photo(qtbot, window, blank)
    assert window.banner.level == "warning" and "No face found" in window.banner.text
    assert not window.apply_action.isEnabled()
    two = tmp_path / "two.png"
    Image.fromarray(np.hstack([astronaut, astronaut[:, ::-1]])).save(two)
    open_photo(qtbot, window, two)
    assert window.banner.level == "info" and "2 faces found" in window.banner.text
    assert len(window.canvas.landmarks) == 2 * 68
    window.canvas.face_clicked.emit(1, False)
    assert window.document is not None and window.document.selected == {1}
    assert len(window.canvas.masks) == 1 and window.canvas.masks[0].face == 1


def test_split_view_and_hold_to_compare(qtbot, window: MainWindow) -> None:
    open_photo(qtbot, window, SAMPLE)
    job = window.apply_edit()
    finish(qtbot, job)
    QTest.keyPress(window, Qt.Key.Key_Backslash)
    assert window.canvas.photo.show_before
    QTest.keyRelease(window, Qt.Key.Key_Backslash)
    assert not window.canvas.photo.show_before
    window.split_action.trigger()
    assert window.canvas.photo.split == pytest.approx(0.5)
    window.split_slider.setValue(30)
    assert window.canvas.photo.split == pytest.approx(0.3)
    window.split_action.trigger()
    assert window.canvas.photo.split is None


def test_zoom(qtbot, window: MainWindow) -> None:
    open_photo(qtbot, window, SAMPLE)
    window.canvas.actual_size()
    assert window.canvas.zoom == pytest.approx(1.0)
    window.canvas.zoom_in()
    assert window.canvas.zoom == pytest.approx(1.25)
    assert window.zoom_label.text() == "125%"


def test_save_and_export(qtbot, window: MainWindow, tmp_path: Path) -> None:
    open_photo(qtbot, window, SAMPLE)
    job = window.apply_edit()
    finish(qtbot, job)
    target = tmp_path / "edited.png"
    finish(qtbot, window.save_to(target))
    assert np.array_equal(np.asarray(Image.open(target).convert("RGB")), window.document.pixels)  # type: ignore[union-attr]
    assert window.undo_stack.isClean() and "*" not in window.windowTitle()
    comparison = tmp_path / "compare.jpg"
    finish(qtbot, window.export_comparison_to(comparison))
    with Image.open(comparison) as image:
        assert image.width > 2 * 512 and image.height == 512
    # saving over the opened file is refused by the core, and said so
    finish(qtbot, window.save_to(SAMPLE))
    assert "overwrite the input" in window.banner.text


def test_batch_dialog_processes_a_folder(qtbot, window: MainWindow, tmp_path: Path, astronaut) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    Image.fromarray(astronaut).save(folder / "a.jpg")
    Image.fromarray(astronaut[:, ::-1]).save(folder / "b.png")
    Image.fromarray(np.full((100, 100, 3), 90, np.uint8)).save(folder / "blank.png")
    (folder / "notes.txt").write_text("hi")
    dialog = window.open_batch_dialog()
    dialog.input_edit.setText(str(folder))
    dialog.output_edit.setText(str(tmp_path / "out"))
    assert dialog.chosen_edits() == ["redden-mouth"]
    dialog.start()
    assert dialog.running
    window.canvas.zoom_in()  # the main window stays usable meanwhile
    qtbot.waitUntil(lambda: not dialog.running, timeout=TIMEOUT)
    assert dialog.report is not None
    assert dialog.report.counts() == {"done": 2, "no face": 1, "skipped": 1, "error": 0}
    assert "2 done, 1 no face, 1 skipped, 0 failed" in dialog.summary.text()
    assert dialog.report_button.isEnabled() and dialog.folder_button.isEnabled()
    assert (tmp_path / "out" / "a.jpg").is_file()
    dialog.close()


def test_window_grab_is_not_blank(qtbot, window: MainWindow) -> None:
    open_photo(qtbot, window, SAMPLE)
    image = from_qimage(window.grab().toImage())
    assert image.shape[0] > 300 and image.shape[1] > 500
    assert image.std() > 20 and len(np.unique(image.reshape(-1, 3), axis=0)) > 1000


def test_settings_persist(qtbot, window: MainWindow, tmp_path: Path) -> None:
    window.settings.add_recent(SAMPLE)
    window.settings.theme = "light"
    window.settings.jpeg_quality = 88
    again = AppSettings(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    assert again.recent_files[0] == SAMPLE.resolve() and again.theme == "light"
    assert again.model_folders == window.settings.model_folders and again.jpeg_quality == 88
