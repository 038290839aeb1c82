"""Experimental models in the real MainWindow: hidden from the edit list and the batch dialog unless
Settings → Show experimental models is on (pytest-qt, offscreen)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import QMessageBox

from diat_studio.core.paths import resource_path
from diat_studio.core.regions import RegionKind
from diat_studio.core.registry import ModelEntry, ModelRegistry
from diat_studio.gui import main_window as main_window_module
from diat_studio.gui.edits_panel import ENTRY_ROLE, EditsPanel, describe
from diat_studio.gui.main_window import MainWindow
from diat_studio.gui.settings import AppSettings
from diat_studio.gui.settings_dialog import SettingsDialog

SAMPLE = resource_path("sample", "astronaut.jpg")
TIMEOUT = 60_000


@pytest.fixture()
def ini(tmp_path: Path) -> Path:
    return tmp_path / "settings.ini"


@pytest.fixture()
def window(
    monkeypatch, qtbot, ini: Path, models_root: Path, experimental_root: Path, isolated_user_dirs
) -> Iterator[MainWindow]:
    monkeypatch.setattr(QMessageBox, "question", lambda *_a, **_k: QMessageBox.StandardButton.Discard)
    monkeypatch.setattr(main_window_module, "apply_theme", lambda *_a: None)  # keep the app's style as is
    settings = AppSettings(QSettings(str(ini), QSettings.Format.IniFormat))
    settings.model_folders = [models_root, experimental_root]
    settings.device = "cpu"  # type: ignore[assignment]
    main = MainWindow(settings)
    qtbot.addWidget(main)
    main.show()
    qtbot.waitUntil(lambda: main.edits.current_entry() is not None, timeout=TIMEOUT)
    yield main
    main.close()


def listed(panel: EditsPanel) -> list[ModelEntry]:
    return [panel.models.item(row).data(ENTRY_ROLE) for row in range(panel.models.count())]


def listed_names(window: MainWindow) -> list[str]:
    return [entry.name for entry in listed(window.edits)]


def set_show_experimental(monkeypatch, qtbot, window: MainWindow, on: bool) -> None:
    """Tick or untick the box in the real Settings dialog and press OK; wait for the list to follow."""

    def exec_(dialog: SettingsDialog) -> int:
        assert dialog.experimental.isChecked() is (not on)  # the dialog shows the stored setting
        dialog.experimental.setChecked(on)
        return 1

    monkeypatch.setattr(SettingsDialog, "exec", exec_)
    window.open_settings()
    qtbot.waitUntil(lambda: ("redden-eyes" in listed_names(window)) is on, timeout=TIMEOUT)


def test_experimental_models_are_hidden_until_the_setting_is_on(
    monkeypatch, qtbot, window: MainWindow, ini: Path
) -> None:
    assert window.settings.show_experimental is False
    names = listed_names(window)
    assert "redden-mouth" in names and "redden-face" in names
    assert "redden-eyes" not in names
    assert not any(entry.experimental for entry in listed(window.edits))  # bundled ones too
    assert window.registry.get("redden-eyes").experimental  # installed and usable, only hidden
    assert window.edits.select_model("redden-eyes") is False
    batch = window.open_batch_dialog()
    offered = [batch.edits.item(row).data(Qt.ItemDataRole.UserRole) for row in range(batch.edits.count())]
    assert "redden-mouth" in offered and "redden-eyes" not in offered
    batch.close()

    set_show_experimental(monkeypatch, qtbot, window, True)
    assert AppSettings(QSettings(str(ini), QSettings.Format.IniFormat)).show_experimental is True
    row = listed_names(window).index("redden-eyes")
    item = window.edits.models.item(row)
    assert item.text().startswith("Redden eyes (experimental)\n")
    assert item.toolTip().startswith("Experimental:")
    assert "(experimental)" not in window.edits.models.item(listed_names(window).index("redden-mouth")).text()
    assert window.edits.select_model("redden-eyes")
    batch = window.open_batch_dialog()
    labels = {batch.edits.item(row).text(): batch.edits.item(row) for row in range(batch.edits.count())}
    assert "Redden eyes (experimental)" in labels
    assert batch.chosen_edits() == ["redden-eyes"]  # the chosen edit is ticked, as for any other
    batch.close()


def test_hiding_the_chosen_experimental_model_moves_the_choice(
    monkeypatch, qtbot, window: MainWindow
) -> None:
    set_show_experimental(monkeypatch, qtbot, window, True)
    assert window.edits.select_model("redden-eyes")
    finish_open = window.open_path(SAMPLE)
    assert finish_open is not None
    qtbot.waitUntil(lambda: finish_open.completed, timeout=TIMEOUT)
    assert window.current_region() is RegionKind.EYES and len(window.canvas.masks) == 1
    batch = window.open_batch_dialog()
    assert batch.chosen_edits() == ["redden-eyes"]

    set_show_experimental(monkeypatch, qtbot, window, False)
    entry = window.current_entry()
    first_usable = next(e for e in listed(window.edits) if e.available)
    assert entry is not None and entry.name == first_usable.name and not entry.experimental
    assert window.edits.models.currentItem().data(ENTRY_ROLE).name == entry.name
    assert window.current_region() is not RegionKind.EYES and len(window.canvas.masks) == 1
    assert window.apply_action.isEnabled()
    # the open batch dialog follows too: the hidden edit is neither offered nor ticked any more
    offered = [batch.edits.item(row).data(Qt.ItemDataRole.UserRole) for row in range(batch.edits.count())]
    assert "redden-eyes" not in offered and batch.chosen_edits() == []
    job = window.apply_edit()
    assert job is not None
    qtbot.waitUntil(lambda: job.completed, timeout=TIMEOUT)
    assert window.undo_stack.count() == 1
    batch.close()


def test_only_experimental_models_installed_says_how_to_show_them(qtbot, experimental_root: Path) -> None:
    panel = EditsPanel()
    qtbot.addWidget(panel)
    registry = ModelRegistry([experimental_root])
    panel.set_registry(registry, include_experimental=False)
    assert panel.models.count() == 0 and panel.current_entry() is None
    assert not panel.empty.isHidden()
    assert "1 experimental model(s) are installed but hidden" in panel.empty.text()
    assert "Show experimental models" in panel.empty.text()
    panel.set_registry(registry, include_experimental=True)
    assert panel.empty.isHidden()
    assert panel.current_entry() is not None and panel.current_entry().name == "redden-eyes"  # type: ignore[union-attr]


def test_a_bundled_local_edit_says_how_much_its_fading_edge_changes() -> None:
    """The tooltip names the measure a user can see at a local edit's edge (close mouth's pale streaks),
    read from the bundled manifest, and says the edit is experimental."""
    entry = ModelRegistry([resource_path("models")]).get("close-mouth")
    _, tooltip = describe(entry)
    metrics = entry.manifest.metrics
    expected = f"change where the edit fades out: {metrics['outer_feather_change_p99']:.1f} grey levels"
    assert expected in tooltip and "% of faces over 8)" in tooltip
    assert tooltip.startswith("Experimental:")
