from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from diat_studio.core.batch import REPORT_CSV, REPORT_JSON, BatchError, BatchRunner, BatchSettings, FileStatus
from diat_studio.core.inference import AttributeModel, Device, load_attribute_model
from diat_studio.core.registry import ModelRegistry
from tests.core.test_image_io import png_claiming_size

EXPECTED = {
    "good.jpg": FileStatus.DONE,
    "two-faces.png": FileStatus.DONE,
    "16-bit.png": FileStatus.DONE,
    "cmyk.jpg": FileStatus.DONE,
    "exif-rotated.jpg": FileStatus.DONE,
    "rgba.png": FileStatus.DONE,
    "фото Zoë.jpg": FileStatus.DONE,
    "nested/deeper/inner.webp": FileStatus.DONE,
    "no-face.png": FileStatus.NO_FACE,
    "truncated.jpg": FileStatus.ERROR,
    "zero-bytes.jpg": FileStatus.ERROR,
    "text-named.jpg": FileStatus.ERROR,
    "bomb.png": FileStatus.ERROR,
    "notes.txt": FileStatus.SKIPPED,
}


@pytest.fixture(scope="module")
def model(models_root: Path) -> AttributeModel:
    return load_attribute_model(ModelRegistry([models_root]).get("redden-mouth"), Device.CPU)


