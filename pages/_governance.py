"""The Go / No-Go page's governance section: hold, four-eyes approval, and re-judging a run.

Kept out of go_no_go.py so that page stays a read of the evidence plus its two
big buttons; each control here still calls exactly one service function.
"""

from __future__ import annotations

import json
from typing import Any

import polars as pl
import streamlit as st

from engine import services
from engine.workspace import Workspace
from pages._shared import VERDICT_COLOURS, act, cached, clear_next, outcome


def hold_banners(ws: Workspace) -> None:
    """Every held system, its owner and why: drawn on every page (app.py), so nobody misses a hold."""
    for h in services.holds(ws).iter_rows(named=True):
        st.warning(
            f"**HOLD** · {h['system']} (held in state {h['state']}) · owner **{h['owner']}** · "
            f"since {h['since']:%Y-%m-%d %H:%M} UTC · {h['reason']}",
            icon=":material/pause_circle:",
        )


def governance_section(
    ws: Workspace,
    name: str,
    who: str,
    buttons: dict[str, Any],
    verdict: dict | None,
    version: tuple | None = None,
) -> None:
    """``version``: the page's ``services.data_version``, read before it drew (else read here)."""
    st.divider()
    st.subheader("Hold, approval and re-judge")
    version = version or services.data_version(ws)  # holds, approvals and re-judgements are cached on it
    policy = services.policy()
    warm = services.warm_seconds_left(ws, name)
    if warm is not None:
        st.info(
            f"The old version is kept warm for {warm / 60:.1f} more minutes: Roll back is now a traffic "
            "switch only (seconds, no restore).",
            icon=":material/timer:",
        )
    held = cached(version, services.holds, ws).filter(pl.col("system") == name)
    left, right = st.columns(2)
    with left, st.form("hold"):
        if held.height:
            h = held.row(0, named=True)
            st.markdown(
                f"**On hold** since {h['since']:%Y-%m-%d %H:%M} UTC, owner {h['owner']}: {h['reason']}"
            )
            reason = st.text_input("Why the hold can end", key="release-reason")
            sure = st.checkbox("Release the hold", key="release-sure")
            if st.form_submit_button("Release hold", **buttons):
                if not (sure and reason.strip()):
                    st.error("Give a reason and tick the confirmation to release.")
                else:
                    act(
                        f"hold:{name}",
                        lambda: services.release(ws, name, actor=who, reason=reason),
                        "Hold released: the system moves again.",
                        rerun=True,
                        then=lambda _: clear_next("release-reason", "release-sure"),
                    )
        else:
            st.markdown(
                "**Hold**: freeze this system as it is (traffic stays, nothing promotes or rolls back)"
            )
            reason = st.text_input("Reason", key="hold-reason")
            owner = st.text_input("Owner", value=who, key="hold-owner")
            sure = st.checkbox("Put it on hold", key="hold-sure")
            if st.form_submit_button("Hold", **buttons):
                if not (sure and reason.strip()):
                    st.error("Give a reason and tick the confirmation to hold.")
                else:
                    act(
                        f"hold:{name}",
                        lambda: services.hold(ws, name, actor=who, reason=reason, owner=owner),
                        "On hold: nothing promotes, rolls back or runs until it is released.",
                        rerun=True,
                        then=lambda _: clear_next("hold-reason", "hold-owner", "hold-sure"),
                    )
        outcome(f"hold:{name}")
    with right, st.form("approve"):
        need = (
            "required by the policy" if policy.governance.approval_required else "not required by the policy"
        )
        st.markdown(f"**Approval** of the newest verdict by a second operator ({need})")
        approvals = cached(version, services.approvals, ws, name)
        if approvals.height:
            st.caption("Approved by " + ", ".join(approvals["actor"].to_list()))
        else:
            st.caption("No approval of the newest verdict yet.")
        reason = st.text_input("Reason", key="approve-reason")
        go = verdict is not None and verdict["verdict"] == "GO"
        if st.form_submit_button(
            "Approve promotion", **{**buttons, "disabled": buttons["disabled"] or not go}
        ):
            if not reason.strip():
                st.error("Give a reason to approve.")
            else:
                act(
                    f"approve:{name}",
                    lambda: services.approve(ws, name, actor=who, reason=reason),
                    "Approved: a second operator may now promote.",
                    rerun=True,
                    then=lambda _: clear_next("approve-reason"),
                )
        outcome(f"approve:{name}")
    if verdict is not None:
        _rejudge(ws, name, who, buttons, verdict, version)


