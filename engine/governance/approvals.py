"""Four-eyes promotion: policy can require a second operator's approval before a promote.

An approval is an ``approval:granted`` event naming the verdict it approves,
so a newer verdict (another run, another judgement) needs a new approval, and
the operator who promotes cannot be the one who approved. A promote refused
for want of an approval records ``approval:requested``, which is what the
webhooks announce as "approval needed".
"""

from __future__ import annotations

import duckdb
import polars as pl

from engine.errors import InputError, StateConflictError
from engine.store.db import query_frame
from engine.store.events import append_events

GRANTED, REQUESTED = "approval:granted", "approval:requested"


def approvals(con: duckdb.DuckDBPyConnection, system: str, verdict_id: int | None = None) -> pl.DataFrame:
    """ts, actor, reason, verdict_id: approvals of ``system`` (of one verdict if given), oldest first."""
    frame = query_frame(
        con,
        """
        SELECT ts, actor, reason, CAST(json_extract(after, '$.verdict_id') AS BIGINT) AS verdict_id
        FROM events WHERE system = ? AND action = ? ORDER BY ts, id
        """,
        [system, GRANTED],
    )
    return frame if verdict_id is None else frame.filter(pl.col("verdict_id") == verdict_id)


def grant(
    con: duckdb.DuckDBPyConnection, system: str, verdict: dict | None, *, actor: str, reason: str
) -> None:
    """Approve promoting ``system`` on its newest verdict, which must be GO."""
    if not reason.strip():
        raise InputError("--reason", "value", "why you approve (recorded with your name)", "''")
    if verdict is None or verdict["verdict"] != "GO":
        seen = verdict["verdict"] if verdict else "none"
        raise StateConflictError(f"{system}: the newest verdict is {seen}; only a GO can be approved")
    append_events(
        con,
        [
            {
                "actor": actor,
                "system": system,
                "action": GRANTED,
                "reason": reason.strip(),
                "before": {"verdict_id": verdict["id"], "verdict": verdict["verdict"]},
                "after": {"verdict_id": verdict["id"], "approved": True},
            }
        ],
    )


def require_approval(
    con: duckdb.DuckDBPyConnection, system: str, verdict: dict | None, promoter: str
) -> None:
    """Refuse the promote unless someone other than ``promoter`` approved the newest verdict.

    The refusal is recorded as a request, in its own transaction, so the
    approvers hear of it even though the promote did not happen.
    """
    if verdict is None:
        return  # promote itself refuses a system without a verdict, with its own message
    others = approvals(con, system, int(verdict["id"])).filter(pl.col("actor") != promoter)
    if others.height:
        return
    append_events(
        con,
        [
            {
                "actor": promoter,
                "system": system,
                "action": REQUESTED,
                "reason": f"{promoter} wants to promote on verdict {verdict['id']} ({verdict['verdict']})",
                "before": None,
                "after": {"verdict_id": verdict["id"]},
            }
        ],
    )
    raise StateConflictError(
        f"{system}: the policy needs a second operator's approval of verdict {verdict['id']} before "
        f"promotion, from someone other than {promoter}; the request is recorded"
    )
