"""File → Train custom attribute…: the dialog runs `diat-studio-train custom` in the background (a separate
process: the app never imports the trainer) to an installed model, with progress; Cancel stops it with
SIGTERM and keeps the work; the trainer's refusals are shown."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from diat_studio.core.paths import user_models_dir
from diat_studio.core.registry import ModelRegistry
from diat_studio.gui.train_dialog import PRESETS, TrainDialog
from tests.face_folders import astronaut_folders

QUIET = ["--workers", "1", "--threads", "1"]
TRAINING_TIMEOUT = 300_000


@pytest.fixture()
def shades(tmp_path: Path, astronaut, astronaut_face) -> tuple[Path, Path]:
    return astronaut_folders(tmp_path / "photos", 20, astronaut, astronaut_face)


def fill(dialog: TrainDialog, with_dir: Path, without_dir: Path, name: str, *, tiny: bool = True) -> None:
    dialog.with_edit.setText(str(with_dir))
    dialog.without_edit.setText(str(without_dir))
    dialog.name_edit.setText(name)
    dialog.region.setCurrentIndex(dialog.region.findData("eyes"))
    if tiny:  # the trainer's test preset, which the dialog does not offer
        dialog.preset.addItem("Tiny (tests)", "tiny")
        dialog.preset.setCurrentIndex(dialog.preset.count() - 1)


def test_the_presets_say_what_the_trainer_measured() -> None:
    from trainer.custom_plan import PRESETS as MEASURED
    from trainer.custom_plan import USER_PRESETS

    assert [value for value, _ in PRESETS] == list(USER_PRESETS)
    for value, label in PRESETS:
        number, unit = re.search(r"about (\d+) (minutes|hours)", label).groups()  # type: ignore[union-attr]
        minutes = int(number) * (60 if unit == "hours" else 1)
        assert minutes == MEASURED[value].cpu_minutes, value


def test_the_dialog_trains_installs_and_announces_the_model(
    qtbot, monkeypatch, tmp_path: Path, shades, isolated_user_dirs: Path
) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    dialog = TrainDialog(workspace_root=tmp_path / "training", extra_arguments=QUIET)
    qtbot.addWidget(dialog)
    dialog.show()
    fill(dialog, *shades, "add-shades")
    values: list[int] = []
    dialog.progress.valueChanged.connect(values.append)
    with qtbot.waitSignal(dialog.trained, timeout=TRAINING_TIMEOUT) as announced:
        qtbot.mouseClick(dialog.train_button, Qt.MouseButton.LeftButton)
        assert dialog.running and not dialog.train_button.isEnabled() and dialog.cancel_button.isEnabled()
    installed = announced.args[0]
    assert installed == user_models_dir() / "add-shades"
    entry = ModelRegistry.default().get("add-shades")  # what the main window's list is built from
    assert entry.available and entry.manifest.display_name == "Add shades"
    assert entry.experimental == dialog.experimental
    assert values == sorted(values) and len(set(values)) > 5 and values[-1] == 1000
    assert dialog.status.text().startswith(f"Done: the edit is installed in {installed}")
    assert "[4/7] edit" in dialog.output.toPlainText() and dialog.exit_code == 0
    assert dialog.train_button.isEnabled() and not dialog.cancel_button.isEnabled()
    assert (tmp_path / "training" / "add-shades" / "custom.log").is_file()


def test_cancel_stops_the_trainer_with_sigterm(
    qtbot, monkeypatch, tmp_path: Path, shades, isolated_user_dirs
):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    dialog = TrainDialog(
        workspace_root=tmp_path / "training", extra_arguments=[*QUIET, "--steps-scale", "300"]
    )
    qtbot.addWidget(dialog)
    fill(dialog, *shades, "add-shades")
    trained: list[object] = []
    dialog.trained.connect(trained.append)
    qtbot.mouseClick(dialog.train_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "guide classifier" in dialog.status.text() and "steps" in dialog.status.text(),
                    timeout=TRAINING_TIMEOUT)  # fmt: skip
    qtbot.mouseClick(dialog.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not dialog.running, timeout=120_000)
    assert dialog.exit_code == 143 and not trained
    assert dialog.status.text().startswith("Stopped. Press Train with the same settings to continue")
    assert (tmp_path / "training" / "add-shades" / "runs" / "guide" / "checkpoints" / "latest.pt").is_file()
    assert "Traceback" not in dialog.output.toPlainText()


def test_the_trainers_refusal_is_shown(qtbot, tmp_path: Path) -> None:
    folders = []
    for name in ("with", "without"):
        (tmp_path / name).mkdir()
        folders.append(tmp_path / name)
    dialog = TrainDialog(workspace_root=tmp_path / "training")
    qtbot.addWidget(dialog)
    fill(dialog, *folders, "Add Shades", tiny=False)
    qtbot.mouseClick(dialog.train_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.exit_code is not None, timeout=120_000)
    assert dialog.exit_code == 2
    text = dialog.status.text()
    assert (
        text.startswith("Training failed")
        and "at least 20 per folder" in text
        and "--name 'Add Shades'" in text
    )
    assert not (tmp_path / "training").exists()


def test_without_the_trainer_the_dialog_says_how_to_install_it(qtbot) -> None:
    dialog = TrainDialog(command=[])
    qtbot.addWidget(dialog)
    assert not dialog.train_button.isEnabled() and "pip install -e '.[train]'" in dialog.status.text()


def test_file_menu_trains_and_the_new_edit_appears_in_the_list(qtbot, monkeypatch, window, shades) -> None:
    """File → Train custom attribute… in the real main window: when the training has installed the
    model, the window reloads its models and selects the new edit."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    file_menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "&File")
    assert window.train_action in file_menu.actions()
    assert all(
        window.edits.models.item(row).text() != "Add shades" for row in range(window.edits.models.count())
    )
    window.train_action.trigger()
    dialog = window.train_dialog
    assert dialog is not None and dialog.isVisible() and dialog.command is not None
    dialog.extra_arguments = QUIET
    fill(dialog, *shades, "add-shades")
    dialog.direction.setCurrentIndex(dialog.direction.findData("add"))
    with qtbot.waitSignal(window.models_loaded, timeout=TRAINING_TIMEOUT):
        qtbot.mouseClick(dialog.train_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: dialog.exit_code is not None, timeout=TRAINING_TIMEOUT)
    assert dialog.exit_code == 0, dialog.output.toPlainText()[-2000:]
    entry = window.registry.get("add-shades")
    if entry.experimental and not window.settings.show_experimental:
        assert "Show experimental models" in window.banner.text
        window.settings.show_experimental = True
        with qtbot.waitSignal(window.models_loaded, timeout=TRAINING_TIMEOUT):
            window._on_trained(entry.directory)
    current = window.edits.current_entry()
    assert current is not None and current.name == "add-shades"
    assert current.directory == user_models_dir() / "add-shades"
    assert "“add-shades” is ready in the list" in window.banner.text
    # Reopening the menu item shows the same dialog (a running training is never orphaned).
    window.train_action.trigger()
    assert window.train_dialog is dialog