@pytest.fixture()
def hostile_folder(tmp_path: Path, astronaut: np.ndarray) -> Path:
    folder = tmp_path / "in"
    (folder / "nested" / "deeper").mkdir(parents=True)
    photo = Image.fromarray(astronaut)
    photo.save(folder / "good.jpg", quality=92)
    two = np.full((512, 1024, 3), 120, np.uint8)
    two[:, :512], two[:, 512:] = astronaut, astronaut[:, ::-1]
    Image.fromarray(two).save(folder / "two-faces.png")
    grey16 = (np.asarray(photo.convert("L"), np.uint16) * 257).astype(np.uint16)
    Image.fromarray(grey16).save(folder / "16-bit.png")
    photo.convert("CMYK").save(folder / "cmyk.jpg", quality=92)
    exif = Image.Exif()
    exif[0x0112] = 6  # stored rotated: displayed after a 90° clockwise turn
    photo.transpose(Image.Transpose.ROTATE_90).save(folder / "exif-rotated.jpg", exif=exif.tobytes())
    rgba = photo.copy()
    rgba.putalpha(Image.fromarray(np.full((512, 512), 200, np.uint8)))
    rgba.save(folder / "rgba.png")
    photo.save(folder / "фото Zoë.jpg")
    photo.save(folder / "nested" / "deeper" / "inner.webp", quality=90)
    rng = np.random.default_rng(3)
    Image.fromarray(rng.integers(0, 255, (200, 300, 3), dtype=np.uint8)).save(folder / "no-face.png")
    good = (folder / "good.jpg").read_bytes()
    (folder / "truncated.jpg").write_bytes(good[: len(good) // 2])
    (folder / "zero-bytes.jpg").write_bytes(b"")
    (folder / "text-named.jpg").write_text("this is a text file, not a JPEG\n")
    png_claiming_size(folder / "bomb.png", 50_000, 50_000)
    (folder / "notes.txt").write_text("notes")
    return folder


def hashes(folder: Path) -> dict[str, str]:
    return {
        path.relative_to(folder).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def test_hostile_folder(hostile_folder: Path, tmp_path: Path, model: AttributeModel, detector) -> None:
    before = hashes(hostile_folder)
    out = tmp_path / "out"
    seen: list[tuple[int, int]] = []
    runner = BatchRunner(
        hostile_folder,
        out,
        [model],
        detector,
        BatchSettings(recursive=True),
        progress=lambda done, total, _result: seen.append((done, total)),
    )
    report = runner.run()
    statuses = {result.path: result.status for result in report.results}
    assert statuses == EXPECTED
    assert hashes(hostile_folder) == before  # not one input byte changed
    assert seen[-1] == (len(EXPECTED), len(EXPECTED))
    reasons = {result.path: result.reason for result in report.results}
    assert "truncated or corrupt" in reasons["truncated.jpg"]
    assert "empty file" in reasons["zero-bytes.jpg"]
    assert "not a recognised image" in reasons["text-named.jpg"]
    assert "over the limit" in reasons["bomb.png"] or "too large" in reasons["bomb.png"]
    assert reasons["notes.txt"] == "not an image"
    faces = {result.path: result.faces for result in report.results}
    assert faces["two-faces.png"] == 2 and faces["good.jpg"] == 1

    # outputs mirror the inputs, keep their format, alpha and upright orientation
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    done = sorted(path for path, status in EXPECTED.items() if status is FileStatus.DONE)
    assert written == sorted([*done, REPORT_JSON, REPORT_CSV])
    with Image.open(out / "rgba.png") as image:
        assert image.mode == "RGBA"
    with Image.open(out / "exif-rotated.jpg") as image:
        assert image.size == (512, 512) and image.getexif().get(0x0112) == 1
    edited = np.asarray(Image.open(out / "good.jpg").convert("RGB")).astype(int)
    assert np.abs(edited - np.asarray(Image.open(hostile_folder / "good.jpg").convert("RGB"))).max() > 50

    # both reports list every file
    data = json.loads((out / REPORT_JSON).read_text(encoding="utf-8"))
    assert {item["path"]: item["status"] for item in data["results"]} == {
        k: v.value for k, v in EXPECTED.items()
    }
    assert data["counts"] == {"done": 8, "no face": 1, "skipped": 1, "error": 4}
    with open(out / REPORT_CSV, encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert {row["path"]: row["status"] for row in rows} == {k: v.value for k, v in EXPECTED.items()}

    # a second run resumes: finished files are not redone, failures are retried
    mtimes = {path: (out / path).stat().st_mtime_ns for path in done}
    second = BatchRunner(hostile_folder, out, [model], detector, BatchSettings(recursive=True)).run()
    resumed = {result.path for result in second.results if result.resumed}
    # (skipped files are decided again from their names and types: nothing to resume)
    kept = (FileStatus.DONE, FileStatus.NO_FACE)
    assert resumed == {path for path, status in EXPECTED.items() if status in kept}
    assert {result.path: result.status for result in second.results} == EXPECTED
    assert {path: (out / path).stat().st_mtime_ns for path in done} == mtimes
    assert hashes(hostile_folder) == before

    # other settings mean other outputs: nothing is resumed
    third = BatchRunner(
        hostile_folder, out, [model], detector, BatchSettings(recursive=True, strength=0.5)
    ).run()
    assert not any(result.resumed for result in third.results)


def test_not_recursive_ignores_sub_folders(hostile_folder: Path, tmp_path: Path, model, detector) -> None:
    runner = BatchRunner(hostile_folder, tmp_path / "out", [model], detector, BatchSettings(faces="largest"))
    paths = [path.relative_to(hostile_folder).as_posix() for path in runner.input_files()]
    assert "nested/deeper/inner.webp" not in paths and "good.jpg" in paths


def test_changed_input_is_redone(tmp_path: Path, astronaut: np.ndarray, model, detector) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    Image.fromarray(astronaut).save(folder / "a.png")
    BatchRunner(folder, tmp_path / "out", [model], detector).run()
    Image.fromarray(astronaut[:, ::-1]).save(folder / "a.png")
    again = BatchRunner(folder, tmp_path / "out", [model], detector).run()
    assert again.results[0].status is FileStatus.DONE and not again.results[0].resumed
    (tmp_path / "out" / "a.png").unlink()  # a deleted output is redone too
    third = BatchRunner(folder, tmp_path / "out", [model], detector).run()
    assert not third.results[0].resumed and (tmp_path / "out" / "a.png").is_file()


def test_cancel_between_files(hostile_folder: Path, tmp_path: Path, model, detector) -> None:
    runner = BatchRunner(hostile_folder, tmp_path / "out", [model], detector)
    runner.progress = lambda done, _total, _result: runner.cancel() if done == 2 else None
    report = runner.run()
    assert report.cancelled and len(report.results) == 2
    saved = json.loads((tmp_path / "out" / REPORT_JSON).read_text(encoding="utf-8"))
    assert saved["cancelled"] is True and len(saved["results"]) == 2


def test_output_inside_input_is_refused_unless_allowed(hostile_folder: Path, model, detector) -> None:
    with pytest.raises(BatchError, match="inside the input folder"):
        BatchRunner(hostile_folder, hostile_folder / "edited", [model], detector)
    before = hashes(hostile_folder)
    runner = BatchRunner(
        hostile_folder,
        hostile_folder / "edited",
        [model],
        detector,
        BatchSettings(recursive=True, allow_output_in_input=True),
    )
    report = runner.run()
    assert not any(result.path.startswith("edited/") for result in report.results)
    after = {
        path: digest for path, digest in hashes(hostile_folder).items() if not path.startswith("edited/")
    }
    assert after == before


def test_bad_folders(tmp_path: Path, model, detector) -> None:
    with pytest.raises(BatchError, match="input folder not found"):
        BatchRunner(tmp_path / "missing", tmp_path / "out", [model], detector)
    (tmp_path / "file").write_text("x")
    with pytest.raises(BatchError, match="not a folder"):
        BatchRunner(tmp_path, tmp_path / "file", [model], detector, BatchSettings(allow_output_in_input=True))
    with pytest.raises(BatchError, match="no edit"):
        BatchRunner(tmp_path, tmp_path / "out", [], detector)


@contextlib.contextmanager
def read_only_folder(path: Path) -> Iterator[None]:
    """A folder nobody can write to — root included (root ignores permission bits: use a read-only mount
    or the immutable attribute where the sandbox allows it)."""
    path.mkdir()
    if os.geteuid() != 0:
        path.chmod(0o555)
        try:
            yield
        finally:
            path.chmod(0o755)
        return
    if (
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "ro", "tmpfs", str(path)], capture_output=True
        ).returncode
        == 0
    ):
        try:
            yield
        finally:
            subprocess.run(["umount", str(path)], check=True)
        return
    if (
        shutil.which("chattr")
        and subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode == 0
    ):
        try:
            yield
        finally:
            subprocess.run(["chattr", "-i", str(path)], check=True)
        return
    pytest.skip("running as root without a way to make a folder read-only")


def test_read_only_output_folder(hostile_folder: Path, tmp_path: Path, model, detector) -> None:
    before = hashes(hostile_folder)
    out = tmp_path / "read-only"
    with read_only_folder(out):
        runner = BatchRunner(hostile_folder, out, [model], detector)
        with pytest.raises(BatchError, match="cannot write to the output folder"):
            runner.run()
        assert list(out.iterdir()) == []
    assert hashes(hostile_folder) == before
