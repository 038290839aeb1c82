"""Batch: nothing lost, nothing misreported (issue 12, items 1-9). Real files, links, FIFOs and mounts."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from diat_studio.core.batch import (
    REPORT_CSV,
    REPORT_JSON,
    BatchError,
    BatchReport,
    BatchRunner,
    BatchSettings,
    FileStatus,
    ReportError,
)
from diat_studio.core.faces import FaceDetector
from diat_studio.core.inference import AttributeModel, Device, load_attribute_model
from diat_studio.core.registry import ModelRegistry
from tests.core.tmpfs import small_tmpfs


@pytest.fixture(scope="module")
def model(models_root: Path) -> AttributeModel:
    return load_attribute_model(ModelRegistry([models_root]).get("redden-mouth"), Device.CPU)


def photos(folder: Path, astronaut: np.ndarray, *names: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        Image.fromarray(astronaut).save(folder / name, quality=90)
    return folder


def rows(report: BatchReport) -> dict[str, tuple[FileStatus, str]]:
    return {result.path: (result.status, result.reason) for result in report.results}


def files_in(folder: Path) -> set[str]:
    return {path.relative_to(folder).as_posix() for path in folder.rglob("*") if path.is_file()}


def run_with_timeout(runner: BatchRunner, seconds: float = 120) -> BatchReport:
    """Run in a thread: a batch that blocks (e.g. opening a FIFO) fails the test instead of hanging it."""
    outcome: list[BatchReport | BaseException] = []

    def target() -> None:
        try:
            outcome.append(runner.run())
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        for fifo in runner.input_dir.rglob("*"):
            if fifo.is_fifo():  # unblock the reader so the thread can end
                with open(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK), "wb"):
                    pass
        pytest.fail(f"the batch did not finish within {seconds} s (blocked on a FIFO or device?)")
    if isinstance(outcome[0], BaseException):
        raise outcome[0]
    return outcome[0]


# -- 1. a full disk ------------------------------------------------------------------------------------


def test_1_full_disk_is_an_error_and_leaves_no_partial_file(
    tmp_path: Path, astronaut: np.ndarray, model: AttributeModel, detector: FaceDetector
) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    big = cv2.resize(astronaut, (1600, 1600), interpolation=cv2.INTER_CUBIC)
    Image.fromarray(big).save(folder / "big.jpg", quality=95)  # its output is ~0.5 MB
    Image.fromarray(cv2.resize(astronaut, (256, 256))).save(folder / "small.jpg", quality=90)
    out = tmp_path / "out"
    with small_tmpfs(out, "192k"):
        report = BatchRunner(folder, out, [model], detector).run()
        assert rows(report)["big.jpg"][0] is FileStatus.ERROR
        assert "No space left on device" in rows(report)["big.jpg"][1]
        assert rows(report)["small.jpg"][0] is FileStatus.DONE  # the batch went on
        assert files_in(out) == {"small.jpg", REPORT_JSON, REPORT_CSV}  # no truncated big.jpg, no .part
        saved = json.loads((out / REPORT_JSON).read_text(encoding="utf-8"))
        assert {row["path"]: row["status"] for row in saved["results"]} == {
            "big.jpg": "error",
            "small.jpg": "done",
        }
        assert Image.open(out / "small.jpg").size == (256, 256)


# -- 2. names that are not UTF-8 -----------------------------------------------------------------------


def test_2_a_name_that_is_not_utf8_is_reported_escaped_and_resumes(
    tmp_path: Path, astronaut: np.ndarray, model: AttributeModel, detector: FaceDetector
) -> None:
    folder = photos(tmp_path / "in", astronaut, "plain.jpg")
    raw_name = b"caf\xe9 \xff.jpg"  # Latin-1 bytes: not valid UTF-8
    os.rename(folder / "plain.jpg", os.path.join(os.fsencode(folder), raw_name))
    out = tmp_path / "out"
    report = BatchRunner(folder, out, [model], detector).run()
    (row,) = report.results
    assert row.status is FileStatus.DONE, row.reason
    assert row.path == "caf\\xe9 \\xff.jpg" and row.output == row.path
    assert bytes.fromhex(row.path_bytes_hex) == raw_name
    assert os.path.isfile(os.path.join(os.fsencode(out), raw_name))  # the output keeps the exact bytes
    saved = json.loads((out / REPORT_JSON).read_bytes().decode("utf-8"))  # strict UTF-8
    assert saved["results"][0]["path_bytes_hex"] == raw_name.hex()
    with open(out / REPORT_CSV, encoding="utf-8", newline="") as handle:
        assert next(csv.DictReader(handle))["path"] == "caf\\xe9 \\xff.jpg"
    again = BatchRunner(folder, out, [model], detector).run()
    assert again.results[0].resumed and again.results[0].status is FileStatus.DONE


# -- 3. link loops and aliases -------------------------------------------------------------------------


def test_3_link_loops_get_error_rows_and_a_folder_reached_twice_is_walked_once(
    tmp_path: Path, astronaut: np.ndarray, model: AttributeModel, detector: FaceDetector
) -> None:
    folder = photos(tmp_path / "in", astronaut, "good.jpg")
    photos(folder / "sub", astronaut, "inner.jpg")
    (folder / "a.jpg").symlink_to("b.jpg")
    (folder / "b.jpg").symlink_to("a.jpg")
    (folder / "sub" / "up").symlink_to("..")  # a folder loop under --recursive
    (folder / "alias").symlink_to("sub")  # the same photos under a second name
    (folder / "zz-alias").symlink_to(folder / "sub")
    out = tmp_path / "out"
    report = run_with_timeout(BatchRunner(folder, out, [model], detector, BatchSettings(recursive=True)))
    found = rows(report)
    assert found["good.jpg"][0] is FileStatus.DONE and found["sub/inner.jpg"][0] is FileStatus.DONE
    for loop in ("a.jpg", "b.jpg"):
        assert found[loop] == (FileStatus.ERROR, "symbolic link loop (the link leads back to itself)")
    assert found["sub/up"][0] is FileStatus.SKIPPED and "input folder" in found["sub/up"][1]
    for alias in ("alias", "zz-alias"):
        assert found[alias][0] is FileStatus.SKIPPED and "'sub'" in found[alias][1]
    assert sorted(found) == ["a.jpg", "alias", "b.jpg", "good.jpg", "sub/inner.jpg", "sub/up", "zz-alias"]
    assert files_in(out) == {"good.jpg", "sub/inner.jpg", REPORT_JSON, REPORT_CSV}


# -- 4. one batch per output folder --------------------------------------------------------------------


def test_4_a_second_batch_into_the_same_output_folder_is_refused(
    tmp_path: Path, astronaut: np.ndarray, model: AttributeModel, detector: FaceDetector
) -> None:
    first_in = photos(tmp_path / "first", astronaut, "a.jpg", "b.jpg")
    second_in = photos(tmp_path / "second", astronaut[:, ::-1], "a.jpg", "b.jpg")
    out = tmp_path / "out"
    refused: list[str] = []

    def start_a_second_batch(done: int, _total: int, _result: object) -> None:
        if done == 1:
            with pytest.raises(BatchError) as info:
                BatchRunner(second_in, out, [model], detector).run()
            refused.append(str(info.value))

    BatchRunner(first_in, out, [model], detector, progress=start_a_second_batch).run()
    assert refused and "another batch is already writing to" in refused[0] and str(out) in refused[0]
    edited_first = np.asarray(Image.open(out / "b.jpg"))
    assert np.abs(edited_first.astype(int) - astronaut).mean() < 20  # not the mirrored second input
    assert files_in(out) == {"a.jpg", "b.jpg", REPORT_JSON, REPORT_CSV}  # the lock is gone with its batch
    second = BatchRunner(second_in, out, [model], detector).run()  # free again once the first is done
    assert {result.status for result in second.results} == {FileStatus.DONE}


def test_4_the_lock_dies_with_the_process_that_held_it(
    tmp_path: Path, astronaut: np.ndarray, model: AttributeModel, detector: FaceDetector
) -> None:
    folder = photos(tmp_path / "in", astronaut, "a.jpg")
    out = tmp_path / "out"
    out.mkdir()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, sys, time\n"
            "handle = open(sys.argv[1], 'w')\n"
            "fcntl.flock(handle, fcntl.LOCK_EX)\n"
            "print('locked', flush=True)\n"
            "time.sleep(120)\n",
            str(out / ".diat-studio.lock"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with pytest.raises(BatchError, match="another batch is already writing to"):
            BatchRunner(folder, out, [model], detector).run()
        assert files_in(out) == {".diat-studio.lock"}  # nothing was written
    finally:
        holder.kill()
        holder.wait()
    report = BatchRunner(folder, out, [model], detector).run()  # killed holder: the kernel dropped its lock
    assert report.results[0].status is FileStatus.DONE


# -- 5. report failures are failures -------------------------------------------------------------------


def test_5_a_folder_where_the_report_goes_stops_the_batch_before_any_photo(
    tmp_path: Path, astronaut: np.ndarray, model: AttributeModel, detector: FaceDetector
) -> None:
    folder = photos(tmp_path / "in", astronaut, "a.jpg")
    out = tmp_path / "out"
    (out / REPORT_JSON).mkdir(parents=True)
    with pytest.raises(BatchError, match="is a folder, so the report cannot be written there"):
        BatchRunner(folder, out, [model], detector).run()
    assert files_in(out) == set()


def test_5_a_report_write_failing_mid_batch_stops_it_with_an_error(
    tmp_path: Path, astronaut: np.ndarray, model: AttributeModel, detector: FaceDetector
) -> None:
    folder = photos(tmp_path / "in", astronaut, "a.jpg", "b.jpg", "c.jpg")
    out = tmp_path / "out"

    def block_the_report(done: int, _total: int, _result: object) -> None:
        if done == 1:
            (out / REPORT_CSV).unlink()
            (out / REPORT_CSV).mkdir()  # the next report write cannot replace a folder

    runner = BatchRunner(folder, out, [model], detector, progress=block_the_report)
    with pytest.raises(ReportError, match="cannot write the report"):
        runner.run()
    assert files_in(out) - {REPORT_JSON} == {"a.jpg", "b.jpg"}  # b.jpg done, then the batch stopped
    assert Image.open(out / "b.jpg").size == (512, 512)  # what was written is whole


# -- 6. the report after every file, stale temporary files ---------------------------------------------


def test_6_the_report_on_disk_lists_every_finished_file_at_every_moment(
    tmp_path: Path, astronaut: np.ndarray, model: AttributeModel, detector: FaceDetector
) -> None:
    names = [f"{index}.jpg" for index in range(5)]
    folder = photos(tmp_path / "in", astronaut, *names)
    (folder / "notes.txt").write_text("not a photo")
    out = tmp_path / "out"
    on_disk: list[tuple[int, int]] = []

    def check(done: int, _total: int, result: object) -> None:
        saved = json.loads((out / REPORT_JSON).read_text(encoding="utf-8"))
        finished = {row["path"] for row in saved["results"] if row["status"] == "done"}
        written = files_in(out) - {REPORT_JSON, REPORT_CSV, ".diat-studio.lock"}
        assert written <= finished  # no output that the report does not know about
        on_disk.append((done, len(finished)))

    BatchRunner(folder, out, [model], detector, progress=check).run()
    assert on_disk == [(1, 1), (2, 2), (3, 3), (4, 4), (5, 5), (6, 5)]


def test_6_stale_temporary_files_are_removed_at_start_and_only_ours(
    tmp_path: Path, astronaut: np.ndarray, model: AttributeModel, detector: FaceDetector
) -> None:
    folder = photos(tmp_path / "in", astronaut, "a.jpg")
    out = tmp_path / "out"
    (out / "sub").mkdir(parents=True)
    ours = [
        out / ".diat-k3j_x9q2.part",
        out / "sub" / ".a.jpg.abcd1234.part",
        out / ".diat-studio-report.json.zz9_ab01.part",
    ]
    theirs = [out / ".notes.part", out / "draft.part", out / ".diat-toolong123.part"]
    for path in ours + theirs:
        path.write_bytes(b"partial")
    BatchRunner(folder, out, [model], detector).run()
    assert not any(path.exists() for path in ours)
    assert all(path.read_bytes() == b"partial" for path in theirs)


# -- 7. an old report is not trusted blindly -----------------------------------------------------------


@pytest.mark.parametrize(
    "content",
    [
        b"[]",
        b'{"results": 3}',
        b'{"results": [], "fingerprint": "x", "format": "other"}',
        b"not json",
        b"[" * 100_000,
    ],
)
def test_7_a_report_file_that_is_not_ours_is_refused_and_kept(
    tmp_path: Path, astronaut: np.ndarray, model: AttributeModel, detector: FaceDetector, content: bytes
) -> None:
    folder = photos(tmp_path / "in", astronaut, "a.jpg")
    out = tmp_path / "out"
    out.mkdir()
    (out / REPORT_JSON).write_bytes(content)
    with pytest.raises(BatchError, match="is not a DIAT Studio batch report: move it away"):
        BatchRunner(folder, out, [model], detector).run()
    assert (out / REPORT_JSON).read_bytes() == content
    assert files_in(out) == {REPORT_JSON}


def test_7_an_old_report_cannot_point_resumed_outputs_outside_the_output_folder(
    tmp_path: Path, astronaut: np.ndarray, model: AttributeModel, detector: FaceDetector
) -> None:
    folder = photos(tmp_path / "in", astronaut, "a.jpg", "b.jpg")
    out = tmp_path / "out"
    BatchRunner(folder, out, [model], detector).run()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (out / "a.jpg").rename(elsewhere / "a.jpg")  # the report says a.jpg is done at ../elsewhere/a.jpg
    (out / "b.jpg").rename(elsewhere / "b.jpg")
    (out / "b.jpg").symlink_to(elsewhere / "b.jpg")  # ... and b.jpg is a link leading out of OUT
    saved = json.loads((out / REPORT_JSON).read_text(encoding="utf-8"))
    saved["results"][0]["output"] = "../elsewhere/a.jpg"
    (out / REPORT_JSON).write_text(json.dumps(saved), encoding="utf-8")
    before = (elsewhere / "b.jpg").read_bytes()
    again = BatchRunner(folder, out, [model], detector).run()
    assert [(r.path, r.status, r.resumed) for r in again.results] == [
        ("a.jpg", FileStatus.DONE, False),
        ("b.jpg", FileStatus.DONE, False),
    ]
    assert (out / "a.jpg").is_file() and not (out / "b.jpg").is_symlink() and (out / "b.jpg").is_file()
    assert (elsewhere / "b.jpg").read_bytes() == before  # written in OUT, not through the link


# -- 8. every input gets a row -------------------------------------------------------------------------


def test_8_every_entry_gets_a_row_and_nothing_blocks(
    tmp_path: Path, astronaut: np.ndarray, model: AttributeModel, detector: FaceDetector
) -> None:
    folder = photos(tmp_path / "in", astronaut, "good.jpg", ".hidden.jpg")
    os.mkfifo(folder / "pipe.jpg")  # opening it for reading would block until someone writes
    (folder / "zeros.jpg").symlink_to("/dev/zero")  # a device: endless
    (folder / "dangling.jpg").symlink_to(folder / "missing.jpg")
    (folder / REPORT_JSON).write_text("{}")  # an input named like the report
    flipped = Image.fromarray(astronaut[:, ::-1])
    Image.fromarray(astronaut).save(
        folder / "anim.webp", save_all=True, append_images=[flipped], duration=100
    )
    Image.fromarray(astronaut).save(folder / "pages.tiff", save_all=True, append_images=[flipped, flipped])
    out = tmp_path / "out"
    report = run_with_timeout(BatchRunner(folder, out, [model], detector))
    found = rows(report)
    assert found == {
        ".hidden.jpg": (FileStatus.SKIPPED, "hidden file"),
        REPORT_JSON: (FileStatus.SKIPPED, "not an image"),
        "anim.webp": (FileStatus.DONE, ""),
        "dangling.jpg": (FileStatus.SKIPPED, "broken link: its target does not exist"),
        "good.jpg": (FileStatus.DONE, ""),
        "pages.tiff": (FileStatus.DONE, ""),
        "pipe.jpg": (FileStatus.SKIPPED, "not a regular file but a named pipe (FIFO)"),
        "zeros.jpg": (FileStatus.SKIPPED, "not a regular file but a character device"),
    }
    warnings = {result.path: result.warning for result in report.results if result.warning}
    assert set(warnings) == {"anim.webp", "pages.tiff"}
    assert "only the first of its 2 frames/pages was edited" in warnings["anim.webp"]
    assert "first of its 3 frames/pages" in warnings["pages.tiff"]
    assert "2 with a warning" in report.summary()
    with open(out / REPORT_CSV, encoding="utf-8", newline="") as handle:
        by_path = {row["path"]: row for row in csv.DictReader(handle)}
    assert by_path["anim.webp"]["warning"] == warnings["anim.webp"] and len(by_path) == len(found)
    assert files_in(out) == {"good.jpg", "anim.webp", "pages.tiff", REPORT_JSON, REPORT_CSV}


# -- 9. long names -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["a" * 237 + ".jpg", "b" * 251 + ".jpg", "é" * 125 + "x.jpg"])
def test_9_names_of_241_to_255_bytes_work(
    tmp_path: Path, astronaut: np.ndarray, model: AttributeModel, detector: FaceDetector, name: str
) -> None:
    assert 241 <= len(os.fsencode(name)) <= 255
    folder = photos(tmp_path / "in", astronaut, name)
    out = tmp_path / "out"
    report = BatchRunner(folder, out, [model], detector).run()
    assert rows(report) == {name: (FileStatus.DONE, "")}
    assert files_in(out) == {name, REPORT_JSON, REPORT_CSV}
