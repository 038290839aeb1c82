"""Crash recovery: the open photo's unsaved work, journalled as the user works, offered back after a crash.

While a photo has unsaved changes, a small JSON file in the per-user data folder
(`<user data>/recovery/session-<pid>-<start>.json`) holds what is needed to redo them: the photo's path,
its faces, the edits applied (model, strength, feather, faces and mask polygons), the reshaped masks and
the face selection. A background thread writes it atomically (temporary file, fsync, rename) after every
change and removes it when the work is saved or the window closes normally. Each window holds a QLockFile
beside its journal while it runs; a journal whose lock can be taken belongs to a window that did not
close normally (killed, crashed, power lost), and the next start offers to restore it.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QLockFile, QObject, Signal

from diat_studio.core.errors import DiatError
from diat_studio.core.faces import Box, Face
from diat_studio.core.paths import user_data_dir
from diat_studio.core.regions import Polygon, RegionKind
from diat_studio.gui.document import EditRecipe, PhotoDocument
from diat_studio.gui.workers import Job, JobRunner

FORMAT = 1
PREFIX = "session-"
ANSWER_ENV = "DIAT_STUDIO_RESTORE"
"""`yes` or `no` answers the restore question without showing it (tests and scripted runs)."""
MAX_JOURNAL_BYTES = 16 * 1024 * 1024


def recovery_dir() -> Path:
    return user_data_dir() / "recovery"


class RecoveryError(ValueError):
    """A journal that cannot be read back (damaged, or from another version)."""


@dataclass(frozen=True)
class RecoveryState:
    """Everything needed to rebuild an open photo's work from the photo file."""

    photo: Path
    faces: tuple[Face, ...]
    edits: tuple[EditRecipe, ...] = ()
    masks: dict[tuple[int, RegionKind], Polygon] = field(default_factory=dict)
    selected: tuple[int, ...] = ()
    saved_path: Path | None = None

    @classmethod
    def of(cls, document: PhotoDocument) -> RecoveryState | None:
        """The document's state, or None when it has no file to start again from."""
        if document.path is None:
            return None
        saved = document.saved_path if document.saved_path != document.path else None
        return cls(
            photo=document.path,
            faces=tuple(document.faces),
            edits=tuple(document.applied),
            masks=document.edited_masks(),
            selected=tuple(document.selected_faces()),
            saved_path=saved,
        )

    def describe(self) -> str:
        edits, masks = len(self.edits), len(self.masks)
        text = f"{self.photo.name} ({edits} edit{'s' if edits != 1 else ''}"
        if masks:
            text += f", {masks} reshaped mask{'s' if masks != 1 else ''}"
        return text + ")"

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "photo": str(self.photo),
            "saved_path": str(self.saved_path) if self.saved_path else None,
            "faces": [
                {
                    "box": [face.box.left, face.box.top, face.box.right, face.box.bottom],
                    "landmarks": np.asarray(face.landmarks, np.float64).tolist(),
                    "score": face.score,
                    "detector": face.detector,
                }
                for face in self.faces
            ],
            "selected": list(self.selected),
            "edits": [
                {
                    "model": edit.model,
                    "label": edit.label,
                    "strength": edit.strength,
                    "feather": edit.feather,
                    "faces": list(edit.faces),
                    "polygons": [[list(point) for point in polygon.points] for polygon in edit.polygons],
                }
                for edit in self.edits
            ],
            "masks": [
                {"face": face, "region": region.value, "polygon": [list(point) for point in polygon.points]}
                for (face, region), polygon in sorted(self.masks.items(), key=lambda item: item[0][0])
            ],
        }

    @classmethod
    def from_json(cls, data: object) -> RecoveryState:
        try:
            if not isinstance(data, dict) or data.get("format") != FORMAT:
                raise RecoveryError("not a DIAT Studio recovery journal of this version")
            faces = tuple(
                Face(
                    Box(*(float(v) for v in face["box"])),
                    np.array(face["landmarks"], np.float64),
                    float(face.get("score", 0.0)),
                    str(face.get("detector", "hog")),
                )
                for face in data["faces"]
            )
            edits = tuple(
                EditRecipe(
                    model=str(edit["model"]),
                    label=str(edit["label"]),
                    strength=float(edit["strength"]),
                    feather=float(edit["feather"]),
                    faces=tuple(int(i) for i in edit["faces"]),
                    polygons=tuple(_polygon(points) for points in edit["polygons"]),
                )
                for edit in data["edits"]
            )
            masks = {
                (int(mask["face"]), RegionKind(mask["region"])): _polygon(mask["polygon"])
                for mask in data["masks"]
            }
            saved = data.get("saved_path")
            return cls(
                photo=Path(data["photo"]),
                faces=faces,
                edits=edits,
                masks=masks,
                selected=tuple(int(i) for i in data.get("selected", [])),
                saved_path=Path(saved) if saved else None,
            )
        except RecoveryError:
            raise
        except (KeyError, TypeError, ValueError) as exc:
            raise RecoveryError(f"damaged recovery journal ({type(exc).__name__}: {exc})") from exc


