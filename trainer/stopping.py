"""Ctrl-C and SIGTERM as a polite request to stop: the work in hand finishes its step, saves what it has
(a checkpoint, a chunk of aligned photos) and the command exits 130 (SIGINT) or 143 (SIGTERM).

SIGTERM is what `kill PID`, a desktop session's logout and the window's Cancel send: it must leave the
same resumable state as Ctrl-C, never a half-written file or a traceback.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any

EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143

_EXIT_CODES = {signal.SIGINT: EXIT_INTERRUPTED, signal.SIGTERM: EXIT_TERMINATED}


class StopRequests:
    """While active (a `with` block in the main thread), SIGINT and SIGTERM set `requested` instead of
    killing the process; the previous handlers come back at the end of the block."""

    def __init__(self, message: str = "stopping after this step and saving…") -> None:
        self.message = message
        self.signal: int | None = None
        self._previous: dict[int, Any] = {}
        self._interrupting = False

    @property
    def requested(self) -> bool:
        return self.signal is not None

    def __call__(self) -> bool:
        """The abort callback of the training loop and of `prepare`."""
        return self.requested

    @property
    def exit_code(self) -> int:
        return _EXIT_CODES.get(self.signal or signal.SIGINT, EXIT_INTERRUPTED)

    def request(self, signum: int = signal.SIGINT) -> None:
        """Ask for a stop as a signal would (the window's tests and listeners use it)."""
        first = self.signal is None
        self.signal = signum
        if first and self.message:
            print(f"\ndiat-studio-train: {self.message}", file=sys.stderr, flush=True)

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        self.request(signum)
        if self._interrupting:
            raise KeyboardInterrupt

    @contextlib.contextmanager
    def interrupting(self) -> Iterator[None]:
        """Inside the block a stop request raises KeyboardInterrupt at once: for work that has no step to
        finish but leaves nothing half-written when cut short (a staged export, an evaluation that writes
        its files at the end)."""
        if self.requested:
            raise KeyboardInterrupt
        self._interrupting = True
        try:
            yield
        finally:
            self._interrupting = False

    def __enter__(self) -> StopRequests:
        if threading.current_thread() is threading.main_thread():
            for signum in _EXIT_CODES:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *_exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()


def ignore_stop_signals() -> None:
    """For worker processes: the parent decides when to stop (a Ctrl-C reaches the whole process group,
    and every worker would print its own KeyboardInterrupt traceback)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
