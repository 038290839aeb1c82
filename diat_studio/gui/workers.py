"""Background jobs: every load, detection, edit, save and batch runs here, never on the UI thread.

A `Job` runs a function in Qt's thread pool and reports through signals: `progress(text, fraction)`,
`finished(result)`, `failed(message)` and `cancelled()`. The function receives the job itself, to report
progress and to check `job.is_cancelled()` between steps.
"""

from __future__ import annotations

import threading
import traceback
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

from diat_studio.core.errors import DiatError
from diat_studio.core.pipeline import EditCancelled


class JobSignals(QObject):
    progress = Signal(str, float)
    finished = Signal(object)
    failed = Signal(str)
    cancelled = Signal()
    done = Signal()
    """Emitted last, whatever the outcome."""


class Job(QRunnable):
    def __init__(self, function: Callable[..., Any], *args: Any, name: str = "") -> None:
        super().__init__()
        self.setAutoDelete(False)
        self.function = function
        self.args = args
        self.name = name
        self.signals = JobSignals()
        self._cancel = threading.Event()
        self.completed = False
        """True once `done` has been delivered on the UI thread (so every earlier signal has been too)."""
        self.signals.done.connect(self._mark_completed)

    def _mark_completed(self) -> None:
        self.completed = True

    def cancel(self) -> None:
        self._cancel.set()

    def is_cancelled(self) -> bool:
        return self._cancel.is_set()

    def report(self, text: str, fraction: float) -> None:
        self.signals.progress.emit(text, float(fraction))

    def run(self) -> None:
        try:
            result = self.function(self, *self.args)
        except EditCancelled:
            self.signals.cancelled.emit()
        except DiatError as exc:
            self.signals.failed.emit(str(exc))
        except Exception as exc:  # a bug: say so plainly, keep the app alive
            traceback.print_exc()
            self.signals.failed.emit(f"Unexpected error ({type(exc).__name__}): {exc}")
        else:
            if self.is_cancelled():
                self.signals.cancelled.emit()
            else:
                self.signals.finished.emit(result)
        finally:
            self.signals.done.emit()


class JobRunner(QObject):
    """Starts jobs and keeps them alive until they are done."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(4)
        self._running: set[Job] = set()

    def start(self, job: Job) -> Job:
        self._running.add(job)
        job.signals.done.connect(lambda: self._running.discard(job))
        self.pool.start(job)
        return job

    @property
    def busy(self) -> bool:
        return bool(self._running)

    def wait(self, msecs: int = 30000) -> bool:
        return self.pool.waitForDone(msecs)