def _polygon(points: object) -> Polygon:
    return Polygon(tuple((float(x), float(y)) for x, y in points))  # type: ignore[union-attr]


def write_atomically(path: Path, data: bytes) -> None:
    """Write `data` to a temporary file beside `path`, flush it to disk, then rename it over `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


class RecoveryJournal(QObject):
    """This window's journal. `record()` from the UI thread; the writing happens in one background thread,
    in order, and only the newest state still waiting is written."""

    failed = Signal(str)

    def __init__(self, folder: Path | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.folder = folder or recovery_dir()
        stem = f"{PREFIX}{os.getpid()}-{time.time_ns()}"
        self.path = self.folder / f"{stem}.json"
        self._lock = QLockFile(str(self.folder / f"{stem}.lock"))
        self._lock.setStaleLockTime(0)
        self.jobs = JobRunner(self)
        self.jobs.pool.setMaxThreadCount(1)
        self._mutex = threading.Lock()
        self._pending: tuple[bytes | None] | None = None
        self._queued = False
        self._reported = False

    def record(self, state: RecoveryState | None) -> None:
        """Journal `state`; None means there is nothing to recover (the journal is removed)."""
        data = None if state is None else json.dumps(state.to_json()).encode()
        with self._mutex:
            self._pending = (data,)
            if self._queued:
                return
            self._queued = True
        job = Job(self._drain, name="journal")
        job.signals.failed.connect(self._on_failed)
        self.jobs.start(job)

    def wait(self, msecs: int = 10000) -> bool:
        return self.jobs.wait(msecs)

    def close(self) -> None:
        """A normal exit: wait for the writer, then remove the journal and its lock."""
        self.wait()
        with contextlib.suppress(OSError):
            self.path.unlink(missing_ok=True)
        self._lock.unlock()

    def _drain(self, _job: Job) -> None:
        """In the writer thread: write (or remove) the newest pending state until none is left."""
        try:
            while True:
                with self._mutex:
                    pending, self._pending = self._pending, None
                    if pending is None:
                        self._queued = False
                        return
                (data,) = pending
                if data is None:
                    self.path.unlink(missing_ok=True)
                    continue
                self.folder.mkdir(parents=True, exist_ok=True)
                if not self._lock.isLocked() and not self._lock.tryLock(0):
                    raise OSError(f"{self._lock.fileName()} is locked ({self._lock.error().name})")
                write_atomically(self.path, data)
        except OSError as exc:
            with self._mutex:
                self._queued = False
            raise DiatError(f"Crash recovery is off: cannot write {self.path} ({exc})") from exc

    def _on_failed(self, message: str) -> None:
        if not self._reported:
            self._reported = True
            self.failed.emit(message)


@dataclass
class AbandonedJournal:
    """A journal left by a window that did not close normally; this process holds its lock."""

    path: Path
    lock: QLockFile
    state: RecoveryState | None
    error: str = ""

    def discard(self) -> None:
        with contextlib.suppress(OSError):
            self.path.unlink(missing_ok=True)
        self.lock.unlock()


def find_abandoned(folder: Path | None = None) -> list[AbandonedJournal]:
    """Journals whose window is gone, newest first. Those of windows still running are left alone."""
    folder = folder or recovery_dir()
    try:
        candidates = sorted(folder.glob(f"{PREFIX}*.json"), key=_mtime, reverse=True)
    except OSError:
        return []
    found = []
    for path in candidates:
        lock = QLockFile(str(path.with_suffix(".lock")))
        lock.setStaleLockTime(0)
        if not lock.tryLock(0):
            continue  # another window is running and owns it
        try:
            if not path.is_file() or path.stat().st_size > MAX_JOURNAL_BYTES:
                raise RecoveryError("not a regular file of a sensible size")
            state = RecoveryState.from_json(json.loads(path.read_bytes()))
            found.append(AbandonedJournal(path, lock, state))
        except (OSError, ValueError) as exc:  # json and RecoveryError are ValueErrors
            found.append(AbandonedJournal(path, lock, None, str(exc)))
    return found


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0
