"""`prepare` never damages existing work: nothing written without faces, an existing dataset replaced only
with --force, and Ctrl-C / SIGTERM keep what was aligned (no traceback) so that the command resumes."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import sigint_as_in_a_terminal
from tests.trainer.conftest import CROP, custom_layout_config
from trainer import prepare_work
from trainer.cli import EXIT_OK, EXIT_USAGE, main
from trainer.prepare import prepare_dataset
from trainer.prepare_work import work_folder

REPO = Path(__file__).resolve().parents[2]
CUSTOM = ["--layout", "custom", "--size", str(CROP), "--heldout", "0.25", "--attribute", "Eyeglasses"]


def test_no_face_in_any_photo_writes_nothing(capsys, tmp_path: Path) -> None:
    source = tmp_path / "photos"
    for folder in ("with", "without"):
        (source / folder).mkdir(parents=True)
        for index in range(5):
            (source / folder / f"{index}.jpg").write_text("not a photo")
        Image.fromarray(np.full((200, 200, 3), 128, np.uint8)).save(source / folder / "grey.png")
    out = tmp_path / "dataset"
    assert main(["prepare", str(source), str(out), *CUSTOM, "--workers", "1"]) == EXIT_USAGE
    error = capsys.readouterr().err
    assert "no face could be aligned in any of the 12 photos" in error
    assert not out.exists() and not work_folder(out).exists()


def test_an_existing_dataset_is_replaced_only_with_force(capsys, tmp_path: Path, face_photos: Path) -> None:
    out = tmp_path / "dataset"
    arguments = ["prepare", str(face_photos), str(out), *CUSTOM, "--workers", "1"]
    assert main(arguments) == EXIT_OK
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    assert main(arguments) == EXIT_USAGE
    assert "already holds a prepared dataset: use --force" in capsys.readouterr().err
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    assert main(["prepare", str(face_photos), str(tmp_path / "other"), *CUSTOM, "--force"]) == EXIT_USAGE
    assert "is not empty and is not a prepared dataset" in capsys.readouterr().err
    assert main([*arguments, "--force"]) == EXIT_OK
    assert {p.name for p in out.iterdir()} == set(before)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupted_prepare_resumes(
    monkeypatch, tmp_path: Path, face_photos: Path, dataset_dir: Path, signum: int
) -> None:
    out = tmp_path / "dataset"
    arguments = ["prepare", str(face_photos), str(out), *CUSTOM, "--workers", "1"]
    script = (
        "import sys; from trainer import prepare_work; prepare_work.CHUNK_PHOTOS = 4; "
        f"from trainer.cli import main; sys.exit(main({arguments!r}))"
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(
        [sys.executable, "-c", script],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        preexec_fn=sigint_as_in_a_terminal,
    )
    try:
        deadline = time.monotonic() + 120
        while not (work_folder(out) / "chunk-000001.npz").is_file():
            if time.monotonic() > deadline or process.poll() is not None:
                pytest.fail("prepare did not save two chunks within 2 minutes")
            time.sleep(0.05)
        process.send_signal(signum)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == (130 if signum == signal.SIGINT else 143)
    assert b"Traceback" not in stderr and b"run the same command again to continue" in stderr
    assert not out.exists()  # no half dataset; the saved chunks wait beside it
    saved = sorted(p.name for p in work_folder(out).glob("chunk-*.npz"))
    assert 2 <= len(saved) < 7  # 26 photos: 7 chunks of 4

    monkeypatch.setattr(prepare_work, "CHUNK_PHOTOS", 4)
    seen: list[int] = []
    prepare_dataset(custom_layout_config(face_photos, out), lambda done, total: seen.append(done))
    assert seen[0] == 4 * len(saved)  # it started where the interrupted one stopped
    assert not work_folder(out).exists()
    assert np.array_equal(np.load(out / "crops.npy"), np.load(dataset_dir / "crops.npy"))
    with open(out / "labels.csv") as a, open(dataset_dir / "labels.csv") as b:
        assert list(csv.reader(a)) == list(csv.reader(b))
