"""The real application in its own process (tests/gui/app_driver.py): killed mid-session and restored,
and quitting cleanly."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from diat_studio.core.regions import RegionKind
from tests import onnx_fixtures
from tests.conftest import REPO_ROOT
from tests.gui.app_driver import MODEL
from tests.gui.helpers import SAMPLE

PROCESS_TIMEOUT = 180


@pytest.fixture()
def app_env(tmp_path: Path) -> dict[str, str]:
    """A private settings and data folder, with the fixture model installed for the user."""
    data = tmp_path / "data"
    onnx_fixtures.model_folder(data / "diat-studio" / "models", MODEL, "local", RegionKind.MOUTH)
    env = dict(os.environ)
    env.update(
        QT_QPA_PLATFORM="offscreen",
        XDG_CONFIG_HOME=str(tmp_path / "config"),
        XDG_DATA_HOME=str(data),
        OMP_NUM_THREADS="1",
        PYTHONPATH=str(REPO_ROOT),
        PYTHONFAULTHANDLER="1",
    )
    env.pop("DIAT_STUDIO_RESTORE", None)
    return env


def driver(mode: str, out: Path, *args: str, env: dict[str, str]) -> list[str]:
    out.mkdir(exist_ok=True)
    return [sys.executable, "-m", "tests.gui.app_driver", mode, str(out), *args]


def test_killed_session_is_restored_at_the_next_start(tmp_path: Path, app_env: dict[str, str]) -> None:
    out = tmp_path / "out"
    recovery = Path(app_env["XDG_DATA_HOME"]) / "diat-studio" / "recovery"
    first = subprocess.Popen(
        driver("edit", out, str(SAMPLE), env=app_env),
        cwd=REPO_ROOT,
        env=app_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    line = ""
    try:
        assert first.stdout is not None
        ready, _, _ = select.select([first.stdout], [], [], PROCESS_TIMEOUT)
        line = first.stdout.readline() if ready else ""
    finally:
        first.send_signal(signal.SIGKILL)  # no clean-up runs: like a crash or a power cut
        _, errors = first.communicate(timeout=30)
    assert line.strip() == "READY", f"the first window never got ready:\n{errors}"
    assert first.returncode == -signal.SIGKILL
    edited = np.load(out / "edited.npy")
    before = json.loads((out / "edited.json").read_text())
    journals = list(recovery.glob("session-*.json"))
    assert [str(path) for path in journals] == [before["journal"]]
    assert json.loads(journals[0].read_text())["photo"] == str(SAMPLE)

    env = dict(app_env, DIAT_STUDIO_RESTORE="yes")  # answers the restore question
    second = subprocess.run(
        driver("restore", out, env=env), cwd=REPO_ROOT, env=env, capture_output=True, text=True,
        timeout=PROCESS_TIMEOUT,
    )
    assert second.returncode == 0, second.stderr
    restored = json.loads((out / "restored.json").read_text())
    assert restored["restored"] and restored["photo"] == str(SAMPLE)
    assert np.array_equal(np.load(out / "restored.npy"), edited)  # the edit was redone, exactly
    assert restored["mask_edited"] and restored["mask"] == before["mask"]  # the reshaped mask is back
    assert restored["applied"] == ["Redden mouth"]
    assert restored["history"] == ["Redden mouth", "Restore mask (face 1, mouth)"]
    assert not restored["clean"] and restored["title"].startswith("astronaut.jpg*")
    assert "Restored astronaut.jpg (1 edit, 1 reshaped mask)" in restored["banner"]
    # the second window quit normally: no journal is left, not its own and not the old one
    assert list(recovery.glob("session-*.json")) == []
    assert not Path(restored["journal"]).exists()


def test_quitting_leaves_no_journal_and_no_qobject_ownership_warning(
    tmp_path: Path, app_env: dict[str, str]
) -> None:
    """Open a photo, edit, open and accept Settings, open and close the batch dialog, quit (discarding
    the edit): nothing is left to restore, and stderr does not say that a QObject was deleted twice
    ("shared QObject was deleted directly", which came from the Settings dialog)."""
    out = tmp_path / "out"
    done = subprocess.run(
        driver("quit", out, str(SAMPLE), env=app_env), cwd=REPO_ROOT, env=app_env, capture_output=True,
        text=True, timeout=PROCESS_TIMEOUT,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads((out / "quit.json").read_text()) == {"edits": 1}
    recovery = Path(app_env["XDG_DATA_HOME"]) / "diat-studio" / "recovery"
    assert list(recovery.glob("session-*.json")) == []
    assert "shared QObject was deleted directly" not in done.stderr
    assert "Fatal Python error" not in done.stderr and "malloc" not in done.stderr
