"""Batch processing of a folder of photos into an output folder.

Guarantees: inputs are only read (never modified, never overwritten); outputs mirror the inputs' relative
paths and are written atomically; every file gets a status in a JSON and a CSV report (written after each
file, so a killed run loses nothing); a re-run with the same settings resumes — files already finished
with those settings, unchanged since, are not redone; a run can be cancelled between two files.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from enum import Enum
from pathlib import Path
from typing import Any

from diat_studio import __version__
from diat_studio.core.errors import DiatError
from diat_studio.core.faces import FaceDetector
from diat_studio.core.image_io import (
    DEFAULT_JPEG_QUALITY,
    DEFAULT_MAX_PIXELS,
    atomic_write_bytes,
    is_image_path,
    load_photo,
    save_photo,
)
from diat_studio.core.inference import AttributeModel
from diat_studio.core.pipeline import DEFAULT_FEATHER, FaceSelection, edit_photo, select_faces

REPORT_JSON = "diat-studio-report.json"
REPORT_CSV = "diat-studio-report.csv"
_REPORT_NAMES = frozenset({REPORT_JSON, REPORT_CSV})


class BatchError(DiatError):
    """The batch cannot start (bad folders, nothing to write to). Nothing was read or written."""


class FileStatus(str, Enum):
    DONE = "done"
    NO_FACE = "no face"
    SKIPPED = "skipped"
    ERROR = "error"


#: Statuses that a resumed run keeps instead of redoing (errors are always retried).
_FINAL = frozenset({FileStatus.DONE, FileStatus.NO_FACE, FileStatus.SKIPPED})


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


@dataclass
class FileResult:
    path: str
    """Input path relative to the input folder (POSIX separators)."""
    status: FileStatus
    reason: str = ""
    output: str = ""
    """Output path relative to the output folder, when one was written."""
    faces: int = 0
    seconds: float = 0.0
    resumed: bool = False
    """True when this result was carried over from an earlier run instead of redone."""
    fingerprint: str = ""
    input_size: int = -1
    input_mtime_ns: int = -1

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["status"] = self.status.value
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FileResult:
        known = {key: data[key] for key in cls.__dataclass_fields__ if key in data}
        known["status"] = FileStatus(known["status"])
        return cls(**known)


@dataclass
class BatchReport:
    input_dir: str
    output_dir: str
    edits: list[str]
    settings: dict[str, Any]
    fingerprint: str
    results: list[FileResult] = field(default_factory=list)
    cancelled: bool = False
    started: float = 0.0
    finished: float = 0.0
    version: str = __version__

    def counts(self) -> dict[str, int]:
        counts = {status.value: 0 for status in FileStatus}
        for result in self.results:
            counts[result.status.value] += 1
        return counts

    @property
    def failed(self) -> int:
        return sum(1 for result in self.results if result.status is FileStatus.ERROR)

    def summary(self) -> str:
        counts = self.counts()
        resumed = sum(1 for result in self.results if result.resumed)
        text = (
            f"{len(self.results)} files: {counts['done']} done, {counts['no face']} no face, "
            f"{counts['skipped']} skipped, {counts['error']} failed"
        )
        if resumed:
            text += f" ({resumed} already done earlier)"
        if self.cancelled:
            text += " — cancelled"
        return text

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["results"] = [result.to_dict() for result in self.results]
        data["counts"] = self.counts()
        return data


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
        if not 0.0 <= settings.strength <= 1.0:
            raise BatchError(f"strength must be between 0 and 1, got {settings.strength}")
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
        """Every file the batch will report on, in a stable order."""
        return sorted(
            self._walk(self.input_dir), key=lambda path: path.relative_to(self.input_dir).as_posix()
        )

    def run(self) -> BatchReport:
        self._prepare_output()
        previous = self._previous_results()
        files = self.input_files()
        report = BatchReport(
            input_dir=str(self.input_dir),
            output_dir=str(self.output_dir),
            edits=[model.name for model in self.models],
            settings=asdict(self.settings),
            fingerprint=self.fingerprint,
            started=time.time(),
        )
        last_write = 0.0
        for index, path in enumerate(files):
            if self._cancelled:
                report.cancelled = True
                break
            relative = path.relative_to(self.input_dir).as_posix()
            result = self._resumable(relative, path, previous.get(relative))
            if result is None:
                result = self._process(path, relative)
            report.results.append(result)
            if time.monotonic() - last_write > 1.0 or index == len(files) - 1:
                self._write_report(report)
                last_write = time.monotonic()
            if self.progress is not None:
                self.progress(index + 1, len(files), result)
        report.finished = time.time()
        self._write_report(report)
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
            fd, probe = tempfile.mkstemp(prefix=".diat-write-test-", dir=self.output_dir)
            os.close(fd)
            os.unlink(probe)
        except OSError as exc:
            raise BatchError(
                f"cannot write to the output folder {self.output_dir} ({exc.strerror or exc})"
            ) from exc

    def _walk(self, folder: Path) -> Iterator[Path]:
        try:
            entries = sorted(os.scandir(folder), key=lambda entry: entry.name)
        except OSError:
            return
        for entry in entries:
            path = Path(entry.path)
            if path.resolve() == self.output_dir:
                continue  # never read our own outputs as inputs
            if entry.is_dir():
                if self.settings.recursive:
                    yield from self._walk(path)
            elif entry.is_file() and not entry.name.startswith(".") and entry.name not in _REPORT_NAMES:
                yield path

    # -- one file --------------------------------------------------------------------------------------

    def _process(self, path: Path, relative: str) -> FileResult:
        started = time.perf_counter()
        result = FileResult(relative, FileStatus.SKIPPED, fingerprint=self.fingerprint)
        try:
            stat = path.stat()
            result.input_size, result.input_mtime_ns = stat.st_size, stat.st_mtime_ns
            if not is_image_path(path):
                result.reason = "not an image"
                return result
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
                    pixels, faces, model, strength=self.settings.strength, feather=self.settings.feather
                ).pixels
            output = self.output_dir / relative
            output.parent.mkdir(parents=True, exist_ok=True)
            save_photo(photo.with_pixels(pixels), output, quality=self.settings.jpeg_quality, protect=[path])
            result.status = FileStatus.DONE
            result.output = relative
        except DiatError as exc:
            result.status = FileStatus.ERROR
            result.reason = str(exc).replace(str(path), path.name)
        except OSError as exc:
            result.status = FileStatus.ERROR
            result.reason = f"{exc.strerror or exc}"
        except Exception as exc:  # one broken file must never stop the batch
            result.status = FileStatus.ERROR
            result.reason = f"unexpected {type(exc).__name__}: {exc}"
        finally:
            result.seconds = round(time.perf_counter() - started, 4)
        return result

    def _resumable(self, relative: str, path: Path, previous: FileResult | None) -> FileResult | None:
        if previous is None or previous.status not in _FINAL or previous.fingerprint != self.fingerprint:
            return None
        try:
            stat = path.stat()
        except OSError:
            return None
        if (stat.st_size, stat.st_mtime_ns) != (previous.input_size, previous.input_mtime_ns):
            return None
        if previous.status is FileStatus.DONE and not (self.output_dir / previous.output).is_file():
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
        }
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]

    def _previous_results(self) -> dict[str, FileResult]:
        try:
            data = json.loads((self.output_dir / REPORT_JSON).read_text(encoding="utf-8"))
            return {item["path"]: FileResult.from_dict(item) for item in data.get("results", [])}
        except (OSError, ValueError, KeyError, TypeError):
            return {}

    def _write_report(self, report: BatchReport) -> None:
        """JSON and CSV, atomically. A report that cannot be written is not worth failing the batch."""
        try:
            atomic_write_bytes(
                self.output_dir / REPORT_JSON,
                (json.dumps(report.to_dict(), indent=2, ensure_ascii=False) + "\n").encode("utf-8"),
            )
            buffer = io.StringIO()
            writer = csv.writer(buffer)
            writer.writerow(["path", "status", "reason", "output", "faces", "seconds", "resumed"])
            for result in report.results:
                writer.writerow(
                    [
                        result.path,
                        result.status.value,
                        result.reason,
                        result.output,
                        result.faces,
                        result.seconds,
                        result.resumed,
                    ]
                )
            atomic_write_bytes(self.output_dir / REPORT_CSV, buffer.getvalue().encode("utf-8"))
        except DiatError:
            pass
