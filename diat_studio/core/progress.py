"""A text progress bar with rate and ETA, shared by `diat-studio batch` and `diat-studio-train`."""

from __future__ import annotations

import time
from typing import TextIO


class ProgressBar:
    """One redrawn line on a terminal; one plain line per update otherwise (logs, CI)."""

    def __init__(self, stream: TextIO, unit: str = "files", enabled: bool = True, width: int = 28) -> None:
        self.stream = stream
        self.unit = unit
        self.enabled = enabled
        self.width = width
        self.started = time.monotonic()
        self.tty = stream.isatty()
        self.shown = False

    def update(self, done: int, total: int, text: str = "", start: int = 0) -> None:
        """`start` is where this run began (a resumed run's rate counts only its own progress)."""
        if not self.enabled:
            return
        rate, eta = rate_and_eta(done, total, start, time.monotonic() - self.started)
        if self.tty:
            filled = int(self.width * done / max(total, 1))
            bar = "█" * filled + "·" * (self.width - filled)
            self.stream.write(
                f"\r[{bar}] {done}/{total} {100 * done / max(total, 1):3.0f}% "
                f"{rate:.2f} {self.unit}/s ETA {format_duration(eta)}  {text[-40:]:<40}"
            )
            self.shown = True
        else:
            self.stream.write(f"[{done}/{total}] {text}\n")
        self.stream.flush()

    def finish(self) -> None:
        if self.enabled and self.tty and self.shown:
            self.stream.write("\n")
            self.stream.flush()


def rate_and_eta(done: int, total: int, start: int, elapsed: float) -> tuple[float, float]:
    """(units per second, seconds left) of a job at `done` of `total` that began at `start` (a resumed
    job's rate counts only its own progress); shared by the batch's bar and the trainer's progress line."""
    rate = (done - start) / elapsed if elapsed > 0 else 0.0
    return rate, ((total - done) / rate if rate > 0 else 0.0)


def format_duration(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600:d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
