"""The batch report: one row per input, as JSON (for resuming, and for tools) and CSV (for people).

The report is rewritten atomically after every file that took work, so a killed batch loses at most the
file it was working on. Rows of an earlier run that this run has not reached yet stay in the JSON under
`pending`, so a run that is killed early does not forget what an earlier run finished.

A file already at the report's path is only ever replaced when it is one of our reports: anything else
(a folder, someone's JSON) stops the batch with a message before any photo is touched.
"""

from __future__ import annotations

import csv
import io
import json
import os
import stat
from dataclasses import asdict, dataclass, field, fields
from enum import Enum
from pathlib import Path
from typing import Any

from diat_studio import __version__
from diat_studio.core.atomic_files import atomic_write_bytes, open_regular, utf8_text
from diat_studio.core.errors import DiatError

REPORT_JSON = "diat-studio-report.json"
REPORT_CSV = "diat-studio-report.csv"
REPORT_FORMAT = "diat-studio batch report"

#: A report larger than this is not one of ours (about a million rows).
MAX_REPORT_BYTES = 1 << 30

_CSV_COLUMNS = ("path", "status", "reason", "output", "faces", "seconds", "resumed", "warning")
_OLD_CSV_COLUMNS = _CSV_COLUMNS[:-1]


class BatchError(DiatError):
    """The batch cannot start (bad folders, nothing to write to, folder in use) or cannot go on."""


class ReportError(BatchError):
    """The report could not be written: the batch stops, since what it does next could not be recorded."""


class FileStatus(str, Enum):
    DONE = "done"
    NO_FACE = "no face"
    SKIPPED = "skipped"
    ERROR = "error"


#: Statuses that a resumed run keeps instead of redoing (errors are always retried).
FINAL = frozenset({FileStatus.DONE, FileStatus.NO_FACE, FileStatus.SKIPPED})


