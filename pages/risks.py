"""Risks: the seed's risk matrix with live evidence, the contingency playbooks, cleanup, optimisations."""

import datetime as dt

import streamlit as st

from engine import services
from engine.errors import SwitchyardError
from pages._shared import actor, cached, viewer_note, workspace

ws = workspace()
version = services.data_version(ws)  # read first: the cached views below are keyed on it
today = dt.datetime.now(dt.UTC).date()
day = st.sidebar.date_input(
    "Risks as of", value=today, help="Which risks had materialised at an earlier day."
)
as_of = None if day == today else dt.datetime.combine(day, dt.time.max, tzinfo=dt.UTC)

st.title(":material/warning: Risks")
st.caption(
    "The seed's risk matrix, each risk checked against what the store recorded: a risk is **materialised** "
    "when the evidence below shows it happened. Text, owners and playbooks come from `data/risks.toml` "
    "(or the workspace's own `risks.toml`)."
)
allowed, why = viewer_note()

try:
    register = cached(version, services.risks, ws, as_of, samples=True)
    checklists = cached(version, services.playbooks, ws)  # a tick is an event: a new version
    chances = cached(version, services.optimisations, ws, samples=True)
except SwitchyardError as exc:  # a malformed risks.toml: one red line naming file and field
    st.error(str(exc), icon=":material/error:")
    st.stop()

LEVEL_COLOUR = {"high": "red", "medium": "orange", "low": "blue"}
SHOWN = 12


def plain(text: str) -> str:
    """Measured text shown as markdown: a '$' in a message must not start a formula."""
    return text.replace("$", "\\$")


titles = {c.id: c.title for c in checklists}
hit = [r for r in register if r.materialised]

# ---- the matrix
cols = st.columns(3)
cols[0].metric(
    "Materialised", f"{len(hit)} of {len(register)}", help="Risks whose evidence shows it happened."
)
cols[1].metric("High risks materialised", sum(r.level == "high" for r in hit))
cols[2].metric("Systems concerned", len({s for r in hit for s in r.systems}))

for level in ("high", "medium", "low"):
    risks_here = [r for r in register if r.level == level]
    if not risks_here:
        continue
    colour = LEVEL_COLOUR[level]
    st.subheader(f":{colour}[{level.capitalize()}]")
    for risk in risks_here:
        with st.container(border=True):
            state = (
                ":red-badge[:material/error: materialised]"
                if risk.materialised
                else (":green-badge[not materialised]" if risk.measured else ":gray-badge[not measured]")
            )
            st.markdown(f":{colour}-badge[{level}] **{risk.description}** {state}")
            left, right = st.columns([2, 3])
            with left:
                st.markdown(f"**Owner:** {risk.owner}  \n**Mitigation:** {risk.mitigation}")
                if risk.playbook:
                    st.caption(f"Playbook: {titles.get(risk.playbook, risk.playbook)} (below)")
            with right:
                st.markdown("\n".join(f"- {plain(line)}" for line in risk.evidence))
                if risk.old_system:  # the old code's own defects: on the record, not the migration's risk
                    st.caption("In the old systems: " + " ".join(plain(line) for line in risk.old_system))
                if len(risk.systems) > SHOWN:
                    st.caption(f"Systems ({len(risk.systems)}): " + ", ".join(risk.systems[:SHOWN]) + ", …")
                    with st.expander(f"All {len(risk.systems)} systems"):
                        st.write(", ".join(risk.systems))
                elif risk.systems:
                    st.caption("Systems: " + ", ".join(risk.systems))

# ---- playbooks and cleanup, ticked as events
st.divider()
st.subheader("Contingency playbooks")
st.caption(
    "Tick each step as it is done. Every tick and untick is recorded in the audit log with your name "
    "and the note below."
)
st.text_input(
    "Note for the audit log",
    key="risks_reason",
    max_chars=500,
    placeholder="e.g. incident #42: stopped at 10:05",
    help="Recorded with the next tick; an untick needs one.",
    disabled=not allowed,
)
flash = st.session_state.pop("risks_flash", None)
if flash:
    (st.success if flash[0] == "ok" else st.error)(flash[1])


def _tick(checklist_id: str, step_id: str, key: str) -> None:
    """on_change of one checkbox: the one service call; the page redraws the state from the log."""
    done = bool(st.session_state[key])
    try:
        step = services.tick_playbook(
            ws, checklist_id, step_id, done, actor=actor(), reason=st.session_state.get("risks_reason", "")
        )
    except SwitchyardError as exc:
        st.session_state["risks_flash"] = ("error", str(exc))
        return
    st.session_state["risks_reason"] = ""
    st.session_state["risks_flash"] = ("ok", f"{'Ticked' if step.done else 'Unticked'}: {step.text}")


def draw_checklist(checklist: services.ChecklistView, steps: list[services.StepView]) -> None:
    for step in steps:
        key = f"tick_{checklist.id}_{step.id}"
        st.session_state[key] = step.done  # the audit log is the truth, not the last click
        st.checkbox(
            step.text,
            key=key,
            on_change=_tick,
            args=(checklist.id, step.id, key),
            disabled=not allowed,
            help=why or None,
        )
        if step.ts is not None:
            note = f": {step.reason}" if step.reason else ""
            verb = "done" if step.done else "unticked"
            st.caption(f"{verb} by {step.actor}, {step.ts:%d %b %H:%M}{note}")


books = [c for c in checklists if c.kind == "playbook"]
for column, book in zip(st.columns(max(len(books), 1)), books, strict=False):
    with column.container(border=True):
        st.markdown(f"**{book.title}**")
        raised = [r.description for r in register if r.playbook == book.id and r.materialised]
        st.caption(
            f"{book.when} · {book.done_count}/{len(book.steps)} done"
            + (f" · :red[materialised: {', '.join(raised)}]" if raised else "")
        )
        draw_checklist(book, book.steps)

for cleanup in (c for c in checklists if c.kind == "cleanup"):
    st.subheader(cleanup.title)
    st.caption(f"{cleanup.when} · {cleanup.done_count}/{len(cleanup.steps)} done")
    groups = list(dict.fromkeys(s.group or "" for s in cleanup.steps))
    for column, group in zip(st.columns(len(groups)), groups, strict=True):
        with column.container(border=True):
            if group:
                st.markdown(f"**{group.capitalize()}**")
            draw_checklist(cleanup, [s for s in cleanup.steps if (s.group or "") == group])

# ---- optimisation opportunities
st.divider()
st.subheader("Optimisation opportunities")
st.caption(
    "The seed's four areas, each with the figures measured on the systems that ran in parallel or rolled "
    "back: samples of the new version, the effective recipe config of its v2 blueprint, its newest verdict."
)
for row in range(0, len(chances), 2):
    for column, chance in zip(st.columns(2), chances[row : row + 2], strict=False):
        with column.container(border=True):
            st.markdown(f"**{chance.area}**: {chance.action}")
            st.caption(f"Impact: {chance.impact}")
            if chance.note:
                st.markdown(f"_{chance.note}_")
            if chance.findings:
                st.markdown(
                    "\n".join(
                        f"- **{f.system}**: {plain(f.measured)}. Suggests: {plain(f.suggests)}."
                        for f in chance.findings
                    )
                )
