"""Faults in the systems under test (issue 7 point 5): what the engine does when a version misbehaves.

The faults are injected from outside, the way they happen, on the real
processes: SIGSTOP for a hung version, SIGKILL for a crash, a SIGSTOP/SIGCONT
duty cycle for one that slows down, and a raw socket taking over a dead
green's port for one that answers garbage. Every test bounds the call it makes
(:func:`bounded`), so an engine that hangs on a fault fails the test instead of
hanging the suite, and each says which protection it checks; with that
protection removed, it fails.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import polars as pl
import pytest

from engine import services
from engine.deploy import supervisor
from engine.progress import Progress
from engine.store import connect
from engine.store import deployments as store
from engine.store.samples import read_run_samples
from engine.workspace import Workspace

NAME = "hello_world_api"
T = TypeVar("T")


# --------------------------------------------------------------------------- fault injection


def pid_on(ws: Workspace, port: int) -> int:
    """The pid the store records as serving ``port``."""
    with connect(ws.db_path) as con:
        procs = store.live_processes(con)
    return int(procs.filter(pl.col("port") == port)["pid"][0])


def resume(pid: int) -> None:
    """SIGCONT, whatever became of the process (cleanup after a SIGSTOP)."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGCONT)


def bounded(call: Callable[[], T], limit_s: float, unblock: Callable[[], None] = lambda: None) -> T:
    """``call()``, failing the test if it has not returned within ``limit_s``.

    ``unblock`` (e.g. SIGCONT to a stopped process) runs first, so an engine
    that hangs on the fault is let go and the suite moves on.
    """
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = call()
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            box["error"] = exc

    worker = threading.Thread(target=target, daemon=True)
    worker.start()
    worker.join(limit_s)
    if worker.is_alive():
        unblock()
        worker.join(60)
        pytest.fail(f"the engine did not finish within {limit_s:.0f} s of the fault")
    if "error" in box:
        raise box["error"]
    return box["value"]  # type: ignore[no-any-return]


def on_first_tick(action: Callable[[], None], seen: list[tuple[float, str]]) -> Progress:
    """A progress callback doing ``action`` at the first tick of traffic; records (time, label) as it goes."""
    start = time.monotonic()

    def progress(done: int, total: int, label: str) -> None:
        seen.append((time.monotonic() - start, label))
        if " sent " in label and not any(" sent " in s for _, s in seen[:-1]):
            action()

    return progress


def seconds_between(seen: list[tuple[float, str]], first: str, then: str) -> float:
    """Time from the progress label starting with ``first`` to the next one starting with ``then``."""
    t0 = next(t for t, label in seen if label.startswith(first))
    return next(t for t, label in seen if label.startswith(then) and t >= t0) - t0


class GarbageServer:
    """Listens on a port (taken over from a killed version) and answers every request with ``reply(line)``.

    ``reply`` gets the request line (b"POST /call/x HTTP/1.1") and returns raw
    bytes: anything from a correct HTTP answer to bytes that are not HTTP at all.
    """

    def __init__(self, port: int, reply: Callable[[bytes], bytes]):
        self.port, self.reply = port, reply
        self.connections = 0
        deadline = time.monotonic() + 5
        while True:  # the killed process's socket goes away a moment after SIGKILL returns
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(("127.0.0.1", port))
                break
            except OSError:
                sock.close()
                assert time.monotonic() < deadline, f"port {port} never came free"
                time.sleep(0.001)
        sock.listen(512)
        self.sock = sock
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return  # closed
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        self.connections += 1
        with conn, contextlib.suppress(OSError):
            conn.settimeout(2)
            request = conn.recv(65536)
            conn.sendall(self.reply(request.split(b"\r\n", 1)[0]))

    def close(self) -> None:
        self.sock.close()


def http_answer(body: bytes, status: str = "200 OK") -> bytes:
    return (
        f"HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n"
        "connection: close\r\n\r\n"
    ).encode() + body


