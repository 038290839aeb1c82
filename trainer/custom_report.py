"""What `custom` says while it works: messages and progress lines (rate, ETA) on stderr and in the
workspace's log file, and, with `--json-progress`, one JSON object per line on stdout for the window.

JSON events: {"event": "step", "index", "count", "key", "title"}; {"event": "progress", "key", "done",
"total", "unit", "rate", "eta_seconds", "fraction"} (fraction: of the whole command, by the steps'
expected shares of its time); {"event": "message", "text"}; {"event": "finished", "name", "model",
"installed", "experimental"}; {"event": "stopped", "exit_code"}; {"event": "error", "message"}.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from diat_studio.core.progress import rate_and_eta
from trainer.progress import progress_text

#: A log file (or a pipe) gets a progress line at most this often; a terminal is redrawn every update.
LINE_SECONDS = 10.0
#: The window gets a progress event at most this often.
EVENT_SECONDS = 0.5


class Reporter:
    def __init__(
        self,
        log: Path | None,
        *,
        stream: TextIO | None = None,
        events: TextIO | None = None,
        weights: dict[str, float] | None = None,
    ) -> None:
        self.log_path = log
        self.stream = stream if stream is not None else sys.stderr
        self.events = events
        self.weights = weights or {}
        self.finished_weight = 0.0
        self.key = ""
        self.tty = self.stream.isatty()
        self.drawn = False
        self.started: float | None = None
        self._last_line = self._last_log = self._last_event = 0.0

    # -- plain output ------------------------------------------------------------------------------------

    def _log(self, text: str) -> None:
        if self.log_path is None:
            return
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "a") as handle:
            handle.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {text}\n")

    def event(self, kind: str, **fields: Any) -> None:
        if self.events is not None:
            self.events.write(json.dumps({"event": kind, **fields}) + "\n")
            self.events.flush()

    def say(self, text: str) -> None:
        self._end_line()
        print(text, file=self.stream, flush=True)
        self._log(text)
        self.event("message", text=text)

    def result(self, text: str) -> None:
        """A line of the final result: stdout (stderr when stdout carries the JSON events) and the log."""
        self._end_line()
        print(text, file=sys.stdout if self.events is None else self.stream, flush=True)
        self._log(text)
        self.event("message", text=text)

    # -- steps and progress ------------------------------------------------------------------------------

    def step(self, index: int, count: int, key: str, title: str) -> None:
        self._end_line()
        if self.key:
            self.finished_weight += self.weights.get(self.key, 0.0)
        self.key = key
        self.started = time.monotonic()
        self._last_line = self._last_log = self._last_event = -1e9
        header = f"[{index}/{count}] {title}"
        print(header, file=self.stream, flush=True)
        self._log(header)
        self.event("step", index=index, count=count, key=key, title=title)
        self.event("progress", key=key, fraction=round(self.fraction(0.0), 4))

    def complete(self) -> None:
        """Every step is done: the last progress event says so (fraction 1)."""
        self._end_line()
        self.finished_weight = sum(self.weights.values())
        self.key = ""
        self.event("progress", key="", fraction=1.0)

    def fraction(self, within: float) -> float:
        total = sum(self.weights.values()) or 1.0
        return min(1.0, (self.finished_weight + within * self.weights.get(self.key, 0.0)) / total)

    def progress(self, done: int, total: int, unit: str, start: int = 0, text: str = "") -> None:
        """Progress of the current step (`start`: where this session began, for the rate): redrawn on a
        terminal, a line every LINE_SECONDS in a pipe and in the log file, an event twice a second."""
        now = time.monotonic()
        if self.started is None:
            self.started = now
        rate, eta = rate_and_eta(done, total, start, now - self.started)
        line = f"  {progress_text(done, total, unit, rate, eta)} {text}".rstrip()
        last = done >= total
        if self.tty:
            self.stream.write(f"\r{line[:150]:<150}")
            self.stream.flush()
            self.drawn = True
        elif last or now - self._last_line >= LINE_SECONDS:
            self._last_line = now
            print(line, file=self.stream, flush=True)
        if last or now - self._last_log >= LINE_SECONDS:
            self._last_log = now
            self._log(line.strip())
        if last or now - self._last_event >= EVENT_SECONDS:
            self._last_event = now
            fraction = self.fraction(done / max(total, 1))
            self.event(
                "progress",
                key=self.key,
                done=done,
                total=total,
                unit=unit,
                rate=round(rate, 4),
                eta_seconds=round(eta, 1),
                fraction=round(fraction, 4),
            )

    def _end_line(self) -> None:
        if self.drawn:
            self.stream.write("\n")
            self.stream.flush()
            self.drawn = False
