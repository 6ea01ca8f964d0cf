"""The gate's checks that run the system: hosted code imports, the smoke test, and v1/v2 equivalence.

Running a system runs the team's own code (v1's modules, v2's hosted
components), so it happens in sandboxed children (:func:`engine.sandbox.run_isolated`),
each side on its own scratch copy of its folder, never in the engine's
process: a module that exits, hangs or eats memory fails a check with that
reason, and files the code writes land in the copy.

**Equivalence.** v1 (legacy runtime) and v2 (port runtime) are each started
fresh and sent the same sequence of requests: first the requests the
parallel run itself sends, in its order (:func:`engine.parallel.workload.request_mix`),
then requests built from each endpoint's declared shape with varied values
(:mod:`engine.validate.requests`: empty and non-ASCII strings, negative and
huge ints, floats, bools, lists). A stateful system is therefore compared on
the same history from the same start. Each answer is what the HTTP service
would send (status and JSON body, :func:`http_answer`), and two answers are
the same when the gateway would call them the same in a parallel run
(:func:`engine.deploy.gateway.digest`: status and canonical JSON). Any
difference fails the endpoint's ``equivalence`` check, with the requests and
both answers as its evidence.

**Recorded requests.** Then, from another fresh start on both sides, the
requests real clients sent through the gateway in the system's earlier runs
(:mod:`engine.store.recorded_requests`: a uniform sample of the distinct
bodies per endpoint), in the order they first arrived, leaving out those
the generated ones already cover. They carry what no declared shape can
invent (a customer id, a value one client sends), so a difference only
they show is the gate's most valuable finding; the check says how many of
each kind were sent and marks each recorded request's run in its evidence.

**Smoke.** The deploy's own smoke requests (three per endpoint) go through a
fresh v2 end to end, so a system that passes the gate does not then fail its
deploy on the same requests.

The children stream each answer and check as they go (:func:`emit`): if one
dies, what came before is kept and the rest says how and where it died.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import anyio._backends._asyncio  # noqa: F401 - loaded once by the sandbox worker, not in every child

from engine.judge.policy import SandboxPolicy
from engine.models.blueprint_v1 import V1Blueprint
from engine.models.blueprint_v2 import V2Blueprint
from engine.models.validation import Check
from engine.parallel.workload import request_mix
from engine.runtime.legacy import LegacySystem, RpcError
from engine.runtime.port_system import PortCallError, PortSystem
from engine.runtime.recipes import Hosted
from engine.sandbox import emit, run_isolated
from engine.store.recorded_requests import RecordedRequest, ReplaySet, canonical, replay_set
from engine.validate.requests import interleaved, varied_messages
from engine.validate.v1 import scratch_copy

SMOKE_VARIANTS = 3
"""Smoke requests per endpoint: as many as the deploy's smoke test sends."""
WORKLOAD_VARIANTS = 20
"""The parallel run's own first requests per endpoint (its whole request mix)."""
EVIDENCE_PER_CHECK = 3
BODY_LIMIT = 2000
"""Differences kept per endpoint, and characters kept of each answer (as the gateway keeps mismatches)."""

Request = tuple[str, dict[str, Any]]


def smoke_requests(endpoints: dict[str, dict[str, str]]) -> list[Request]:
    """What the deploy's smoke test sends, as (endpoint, message) pairs; empty without endpoints."""
    if not endpoints:
        return []
    return [(ep, json.loads(body)) for ep, body in request_mix(endpoints, variants=SMOKE_VARIANTS)]


def equivalence_requests(endpoints: dict[str, dict[str, str]]) -> list[Request]:
    """What both versions get first: the parallel run's own requests in its order, then varied ones per shape.

    Requests recorded in earlier runs come after, from a fresh start
    (:func:`live_checks`'s ``recorded``).
    """
    if not endpoints:
        return []
    workload = [(ep, json.loads(body)) for ep, body in request_mix(endpoints, variants=WORKLOAD_VARIANTS)]
    varied = interleaved({ep: varied_messages(shape) for ep, shape in endpoints.items()})
    return [*workload, *varied]