class DutyCycle:
    """Slows a process down from outside: stopped ``off_s``, running ``on_s``, over and over."""

    def __init__(self, pid: int, on_s: float, off_s: float):
        self.pid, self.on_s, self.off_s = pid, on_s, off_s
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self.thread.start()

    def _run(self) -> None:
        while not self.done.is_set():
            try:
                os.kill(self.pid, signal.SIGSTOP)
                time.sleep(self.off_s)
                os.kill(self.pid, signal.SIGCONT)
            except ProcessLookupError:
                return
            self.done.wait(self.on_s)

    def stop(self) -> None:
        self.done.set()
        self.thread.join(5)
        resume(self.pid)


@pytest.fixture
def deployed(ready_ws: Callable[[str], Workspace]) -> Iterator[tuple[Workspace, Any]]:
    """hello_world_api deployed blue_green (blue answering through the gateway, green beside it)."""
    ws = ready_ws(NAME)
    out = services.deploy(ws, NAME, "blue_green", actor="lead", reason="fault drill")
    pids = {pid_on(ws, out.blue_port), pid_on(ws, out.green_port)}
    yield ws, out
    for pid in pids:  # whatever a test stopped runs again, so the fixture's teardown can end it
        resume(pid)


def parallel_run(ws: Workspace, progress: Progress, limit_s: float = 60, **unblock: Any) -> Any:
    return bounded(
        lambda: services.parallel_run(
            ws, NAME, actor="lead", duration_s=20, bucket_s=0.5, rps=100, progress=progress
        ),
        limit_s,
        **unblock,
    )


def assert_every_request_sampled(ws: Workspace, run: Any) -> pl.DataFrame:
    """One row per request per version, all under the run's count, none landing after it was counted."""
    time.sleep(1.5)  # the gateway writes what it buffered every second: a late sample would be on disk now
    supervisor.flush_samples(ws)
    samples = read_run_samples(ws, NAME, run.run_id, all_columns=True)
    assert samples.height == run.summary["samples"] == 2 * run.summary["sent"]
    return samples


def actions_by(ws: Workspace) -> list[tuple[str, str]]:
    events = services.list_events(ws, system=NAME, limit=500)
    return list(zip(events["actor"].to_list()[::-1], events["action"].to_list()[::-1], strict=True))


def assert_rolled_back_by_trigger(ws: Workspace, run: Any, trigger: str | tuple[str, ...]) -> None:
    """The run was stopped by ``trigger``, which rolled back on its own, verified, and said so."""
    names = (trigger,) if isinstance(trigger, str) else trigger
    assert run.status == "triggered", run.summary
    assert run.summary["fired"]["name"] in names, run.summary["fired"]
    assert run.rollback is not None and run.rollback.state == "rolled_back" and run.rollback.verified
    assert run.summary["lost"] == 0  # blue answered every request while green misbehaved
    seen = actions_by(ws)
    assert ("lead", "run:parallel:triggered") in seen
    assert seen[-1] == (f"trigger:{run.summary['fired']['name']}", "state:rolled_back")
    status = services.status(ws, NAME)
    assert status.state == "rolled_back" and status.route is not None
    assert status.route["active_slot"] == "blue" and not status.route["mirror"]
    assert status.route["record_run"] is None
    assert [p["role"] for p in status.processes] == ["blue"]


# --------------------------------------------------------------------------- green misbehaves mid-run


def test_a_hung_green_fires_a_trigger_is_stopped_at_once_and_every_sample_is_counted(deployed) -> None:
    """Protections: the health check's 1 s timeout and trigger, the gateway's bound on a slot
    (UPSTREAM_TIMEOUT_S), draining the gateway before the run is counted, SIGCONT with the SIGTERM."""
    ws, out = deployed
    green = pid_on(ws, out.green_port)
    seen: list[tuple[float, str]] = []
    run = parallel_run(
        ws,
        on_first_tick(lambda: os.kill(green, signal.SIGSTOP), seen),
        unblock=lambda: resume(green),
    )
    assert_rolled_back_by_trigger(ws, run, ("failed_health_checks", "error_rate"))
    # whichever trigger fired first: the health checks past their limit (3), or the errors after at
    # least one failed check (under load the error rate can win the race at the 3rd failed check)
    least = 4 if run.summary["fired"]["name"] == "failed_health_checks" else 1
    assert run.summary["health_failures"] >= least, run.summary
    samples = assert_every_request_sampled(ws, run)
    new = samples.filter(pl.col("version") == "new")
    failed = new.filter(~pl.col("ok"))
    assert failed.height > 0 and (failed["status"] == 0).all()  # the hang is in the samples, as failures
    assert failed["latency_ms"].max() < 5_000 + 1_000  # given up on after the gateway's bound, not later
    assert not supervisor.pid_alive(green)
    assert seconds_between(seen, "stopping green", "restoring blue") < 3  # not the 5 s SIGTERM grace


