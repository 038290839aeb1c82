"""A run folder is locked while a process trains in it (the app's FolderLock: an flock held for the
whole session).

Two processes writing one run folder (a `--resume` of a run that is still training) would interleave
their logs and overwrite each other's checkpoints. The kernel releases an flock when its holder dies,
however it dies (SIGKILL included), so a killed trainer never leaves a lock that still holds.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from diat_studio.core.atomic_files import FolderLock, FolderLockedError


class RunLockedError(ValueError):
    """Another process is training in the run folder."""


class RunLock:
    """An exclusive lock on a run folder for as long as this object holds it."""

    def __init__(self, run: Path) -> None:
        self.run = Path(run)
        self._lock = FolderLock(self.run)

    def acquire(self) -> RunLock:
        try:
            self._lock.acquire()
        except FolderLockedError:
            holder = ""
            with contextlib.suppress(OSError):
                holder = self._lock.path.read_text(encoding="ascii", errors="replace").strip()
            raise RunLockedError(_busy(self.run, holder)) from None
        return self

    def release(self) -> None:
        self._lock.release()

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *_exc: object) -> None:
        self.release()


def check_unlocked(run: Path) -> None:
    """Raise RunLockedError when a process is training in `run` right now (takes and drops the lock)."""
    if FolderLock(Path(run)).path.exists():
        RunLock(run).acquire().release()


def _busy(run: Path, holder: str) -> str:
    who = f"process {holder}" if holder.isdigit() else "another process"
    return (
        f"{run} is being trained by {who} right now: wait for it to finish or stop it "
        "(Ctrl-C, or kill PID: it checkpoints and exits), then resume"
    )
