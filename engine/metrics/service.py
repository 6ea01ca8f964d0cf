"""What a served system version tells Prometheus: requests and latency per version, on ``GET /metrics``.

Names and labels are the contract the Prometheus metrics source and the Argo
Rollouts AnalysisTemplate query (:mod:`engine.metrics.prometheus`,
:mod:`engine.export.argo`):

* ``switchyard_requests_total{system, version, endpoint, code}``: a counter of
  answered calls, ``code`` the HTTP status;
* ``switchyard_request_duration_seconds{system, version, code}``: a histogram
  of the time from the request to the answer, measured inside the service.

``version`` is ``old`` for the v1 RPC runtime and ``new`` for the port runtime,
as in the samples. Endpoints a system does not have are counted as ``other``,
so a caller cannot grow the label set without bound.
"""

from __future__ import annotations

from collections.abc import Iterable

from engine.metrics.exposition import CONTENT_TYPE, Counter, Histogram, render

REQUESTS = "switchyard_requests_total"
DURATION = "switchyard_request_duration_seconds"
VERSION_OF_RUNTIME = {"v1": "old", "v2": "new"}

__all__ = ["CONTENT_TYPE", "DURATION", "REQUESTS", "VERSION_OF_RUNTIME", "ServiceMetrics"]


class ServiceMetrics:
    """The request counter and latency histogram of one served version."""

    def __init__(self, system: str, version: str, endpoints: Iterable[str]):
        self.system, self.version = system, version
        self.endpoints = frozenset(endpoints)
        self.requests = Counter(
            REQUESTS,
            "Calls answered, by endpoint and HTTP status.",
            ("system", "version", "endpoint", "code"),
        )
        self.duration = Histogram(
            DURATION, "Seconds from request to answer, by HTTP status.", ("system", "version", "code")
        )

    def observe(self, endpoint: str, status: int, seconds: float) -> None:
        known = endpoint if endpoint in self.endpoints else "other"
        self.requests.inc(self.system, self.version, known, str(status))
        self.duration.observe(seconds, self.system, self.version, str(status))

    def render(self) -> str:
        return render([self.requests, self.duration])
