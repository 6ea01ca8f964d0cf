"""How long operations report where they are: ``progress(done, total, label)``.

One definition shared by the services, the engine modules that do long work
and the job registry, so a page, the CLI and a test can all pass the same
kind of callback.
"""

from __future__ import annotations

from collections.abc import Callable

Progress = Callable[[int, int, str], None]


def no_progress(done: int, total: int, label: str) -> None:
    """The default callback: say nothing."""
