"""The `diat-studio` command line: batch, models, info; exit codes and plain error messages."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from diat_studio.cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE, main
from tests.conftest import sigint_as_in_a_terminal
from tests.core.tmpfs import small_tmpfs


@pytest.fixture()
def photos(tmp_path: Path, astronaut: np.ndarray) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    Image.fromarray(astronaut).save(folder / "a.jpg")
    Image.fromarray(astronaut[:, ::-1]).save(folder / "b.png")
    return folder


def test_batch_all_done(photos: Path, tmp_path: Path, models_root: Path, isolated_user_dirs, capsys) -> None:
    code = main(
        [
            "batch",
            str(photos),
            str(tmp_path / "out"),
            "--edit",
            "redden-mouth",
            "--edit",
            "redden-face",
            "--strength",
            "0.8",
            "--faces",
            "largest",
            "--device",
            "cpu",
            "--models-dir",
            str(models_root),
        ]
    )
    captured = capsys.readouterr()
    assert code == EXIT_OK, captured.err
    assert "2 files: 2 done, 0 no face, 0 skipped, 0 failed" in captured.out
    assert "[2/2] b.png: done" in captured.err  # progress, one line per file when not on a terminal
    report = json.loads((tmp_path / "out" / "diat-studio-report.json").read_text())
    assert report["edits"] == ["redden-mouth", "redden-face"] and report["settings"]["strength"] == 0.8


def test_batch_with_a_failure_exits_1(
    photos: Path, tmp_path: Path, models_root: Path, isolated_user_dirs, capsys
) -> None:
    (photos / "broken.jpg").write_bytes(b"\xff\xd8\xff")
    code = main(
        [
            "batch",
            str(photos),
            str(tmp_path / "out"),
            "--edit",
            "redden-mouth",
            "--models-dir",
            str(models_root),
            "-q",
        ]
    )
    captured = capsys.readouterr()
    assert code == EXIT_FAILED
    assert "failed: broken.jpg:" in captured.err
    assert "1 failed" in captured.out


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["batch", "{photos}", "{out}", "--edit", "no-such-model"], "no model named 'no-such-model'"),
        (["batch", "{missing}", "{out}", "--edit", "redden-mouth"], "input folder not found"),
        (["batch", "{photos}", "{photos}/out", "--edit", "redden-mouth"], "inside the input folder"),
        (["batch", "{photos}", "{out}", "--edit", "redden-mouth", "--strength", "3"], "between 0 and 1"),
        (["batch", "{photos}", "{out}"], "--edit"),
    ],
)
def test_bad_usage_exits_2_with_a_clear_message(
    photos: Path, tmp_path: Path, models_root: Path, isolated_user_dirs, capsys, arguments, message
) -> None:
    values = {"photos": str(photos), "out": str(tmp_path / "out"), "missing": str(tmp_path / "missing")}
    argv = [argument.format(**values) for argument in arguments] + ["--models-dir", str(models_root)]
    assert main(argv) == EXIT_USAGE
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_models_lists_available_and_unavailable(
    tmp_path: Path, models_root: Path, isolated_user_dirs, capsys
) -> None:
    broken = tmp_path / "more" / "broken"
    broken.mkdir(parents=True)
    (broken / "manifest.json").write_text("[]")
    assert (
        main(["models", "--models-dir", str(models_root), "--models-dir", str(tmp_path / "more")]) == EXIT_OK
    )
    out = capsys.readouterr().out
    assert "redden-mouth" in out and "local  mouth 128px" in out and "available" in out
    assert "UNAVAILABLE: manifest must be a JSON object" in out


def test_info_reports_versions_and_providers(isolated_user_dirs, capsys) -> None:
    assert main(["info"]) == EXIT_OK
    out = capsys.readouterr().out
    assert "onnxruntime" in out and "dlib-bin" in out
    assert "--device auto  runs on" in out and "CPUExecutionProvider" in out


def test_console_script_prints_no_traceback(tmp_path: Path, isolated_user_dirs) -> None:
    env = {**os.environ, "XDG_DATA_HOME": str(isolated_user_dirs)}
    result = subprocess.run(
        [sys.executable, "-m", "diat_studio", "batch", str(tmp_path), str(tmp_path / "o"), "--edit", "x"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == EXIT_USAGE
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("diat-studio: error: no model named 'x' (available: ")
    assert len(result.stderr.strip().splitlines()) == 1


def test_pixel_limit_is_configurable(
    photos: Path, tmp_path: Path, models_root: Path, isolated_user_dirs, capsys
) -> None:
    code = main(
        [
            "batch",
            str(photos),
            str(tmp_path / "out"),
            "--edit",
            "redden-mouth",
            "--max-megapixels",
            "0.1",
            "--models-dir",
            str(models_root),
        ]
    )
    assert code == EXIT_FAILED
    assert "a.jpg: 512×512 pixels (0.262 MP) is over the limit of 0.1 MP" in capsys.readouterr().err


def test_batch_refuses_an_experimental_model_without_the_flag(
    photos: Path, tmp_path: Path, models_root: Path, experimental_root: Path, isolated_user_dirs, capsys
) -> None:
    argv = ["batch", str(photos), str(tmp_path / "out"), "--edit", "redden-mouth", "--edit", "redden-eyes"]
    folders = ["--models-dir", str(models_root), "--models-dir", str(experimental_root)]
    assert main(argv + folders) == EXIT_USAGE
    err = capsys.readouterr().err
    assert err.startswith("diat-studio: error: model 'redden-eyes' is experimental")
    assert "pass --experimental to use it" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_batch_runs_an_experimental_model_with_the_flag(
    photos: Path, tmp_path: Path, experimental_root: Path, isolated_user_dirs, capsys
) -> None:
    argv = ["batch", str(photos), str(tmp_path / "out"), "--edit", "redden-eyes", "--experimental"]
    code = main([*argv, "--device", "cpu", "-q", "--models-dir", str(experimental_root)])
    captured = capsys.readouterr()
    assert code == EXIT_OK, captured.err
    assert "2 files: 2 done" in captured.out
    report = json.loads((tmp_path / "out" / "diat-studio-report.json").read_text())
    assert report["edits"] == ["redden-eyes"]
    assert not np.array_equal(
        np.asarray(Image.open(tmp_path / "out" / "b.png")), np.asarray(Image.open(photos / "b.png"))
    )


def test_models_hides_experimental_models_unless_asked(
    models_root: Path, experimental_root: Path, isolated_user_dirs, capsys
) -> None:
    folders = ["--models-dir", str(models_root), "--models-dir", str(experimental_root)]
    assert main(["models", *folders]) == EXIT_OK
    out = capsys.readouterr().out
    assert "redden-mouth" in out
    listed = [line for line in out.splitlines() if line.startswith("redden-eyes")]
    assert listed == []
    assert "experimental model(s) not listed (" in out and "redden-eyes" in out
    assert "pass --experimental to list them" in out
    assert main(["models", "--experimental", *folders]) == EXIT_OK
    out = capsys.readouterr().out
    (line,) = [line for line in out.splitlines() if line.startswith("redden-eyes")]
    assert "Redden eyes (experimental)" in line
    assert "available, EXPERIMENTAL" in out and "not listed" not in out


# -- issue 12: batch, nothing lost, nothing misreported -------------------------------------------------


def batch_argv(photos: Path, out: Path, models_root: Path, *extra: str) -> list[str]:
    edit = ["--edit", "redden-mouth", "--device", "cpu", "--models-dir", str(models_root)]
    return ["batch", str(photos), str(out), *edit, *extra]


def many_photos(folder: Path, astronaut: np.ndarray, count: int) -> Path:
    folder.mkdir()
    for index in range(count):
        Image.fromarray(np.roll(astronaut, index, axis=1)).save(folder / f"{index}.jpg", quality=90)
    return folder


def start_batch(argv: list[str], isolated_user_dirs: Path, *, ready: bool = False) -> subprocess.Popen[str]:
    """`diat-studio batch` in a real process; with `ready`, it prints "ready" just before calling main()."""
    env = {**os.environ, "XDG_DATA_HOME": str(isolated_user_dirs), "OMP_NUM_THREADS": "1"}
    if ready:
        code = (
            "import sys\nfrom diat_studio.cli import main\n"
            "print('ready', flush=True)\nsys.exit(main(sys.argv[1:]))"
        )
        command = [sys.executable, "-c", code, *argv]
    else:
        command = [sys.executable, "-m", "diat_studio", *argv]
    return subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        preexec_fn=sigint_as_in_a_terminal,
    )


def wait_for_line(stream, prefix: str) -> list[str]:
    lines = []
    for line in stream:
        lines.append(line)
        if line.startswith(prefix):
            return lines
    raise AssertionError(f"the process ended without printing {prefix!r}: {''.join(lines)}")


def test_1_batch_on_a_full_disk_exits_1_and_names_the_file(
    tmp_path: Path, astronaut: np.ndarray, models_root: Path, isolated_user_dirs, capsys
) -> None:
    import cv2

    folder = tmp_path / "in"
    folder.mkdir()
    Image.fromarray(cv2.resize(astronaut, (1600, 1600))).save(folder / "big.jpg", quality=95)
    with small_tmpfs(tmp_path / "out", "160k") as out:
        code = main(batch_argv(folder, out, models_root, "-q"))
        captured = capsys.readouterr()
        assert code == EXIT_FAILED
        assert "failed: big.jpg:" in captured.err and "No space left on device" in captured.err
        assert "1 files: 0 done, 0 no face, 0 skipped, 1 failed" in captured.out
        assert sorted(p.name for p in out.iterdir()) == ["diat-studio-report.csv", "diat-studio-report.json"]


def test_4_a_second_batch_into_a_busy_output_folder_is_refused_with_its_name(
    photos: Path, tmp_path: Path, models_root: Path, isolated_user_dirs, capsys
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", LOCK_HOLDER, str(out / ".diat-studio.lock")], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        assert main(batch_argv(photos, out, models_root, "-q")) == EXIT_USAGE
        err = capsys.readouterr().err
        assert err.startswith("diat-studio: error: another batch is already writing to ")
        assert str(out) in err and len(err.strip().splitlines()) == 1
    finally:
        holder.kill()
        holder.wait()
    assert main(batch_argv(photos, out, models_root, "-q")) == EXIT_OK  # the holder died: so did its lock


LOCK_HOLDER = (
    "import fcntl, sys, time\n"
    "handle = open(sys.argv[1], 'w')\n"
    "fcntl.flock(handle, fcntl.LOCK_EX)\n"
    "print('locked', flush=True)\n"
    "time.sleep(120)\n"
)


def test_5_a_report_that_cannot_be_written_is_an_error(
    photos: Path, tmp_path: Path, models_root: Path, isolated_user_dirs, capsys
) -> None:
    out = tmp_path / "out"
    (out / "diat-studio-report.json").mkdir(parents=True)
    code = main(batch_argv(photos, out, models_root, "-q"))
    captured = capsys.readouterr()
    assert code != EXIT_OK
    assert "diat-studio-report.json is a folder, so the report cannot be written there" in captured.err
    assert "report:" not in captured.out
    assert sorted(p.name for p in out.iterdir()) == ["diat-studio-report.json"]


def test_6_sigterm_stops_cleanly_like_ctrl_c_and_the_batch_resumes(
    tmp_path: Path, astronaut: np.ndarray, models_root: Path, isolated_user_dirs
) -> None:
    folder = many_photos(tmp_path / "in", astronaut, 6)
    out = tmp_path / "out"
    process = start_batch(batch_argv(folder, out, models_root), isolated_user_dirs)
    assert process.stderr is not None
    wait_for_line(process.stderr, "[1/6]")
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 143, err
    assert "Traceback" not in err and "cancelling after the current file" in err
    report = json.loads((out / "diat-studio-report.json").read_text(encoding="utf-8"))
    done = {row["path"] for row in report["results"] if row["status"] == "done"}
    assert report["cancelled"] is True and 1 <= len(done) < 6
    assert {p.name for p in out.glob("*.jpg")} == done  # every output is in the report, no .part file
    again = subprocess.run(
        [sys.executable, "-m", "diat_studio", *batch_argv(folder, out, models_root, "-q")],
        capture_output=True,
        text=True,
        env={**os.environ, "XDG_DATA_HOME": str(isolated_user_dirs)},
        timeout=300,
    )
    assert again.returncode == EXIT_OK, again.stderr
    assert (
        f"6 files: 6 done, 0 no face, 0 skipped, 0 failed ({len(done)} already done earlier)" in again.stdout
    )


def test_6_a_hard_kill_loses_at_most_the_file_in_progress(
    tmp_path: Path, astronaut: np.ndarray, models_root: Path, isolated_user_dirs
) -> None:
    folder = many_photos(tmp_path / "in", astronaut, 6)
    out = tmp_path / "out"
    process = start_batch(batch_argv(folder, out, models_root), isolated_user_dirs)
    assert process.stderr is not None
    wait_for_line(process.stderr, "[3/6]")
    process.kill()
    process.wait(timeout=60)
    report = json.loads((out / "diat-studio-report.json").read_text(encoding="utf-8"))
    done = {row["path"] for row in report["results"] if row["status"] == "done"}
    assert {"0.jpg", "1.jpg", "2.jpg"} <= done
    assert len({p.name for p in out.glob("*.jpg")} - done) <= 1  # at most the file in progress
    stale = list(out.glob(".diat-*.part"))
    again = subprocess.run(
        [sys.executable, "-m", "diat_studio", *batch_argv(folder, out, models_root, "-q")],
        capture_output=True,
        text=True,
        env={**os.environ, "XDG_DATA_HOME": str(isolated_user_dirs)},
        timeout=300,
    )
    assert again.returncode == EXIT_OK, again.stderr
    assert f"({len(done)} already done earlier)" in again.stdout
    assert not any(path.exists() for path in stale) and not list(out.glob(".diat-*"))


@pytest.mark.parametrize("delay", [0.05, 0.3, 0.8, 1.5])
def test_7_ctrl_c_at_any_moment_prints_one_line_and_exits_130(
    tmp_path: Path, astronaut: np.ndarray, models_root: Path, isolated_user_dirs, delay: float
) -> None:
    folder = many_photos(tmp_path / "in", astronaut, 30)  # still running after the longest delay
    process = start_batch(
        batch_argv(folder, tmp_path / "out", models_root, "-q"), isolated_user_dirs, ready=True
    )
    assert process.stdout is not None and process.stdout.readline().strip() == "ready"
    time.sleep(delay)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("diat-studio:") or " — cancelled" in last, err


def test_7_a_report_file_that_is_not_ours_is_refused(
    photos: Path, tmp_path: Path, models_root: Path, isolated_user_dirs, capsys
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "diat-studio-report.json").write_text("[]")
    assert main(batch_argv(photos, out, models_root, "-q")) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "diat-studio-report.json exists and is not a DIAT Studio batch report: move it away" in err
    assert (out / "diat-studio-report.json").read_text() == "[]"


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "-1", "0", "1e400", "many"])
def test_10_max_megapixels_must_be_a_finite_positive_number(
    photos: Path, tmp_path: Path, models_root: Path, isolated_user_dirs, capsys, value: str
) -> None:
    assert main(batch_argv(photos, tmp_path / "out", models_root, f"--max-megapixels={value}")) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "argument --max-megapixels:" in err and value in err
    assert not (tmp_path / "out").exists()


def test_no_detail_pastes_the_enlarged_crop(
    tmp_path: Path, astronaut: np.ndarray, models_root: Path, isolated_user_dirs, capsys
) -> None:
    """`--no-detail`: the soft enlarged crop (for comparisons); by default the photo's detail is kept."""
    import cv2

    photos = tmp_path / "large"
    photos.mkdir()
    large = cv2.resize(astronaut, None, fx=3, fy=3, interpolation=cv2.INTER_CUBIC)
    Image.fromarray(large).save(photos / "a.png")
    detail = {}
    for name, extra in (("kept", []), ("off", ["--no-detail"])):
        argv = ["batch", str(photos), str(tmp_path / name), "--edit", "redden-face", "--device", "cpu"]
        assert main([*argv, "--models-dir", str(models_root), *extra]) == EXIT_OK, capsys.readouterr().err
        out = np.asarray(Image.open(tmp_path / name / "a.png").convert("L"), np.float32)
        face = out[300:500, 560:780]
        detail[name] = float(cv2.Laplacian(face, cv2.CV_32F).var())
    assert detail["kept"] > 1.5 * detail["off"]


