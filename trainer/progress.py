"""Progress lines with rate and ETA for the trainer's commands, on a terminal and in log files alike.

On a terminal the line is redrawn in place; anywhere else (`nohup … > train.out`, the `custom` log file,
the window's background process) every update is one plain line that still carries the rate and the ETA,
so a log file shows how fast a run goes and when it will end.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TextIO

from diat_studio.core.progress import format_duration, rate_and_eta


def progress_text(done: int, total: int, unit: str, rate: float, eta: float) -> str:
    percent = 100 * done / max(total, 1)
    if rate <= 0:
        return f"{done}/{total} {unit} ({percent:.0f}%)"
    shown_rate = f"{rate:.2f} {unit}/s" if rate >= 0.1 else f"{60 * rate:.2f} {unit}/min"
    return f"{done}/{total} {unit} ({percent:.0f}%), {shown_rate}, ETA {format_duration(eta)}"


class ProgressLine:
    """`update(done, total)` writes the progress with rate and ETA to `stream` (and to `tee`).

    `start` (per update) is where this session began, so a resumed run's rate counts only its own work.
    `listener` receives (done, total, rate, eta) on every update, e.g. for machine-readable progress."""

    def __init__(
        self,
        stream: TextIO | None,
        unit: str,
        *,
        label: str = "",
        tee: Callable[[str], None] | None = None,
        listener: Callable[[int, int, float, float], None] | None = None,
    ) -> None:
        self.stream = stream
        self.unit = unit
        self.label = label
        self.tee = tee
        self.listener = listener
        self.started = time.monotonic()
        self.tty = bool(stream is not None and stream.isatty())
        self.shown = False

    def update(self, done: int, total: int, text: str = "", start: int = 0) -> None:
        rate, eta = rate_and_eta(done, total, start, time.monotonic() - self.started)
        line = " ".join(filter(None, [self.label, progress_text(done, total, self.unit, rate, eta), text]))
        if self.stream is not None:
            if self.tty:
                self.stream.write(f"\r{line[:150]:<150}")
                self.shown = True
            else:
                self.stream.write(line + "\n")
            self.stream.flush()
        if self.tee is not None:
            self.tee(line)
        if self.listener is not None:
            self.listener(done, total, rate, eta)

    def finish(self) -> None:
        if self.stream is not None and self.tty and self.shown:
            self.stream.write("\n")
            self.stream.flush()
            self.shown = False
