"""The main window's menus, toolbar and view controls (zoom label, split view, hold-to-compare button).

Mixed into MainWindow; the actions call the window's slots (file_actions.py, main_window.py) and the
canvas.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QDockWidget, QSlider, QWidget

from diat_studio.gui.canvas import PhotoCanvas
from diat_studio.gui.settings import AppSettings


class WindowMenus:
    """Menus, toolbar and view controls of MainWindow."""

    canvas: PhotoCanvas
    settings: AppSettings

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
        self.train_action = self._action("&Train custom attribute…", self.open_train_dialog)
        self.train_action.setToolTip("Train your own edit from two folders of photos (with and without)")
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
        self.masks_action = self._action("Show &masks", lambda: None, "M", checkable=True)
        self.masks_action.setToolTip("Show the selected edit's mask outlines (hidden after Apply)")
        self.masks_action.toggled.connect(self.canvas.show_masks)
        for action in (self.boxes_action, self.landmarks_action, self.masks_action):
            action.setChecked(True)
        self.split_action = self._action("&Split before/after", self._toggle_split, "S", checkable=True)
        self.split_slider = QSlider(Qt.Orientation.Horizontal)
        self.split_slider.setRange(0, 100)
        self.split_slider.setValue(50)
        self.split_slider.setMaximumWidth(160)
        self.split_slider.setToolTip("Where the split between before (left) and after (right) is")
        self.split_slider.valueChanged.connect(self._on_split_moved)
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
        file_menu.addAction(self.train_action)
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
            self.masks_action,
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
            self.masks_action,
            self.split_action,
        ):
            toolbar.addAction(action)
        toolbar.addWidget(self.split_slider)
        toolbar.addAction(self.compare_action)
        compare_button = toolbar.widgetForAction(self.compare_action)
        compare_button.pressed.connect(self._compare_pressed)
        compare_button.released.connect(self._compare_released)
        toolbar.addAction(self.apply_action)

    def _restore_window(self) -> None:
        if self.settings.geometry is not None:
            self.restoreGeometry(self.settings.geometry)
        if self.settings.window_state is not None:
            self.restoreState(self.settings.window_state)

    # -- view --------------------------------------------------------------------------------------------

    def _on_zoom_changed(self, zoom: float) -> None:
        self.zoom_label.setText(f"{zoom * 100:.0f}%")

    def _toggle_split(self, enabled: bool) -> None:
        self.canvas.set_split(self.split_slider.value() / 100.0 if enabled else None)

    def _on_split_moved(self, _value: int) -> None:
        self._toggle_split(self.split_action.isChecked())

    def _compare_pressed(self) -> None:
        self.canvas.set_show_before(True)

    def _compare_released(self) -> None:
        self.canvas.set_show_before(False)