def test_a_green_crash_while_it_serves_users_is_answered_counted_and_rolled_back(ready_ws) -> None:
    """Direct strategy: green takes all traffic, then dies in the monitor window. Every request still
    gets an answer (the gateway's 502, counted as failed, none lost) and the trigger rolls back.
    Protection: the error-rate trigger during the monitor window, the gateway answering for a dead slot."""
    ws = ready_ws(NAME)
    seen: list[tuple[float, str]] = []
    crashed: list[int] = []

    def crash_green() -> None:
        with connect(ws.db_path) as con:
            green = store.live_slot(con, NAME, "green")
        assert green is not None
        os.kill(int(green["pid"]), signal.SIGKILL)
        crashed.append(int(green["pid"]))

    out = bounded(
        lambda: services.deploy(
            ws,
            NAME,
            "direct",
            actor="lead",
            reason="fault drill",
            monitor_s=20,
            progress=on_first_tick(crash_green, seen),
        ),
        60,
    )
    assert crashed and out.promotion is not None and not out.promotion.promoted
    monitor = out.promotion.steps[-1]
    assert monitor["stage"] == "monitor" and monitor["status"] == "triggered"
    assert monitor["fired"]["name"] in ("error_rate", "failed_health_checks")
    assert monitor["lost"] == 0 and monitor["failed"] > 0  # users got a 502 for each, none went unanswered
    rollback = out.promotion.rollback
    assert rollback is not None and rollback.state == "rolled_back" and rollback.verified
    assert rollback.reason.startswith("automatic rollback during the monitor window")
    status = services.status(ws, NAME)
    assert status.state == "rolled_back" and status.route["active_slot"] == "blue"
    samples = read_run_samples(ws, NAME, monitor["run_id"], all_columns=True)
    assert samples.height == monitor["samples"] == 2 * monitor["sent"]
    served = samples.filter(pl.col("primary") & (pl.col("slot") == "green"))
    assert (~served["ok"]).sum() == monitor["failed"]  # what users saw is what the samples say


def test_a_hung_green_while_it_serves_users_gets_every_request_answered(ready_ws) -> None:
    """Direct strategy: green takes all traffic, then hangs in the monitor window. Protection: the
    gateway gives up on a slot (UPSTREAM_TIMEOUT_S) before the client gives up on the gateway
    (CLIENT_TIMEOUT_S), so each request stuck in green is answered 502 and counted as failed, not
    lost; with both at 10 s, as before, the client's clock ran out first."""
    ws = ready_ws(NAME)
    hung: list[int] = []

    def hang_green() -> None:
        with connect(ws.db_path) as con:
            green = store.live_slot(con, NAME, "green")
        assert green is not None
        os.kill(int(green["pid"]), signal.SIGSTOP)
        hung.append(int(green["pid"]))

    try:
        out = bounded(
            lambda: services.deploy(
                ws,
                NAME,
                "direct",
                actor="lead",
                reason="fault drill",
                monitor_s=20,
                progress=on_first_tick(hang_green, []),
            ),
            60,
            unblock=lambda: [resume(pid) for pid in hung] and None,
        )
    finally:
        for pid in hung:
            resume(pid)
    assert hung and out.promotion is not None and not out.promotion.promoted
    monitor = out.promotion.steps[-1]
    assert monitor["status"] == "triggered"
    assert monitor["fired"]["name"] in ("failed_health_checks", "error_rate")
    assert monitor["lost"] == 0 and monitor["failed"] > 0
    assert out.promotion.rollback is not None and out.promotion.rollback.state == "rolled_back"
    assert not supervisor.pid_alive(hung[0])
    samples = read_run_samples(ws, NAME, monitor["run_id"], all_columns=True)
    assert samples.height == monitor["samples"] == 2 * monitor["sent"]


