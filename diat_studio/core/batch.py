"""Batch processing of a folder of photos into an output folder.

Guarantees: inputs are only read (never modified, never overwritten; only regular files are opened);
outputs mirror the inputs' relative paths, stay inside the output folder, and are written atomically (a full
disk is an `error`, never a truncated file); every entry of the input folder gets a status and a reason in a
JSON and a CSV report, rewritten atomically after each file that took work, so a killed run loses at most
the file in progress; a re-run with the same settings resumes — files already finished with those settings,
unchanged since, are not redone; one batch at a time per output folder (a lock the kernel drops if the
process dies); a run can be cancelled between two files.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import stat
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from diat_studio.core.atomic_files import (
    TEMP_PREFIX,
    TEMP_SUFFIX,
    FolderLock,
    FolderLockedError,
    remove_stale_temporaries,
    utf8_text,
)
from diat_studio.core.batch_inputs import InputEntry, scan_inputs
from diat_studio.core.batch_report import (
    FINAL,
    REPORT_CSV,
    REPORT_JSON,
    BatchError,
    BatchReport,
    FileResult,
    FileStatus,
    ReportError,
    check_report_paths,
    read_previous,
    write_report,
)
from diat_studio.core.errors import DiatError
from diat_studio.core.faces import FaceDetector
from diat_studio.core.image_io import DEFAULT_JPEG_QUALITY, DEFAULT_MAX_PIXELS, load_photo, save_photo
from diat_studio.core.inference import AttributeModel
from diat_studio.core.pipeline import DEFAULT_FEATHER, FaceSelection, edit_photo, select_faces

__all__ = [
    "REPORT_CSV",
    "REPORT_JSON",
    "BatchError",
    "BatchReport",
    "BatchRunner",
    "BatchSettings",
    "FileResult",
    "FileStatus",
    "ProgressCallback",
    "ReportError",
]


@dataclass(frozen=True)
class BatchSettings:
    strength: float = 1.0
    faces: FaceSelection = "all"
    recursive: bool = False
    allow_output_in_input: bool = False
    """Allow the output folder to be the input folder or inside it (its files are then never inputs)."""
    jpeg_quality: int = DEFAULT_JPEG_QUALITY
    feather: float = DEFAULT_FEATHER
    max_pixels: int = DEFAULT_MAX_PIXELS
    detail: bool = True
    """Paste edits back on the photo's own detail (diat_studio.core.compositing); False: the enlarged crop."""


ProgressCallback = Callable[[int, int, FileResult], None]
"""Called after each file with (files finished, files in total, that file's result)."""


