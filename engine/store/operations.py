"""Long workflows (deploy, parallel run, convert, promote, roll back, calibrate, capacity) as operations.

An ``operations`` row says a long workflow is under way on a system, by which
process: a second one that must not run beside it is refused, and a process
that dies half-way is found by the next command (``engine.migration.recover``),
which hands the row to the workflow's own settle step. Every workflow runs
inside :func:`operation`, the one place that claims the row and ends it:

* claiming is one transaction: with ``seen_version`` it is
  :func:`engine.store.systems.claim` (a stale click or a clash with
  ``blocked_by`` is refused, StateConflictError, and nothing happens);
* the workflow records its progress (:meth:`Operation.progress`) and, when it
  knows it, its outcome (:meth:`Operation.end`, in its own transaction or one
  the workflow opens to join other writes);
* leaving the block ends the row whatever happened: ``completed`` when the
  workflow named no outcome, ``failed`` with the error (beside the last
  recorded progress) when it raised. Only a dead process leaves it running.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from engine.store import deployments
from engine.store import systems as systems_store
from engine.store.db import connect, transaction


@dataclass
class Operation:
    """A claimed operation: its id, and what the workflow recorded of it so far."""

    db_path: Path
    id: int
    system: str
    detail: dict[str, Any] = field(default_factory=dict)
    status: str | None = None
    """The outcome :meth:`end` was last given (None before)."""

    def progress(self, detail: dict[str, Any], *, system: str | None = None) -> None:
        """Record how far the workflow got (what recovery reads if the process dies here)."""
        with connect(self.db_path) as con:
            self.record_progress(con, detail, system=system)
        self.detail = detail

    def record_progress(
        self, con: duckdb.DuckDBPyConnection, detail: dict[str, Any], *, system: str | None = None
    ) -> None:
        """:meth:`progress` in the caller's transaction, to commit with the writes of the same step.

        That transaction may still roll back: :attr:`detail` (what a failure is
        recorded beside) is the caller's to set once it committed.
        """
        self.system = system or self.system
        deployments.update_operation(con, self.id, system=self.system, detail=detail)

    def end(
        self,
        status: str,
        detail: dict[str, Any] | None = None,
        *,
        con: duckdb.DuckDBPyConnection | None = None,
    ) -> None:
        """Record the outcome (``detail`` replaces the progress when given); in ``con``'s transaction
        when given, so that it commits with the writes it belongs to."""
        if con is None:
            with connect(self.db_path) as own:
                deployments.end_operation(own, self.id, status, detail)
        else:
            deployments.end_operation(con, self.id, status, detail)
        self.status = status


@contextmanager
def operation(
    db_path: Path,
    system: str,
    kind: str,
    *,
    actor: str,
    detail: dict[str, Any] | None = None,
    seen_version: int | None = None,
    expected_version: int | None = None,
    blocked_by: tuple[str, ...] = (),
    joined: Callable[[duckdb.DuckDBPyConnection], Any] | None = None,
) -> Iterator[Operation]:
    """Claim operation ``kind`` on ``system``, run the block, and end the operation however it leaves.

    ``seen_version``: the system's version the workflow checked its
    preconditions against; given, the claim also refuses when the row moved
    on since, or while an operation of ``kind`` or of ``blocked_by`` runs on
    the system (:func:`engine.store.systems.claim`). ``joined(con)``: writes
    that commit in the claim's own transaction (the state change that says
    the workflow began), for a claim without ``seen_version``.
    """
    if joined is not None and seen_version is not None:
        raise ValueError("joined writes go with a plain claim (no seen_version)")
    with connect(db_path) as con:
        if seen_version is None:
            with transaction(con):
                op_id = deployments.start_operation(con, system, kind, actor, detail)
                if joined is not None:
                    joined(con)
        else:
            op_id = systems_store.claim(
                con,
                system,
                kind,
                actor=actor,
                seen_version=seen_version,
                expected_version=expected_version,
                blocked_by=blocked_by,
                detail=detail,
            )
    op = Operation(Path(db_path), op_id, system, dict(detail or {}))
    try:
        yield op
    except BaseException as exc:
        if _still_running(op):  # never leave the claim standing: it would refuse every later one
            op.end("failed", op.detail | {"error": str(exc)})
        raise
    if _still_running(op):
        op.end("completed")


def _still_running(op: Operation) -> bool:
    """Whether the store still has ``op`` running: the workflow named no outcome, or the transaction it
    named one in did not commit."""
    with connect(op.db_path) as con:
        row = con.execute("SELECT status FROM operations WHERE id = ?", [op.id]).fetchone()
    return row is not None and row[0] == "running"