def test_green_answering_bytes_that_are_not_http_is_an_error_not_a_traceback(deployed) -> None:
    """Protection: a peer's garbage is an OSError like no answer (supervisor.PeerError), so the health
    check reads it as unhealthy; without it http.client's BadStatusLine escaped the run."""
    ws, out = deployed
    green = pid_on(ws, out.green_port)
    garbage: list[GarbageServer] = []

    def replace_green_with_garbage() -> None:
        os.kill(green, signal.SIGKILL)
        garbage.append(
            GarbageServer(out.green_port, lambda line: b"\x00\xff\xfe SSH-2.0 \x1b[31m not http\r\n\r\n")
        )

    try:
        run = parallel_run(ws, on_first_tick(replace_green_with_garbage, []))
    finally:
        for server in garbage:
            server.close()
    assert garbage and garbage[0].connections > 0
    assert_rolled_back_by_trigger(ws, run, ("error_rate", "failed_health_checks"))
    samples = assert_every_request_sampled(ws, run)
    assert (samples.filter(pl.col("version") == "new")["status"] == 0).sum() > 0


def test_green_answering_200_with_a_body_that_is_not_json_is_a_failure(deployed) -> None:
    """Green's health check is fine, but its answers are HTTP 200 with garbage for a body. Protection:
    the gateway counts a 200 that is not JSON as a failure (and answers 502); without it every request
    passed as ok, no trigger fired and the run completed."""
    ws, out = deployed
    green = pid_on(ws, out.green_port)
    garbage: list[GarbageServer] = []

    def reply(line: bytes) -> bytes:
        if b" /health " in line:
            return http_answer(json.dumps({"status": "ok"}).encode())
        return http_answer(b"<html><body>Internal Server Error</body></html>")

    def replace_green_with_garbage() -> None:
        os.kill(green, signal.SIGKILL)
        garbage.append(GarbageServer(out.green_port, reply))

    try:
        run = parallel_run(ws, on_first_tick(replace_green_with_garbage, []))
    finally:
        for server in garbage:
            server.close()
    assert_rolled_back_by_trigger(ws, run, "error_rate")
    assert run.summary["health_failures"] <= 3  # it was the answers, not the health check
    samples = assert_every_request_sampled(ws, run)
    new = samples.filter(pl.col("version") == "new")
    assert new.filter(~pl.col("ok")).height > 0.05 * new.height


def test_a_green_that_slows_down_fires_the_latency_trigger(deployed) -> None:
    """Green runs 20 ms in every 100 (SIGSTOP/SIGCONT from outside): slower, never down. Protection: the
    p95 latency trigger, checked every bucket; its health checks still pass, nothing else fires."""
    ws, out = deployed
    slow = DutyCycle(pid_on(ws, out.green_port), on_s=0.02, off_s=0.08)
    try:
        run = parallel_run(ws, on_first_tick(slow.start, []), unblock=slow.stop)
    finally:
        slow.stop()
    assert_rolled_back_by_trigger(ws, run, "latency_p95_ratio")
    assert run.summary["fired"]["observed"] > 2
    samples = assert_every_request_sampled(ws, run)
    assert samples["ok"].all()  # slow, not failing


# --------------------------------------------------------------------------- blue misbehaves during rollback


