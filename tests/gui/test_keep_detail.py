"""Settings › Paste-back › Keep the photo's detail: on by default, and off pastes the enlarged crop."""

from __future__ import annotations

import cv2
import numpy as np
from PySide6.QtCore import QSettings

from diat_studio.core.regions import RegionKind
from diat_studio.gui.main_window import MainWindow
from diat_studio.gui.settings import AppSettings
from diat_studio.gui.settings_dialog import SettingsDialog
from tests.gui.helpers import SAMPLE, finish, open_photo


def _edit(qtbot, window: MainWindow, photo) -> np.ndarray:
    open_photo(qtbot, window, photo)
    job = window.apply_edit()
    finish(qtbot, job)
    assert window.document is not None
    return window.document.pixels


def _mouth_detail(window: MainWindow, pixels: np.ndarray) -> float:
    document = window.document
    assert document is not None
    height, width = pixels.shape[:2]
    inside = document.polygon(0, RegionKind.MOUTH).rasterise(height, width, 8).full(height, width) >= 1
    grey = cv2.cvtColor(pixels, cv2.COLOR_RGB2GRAY)
    return float(cv2.Laplacian(grey, cv2.CV_32F)[inside].var())


def test_detail_is_kept_by_default_and_the_setting_turns_it_off(
    monkeypatch, qtbot, window: MainWindow, settings_ini, tmp_path
) -> None:
    # the sample enlarged 3× (a 260 px face): the model's 128 px crop is then coarser than the photo
    sample = cv2.imread(str(SAMPLE))
    photo = tmp_path / "large.png"
    cv2.imwrite(str(photo), cv2.resize(sample, None, fx=3, fy=3, interpolation=cv2.INTER_CUBIC))
    assert window.settings.keep_detail is True
    sharp = _edit(qtbot, window, photo)

    def exec_(dialog: SettingsDialog) -> int:
        assert dialog.keep_detail.isChecked()
        dialog.keep_detail.setChecked(False)
        return 1

    monkeypatch.setattr(SettingsDialog, "exec", exec_)
    window.open_settings()
    assert window.settings.keep_detail is False
    assert AppSettings(QSettings(str(settings_ini), QSettings.Format.IniFormat)).keep_detail is False
    window.undo_action.trigger()
    job = window.apply_edit()
    finish(qtbot, job)
    soft = window.document.pixels  # type: ignore[union-attr]
    assert not np.array_equal(sharp, soft)
    assert _mouth_detail(window, sharp) > 1.5 * _mouth_detail(window, soft)
