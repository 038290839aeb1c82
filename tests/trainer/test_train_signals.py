"""SIGTERM checkpoints like Ctrl-C (exit 143) and `--resume` continues from the checkpoint; a run folder is
locked while a process trains in it; progress lines and the log carry rate and ETA."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from trainer.cli import EXIT_OK, EXIT_TERMINATED, EXIT_USAGE, main
from trainer.runs import JsonlLog, load_checkpoint

REPO = Path(__file__).resolve().parents[2]


def _losses(run: Path) -> list[dict]:
    return [r for r in JsonlLog(run / "log.jsonl").read() if "losses" in r]


def test_sigterm_checkpoints_and_resume_continues_while_a_live_run_is_locked(
    capsys, tmp_path: Path, dataset_dir: Path
) -> None:
    runs = tmp_path / "runs"
    command = [
        sys.executable, "-m", "trainer.cli", "train", "--stage", "enhance-global", "--data", str(dataset_dir),
        "--enhancer-width", "4", "--batch-size", "2", "--steps", "100000", "--log-every", "1",
        "--checkpoint-every", "100000", "--sample-every", "100000", "--runs-dir", str(runs), "-q",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        deadline = time.monotonic() + 120
        while not (runs.is_dir() and any(runs.iterdir()) and len(_losses(next(runs.iterdir()))) >= 3):
            if time.monotonic() > deadline or process.poll() is not None:
                pytest.fail("the training did not log three steps within 2 minutes")
            time.sleep(0.1)
        (run,) = runs.iterdir()
        # a second process may not train in the same folder while the first one is at it
        assert main(["train", "--resume", str(run), "--steps", "100001", "-q"]) == EXIT_USAGE
        assert f"is being trained by process {process.pid}" in capsys.readouterr().err
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == EXIT_TERMINATED
    assert b"Traceback" not in stderr
    stopped = load_checkpoint(run)["step"]
    assert stopped >= 3 and stopped == _losses(run)[-1]["step"]  # the checkpoint is where it stopped
    assert json.loads((run / "status.json").read_text())["status"] == "aborted"
    assert main(["train", "--resume", str(run), "--steps", str(stopped + 2), "-q"]) == EXIT_OK
    records = JsonlLog(run / "log.jsonl").read()
    resumed = records.index({"step": stopped, "event": "resumed"})
    assert [r["step"] for r in records[resumed:] if "losses" in r] == [stopped + 1, stopped + 2]
    assert load_checkpoint(run)["step"] == stopped + 2


def test_progress_lines_and_log_show_rate_and_eta(capsys, tmp_path: Path, dataset_dir: Path) -> None:
    arguments = [
        "train", "--stage", "reconstruct", "--data", str(dataset_dir), "--transform-width", "4",
        "--batch-size", "2", "--steps", "6", "--log-every", "2", "--sample-every", "1000",
        "--runs-dir", str(tmp_path / "runs"),
    ]  # fmt: skip
    assert main(arguments) == EXIT_OK
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith(("2/6", "4/6", "6/6"))]
    assert len(lines) == 3  # stderr is not a terminal here: one plain line per log step, as in a log file
    assert all(" steps/" in line and "ETA 0:" in line for line in lines)
    (run,) = (tmp_path / "runs").iterdir()
    records = _losses(run)
    assert [r["step"] for r in records] == [2, 4, 6]
    assert records[0]["eta_seconds"] > 0 and records[-1]["eta_seconds"] == 0