@contextmanager
def copy_of(folder: Path | None) -> Iterator[Path | None]:
    """A throw-away copy of ``folder`` the code may write in (the original is never touched)."""
    if folder is None:
        yield None
        return
    with scratch_copy(folder) as copy:
        yield copy


class SideRun:
    """What one side's child reported: its checks, its answers in order, and how it ended."""

    def __init__(self, emitted: list[Any], ok: bool, failure: str | None):
        records = [r for r in emitted if isinstance(r, dict)]
        self.checks = [Check.model_validate(r["check"]) for r in records if "check" in r]
        self.answers = [r["answer"] for r in records if "answer" in r]
        self.ok, self.failure = ok, failure
        self.step: dict[str, Any] = next((r for r in reversed(records) if "step" in r), {})

    def died(self) -> str:
        """``"exited with status 7 while sending front.hello {...}"``."""
        return f"{self.failure or 'ended early'} while {self.step.get('step', 'starting the system')}"


def run_side(
    side: str,
    folder: Path | None,
    blueprint: dict[str, Any],
    payload: dict[str, Any],
    limits: SandboxPolicy,
    starts: int = 1,
) -> SideRun:
    """Run one side (``v1`` or ``v2``) in a sandbox, each of its ``starts`` on a scratch copy of ``folder``.

    v2 starts twice (the smoke requests, then the equivalence sequence): each start gets a copy of its
    own, as its working folder, so what the smoke wrote there (a visit counter in ``visits.json``) is
    not there when the sequence v1 answers from a fresh start begins.
    """
    with ExitStack() as stack:
        copies = [stack.enter_context(copy_of(folder)) for _ in range(starts)]
        dirs = [str(c) for c in copies if c is not None]
        result = run_isolated(
            f"engine.validate.live:run_{side}",
            {"dir": dirs[0] if dirs else None, "dirs": dirs, "blueprint": blueprint, **payload},
            timeout_s=limits.timeout_s,
            memory_mb=limits.memory_mb,
            writable=[Path(d) for d in dirs],
            cwd=copies[0],
        )
    return SideRun(result.emitted, result.ok, result.failure)


def recorded_for(blueprint: V2Blueprint, samples_dir: Path, per_endpoint: int) -> ReplaySet:
    """The system's recorded requests the gate will replay: to endpoints v2 serves, not already generated."""
    endpoints = PortSystem(blueprint).endpoints()
    skip = [canonical(ep, message) for ep, message in equivalence_requests(endpoints)]
    return replay_set(samples_dir, blueprint.system.name, per_endpoint, endpoints=endpoints, skip=skip)


def replayable(recorded: Sequence[RecordedRequest], generated: list[Request]) -> list[RecordedRequest]:
    """The recorded requests the generated ones do not already send (the same endpoint and JSON)."""
    sent = {canonical(ep, message) for ep, message in generated}
    return [r for r in recorded if canonical(r.endpoint, r.message) not in sent]


@dataclass
class Replayed:
    """Recorded requests and how each side answered them, from its own fresh start."""

    requests: list[RecordedRequest]
    old: SideRun
    new: SideRun