class BatchRunner:
    """Runs one batch. Build it, then call `run()` (from any thread); `cancel()` stops between files."""

    def __init__(
        self,
        input_dir: Path,
        output_dir: Path,
        models: Sequence[AttributeModel],
        detector: FaceDetector,
        settings: BatchSettings = BatchSettings(),
        progress: ProgressCallback | None = None,
    ) -> None:
        if not models:
            raise BatchError("no edit given: choose at least one model")
        _check_settings(settings)
        self.input_dir = Path(input_dir).resolve()
        self.output_dir = Path(output_dir).resolve()
        self.models = list(models)
        self.detector = detector
        self.settings = settings
        self.progress = progress
        self._cancelled = False
        self._check_folders()
        self.fingerprint = self._fingerprint()

    def cancel(self) -> None:
        self._cancelled = True

    def input_files(self) -> list[Path]:
        """Every entry the batch will report on, in a stable order."""
        return [entry.path for entry in self._entries()]

    def run(self) -> BatchReport:
        """Process every file; raises BatchError when the batch cannot start (or ReportError when its
        report cannot be written, which stops it: the outputs written so far are complete)."""
        self._prepare_output()
        lock = FolderLock(self.output_dir)
        try:
            lock.acquire()
        except FolderLockedError:
            raise BatchError(
                f"another batch is already writing to {self.output_dir}: wait for it to finish, or choose "
                "another output folder"
            ) from None
        except OSError as exc:
            raise BatchError(
                f"cannot lock the output folder {self.output_dir} ({exc.strerror or exc})"
            ) from exc
        try:
            return self._run_locked()
        finally:
            lock.release()

    def _run_locked(self) -> BatchReport:
        remove_stale_temporaries(self.output_dir)  # only ours, and only now that no other batch runs here
        check_report_paths(self.output_dir)
        previous = {
            key: row
            for key, row in read_previous(self.output_dir).items()
            if row.status in FINAL and row.fingerprint == self.fingerprint
        }
        entries = self._entries()
        report = BatchReport(
            input_dir=str(self.input_dir),
            output_dir=str(self.output_dir),
            edits=[model.name for model in self.models],
            settings=asdict(self.settings),
            fingerprint=self.fingerprint,
            started=time.time(),
            pending=list(previous.values()),
        )
        for index, entry in enumerate(entries):
            if self._cancelled:
                report.cancelled = True
                break
            result = self._resumable(entry, previous.pop(entry.relative, None))
            worked = result is None and entry.status is None
            if result is None:
                result = self._process(entry) if entry.status is None else self._decided(entry)
            report.results.append(result)
            if worked:  # rows that took no work are the same on a re-run: they ride with the next write
                report.pending = list(previous.values())
                write_report(report, self.output_dir)
            if self.progress is not None:
                self.progress(index + 1, len(entries), result)
        report.finished = time.time()
        report.pending = list(previous.values())
        write_report(report, self.output_dir)
        return report

    # -- folders ---------------------------------------------------------------------------------------

    def _check_folders(self) -> None:
        if not self.input_dir.exists():
            raise BatchError(f"input folder not found: {self.input_dir}")
        if not self.input_dir.is_dir():
            raise BatchError(f"input is not a folder: {self.input_dir}")
        if self.output_dir.exists() and not self.output_dir.is_dir():
            raise BatchError(f"output exists and is not a folder: {self.output_dir}")
        inside = self.output_dir == self.input_dir or self.input_dir in self.output_dir.parents
        if inside and not self.settings.allow_output_in_input:
            raise BatchError(
                f"the output folder {self.output_dir} is inside the input folder: choose another output "
                "folder (or allow writing into the input folder explicitly)"
            )

    def _prepare_output(self) -> None:
        try:
            self.output_dir.mkdir(parents=True, exist_ok=True)
            # A real write, not os.access(): permissions, read-only mounts and ACLs all show up here.
            fd, probe = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=TEMP_SUFFIX, dir=self.output_dir)
            os.close(fd)
            os.unlink(probe)
        except OSError as exc:
            raise BatchError(
                f"cannot write to the output folder {self.output_dir} ({exc.strerror or exc})"
            ) from exc

    def _entries(self) -> list[InputEntry]:
        return scan_inputs(self.input_dir, recursive=self.settings.recursive, exclude=self.output_dir)

    def _output_path(self, relative: str) -> Path | None:
        """Where the output of `relative` goes, or None when its folder leads outside the output folder
        (a link in the way): outputs are never written, nor trusted on resume, outside it. (A link in
        place of the output itself is harmless: the atomic rename replaces the link, not its target.)"""
        output = self.output_dir / relative
        real_root = os.path.realpath(self.output_dir)
        real_parent = os.path.realpath(output.parent)
        if os.path.commonpath([real_root, real_parent]) != real_root:
            return None
        return output

    # -- one file --------------------------------------------------------------------------------------

    def _decided(self, entry: InputEntry) -> FileResult:
        """The row of an entry classified without reading it (skipped, or an error such as a link loop)."""
        assert entry.status is not None
        return FileResult.for_input(
            entry.relative, entry.status, reason=utf8_text(entry.reason), fingerprint=self.fingerprint
        )

    def _process(self, entry: InputEntry) -> FileResult:
        started = time.perf_counter()
        path, relative = entry.path, entry.relative
        result = FileResult.for_input(relative, FileStatus.SKIPPED, fingerprint=self.fingerprint)
        try:
            info = path.stat()
            result.input_size, result.input_mtime_ns = info.st_size, info.st_mtime_ns
            photo = load_photo(path, max_pixels=self.settings.max_pixels)
            faces = select_faces(self.detector.detect(photo.pixels), self.settings.faces)
            result.faces = len(faces)
            if not faces:
                result.status = FileStatus.NO_FACE
                result.reason = "no face found"
                return result
            pixels = photo.pixels
            for model in self.models:
                pixels = edit_photo(
                    pixels,
                    faces,
                    model,
                    strength=self.settings.strength,
                    feather=self.settings.feather,
                    detail=self.settings.detail,
                ).pixels
            output = self._output_path(relative)
            if output is None:
                raise BatchError(f"the output for {path.name} would be written outside the output folder")
            output.parent.mkdir(parents=True, exist_ok=True)
            save_photo(photo.with_pixels(pixels), output, quality=self.settings.jpeg_quality, protect=[path])
            result.status = FileStatus.DONE
            result.output = utf8_text(relative)
            if photo.frames > 1:
                result.warning = (
                    f"only the first of its {photo.frames} frames/pages was edited: the output has that one"
                )
        except DiatError as exc:
            result.status = FileStatus.ERROR
            result.reason = utf8_text(str(exc).replace(str(path), path.name))
        except OSError as exc:
            result.status = FileStatus.ERROR
            result.reason = utf8_text(f"{exc.strerror or exc}")
        except Exception as exc:  # one broken file must never stop the batch
            result.status = FileStatus.ERROR
            result.reason = utf8_text(f"unexpected {type(exc).__name__}: {exc}")
        finally:
            result.seconds = round(time.perf_counter() - started, 4)
        return result

    def _resumable(self, entry: InputEntry, previous: FileResult | None) -> FileResult | None:
        """The earlier row, when it still holds: same settings, same input, and (when done) the output
        still at its mirrored place inside the output folder — an old report's word is not trusted."""
        if previous is None or entry.status is not None:
            return None
        try:
            info = entry.path.stat()
        except OSError:
            return None
        if (info.st_size, info.st_mtime_ns) != (previous.input_size, previous.input_mtime_ns):
            return None
        if previous.status is FileStatus.DONE:
            output = self._output_path(entry.relative)
            if previous.output != utf8_text(entry.relative) or output is None or not _is_plain_file(output):
                return None
        return replace(previous, resumed=True)

    # -- report ----------------------------------------------------------------------------------------

    def _fingerprint(self) -> str:
        """Everything that changes an output: models (by hash), strength, faces, feather, quality."""
        data = {
            "models": [
                {
                    "name": model.name,
                    "transform": model.manifest.transform.sha256,
                    "enhancer": model.manifest.enhancer.sha256 if model.manifest.enhancer else None,
                }
                for model in self.models
            ],
            "strength": self.settings.strength,
            "faces": self.settings.faces,
            "feather": self.settings.feather,
            "jpeg_quality": self.settings.jpeg_quality,
            "detail": self.settings.detail,
        }
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def _is_plain_file(path: Path) -> bool:
    """A regular file that is not a link (a link could lead anywhere)."""
    try:
        return stat.S_ISREG(os.stat(path, follow_symlinks=False).st_mode)
    except OSError:
        return False


def _check_settings(settings: BatchSettings) -> None:
    if not 0.0 <= settings.strength <= 1.0:  # NaN fails this too
        raise BatchError(f"strength must be between 0 and 1, got {settings.strength}")
    if not 1 <= settings.jpeg_quality <= 100:
        raise BatchError(f"JPEG/WebP quality must be 1-100, got {settings.jpeg_quality}")
    if not (math.isfinite(settings.feather) and settings.feather >= 0):
        raise BatchError(f"feather must be a finite number of at least 0, got {settings.feather}")
    if (
        isinstance(settings.max_pixels, bool)
        or not isinstance(settings.max_pixels, int)
        or settings.max_pixels <= 0
    ):
        raise BatchError(f"the pixel limit must be a positive whole number, got {settings.max_pixels}")
