"""The real MainWindow fixture for the window tests (pytest-qt, offscreen)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QMessageBox

from diat_studio.gui.main_window import MainWindow
from diat_studio.gui.settings import AppSettings
from tests.gui.helpers import TIMEOUT


@pytest.fixture()
def settings_ini(tmp_path: Path) -> Path:
    return tmp_path / "settings.ini"


@pytest.fixture()
def window(
    monkeypatch, qtbot, settings_ini: Path, models_root: Path, isolated_user_dirs
) -> Iterator[MainWindow]:
    # monkeypatch comes first so it is undone last: after pytest-qt has closed the window too.
    monkeypatch.setattr(QMessageBox, "question", lambda *_a, **_k: QMessageBox.StandardButton.Discard)
    settings = AppSettings(QSettings(str(settings_ini), QSettings.Format.IniFormat))
    settings.model_folders = [models_root]
    settings.device = "cpu"  # type: ignore[assignment]
    main = MainWindow(settings)
    qtbot.addWidget(main)
    main.show()
    qtbot.waitUntil(lambda: main.edits.current_entry() is not None, timeout=TIMEOUT)
    main.edits.select_model("redden-mouth")
    yield main
    main.close()
