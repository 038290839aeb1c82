"""The `diat-studio` command line: batch, models, info; exit codes and plain error messages."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from diat_studio.cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE, main


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
