"""The crash journal in the real window: written while work is unsaved, removed once it is saved, and
offered back (in-process; tests/gui/test_app_process.py kills a real process)."""

from __future__ import annotations

import json
from pathlib import Path

from diat_studio.gui.main_window import MainWindow
from diat_studio.gui.recovery import RecoveryState, find_abandoned
from tests.gui.helpers import SAMPLE, finish, open_photo


def journal(window: MainWindow) -> dict | None:
    window._journal_timer.stop()
    window._journal_now()
    assert window.journal.wait()
    path = window.journal.path
    return json.loads(path.read_text()) if path.is_file() else None


def test_unsaved_work_is_journalled_and_saving_removes_it(
    qtbot, window: MainWindow, tmp_path: Path
) -> None:
    open_photo(qtbot, window, SAMPLE)
    assert journal(window) is None  # nothing unsaved yet
    finish(qtbot, window.apply_edit())
    data = journal(window)
    assert data is not None and data["photo"] == str(SAMPLE) and len(data["edits"]) == 1
    state = RecoveryState.from_json(data)
    assert state.edits[0].model == "redden-mouth" and state.edits[0].faces == (0,)
    assert len(state.faces) == 1 and state.faces[0].landmarks.shape == (68, 2)
    assert not list(window.journal.folder.glob("*.part"))  # written atomically: no temporary left
    assert find_abandoned(window.journal.folder) == []  # its window is alive: not offered
    finish(qtbot, window.save_to(tmp_path / "saved.png"))
    assert journal(window) is None
    window.undo_action.trigger()  # unsaved again
    assert journal(window) is not None


def test_a_damaged_journal_is_dropped_without_a_question(window: MainWindow) -> None:
    window.journal.folder.mkdir(parents=True, exist_ok=True)
    damaged = window.journal.folder / "session-1-1.json"
    damaged.write_text("{not json")
    asked: list[str] = []
    assert window.check_recovery(ask=lambda text: asked.append(text) or True) is None
    assert asked == [] and not damaged.exists()