def _rejudge(
    ws: Workspace, name: str, who: str, buttons: dict[str, Any], verdict: dict, version: tuple
) -> None:
    original = verdict["result"]["policy"]
    # keyed: its open state is kept across reruns, so a rerun (a hold released above) never closes it;
    # the keyed container (CSS class st-key-rejudge) is how a browser test finds this one expander
    with (
        st.container(key="rejudge"),
        st.expander(
            "Re-judge this run under another policy (no traffic is sent)",
            key="rejudge-open",
            on_change="rerun",
        ),
    ):
        with st.form("rejudge"):
            cols = st.columns(4)  # in percent, as the verdict reads; the policy keeps fractions
            latency = cols[0].number_input(
                "Max latency increase (%)",
                -100.0,
                1000.0,
                round(float(original["rule"]["max_latency_increase"]) * 100, 4),
                1.0,
                help="The new version's latency may be this much above the old one's.",
            )
            throughput = cols[1].number_input(
                "Min throughput change (%)",
                -100.0,
                1000.0,
                round(float(original["rule"]["min_throughput_change"]) * 100, 4),
                1.0,
                help="The new version's throughput may fall this far below the old one's (negative).",
            )
            confidence = cols[2].number_input(
                "Confidence level (%)",
                50.0,
                99.9,
                round(float(original["statistics"]["confidence_level"]) * 100, 4),
                1.0,
            )
            minimum = cols[3].number_input(
                "Min samples per version",
                1,
                10_000_000,
                int(original["statistics"]["min_samples_per_version"]),
            )
            if st.form_submit_button("Re-judge", **buttons):
                overrides = {
                    "rule.max_latency_increase": latency / 100,
                    "rule.min_throughput_change": throughput / 100,
                    "statistics.confidence_level": confidence / 100,
                    "statistics.min_samples_per_version": minimum,
                }
                result = act(
                    f"rejudge:{name}",
                    lambda: services.rejudge(
                        ws, name, actor=who, run_id=verdict["run_id"], overrides=overrides
                    ),
                    lambda r: (
                        f"Re-judgement recorded: {r.original.verdict} -> {r.rejudged.verdict} (a what-if)."
                    ),
                )
                if result is not None:
                    st.session_state[f"rejudge-{name}"] = result
                    version = services.data_version(ws)  # the re-judgement just recorded is counted below
    # outside the expander: a rerun may draw it closed again, and the answer must stay in view
    result = st.session_state.get(f"rejudge-{name}")
    if result is not None and result.run_id == verdict["run_id"]:
        before, after = st.columns(2)
        for column, title, v in (
            (before, "Original", result.original),
            (after, "Re-judged", result.rejudged),
        ):
            colour = VERDICT_COLOURS.get(v.verdict, "gray")
            column.markdown(f"**{title}: :{colour}[{v.verdict}]**")
            column.markdown("\n".join(f"- {r}" for r in v.reasons) or "- every criterion passed")
        changes = [{"kind": "policy", **c.model_dump()} for c in result.policy_changes]
        changes += [{"kind": "outcome", **c.model_dump()} for c in result.outcome_changes]
        if changes:
            st.dataframe(
                pl.DataFrame(
                    [
                        {k: json.dumps(v) if k in ("before", "after") else v for k, v in c.items()}
                        for c in changes
                    ]
                ),
                hide_index=True,
                width="stretch",
            )
        else:
            st.caption("Nothing changed.")
    earlier = cached(version, services.rejudgement_history, ws, name, verdict["run_id"])
    if earlier.height:  # outside the expander: a re-judgement from the CLI or another session shows too
        st.markdown(
            f"**Re-judgements of run {verdict['run_id']}** (what-ifs: Promote acts on the verdict above)"
        )
        st.dataframe(earlier.drop("run_id"), hide_index=True, width="stretch")