def live_checks(
    blueprint: V2Blueprint,
    v2_dir: Path | None,
    v1: tuple[V1Blueprint, Path] | None = None,
    limits: SandboxPolicy | None = None,
    recorded: Sequence[RecordedRequest] = (),
) -> list[Check]:
    """Checks that run the system: ``import`` per hosted component, ``smoke``/``equivalence`` per endpoint.

    ``v1`` (its blueprint and folder) is what v2 must answer like; without it
    there is no equivalence check. ``limits``: the policy's ``[sandbox]`` time
    and memory for each side's run. ``recorded``: requests real clients sent
    in earlier runs, replayed to both from a fresh start after the generated
    ones (those to endpoints v2 does not serve are left out).
    """
    limits = limits or SandboxPolicy()
    system = PortSystem(blueprint)  # reads the ports only; nothing is imported here
    entry, endpoints = system.entry, system.endpoints()
    if not endpoints:
        return [
            _failed("smoke", entry, f"the entry component '{entry}' has no endpoints to send requests to")
        ]
    requests = equivalence_requests(endpoints) if v1 is not None else []
    replay = [r for r in replayable(recorded, requests) if r.endpoint in endpoints] if v1 is not None else []
    v2_document = blueprint.to_document()
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="gate-side") as pool:  # a core each
        v2_side = pool.submit(
            run_side,
            "v2",
            v2_dir,
            v2_document,
            {"requests": requests, "smoke": smoke_requests(endpoints)},
            limits,
            2,
        )
        v1_side = (
            pool.submit(run_side, "v1", v1[1], v1[0].model_dump(mode="json"), {"requests": requests}, limits)
            if v1 is not None
            else None
        )
        sides = []
        if replay and v1 is not None:  # each side started afresh again, on a new scratch copy
            recorded_requests = [[r.endpoint, r.message] for r in replay]
            sides = [
                pool.submit(run_side, side, folder, document, {"requests": recorded_requests}, limits)
                for side, folder, document in (
                    ("v1", v1[1], v1[0].model_dump(mode="json")),
                    ("v2", v2_dir, v2_document),
                )
            ]
        new, old = v2_side.result(), v1_side.result() if v1_side is not None else None
        replayed = Replayed(replay, sides[0].result(), sides[1].result()) if sides else None
    checks = list(new.checks)
    if not new.ok:  # a request it died on during the equivalence run is reported by its endpoint below
        died_in = new.step.get("for_check", "import")
        if died_in in ("import", "smoke"):
            component = new.step.get("component", entry)
            checks.append(_failed(died_in, component, f"the code {new.died()}", new.step.get("target")))
        if died_in == "import":
            checks.append(_failed("smoke", entry, f"not run: the code {new.died()}"))
    if old is not None:
        checks += equivalence_checks(entry, requests, old, new, replayed)
    return checks


def _failed(name: str, component: str, message: str, target: str | None = None) -> Check:
    return Check(
        name=name, component=component, target=target or f"{component}.*", passed=False, message=message
    )


def equivalence_checks(
    entry: str, requests: list[Request], old: SideRun, new: SideRun, replayed: Replayed | None = None
) -> list[Check]:
    """One ``equivalence`` check per endpoint: every request of it answered alike by v1 and v2.

    ``requests`` (generated) were answered by ``old`` and ``new``; ``replayed``
    (recorded from real traffic) by their own fresh runs. A check counts both
    kinds (``Check.sent``) and shows differing recorded requests first.
    """
    from engine.deploy.gateway import digest  # the parallel run's own comparison (parent side only)

    sequences: list[tuple[str, list[Request], SideRun, SideRun, list[dict[str, Any]]]] = [
        ("generated", requests, old, new, [{"source": "generated"}] * len(requests))
    ]
    if replayed is not None:
        sequences.append(
            (
                "recorded",
                [(r.endpoint, r.message) for r in replayed.requests],
                replayed.old,
                replayed.new,
                [{"source": "recorded", **r.origin()} for r in replayed.requests],
            )
        )
    checks = []
    for endpoint in sorted({ep for _, sent, *_ in sequences for ep, _ in sent}):
        target = f"{entry}.{endpoint}"
        counts = {kind: sum(ep == endpoint for ep, _ in sent) for kind, sent, *_ in sequences}
        differing: list[dict[str, Any]] = []
        unanswered: list[tuple[SideRun, SideRun, int]] = []
        failed = 0
        for _, sent, a_run, b_run, origins in sequences:
            for i, (ep, message) in enumerate(sent):
                if ep != endpoint:
                    continue
                if i >= len(a_run.answers) or i >= len(b_run.answers):
                    unanswered.append((a_run, b_run, i))
                    continue
                a, b = a_run.answers[i], b_run.answers[i]
                failed += a["status"] != 200
                if digest(a["status"], a["body"].encode()) != digest(b["status"], b["body"].encode()):
                    differing.append(
                        {
                            "position": i,
                            "endpoint": endpoint,
                            "request": message,
                            "v1": a,
                            "v2": b,
                            **origins[i],
                        }
                    )
        differing.sort(key=lambda d: d["source"] != "recorded")  # what real traffic showed comes first
        total = sum(counts.values())
        of_total = f"{total} requests" + (f" ({_kinds(counts)})" if counts.get("recorded") else "")
        if unanswered:
            a_run, b_run, first = unanswered[0]
            who = " and ".join(
                f"{side} {run.died()}"
                for side, run in (("v1", a_run), ("v2", b_run))
                if len(run.answers) <= first
            )
            message = f"{len(unanswered)} of {of_total} could not be compared: {who}"
        elif differing:
            first_diff = differing[0]
            from_runs = sum(d["source"] == "recorded" for d in differing)
            message = (
                f"{len(differing)} of {of_total} answered differently"
                + (f", {from_runs} of them recorded" if from_runs else "")
                + f"; the first, {json.dumps(first_diff['request'], ensure_ascii=False)[:200]}"
                + (f" (recorded in run {first_diff['run_id']})" if first_diff["source"] == "recorded" else "")
                + f": v1 {_brief(first_diff['v1'])}, v2 {_brief(first_diff['v2'])}"
            )
        else:
            message = f"{of_total} answered alike by v1 and v2" + (
                f" ({failed} of them failures, alike)" if failed else ""
            )
        evidence = [{**d, "v1": _shown(d["v1"]), "v2": _shown(d["v2"])} for d in _evidence_of(differing)]
        checks.append(
            Check(
                name="equivalence",
                component=entry,
                target=target,
                passed=not differing and not unanswered,
                message=message,
                evidence=evidence or None,
                sent=counts,
            )
        )
    return checks


