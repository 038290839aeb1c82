"""The unfinished part of a `prepare`: aligned photos saved in chunks beside the dataset, so that Ctrl-C,
SIGTERM or a crash loses at most the chunk in hand and the same command resumes where it stopped.

`.OUT.partial/` (next to the dataset folder OUT) holds `work.json` (the settings and the list of photos
the chunks belong to) and one `chunk-NNNNNN.npz` per `CHUNK_PHOTOS` photos, each written whole (a
temporary name, then a rename). When every chunk is there the dataset files are assembled in the same
folder, which then replaces OUT in one swap (trainer.swap). A work folder made for other settings or
other photos is discarded rather than mixed in.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from trainer.swap import replace_folder

#: Photos per saved chunk: what an interruption can lose at most.
CHUNK_PHOTOS = 32
WORK_FILE = "work.json"


class PrepareInterrupted(Exception):
    """Stopped on request (Ctrl-C, SIGTERM) with the finished chunks saved."""

    def __init__(self, done: int, total: int, folder: Path) -> None:
        super().__init__(f"stopped after {done} of {total} photos")
        self.done, self.total, self.folder = done, total, folder


@dataclass
class Chunk:
    """The alignment results of one chunk of photos (indices into the source's photo list)."""

    crops: list[np.ndarray] = field(default_factory=list)
    landmarks: list[np.ndarray] = field(default_factory=list)
    kept: list[int] = field(default_factory=list)
    methods: list[str] = field(default_factory=list)
    failures: list[tuple[int, str]] = field(default_factory=list)


def work_folder(out: Path) -> Path:
    return out.parent / f".{out.name}.partial"


class AlignWork:
    def __init__(self, folder: Path, fingerprint: dict[str, Any], total: int) -> None:
        self.folder = folder
        self.total = total
        fingerprint = {**fingerprint, "chunk_photos": CHUNK_PHOTOS}  # chunk indices depend on it
        self.discarded = False
        """An earlier, unfinished prepare with other settings or photos was thrown away."""
        stored = None
        if (folder / WORK_FILE).is_file():
            try:
                stored = json.loads((folder / WORK_FILE).read_text())
            except ValueError:
                stored = None
        if folder.exists() and stored != fingerprint:
            shutil.rmtree(folder)
            self.discarded = stored is not None
        folder.mkdir(parents=True, exist_ok=True)
        if stored != fingerprint:
            (folder / WORK_FILE).write_text(json.dumps(fingerprint))

    def chunks(self) -> range:
        return range((self.total + CHUNK_PHOTOS - 1) // CHUNK_PHOTOS)

    @staticmethod
    def bounds(index: int, total: int) -> tuple[int, int]:
        return index * CHUNK_PHOTOS, min((index + 1) * CHUNK_PHOTOS, total)

    def _path(self, index: int) -> Path:
        return self.folder / f"chunk-{index:06d}.npz"

    def has(self, index: int) -> bool:
        return self._path(index).is_file()

    @property
    def photos_done(self) -> int:
        return sum(min(CHUNK_PHOTOS, self.total - i * CHUNK_PHOTOS) for i in self.chunks() if self.has(i))

    def save(self, index: int, chunk: Chunk, size: int) -> None:
        temp = self.folder / f".chunk-{index:06d}.tmp.npz"
        crops = np.stack(chunk.crops) if chunk.crops else np.zeros((0, size, size, 3), np.uint8)
        marks = np.stack(chunk.landmarks) if chunk.landmarks else np.zeros((0, 68, 2), np.float32)
        with open(temp, "wb") as handle:
            np.savez(
                handle,
                crops=crops,
                landmarks=marks,
                kept=np.asarray(chunk.kept, np.int64),
                methods=np.asarray(json.dumps(chunk.methods)),
                failures=np.asarray(json.dumps(chunk.failures)),
            )
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, self._path(index))

    def load(self) -> Iterator[Chunk]:
        for index in self.chunks():
            with np.load(self._path(index)) as data:
                yield Chunk(
                    list(data["crops"]),
                    list(data["landmarks"]),
                    data["kept"].tolist(),
                    json.loads(str(data["methods"])),
                    [(int(i), str(r)) for i, r in json.loads(str(data["failures"]))],
                )

    def finish(self, out: Path) -> None:
        """Drop the chunks and swap the assembled dataset (already in this folder) in for `out`."""
        for index in self.chunks():
            self._path(index).unlink(missing_ok=True)
        (self.folder / WORK_FILE).unlink(missing_ok=True)
        replace_folder(self.folder, out)

    def discard(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
