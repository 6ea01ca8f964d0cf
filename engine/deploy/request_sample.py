"""The gateway's sample of real request bodies, per system, run and endpoint, for the gate to replay.

A parallel run sees the requests real clients send: a customer id, a value
only one client uses. The gate (:mod:`engine.validate.live`) sends v1 and v2
requests built from each endpoint's declared shape; what it cannot invent it
can replay, if the gateway kept it. So, while a route records a run, every
request's body is offered to :meth:`RequestSample.add`, which keeps a
bounded, deduplicated sample:

* **Distinct bodies, sampled uniformly, whatever their frequency** (bottom-k
  sampling): each body's priority is a hash of it salted with the run id,
  and an endpoint keeps the ``per_endpoint`` bodies with the smallest
  priorities. A body sent a million times counts once (its ``seen`` grows),
  so a flood of one request does not push out the rare one, and every
  distinct body has the same chance to be kept: a uniform sample over the
  variety of the traffic, not over its volume.
* **Bounded**: at most ``per_endpoint`` bodies per endpoint, bodies over
  ``max_body_bytes`` are counted and not kept, at most
  :data:`MAX_ENDPOINTS` endpoints per system and run (a client calling made-up
  endpoints cannot grow it; 404 answers are not kept at all), and a run's
  sample is dropped from memory once it is written after the route stops
  recording it. Memory is at most runs x endpoints x per_endpoint x
  max_body_bytes, whatever the traffic.
* **Cheap on the request path**: one salted 8-byte BLAKE2b of the body and a
  dict lookup per request; the heap and the dict change only when a body
  makes it into the sample, which becomes rare as a run goes on (the k-th
  distinct body gets in with probability per_endpoint / k).

:meth:`take` runs on the gateway's loop (so what it snapshots is consistent)
and :meth:`write` in the flush thread: a run whose sample changed is written
as one file, whole or absent (:mod:`engine.store.recorded_requests`). Counts
alone (``seen``) are written at most every :data:`COUNTS_EVERY_S` and when
the run ends.
"""

from __future__ import annotations

import hashlib
import heapq
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.store import recorded_requests as files

MAX_ENDPOINTS = 32
"""Endpoints kept per system and run; requests to more are counted, not kept."""
COUNTS_EVERY_S = 60.0
"""A sample whose only change is its counts is written at most this often (and when its run ends)."""
DEFAULT_PER_ENDPOINT = 50
DEFAULT_MAX_BODY_BYTES = 8192


@dataclass
class _Run:
    """One run's sample in memory, with what is not yet on disk."""

    salt: bytes
    sample: files.RunSample = field(default_factory=files.RunSample)
    heaps: dict[str, list[int]] = field(default_factory=dict)
    """Per endpoint, the kept priorities negated (a max-heap: the first is the one to evict)."""
    changed: bool = False
    """Bodies came in or out since the last write."""
    counted: bool = False
    """Counts moved since the last write."""
    written_at: float = 0.0


def salt_of(run_id: str) -> bytes:
    """The run's hash key: the same in every gateway process, so samples of one run merge exactly."""
    return hashlib.blake2b(run_id.encode(), digest_size=16, person=b"switchyard-reqs").digest()