def _kinds(counts: dict[str, int]) -> str:
    """``"28 generated, 3 recorded from real traffic"``."""
    return f"{counts.get('generated', 0)} generated, {counts.get('recorded', 0)} recorded from real traffic"


def _evidence_of(differing: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Up to :data:`EVIDENCE_PER_CHECK` differing requests of each kind (recorded ones first)."""
    out, shown = [], {"recorded": 0, "generated": 0}
    for d in differing:
        if shown[d["source"]] < EVIDENCE_PER_CHECK:
            shown[d["source"]] += 1
            out.append(d)
    return out


def _shown(answer: dict[str, Any]) -> dict[str, Any]:
    body = answer["body"]
    try:
        parsed: Any = json.loads(body) if len(body) <= BODY_LIMIT else body[:BODY_LIMIT] + "..."
    except ValueError:
        parsed = body[:BODY_LIMIT]
    return {"status": answer["status"], "body": parsed}


def _brief(answer: dict[str, Any]) -> str:
    return f"{answer['status']} {answer['body'][:160]}"


# --------------------------------------------------------------------------- in the sandbox


def http_answer(result: Any, error: Exception | None = None) -> dict[str, Any]:
    """What :mod:`engine.runtime.serve` would send: 200 + JSON, 502 + ``{"error": ...}``, or 500."""
    if isinstance(error, RpcError | PortCallError):
        payload: Any = {"error": {"kind": error.kind, "target": error.target, "detail": error.detail}}
        status = 502
    elif error is not None:
        return {"status": 500, "body": "Internal Server Error"}
    else:
        payload, status = result, 200
    try:  # as Starlette's JSONResponse renders it; what it cannot render is a 500
        body = json.dumps(payload, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError):
        return {"status": 500, "body": "Internal Server Error"}
    return {"status": status, "body": body}


def _step(text: str, check: str, component: str, target: str) -> dict[str, Any]:
    return {"step": text, "for_check": check, "component": component, "target": target}


def _requests(payload: dict[str, Any], key: str) -> list[Request]:
    return [(str(ep), dict(msg)) for ep, msg in payload.get(key, [])]


def run_v1(payload: dict[str, Any]) -> dict[str, Any]:
    """Sandbox target: load v1 fresh on the legacy runtime and answer the requests in order."""
    blueprint = V1Blueprint.model_validate(payload["blueprint"])
    emit({"step": "loading v1 (importing its modules)"})
    system = LegacySystem.load(Path(payload["dir"]), blueprint)
    for i, (endpoint, message) in enumerate(_requests(payload, "requests")):
        emit({"step": f"sending {system.entry}.{endpoint} {json.dumps(message)[:200]} to v1"})
        try:
            answer = http_answer(system.handle(endpoint, message))
        except Exception as exc:  # noqa: BLE001 - a failure is an answer too
            answer = http_answer(None, exc)
        emit({"answer": answer, "position": i})
    return {"answered": True}


def run_v2(payload: dict[str, Any]) -> dict[str, Any]:
    """Sandbox target: start v2 (hosted code imports) for the smoke test, then afresh for the requests.

    Afresh means a new system on its own copy of the folder, also its working folder (``dirs``: one
    copy per start), as v1 answers the same sequence from its own fresh copy.
    """
    blueprint = V2Blueprint.model_validate(payload["blueprint"])
    dirs = [Path(d) for d in payload.get("dirs") or ([payload["dir"]] if payload.get("dir") else [])]

    def fresh(start: int) -> PortSystem:
        code_dir = None
        if dirs:
            folder = dirs[min(start, len(dirs) - 1)]
            os.chdir(folder)  # relative paths in the code land in this start's copy
            code_dir = folder / "components"

        def starting(name: str) -> None:
            if isinstance(system.recipes[name], Hosted):
                module = system.recipes[name].config.module  # type: ignore[attr-defined]
                emit(_step(f"importing components/{module}", "import", name, f"components/{module}"))

        system = PortSystem(blueprint, code_dir, before_start=starting)
        return system

    start = 0
    if "smoke" in payload:  # the gate's first run; a replay of recorded requests starts straight away
        anyio.run(_smoke, fresh(start), _requests(payload, "smoke"))
        start = 1
    anyio.run(_answer_v2, fresh(start), _requests(payload, "requests"))
    return {"answered": True}


async def _answer_v2(system: PortSystem, requests: list[Request]) -> None:
    async with system.running():
        for i, (endpoint, message) in enumerate(requests):
            target = f"{system.entry}.{endpoint}"
            emit(
                _step(
                    f"sending {target} {json.dumps(message)[:200]} to v2", "equivalence", system.entry, target
                )
            )
            try:
                answer = http_answer(await system.handle(endpoint, message))
            except Exception as exc:  # noqa: BLE001 - a failure is an answer too
                answer = http_answer(None, exc)
            emit({"answer": answer, "position": i})


async def _smoke(system: PortSystem, smoke: list[Request]) -> None:
    """The first start: an ``import`` check per hosted component, then the deploy's smoke requests."""
    async with system.running():
        errors = system.load_errors()
        for name, recipe in system.recipes.items():
            if isinstance(recipe, Hosted):
                target = f"components/{recipe.config.module}"  # type: ignore[attr-defined]
                failed = errors.get(name)
                message = f"does not import: {failed} (the v1 code's own defect)" if failed else "imports"
                emit({"check": _check("import", name, target, failed is None, message)})
        entry = system.entry
        by_endpoint: dict[str, list[dict[str, Any]]] = {}
        for endpoint, message in smoke:
            by_endpoint.setdefault(endpoint, []).append(message)
        for endpoint, messages in sorted(by_endpoint.items()):
            target = f"{entry}.{endpoint}"
            failure, fields = None, set()
            for message in messages:
                emit(_step(f"sending {target} {json.dumps(message)[:200]} (smoke)", "smoke", entry, target))
                try:
                    fields |= set(await system.handle(endpoint, message))
                except PortCallError as exc:
                    failure = f"{json.dumps(message)[:200]} -> {exc}"
                    break
            text = failure or f"answered {len(messages)} requests with fields {sorted(fields)}"
            emit({"check": _check("smoke", entry, target, failure is None, text)})


def _check(name: str, component: str, target: str, passed: bool, message: str) -> dict[str, Any]:
    return Check(name=name, component=component, target=target, passed=passed, message=message).model_dump()
