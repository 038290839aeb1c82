"""`diat-studio-train custom`: every check before any work, end to end on real faces at the tiny test
preset (found through the app's registry and `diat-studio batch`), finished steps skipped, a stopped run
continued from its checkpoints, and SIGTERM handled like Ctrl-C."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from diat_studio.core.paths import user_models_dir
from diat_studio.core.registry import ModelRegistry
from tests.face_folders import astronaut_folders, lfw_folders
from trainer.cli import EXIT_OK, EXIT_USAGE, main
from trainer.custom import STEPS, Stopped, run_custom
from trainer.custom_plan import PRESETS, USER_PRESETS, CustomRequest, validate
from trainer.custom_report import Reporter
from trainer.runs import CHECKPOINT, JsonlLog, load_checkpoint
from trainer.stopping import StopRequests

REPO = Path(__file__).resolve().parents[2]
QUIET = ["--workers", "1", "--threads", "1"]


def dummy_folders(root: Path, with_count: int, without_count: int) -> tuple[Path, Path]:
    """Folders of empty .jpg files: enough for the checks, which count photos without reading them."""
    folders = []
    for name, count in (("with", with_count), ("without", without_count)):
        folder = root / name
        folder.mkdir(parents=True)
        for index in range(count):
            (folder / f"{index:03d}.jpg").write_bytes(b"")
        folders.append(folder)
    return folders[0], folders[1]


def test_every_problem_is_listed_before_anything_is_written(capsys, tmp_path: Path) -> None:
    with_dir, without_dir = dummy_folders(tmp_path, 3, 25)
    workspace = tmp_path / "ws"
    arguments = [
        "custom", str(with_dir), str(without_dir), "--name", "Add Beard", "--region", "chin",
        "--preset", "slow", "--workspace", str(workspace),
    ]  # fmt: skip
    assert main(arguments) == EXIT_USAGE
    error = capsys.readouterr().err
    assert "4 problem(s), nothing was started" in error
    assert "--region 'chin' is not a region: choose mouth, eyes, face" in error
    assert "--name 'Add Beard'" in error and "--preset 'slow': choose quick, standard, best" in error
    assert f"WITH_DIR {with_dir} has 3 photo(s): at least 20 per folder" in error
    assert not workspace.exists()
    nested = ["custom", str(with_dir), str(with_dir / "sub"), "--name", "x", "--workspace", str(workspace)]
    (with_dir / "sub").mkdir()
    assert main(nested) == EXIT_USAGE
    assert "one photo folder is inside the other" in capsys.readouterr().err


def test_dry_run_prints_the_plan_and_guards_installed_models(
    capsys, tmp_path: Path, isolated_user_dirs: Path
) -> None:
    with_dir, without_dir = dummy_folders(tmp_path, 20, 21)
    workspace = tmp_path / "ws"
    arguments = [
        "custom", str(with_dir), str(without_dir), "--name", "add-beard", "--region", "mouth",
        "--install", "--workspace", str(workspace), "--dry-run",
    ]  # fmt: skip
    assert main(arguments) == EXIT_OK
    out = capsys.readouterr().out
    assert "Plan for 'Add beard' (add-beard): add 'beard', preset quick" in out
    assert "1. prepare" in out and f"7. install   → {user_models_dir() / 'add-beard'}" in out
    assert not workspace.exists()
    # a model of that name installed from elsewhere is not replaced without --force
    foreign = user_models_dir() / "add-beard"
    foreign.mkdir(parents=True)
    (foreign / "manifest.json").write_text(json.dumps({"training": {"dataset": {"folder": "/elsewhere"}}}))
    assert main(arguments) == EXIT_USAGE
    assert "a model named 'add-beard' is already installed" in capsys.readouterr().err
    assert main([*arguments, "--force"]) == EXIT_OK
    # a workspace made for other photos is not reused, or emptied without --force
    workspace.mkdir()
    (workspace / "plan.json").write_text(json.dumps({"identity": {"region": "eyes"}}))
    without_install = [a for a in arguments if a != "--install"]  # the workspace alone
    assert main(without_install) == EXIT_USAGE
    assert "was made for other with_dir, without_dir, photos" in capsys.readouterr().err
    assert main([*without_install, "--force"]) == EXIT_OK
    assert "will be emptied first (--force)" in capsys.readouterr().out


def test_region_margin_is_checked_and_shown_in_the_plan(capsys, tmp_path: Path) -> None:
    with_dir, without_dir = dummy_folders(tmp_path, 20, 21)
    common = ["custom", str(with_dir), str(without_dir), "--name", "add-glasses", "--dry-run"]
    common += ["--workspace", str(tmp_path / "ws")]
    assert main([*common, "--region-margin", "0.45"]) == EXIT_USAGE  # the default region is the face
    assert "--region-margin is for a local edit (--region mouth or eyes)" in capsys.readouterr().err
    assert main([*common, "--region", "eyes", "--region-margin", "2"]) == EXIT_USAGE
    assert "--region-margin 2.0: eye distances, 0 to 1.5" in capsys.readouterr().err
    assert main([*common, "--region", "eyes", "--region-margin", "0.45"]) == EXIT_OK
    assert "steps, region eyes (margin 0.45)" in capsys.readouterr().out


def test_presets_state_their_minutes_in_the_help(capsys) -> None:
    assert main(["custom", "--help"]) == EXIT_OK
    text = " ".join(capsys.readouterr().out.split())
    for name in USER_PRESETS:
        assert f"{name} ≈ {PRESETS[name].cpu_minutes} min" in text
    assert "tiny" not in text  # the test preset is not offered


@pytest.mark.shared_data
def test_custom_end_to_end_on_real_faces(capsys, tmp_path: Path, isolated_user_dirs: Path) -> None:
    with_dir, without_dir = lfw_folders(tmp_path / "photos", 24)
    workspace = tmp_path / "ws"
    arguments = [
        "custom", str(with_dir), str(without_dir), "--name", "add-glasses", "--region", "eyes",
        "--preset", "tiny", "--install", "--workspace", str(workspace), *QUIET,
    ]  # fmt: skip
    assert main([*arguments, "--json-progress"]) == EXIT_OK
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [e["key"] for e in events if e["event"] == "step"] == [key for key, _ in STEPS]
    fractions = [e["fraction"] for e in events if e["event"] == "progress"]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    finished = events[-1]
    assert finished["event"] == "finished" and finished["installed"] == str(user_models_dir() / "add-glasses")

    entry = ModelRegistry.default().get("add-glasses")  # the app's own registry finds it
    assert entry.available and entry.directory == user_models_dir() / "add-glasses"
    manifest = entry.manifest
    assert (
        manifest.kind == "local"
        and manifest.region.value == "eyes"
        and manifest.display_name == "Add glasses"
    )
    assert manifest.attribute == "glasses" and manifest.crop_size == PRESETS["tiny"].crop_size
    assert "evaluator_near_chance" in manifest.metrics and "quality_bar_missed" in manifest.metrics
    assert entry.experimental == finished["experimental"]
    log = (workspace / "custom.log").read_text()
    assert "[4/7] edit" in log and "steps/s, ETA" in log

    from diat_studio.cli import main as app_main

    out = tmp_path / "edited"
    flags = ["--experimental"] if entry.experimental else []
    assert app_main(["batch", str(with_dir), str(out), "--edit", "add-glasses", *flags, "-q"]) == 0
    edited = [p for p in out.iterdir() if p.suffix == ".jpg"]
    assert len(edited) >= 20  # LFW photos of people with glasses, each edited by the new model

    # again: every step is skipped, nothing is trained or written again
    checkpoints = {p: p.stat().st_mtime_ns for p in workspace.glob("runs/*/" + CHECKPOINT)}
    installed = (entry.directory / "transform.onnx").stat().st_mtime_ns
    assert main(arguments) == EXIT_OK
    captured = capsys.readouterr()
    assert captured.err.count("done earlier") == len(STEPS)
    assert {p: p.stat().st_mtime_ns for p in checkpoints} == checkpoints
    assert (entry.directory / "transform.onnx").stat().st_mtime_ns == installed
    assert f"diat-studio batch IN_DIR OUT_DIR --edit add-glasses{' --experimental' * entry.experimental}" in (
        captured.out
    )


@pytest.fixture()
def shades(tmp_path: Path, astronaut, astronaut_face) -> tuple[Path, Path]:
    """20 astronaut photos with dark glasses drawn on, 20 without."""
    return astronaut_folders(tmp_path / "photos", 20, astronaut, astronaut_face)


class _StopInEdit(Reporter):
    """Asks for a stop (as SIGTERM would) once the edit run reaches step 4."""

    stop: StopRequests

    def progress(self, done: int, total: int, unit: str, start: int = 0, text: str = "") -> None:
        super().progress(done, total, unit, start, text)
        if self.key == "edit" and done >= 4:
            self.stop.request(signal.SIGTERM)


class _Recording(Reporter):
    """Records the progress of each step."""

    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self.done: dict[str, list[int]] = {}

    def progress(self, done: int, total: int, unit: str, start: int = 0, text: str = "") -> None:
        super().progress(done, total, unit, start, text)
        self.done.setdefault(self.key, []).append(done)


def test_a_stopped_custom_continues_from_its_checkpoints(tmp_path: Path, shades) -> None:
    request = CustomRequest(
        *shades, "add-shades", region="eyes", preset="tiny", workspace=tmp_path / "ws", steps_scale=3,
        workers=1, threads=1,
    )  # fmt: skip
    plan = validate(request)
    reporter = _StopInEdit(plan.log, stream=io.StringIO())
    reporter.stop = StopRequests(message="")
    with pytest.raises(Stopped) as stopped:
        run_custom(plan, reporter, reporter.stop)
    assert stopped.value.exit_code == 143
    edit = plan.runs / "edit"
    assert load_checkpoint(edit)["step"] == 4 and not plan.model.exists()
    guide_log = (plan.runs / "guide" / "log.jsonl").read_text()

    again = _Recording(plan.log, stream=io.StringIO())
    outcome = run_custom(validate(request), again, StopRequests(message=""))
    assert load_checkpoint(edit)["step"] == 9
    assert again.done["edit"] == [5, 6, 7, 8, 9] and "guide" not in again.done  # from the checkpoint on
    assert {"step": 4, "event": "resumed"} in JsonlLog(edit / "log.jsonl").read()
    assert (plan.runs / "guide" / "log.jsonl").read_text() == guide_log  # finished: not trained again
    assert (outcome.model / "manifest.json").is_file()
    assert "continuing from step 4 of 9" in plan.log.read_text()


def test_sigterm_stops_custom_cleanly(tmp_path: Path, shades) -> None:
    workspace = tmp_path / "ws"
    command = [
        sys.executable, "-m", "trainer.cli", "custom", *map(str, shades), "--name", "add-shades",
        "--preset", "tiny", "--steps-scale", "500", "--workspace", str(workspace), "--json-progress", *QUIET,
    ]  # fmt: skip
    guide = workspace / "runs" / "guide"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        deadline = time.monotonic() + 180
        while not any("losses" in r for r in JsonlLog(guide / "log.jsonl").read()):
            if time.monotonic() > deadline or process.poll() is not None:
                pytest.fail("the guide classifier did not start within 3 minutes")
            time.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 143, stderr.decode()[-2000:]
    assert b"Traceback" not in stderr and b"run the same command again to continue" in stderr
    assert json.loads(stdout.decode().splitlines()[-1]) == {"event": "stopped", "exit_code": 143}
    step = load_checkpoint(guide)["step"]
    assert 0 < step < 1500 and json.loads((guide / "status.json").read_text())["status"] == "aborted"
