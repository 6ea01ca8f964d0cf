"""Long operations in worker threads, so a page can start one and keep drawing while it runs.

The page keeps one :class:`JobRegistry` (in ``st.cache_resource``) and polls
it; workers never touch the UI. Each job reports ``(done, total, label)``
progress and ends with a result or an error message.
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from engine.errors import SwitchyardError
from engine.progress import Progress


@dataclass
class Job:
    id: int
    kind: str
    system: str
    actor: str
    started: float = field(default_factory=time.time)
    status: str = "running"  # running | done | failed
    done: int = 0
    total: int = 1
    label: str = "starting"
    result: Any = None
    error: str | None = None

    @property
    def fraction(self) -> float:
        return min(1.0, self.done / self.total) if self.total else 0.0


class JobRegistry:
    """Thread-safe registry of jobs; one running job per system at a time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: dict[int, Job] = {}
        self._next = 1

    def start(self, kind: str, system: str, actor: str, work: Callable[[Progress], Any]) -> Job:
        """Run ``work(progress)`` in a thread; refuses while another job of ``system`` runs."""
        with self._lock:
            busy = self.running(system)
            if busy is not None:
                raise SwitchyardError(f"{system}: '{busy.kind}' is still running; wait for it or stop it")
            job = Job(self._next, kind, system, actor)
            self._jobs[job.id] = job
            self._next += 1

        def progress(done: int, total: int, label: str) -> None:
            job.done, job.total, job.label = done, total, label

        def run() -> None:
            try:
                job.result = work(progress)
                job.status = "done"
            except SwitchyardError as exc:
                job.error, job.status = str(exc), "failed"
            except Exception as exc:  # noqa: BLE001 - shown on the page, with the trace in the log
                job.error, job.status = f"{type(exc).__name__}: {exc}", "failed"
                traceback.print_exc()

        threading.Thread(target=run, name=f"job-{job.id}-{kind}-{system}", daemon=True).start()
        return job

    def running(self, system: str) -> Job | None:
        return next((j for j in self._jobs.values() if j.system == system and j.status == "running"), None)

    def latest(self, system: str) -> Job | None:
        jobs = [j for j in self._jobs.values() if j.system == system]
        return max(jobs, key=lambda j: j.id) if jobs else None

    def wait(self, job: Job, timeout_s: float = 60.0) -> Job:
        """Block until ``job`` ends (tests and scripts)."""
        deadline = time.monotonic() + timeout_s
        while job.status == "running" and time.monotonic() < deadline:
            time.sleep(0.05)
        return job
