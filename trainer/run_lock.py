"""A run folder is locked while a process trains in it: `.lock`, an flock held for the whole session.

Two processes writing one run folder (a `--resume` of a run that is still training) would interleave
their logs and overwrite each other's checkpoints. The kernel releases an flock when its holder dies,
however it dies (SIGKILL included), so a killed trainer never leaves a stale lock; the lock file itself
stays (it holds the holder's pid for the error message) and means nothing once unlocked.
"""

from __future__ import annotations

import os
from pathlib import Path

try:  # POSIX; elsewhere runs are not locked (the app's trainer targets Linux and macOS)
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

LOCK_FILE = ".lock"


class RunLockedError(ValueError):
    """Another process is training in the run folder."""


class RunLock:
    """An exclusive lock on a run folder for as long as this object holds it."""

    def __init__(self, run: Path) -> None:
        self.run = Path(run)
        self.path = self.run / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        if self._fd is not None or fcntl is None:
            return self
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
            os.close(fd)
            raise RunLockedError(_busy(self.run, holder)) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the flock
            self._fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *_exc: object) -> None:
        self.release()


def check_unlocked(run: Path) -> None:
    """Raise RunLockedError when a process is training in `run` right now (takes and drops the lock)."""
    if (Path(run) / LOCK_FILE).exists():
        RunLock(run).acquire().release()


def _busy(run: Path, holder: str) -> str:
    who = f"process {holder}" if holder.isdigit() else "another process"
    return (
        f"{run} is being trained by {who} right now: wait for it to finish or stop it "
        "(Ctrl-C, or kill PID: it checkpoints and exits), then resume"
    )