@dataclass
class FileResult:
    path: str
    """Input path relative to the input folder (POSIX separators), always valid UTF-8 (see path_bytes_hex)."""
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
    warning: str = ""
    """Set when the file is `done` but the output lost something, e.g. every frame of an animation but one."""
    path_bytes_hex: str = ""
    """The path's raw bytes in hex when they are not valid UTF-8; `path` then shows those bytes as \\xNN."""

    @classmethod
    def for_input(cls, relative: str, status: FileStatus, **values: Any) -> FileResult:
        """A row for the input at `relative`, as the file system spells it (undecodable bytes included)."""
        shown = utf8_text(relative)
        raw = "" if shown == relative else os.fsencode(relative).hex()
        return cls(shown, status, path_bytes_hex=raw, **values)

    @property
    def key(self) -> str:
        """The relative path exactly as the file system spells it: what a resumed run matches on."""
        if self.path_bytes_hex:
            return os.fsdecode(bytes.fromhex(self.path_bytes_hex))
        return self.path

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["status"] = self.status.value
        return {key: utf8_text(value) if isinstance(value, str) else value for key, value in data.items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FileResult:
        """Raises ValueError (or TypeError, KeyError) for a row that is not one of ours."""
        known: dict[str, Any] = {}
        for item in fields(cls):
            if item.name not in data:
                continue
            value = data[item.name]
            expected = {"str": str, "int": int, "float": (int, float), "bool": bool}.get(str(item.type))
            if expected is not None and not isinstance(value, expected):
                raise TypeError(f"{item.name} is {type(value).__name__}")
            known[item.name] = value
        known["status"] = FileStatus(data["status"])
        if not isinstance(known.get("path"), str):
            raise TypeError("path is missing")
        if known.get("path_bytes_hex"):
            bytes.fromhex(known["path_bytes_hex"])
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
    pending: list[FileResult] = field(default_factory=list)
    """Rows of earlier runs (same settings) for files this run has not reached: kept so they resume."""

    def counts(self) -> dict[str, int]:
        counts = {status.value: 0 for status in FileStatus}
        for result in self.results:
            counts[result.status.value] += 1
        return counts

    @property
    def failed(self) -> int:
        return sum(1 for result in self.results if result.status is FileStatus.ERROR)

    @property
    def warned(self) -> int:
        return sum(1 for result in self.results if result.warning)

    def summary(self) -> str:
        counts = self.counts()
        resumed = sum(1 for result in self.results if result.resumed)
        text = (
            f"{len(self.results)} files: {counts['done']} done, {counts['no face']} no face, "
            f"{counts['skipped']} skipped, {counts['error']} failed"
        )
        if self.warned:
            text += f", {self.warned} with a warning"
        if resumed:
            text += f" ({resumed} already done earlier)"
        if self.cancelled:
            text += " — cancelled"
        return text

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["format"] = REPORT_FORMAT
        data["input_dir"] = utf8_text(self.input_dir)
        data["output_dir"] = utf8_text(self.output_dir)
        data["results"] = [result.to_dict() for result in self.results]
        data["pending"] = [result.to_dict() for result in self.pending]
        data["counts"] = self.counts()
        return data


def check_report_paths(folder: Path) -> None:
    """Refuse to start when something that is not our report sits where the report goes."""
    for name in (REPORT_JSON, REPORT_CSV):
        path = folder / name
        try:
            info = os.stat(path, follow_symlinks=False)
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise BatchError(f"cannot check the report {path} ({exc.strerror or exc})") from exc
        if not stat.S_ISREG(info.st_mode):
            kind = "a folder" if stat.S_ISDIR(info.st_mode) else "not a regular file"
            raise BatchError(
                f"{path} is {kind}, so the report cannot be written there: move it away or choose another "
                "output folder"
            )
    csv_path = folder / REPORT_CSV
    if csv_path.exists() and _csv_header(csv_path) not in (_CSV_COLUMNS, _OLD_CSV_COLUMNS):
        raise BatchError(
            f"{csv_path} exists and is not a DIAT Studio batch report: move it away or choose another "
            "output folder (it is never overwritten)"
        )


def _csv_header(path: Path) -> tuple[str, ...]:
    try:
        with open_regular(path) as handle:
            first = handle.read(4096).decode("utf-8", "replace").splitlines()
    except OSError:
        return ()
    return tuple(next(csv.reader(first[:1]), []))


def read_previous(folder: Path) -> dict[str, FileResult]:
    """Rows of the report already in `folder`, by input path, for resuming (results and pending).

    Raises BatchError when a file sits at the report's path that is not one of our reports: it is the
    user's, and would be overwritten. Rows that do not parse are left out (those files are redone).
    """
    path = folder / REPORT_JSON
    try:
        with open_regular(path, max_bytes=MAX_REPORT_BYTES) as handle:
            raw = handle.read()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise BatchError(f"cannot read the existing report {path} ({exc.strerror or exc})") from exc
    try:
        data = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError):
        data = None
    if not _is_our_report(data):
        raise BatchError(
            f"{path} exists and is not a DIAT Studio batch report: move it away or choose another output "
            "folder (it is never overwritten)"
        )
    rows: dict[str, FileResult] = {}
    for item in [*data.get("pending", []), *data["results"]]:
        try:
            row = FileResult.from_dict(item)
            rows[row.key] = row
        except (ValueError, TypeError, KeyError, AttributeError):
            continue
    return rows


def _is_our_report(data: object) -> bool:
    return (
        isinstance(data, dict)
        and isinstance(data.get("results"), list)
        and isinstance(data.get("pending", []), list)
        and isinstance(data.get("fingerprint"), str)
        and data.get("format", REPORT_FORMAT) == REPORT_FORMAT
    )


def write_report(report: BatchReport, folder: Path) -> None:
    """JSON and CSV, each atomically. Raises ReportError: a report that cannot be written is an error."""
    try:
        atomic_write_bytes(
            folder / REPORT_JSON,
            (json.dumps(report.to_dict(), indent=2, ensure_ascii=False) + "\n").encode("utf-8"),
        )
        atomic_write_bytes(folder / REPORT_CSV, _csv_text(report).encode("utf-8"))
    except DiatError as exc:
        raise ReportError(f"cannot write the report: {exc}") from exc


def _csv_text(report: BatchReport) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(_CSV_COLUMNS)
    for result in report.results:
        row = result.to_dict()
        writer.writerow([row[column] for column in _CSV_COLUMNS])
    return buffer.getvalue()