def test_7_b_ctrl_c_that_python_swallows_during_start_up_still_cancels(
    photos: Path, tmp_path: Path, models_root: Path, isolated_user_dirs, capsys, monkeypatch
) -> None:
    """Ctrl-C while Python is importing can land in a callback whose exceptions Python only prints
    ("Exception ignored in ..."): the batch must still stop with 130 instead of running every photo."""
    import weakref

    from diat_studio.core import registry

    default = registry.ModelRegistry.default

    def interrupted_inside_a_callback(*args, **kwargs):
        class Lock:
            pass

        lock = Lock()
        watcher = weakref.ref(lock, lambda _ref: os.kill(os.getpid(), signal.SIGINT))
        del lock  # the callback runs here and the KeyboardInterrupt raised in it is swallowed
        assert watcher() is None
        return default(*args, **kwargs)

    monkeypatch.setattr(registry.ModelRegistry, "default", staticmethod(interrupted_inside_a_callback))
    out = tmp_path / "out"
    # as a terminal's Ctrl-C finds it: a test run started in the background inherits SIGINT ignored
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        code = main(batch_argv(photos, out, models_root, "-q"))
    finally:
        signal.signal(signal.SIGINT, previous)
    assert code == 130
    err = capsys.readouterr().err
    assert "KeyboardInterrupt" not in err and "Exception ignored" not in err
    assert err.strip().splitlines()[-1].startswith("diat-studio:")
    assert not list(out.glob("*.jpg"))  # nothing edited (no folder at all is fine: glob finds nothing)
