"""The Go / No-Go page's measurement figures: the A/A calibration beside the verdict, and capacity.

* **A/A**: what the same measurement reads between two copies of the old
  version (its bias and noise); the judge takes it out of the latency change.
* **Capacity**: each version's sustainable requests per second, side by side:
  the throughput KPI (a mirrored run cannot show it: both versions get the same load).

The page calls :func:`aa_caption` under the verdict and :func:`measure_controls`
where it keeps its run controls; each button starts one service function as a
job of the page (``start(kind, work)``: the page's job starter with this area),
since both take seconds, and the outcome is said beside the buttons.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import streamlit as st

from engine import services
from engine.state import Action
from engine.workspace import Workspace
from pages._shared import cached


def aa_caption(ws: Workspace, name: str, version: tuple, result: dict[str, Any] | None) -> None:
    """Under the verdict: the A/A reading it was corrected by, else the newest one, else that none exists."""
    used = (result or {}).get("calibration")
    if used:
        figure = services.Calibration.model_validate(used).describe()
        st.caption(f"Latency corrected by the measurement's own reading · {figure}")
        return
    newest = cached(version, services.calibration, ws, name)
    st.caption(
        f"Latency not corrected for the measurement · newest {newest.describe()}"
        if newest
        else "Latency not corrected for the measurement: no A/A calibration yet (Calibrate, below)."
    )


def measure_controls(
    ws: Workspace,
    name: str,
    can: frozenset[Action],
    state: str,
    version: tuple,
    buttons: Callable[[bool, str], dict[str, Any]],
    start: Callable[[str, Callable[..., Any]], Any],
    who: str,
) -> None:
    """The newest A/A reading and capacity probe, with a button for each, enabled as ``can`` (the
    system's available actions) allows;
    ``buttons(when, why_not)`` gives a button's enabled/help arguments, ``start(kind, work)`` starts
    ``work(progress)`` as a job."""
    calibration = cached(version, services.calibration, ws, name)
    st.markdown("**Measurement (A/A)**")
    st.caption(
        calibration.describe()
        if calibration
        else "Not calibrated: old mirrored to a copy of itself; what the judge reads between them is the "
        "measurement's own bias and noise."
    )
    free = buttons(Action.CALIBRATE in can, "a parallel run is on")
    if st.button("Calibrate (A/A run, 20 s)", key="calibrate", **free):
        start("calibration", lambda p: services.calibrate(ws, name, actor=who, progress=p))
    capacity = cached(version, services.capacity, ws, name)
    st.markdown("**Capacity (the throughput KPI)**")
    st.caption(
        f"{capacity.describe()}; by {capacity.actor}, {capacity.measured_at:%Y-%m-%d %H:%M} UTC"
        if capacity
        else "Not measured: old and new in turn, closed loop on loopback, each one's sustainable req/s."
    )
    both = buttons(Action.MEASURE_CAPACITY in can, f"needs old and new running and no run ({state})")
    if st.button("Measure capacity (about 15 s)", key="capacity", **both):
        start("capacity probe", lambda p: services.measure_capacity(ws, name, actor=who, progress=p))
