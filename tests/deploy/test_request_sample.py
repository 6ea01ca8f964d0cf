"""The gateway's sample of real request bodies (issue 15 point 3): bounded, deduplicated, uniform, off-able.

The recorder runs on every request of a recorded run, so what is checked
here is what keeps it safe to leave on: a body sent a thousand times is kept
once, an endpoint keeps at most ``per_endpoint`` bodies whatever the traffic
(the bottom-k by salted hash: the same ones a second gateway process would
keep), large bodies and made-up endpoints are counted and never kept, a run
leaves memory once it is written, and ``per_endpoint = 0`` keeps nothing.
The in-process gateway test sends real requests through
:meth:`Gateway.handle` and reads back the file the gate replays.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path

from engine.deploy import request_sample, supervisor
from engine.deploy.gateway import Gateway
from engine.deploy.http import Request, Response, start_server
from engine.deploy.request_sample import RequestSample, salt_of
from engine.errors import InputError
from engine.judge.policy import Policy, RecordedRequestsPolicy
from engine.store import recorded_requests as files

RUN = "r-20261204T181500-abc123"


def body(i: int) -> bytes:
    return json.dumps({"customer": f"c-{i}", "qty": i % 7}).encode()


def priority(run_id: str, raw: bytes) -> int:
    return int.from_bytes(hashlib.blake2b(raw, digest_size=8, key=salt_of(run_id)).digest(), "big")


def recorder(tmp_path: Path, per_endpoint: int = 5, max_body_bytes: int = 200) -> RequestSample:
    sample = RequestSample(tmp_path / "samples")
    sample.configure({"per_endpoint": per_endpoint, "max_body_bytes": max_body_bytes}, {("shop", RUN)})
    return sample


def test_an_endpoint_keeps_a_bounded_uniform_sample_of_distinct_bodies(tmp_path: Path) -> None:
    sample = recorder(tmp_path, per_endpoint=5)
    for _ in range(1000):
        sample.add("shop", RUN, "order", body(0))  # one client's flood
    for i in range(1, 400):
        sample.add("shop", RUN, "order", body(i))
    sample.add("shop", RUN, "order", b"x" * 201)  # over the size limit
    per = sample.runs[("shop", RUN)].sample.endpoints["order"]
    assert per.requests == 1400 and per.too_large == 1
    assert len(per.kept) == 5
    expected = sorted(range(400), key=lambda i: priority(RUN, body(i)))[:5]  # bottom-k over distinct bodies
    assert sorted(k.body for k in per.kept.values()) == sorted(body(i) for i in expected)
    if 0 in expected:  # the flooded body counts once in the draw, and its count says how often it came
        assert per.kept[priority(RUN, body(0))].seen == 1000


def test_made_up_endpoints_are_counted_not_kept(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(request_sample, "MAX_ENDPOINTS", 3)
    sample = recorder(tmp_path)
    for i in range(10):
        sample.add("shop", RUN, f"made-up-{i}", body(i))
    run = sample.runs[("shop", RUN)].sample
    assert len(run.endpoints) == 3 and run.other_endpoints == 7


def test_off_keeps_nothing_and_writes_nothing(tmp_path: Path) -> None:
    sample = recorder(tmp_path, per_endpoint=0)
    for i in range(50):
        sample.add("shop", RUN, "order", body(i))
    assert sample.runs == {}
    assert sample.write(sample.take(final=True)) == 0
    assert not (tmp_path / "samples").exists()


def test_a_run_is_written_whole_leaves_memory_when_it_ends_and_a_restart_merges(tmp_path: Path) -> None:
    first = recorder(tmp_path, per_endpoint=5)
    for i in range(30):
        first.add("shop", RUN, "order", body(i))
    assert first.write(first.take()) == 5  # still recording: written, kept in memory
    assert ("shop", RUN) in first.runs
    first.configure({"per_endpoint": 5}, set())  # the run stopped recording
    first.write(first.take())
    assert first.runs == {}
    # a second gateway process (a restart mid-run) sees other bodies of the same run
    second = recorder(tmp_path, per_endpoint=5)
    for i in range(20, 60):
        second.add("shop", RUN, "order", body(i))
    second.write(second.take(final=True))
    on_disk = files.read(files.run_file(tmp_path / "samples", "shop", RUN)).endpoints["order"]
    expected = sorted(range(60), key=lambda i: priority(RUN, body(i)))[:5]  # as if one process saw it all
    assert sorted(k.body for k in on_disk.kept.values()) == sorted(body(i) for i in expected)
    assert on_disk.requests == 70
    assert not list((tmp_path / "samples").rglob("*.tmp"))


def test_memory_stays_flat_however_many_distinct_requests(tmp_path: Path) -> None:
    sample = recorder(tmp_path, per_endpoint=50, max_body_bytes=8192)
    for i in range(20_000):
        sample.add("shop", RUN, ("order", "quote")[i % 2], body(i))
    run = sample.runs[("shop", RUN)]
    assert [len(per.kept) for per in run.sample.endpoints.values()] == [50, 50]
    assert [len(h) for h in run.heaps.values()] == [50, 50]


def test_the_gateway_records_what_clients_sent_and_the_file_is_no_segment(tmp_path: Path) -> None:
    """Through Gateway.handle: 200s and failures are kept, 404s not; the file is beside, never among, the
    run's segments."""

    async def scenario() -> Gateway:
        async def backend(request: Request) -> Response:
            if request.path.endswith("/nowhere"):
                return Response(404, b'{"error": "no such endpoint"}')
            return Response(200, b'{"ok": true}')

        server = await start_server(backend, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        route = {
            "active": "blue",
            "mirror": False,
            "record_run": RUN,
            "slots": {"blue": {"port": port, "version": "old"}},
        }
        document = {"systems": {"shop": route}, "record_requests": {"per_endpoint": 3, "max_body_bytes": 100}}
        (tmp_path / "routes.json").write_text(json.dumps(document))
        gateway = Gateway(tmp_path / "routes.json", tmp_path / "samples")
        try:
            for path, raw in [
                ("order", body(1)),
                ("order", body(1)),
                ("order", '{"customer": "Café Luitpold"}'.encode()),
                ("nowhere", body(2)),
            ]:
                request = Request("POST", f"/s/shop/call/{path}", {"content-length": str(len(raw))}, raw)
                await gateway.handle(request)
            await gateway.flush()
        finally:
            server.close()
        return gateway

    asyncio.run(scenario())
    folder = tmp_path / "samples" / "system=shop" / f"run={RUN}"
    segments = list(folder.glob("part-*.parquet"))
    assert len(segments) == 1 and {p.name for p in folder.iterdir()} == {files.FILE, segments[0].name}
    recorded = files.replay_set(tmp_path / "samples", "shop", 50)
    assert [(r.endpoint, r.message, r.seen) for r in recorded.requests] == [
        ("order", {"customer": "c-1", "qty": 1}, 2),
        ("order", {"customer": "Café Luitpold"}, 1),
    ]
    assert {r.run_id for r in recorded.requests} == {RUN}


def test_the_routes_file_carries_the_policy_and_an_unreadable_policy_keeps_nothing(monkeypatch) -> None:
    """What the supervisor writes for the gateway (``record_requests``): the shipped policy keeps 50 per
    endpoint; ``keep_per_endpoint = 0`` keeps none; a policy that does not load is not consent to keep."""
    assert supervisor.record_requests_settings() == {"per_endpoint": 50, "max_body_bytes": 8192}
    off = Policy(recorded_requests=RecordedRequestsPolicy(keep_per_endpoint=0))
    monkeypatch.setattr(supervisor, "load_policy", lambda: off)
    assert supervisor.record_requests_settings()["per_endpoint"] == 0

    def unreadable() -> Policy:
        raise InputError("data/policy.toml", "recorded_requests.keep_per_endpoint", "an integer", "'lots'")

    monkeypatch.setattr(supervisor, "load_policy", unreadable)
    assert supervisor.record_requests_settings()["per_endpoint"] == 0


def test_a_damaged_file_is_written_anew_and_the_gate_leaves_it_out_by_name(tmp_path: Path) -> None:
    """A half-copied or hand-edited requests.parquet never stops the gateway's flush (its segments are
    what a run cannot lose) and never stops the gate: the other runs are replayed, the damaged one named."""
    samples = tmp_path / "samples"
    damaged = files.run_file(samples, "shop", "r-damaged")
    damaged.parent.mkdir(parents=True)
    damaged.write_bytes(b"PAR1 not really")
    sample = RequestSample(samples)
    sample.configure({"per_endpoint": 5}, {("shop", "r-damaged"), ("shop", RUN)})
    sample.add("shop", RUN, "order", body(1))
    sample.write(sample.take())
    assert files.replay_set(samples, "shop", 50).unreadable == ["r-damaged"]
    assert [r.message for r in files.replay_set(samples, "shop", 50).requests] == [json.loads(body(1))]
    sample.add("shop", "r-damaged", "order", body(2))
    assert sample.write(sample.take()) == 1  # replaced, not merged with what cannot be read
    assert files.replay_set(samples, "shop", 50).unreadable == []