class RequestSample:
    """Per (system, run): a bottom-k sample of distinct request bodies per endpoint; see the module doc."""

    def __init__(self, samples_dir: Path):
        self.samples_dir = samples_dir
        self.per_endpoint = DEFAULT_PER_ENDPOINT
        self.max_body_bytes = DEFAULT_MAX_BODY_BYTES
        self.runs: dict[tuple[str, str], _Run] = {}
        self.active: set[tuple[str, str]] = set()
        self._bases: dict[tuple[str, str], files.RunSample] = {}  # the flush thread's own
        self.written = 0

    def configure(self, settings: dict[str, Any] | None, active: set[tuple[str, str]]) -> None:
        """The routes file's ``record_requests`` (policy ``[recorded_requests]``) and the runs recording."""
        settings = settings or {}
        self.per_endpoint = int(settings.get("per_endpoint", DEFAULT_PER_ENDPOINT))
        self.max_body_bytes = int(settings.get("max_body_bytes", DEFAULT_MAX_BODY_BYTES))
        self.active = active

    def add(self, system: str, run_id: str, endpoint: str, body: bytes) -> None:
        """Offer one request's body (on the request path: a hash and a lookup, see the module doc)."""
        limit = self.per_endpoint
        if limit <= 0:
            return
        run = self.runs.get((system, run_id))
        if run is None:
            run = self.runs[(system, run_id)] = _Run(salt_of(run_id))
        per = run.sample.endpoints.get(endpoint)
        if per is None:
            if len(run.sample.endpoints) >= MAX_ENDPOINTS:
                run.sample.other_endpoints += 1
                run.counted = True
                return
            per = run.sample.endpoints[endpoint] = files.EndpointSample()
            run.heaps[endpoint] = []
        per.requests += 1
        run.counted = True
        if len(body) > self.max_body_bytes:
            per.too_large += 1
            return
        priority = int.from_bytes(hashlib.blake2b(body, digest_size=8, key=run.salt).digest(), "big")
        kept = per.kept.get(priority)
        if kept is not None:
            kept.seen += 1
            return
        heap = run.heaps[endpoint]
        if len(heap) < limit:
            heapq.heappush(heap, -priority)
        elif priority < -heap[0]:
            del per.kept[-heapq.heapreplace(heap, -priority)]
        else:
            return
        per.kept[priority] = files.Kept(body, time.time_ns() // 1000)
        run.changed = True

    def take(self, *, final: bool = False) -> list[tuple[tuple[str, str], files.RunSample, bool]]:
        """On the loop: copies of the samples due for writing; runs no longer recorded leave memory.

        Each item is ``(key, sample, ended)``. Copies are made here, where no
        request can change a sample halfway, and written by :meth:`write` in
        the flush thread. ``final``: the gateway stops; everything is due.
        """
        now = time.monotonic()
        due = []
        for key, run in list(self.runs.items()):
            ended = final or key not in self.active
            if run.changed or (run.counted and (ended or now - run.written_at >= COUNTS_EVERY_S)):
                due.append((key, _copy(run.sample), ended))
                run.changed = run.counted = False
                run.written_at = now
            elif ended:
                due.append((key, files.RunSample(), True))  # nothing new: only forget it
            if ended:
                del self.runs[key]
        return due

    def write(self, due: list[tuple[tuple[str, str], files.RunSample, bool]]) -> int:
        """In the flush thread: each sample merged with what an earlier gateway process wrote, then written.

        The file as found at this process's first write of a run is the base
        (a gateway that restarted mid-run continues its predecessor's sample);
        afterwards this process's sample holds everything it added since.
        """
        rows = 0
        settings = {"per_endpoint": self.per_endpoint, "max_body_bytes": self.max_body_bytes}
        for (system, run_id), sample, ended in due:
            path = files.run_file(self.samples_dir, system, run_id)
            if sample.endpoints or sample.other_endpoints:
                base = self._bases.get((system, run_id))
                if base is None:
                    base = self._bases[(system, run_id)] = _base(path)
                whole = files.merged(base, sample, max(self.per_endpoint, 1))
                rows += files.write(path, whole, settings)
            if ended:
                self._bases.pop((system, run_id), None)
        self.written += rows
        return rows


def _base(path: Path) -> files.RunSample:
    """What an earlier gateway process wrote of the run; a damaged file is replaced, not merged."""
    try:
        return files.read(path)
    except files.UNREADABLE as exc:
        print(f"gateway: {path} is damaged ({exc}); writing it anew", file=sys.stderr, flush=True)
        return files.RunSample()


def _copy(sample: files.RunSample) -> files.RunSample:
    """A copy the loop may go on changing the original of (bodies are immutable bytes, shared)."""
    return files.RunSample(
        endpoints={
            name: files.EndpointSample(
                kept={p: files.Kept(k.body, k.first_seen_us, k.seen) for p, k in per.kept.items()},
                requests=per.requests,
                too_large=per.too_large,
            )
            for name, per in sample.endpoints.items()
        },
        other_endpoints=sample.other_endpoints,
    )