def test_blue_dying_during_the_rollback_ends_in_emergency_said_loudly(deployed) -> None:
    """Green crashes mid-run, the trigger rolls back, and the restored blue dies before it is verified.
    Protection: the rollback verifies blue (directly and through the gateway) and records anything
    short of verified as ``emergency`` (state, event, failure document), releasing its claim."""
    ws, out = deployed
    green = pid_on(ws, out.green_port)
    killed: list[int] = []
    seen: list[tuple[float, str]] = []
    first_tick = on_first_tick(lambda: os.kill(green, signal.SIGKILL), seen)

    def progress(done: int, total: int, label: str) -> None:
        first_tick(done, total, label)
        if label.startswith("verifying blue") and not killed:
            with connect(ws.db_path) as con:
                blue = store.live_slot(con, NAME, "blue")
            assert blue is not None
            os.kill(int(blue["pid"]), signal.SIGKILL)
            killed.append(int(blue["pid"]))

    run = parallel_run(ws, progress)
    assert killed and run.status == "triggered"
    assert run.rollback is not None and run.rollback.state == "emergency" and not run.rollback.verified
    assert run.rollback.problems
    assert services.status(ws, NAME).state == "emergency"
    events = services.list_events(ws, system=NAME, limit=5)
    loud = events.filter(pl.col("action") == "emergency").row(0, named=True)
    assert loud["actor"] == f"trigger:{run.summary['fired']['name']}"
    assert loud["reason"].startswith("rollback could not verify the old version")
    assert events.filter(pl.col("action") == "state:emergency").height == 1
    document = json.loads(open(run.rollback.failure_document).read())
    assert document["verified"] is False and document["verification_problems"]
    with connect(ws.db_path) as con:
        assert store.running_operations(con, NAME).is_empty()  # the claim is released
    # a person rolls back again: blue is restored from the backup once more and verified
    again = bounded(lambda: services.rollback(ws, NAME, actor="lead", reason="after the emergency"), 60)
    assert again.state == "rolled_back" and again.verified


def test_a_hung_old_blue_is_replaced_by_the_restored_one_not_left_running(deployed) -> None:
    """Blue hangs, then a rollback. Protection: the rollback stops every earlier blue the store counts as
    live, answering or not; before, a hung one failed its health check, was taken for absent and ran on."""
    ws, out = deployed
    blue = pid_on(ws, out.blue_port)
    os.kill(blue, signal.SIGSTOP)
    back = bounded(
        lambda: services.rollback(ws, NAME, actor="lead", reason="blue hangs"),
        60,
        unblock=lambda: resume(blue),
    )
    assert back.state == "rolled_back" and back.verified
    assert not supervisor.pid_alive(blue)
    status = services.status(ws, NAME)
    assert [p["role"] for p in status.processes] == ["blue"] and status.processes[0]["pid"] != blue
    with connect(ws.db_path) as con:
        live = set(store.live_processes(con)["pid"].to_list())
    assert supervisor.owned_pids(ws) == live  # nothing runs that the store does not know of


@pytest.mark.parametrize("fault", [signal.SIGKILL, signal.SIGSTOP], ids=["dead", "hung"])
def test_a_warm_blue_that_died_or_hangs_is_restored_before_traffic_moves(
    ready_ws, fault: signal.Signals
) -> None:
    """Inside the fast-rollback window a rollback is a traffic switch to the still-running blue. If that
    blue has died or hangs, switching to it would send every request nowhere and stop a green that
    answers. Protection: the switch-back checks blue first and restores it from the backup when it does
    not answer (before: every request got 502 and the rollback ended in emergency)."""
    ws = ready_ws(NAME)
    out = bounded(
        lambda: services.deploy(
            ws, NAME, "direct", actor="lead", reason="fault drill", monitor_s=2, warm_s=300
        ),
        60,
    )
    assert out.state == "done"
    warm = next(p["pid"] for p in services.status(ws, NAME).processes if p["role"] == "blue")
    os.kill(warm, fault)
    try:
        back = bounded(
            lambda: services.rollback(ws, NAME, actor="lead", reason="customer impact"),
            60,
            unblock=lambda: resume(warm),
        )
    finally:
        resume(warm)
    assert back.state == "rolled_back" and back.verified, back.problems
    assert not supervisor.pid_alive(warm)
    status = services.status(ws, NAME)
    assert [p["role"] for p in status.processes] == ["blue"] and status.processes[0]["pid"] != warm
    assert status.route["active_slot"] == "blue"
    lost = services.list_events(ws, system=NAME, limit=20).filter(
        pl.col("action") == "rollback:warm_blue_lost"
    )
    assert lost.height == 1 and lost["actor"][0] == "lead"
    with connect(ws.db_path) as con:
        live = set(store.live_processes(con)["pid"].to_list())
    assert supervisor.owned_pids(ws) == live
