"""A deliberately slower version: a copy of a v1 system whose entry component sleeps before every call.

It answers exactly what the original answers, so only its speed tells them apart
(what the regression and capacity tests need); both are served as real processes.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from bench.aa_calibration import ROOT, start

SLOW = """

import time as _time


def _slowed(method):
    def slower(self, message):
        _time.sleep({delay_s})  # the regression: every call at the entry takes this much longer
        return method(self, message)

    return slower


for _name in METHODS:
    setattr(Component, _name, _slowed(getattr(Component, _name)))
"""


def slowed_copy(source: Path, target: Path, delay_s: float = 0.003) -> Path:
    """A copy of the v1 system whose entry component sleeps ``delay_s`` before every call (same answers)."""
    shutil.copytree(source, target)
    with (target / "components" / "gateway.py").open("a") as module:
        module.write(SLOW.format(delay_s=delay_s))
    return target


def serve(system_dir: Path) -> tuple[subprocess.Popen[bytes], int]:
    """Serve a v1 system folder; (process, port)."""
    args = ["engine.runtime.serve", "--system-dir", str(system_dir), "--runtime", "v1"]
    return start(args, ROOT, "/health")
